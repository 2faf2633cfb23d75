"""Shared helpers for the client scripts run by crates/dpm/tests/it.

Every script takes --port/--user/--password/--db (127.0.0.1 only), does its
own assertions (an AssertionError exits non-zero with a traceback) and prints
a deterministic transcript that the Rust test compares between the proxy and
MariaDB itself.

TLS (PyMySQL, through pymysql_connect): --ssl-mode picks what the client does:
  default   PyMySQL's own default: 1.1 never asks for TLS; 1.2 and later use TLS
            whenever the server offers it, without verifying the certificate
  disabled  never TLS (ssl_disabled=True)
  required  TLS or fail, certificate not verified
  verify    TLS or fail, the certificate verified against --ssl-ca and the host name
            checked (the default mode when --ssl-ca is given)
"""

import argparse


def parse_args(configure=None):
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--ssl-mode", choices=["default", "disabled", "required", "verify"])
    p.add_argument("--ssl-ca", help="CA certificate (PEM) to verify the server with")
    if configure:
        configure(p)
    args = p.parse_args()
    if args.ssl_mode is None:
        args.ssl_mode = "verify" if args.ssl_ca else "default"
    if args.ssl_mode == "verify" and not args.ssl_ca:
        p.error("--ssl-mode verify needs --ssl-ca")
    return args


def pymysql_tls_options(args):
    """The pymysql.connect keyword arguments for args.ssl_mode."""
    import ssl

    if args.ssl_mode == "disabled":
        return {"ssl_disabled": True}
    if args.ssl_mode == "required":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return {"ssl": ctx}
    if args.ssl_mode == "verify":
        return {"ssl_ca": args.ssl_ca, "ssl_verify_cert": True, "ssl_verify_identity": True}
    return {}


def pymysql_connect(args, **kw):
    import pymysql

    options = dict(
        host=args.host,
        port=args.port,
        user=args.user,
        password=args.password,
        database=args.db,
        connect_timeout=10,
        read_timeout=30,
        write_timeout=30,
    )
    options.update(pymysql_tls_options(args))
    options.update(kw)
    return pymysql.connect(**options)
