"""Shared helpers for the client scripts run by crates/dpm/tests/it.

Every script takes --port/--user/--password/--db (127.0.0.1 only), does its
own assertions (an AssertionError exits non-zero with a traceback) and prints
a deterministic transcript that the Rust test compares between the proxy and
MariaDB itself.
"""

import argparse


def parse_args(configure=None):
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--db", required=True)
    if configure:
        configure(p)
    return p.parse_args()


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
    options.update(kw)
    return pymysql.connect(**options)
