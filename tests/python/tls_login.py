"""Logs in (with the TLS options of common.py) and prints who it is and whether the
session is encrypted, or the error the login met.

--driver pymysql (default) or mariadb (MariaDB Connector/Python, libmariadb).
Prints on success (exit 0):
  user: <CURRENT_USER()>
  ssl_version: <SHOW STATUS LIKE 'Ssl_version', empty without TLS>
  ssl_cipher: <Ssl_cipher, empty without TLS>
  driver: <pymysql|mariadb> <its version>
  client_tls: <the TLS version of the client's own socket, empty without TLS>
  server_public_key: <PyMySQL: the base64 body of the RSA public key it asked the
                      server for (caching_sha2_password's full authentication without
                      TLS), or "none"; Connector/Python: "n/a">
and on a failed login (exit 3):
  error: <exception class> <errno> <message>
"""

import sys

from common import parse_args, pymysql_connect


def configure(p):
    p.add_argument("--driver", choices=["pymysql", "mariadb"], default="pymysql")


args = parse_args(configure)


def mariadb_connect():
    import mariadb

    options = dict(
        host=args.host, port=args.port, user=args.user, password=args.password,
        database=args.db, connect_timeout=10, read_timeout=30, write_timeout=30,
    )
    if args.ssl_mode == "required":
        options.update(ssl=True, ssl_verify_cert=False)
    elif args.ssl_mode == "verify":
        options.update(ssl=True, ssl_ca=args.ssl_ca, ssl_verify_cert=True)
    # "disabled" and "default": Connector/Python 1.1 (libmariadb 3.3) asks for TLS only
    # when told to. "required" is not enforced: libmariadb 3.3 falls back to plain
    # when the server does not offer TLS (only certificate verification requires it).
    return mariadb.connect(**options)


try:
    conn = mariadb_connect() if args.driver == "mariadb" else pymysql_connect(args)
except Exception as e:  # what the user sees when the login fails
    errno = e.args[0] if e.args and isinstance(e.args[0], int) else getattr(e, "errno", "")
    msg = e.args[1] if len(e.args) > 1 else (e.args[0] if e.args else "")
    print(f"error: {type(e).__name__} {errno} {msg}")
    sys.exit(3)

cur = conn.cursor()
cur.execute("SELECT CURRENT_USER()")
print(f"user: {cur.fetchone()[0]}")
for name in ("Ssl_version", "Ssl_cipher"):
    cur.execute(f"SHOW STATUS LIKE '{name}'")
    row = cur.fetchone()
    print(f"{name.lower()}: {row[1] if row else ''}")
cur.close()
if args.driver == "mariadb":
    import mariadb

    print(f"driver: mariadb {mariadb.__version__}")
    print(f"client_tls: {conn.tls_version or ''}")
    print("server_public_key: n/a")
else:
    import ssl

    import pymysql

    print(f"driver: pymysql {'.'.join(str(n) for n in pymysql.VERSION[:3])}")
    sock = conn._sock
    print(f"client_tls: {sock.version() if isinstance(sock, ssl.SSLSocket) else ''}")
    key = conn.server_public_key
    if key:
        body = "".join(
            line for line in key.decode().splitlines() if line and not line.startswith("-----")
        )
        print(f"server_public_key: {body}")
    else:
        print("server_public_key: none")
conn.close()
