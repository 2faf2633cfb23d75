"""Kills this client's backend connection from a direct connection to the
server (--kill-port), waits until it is gone, then queries: the client must
see a lost-connection error (2013/2006), not a hang (read_timeout bounds it)."""

import time

import pymysql

from common import parse_args, pymysql_connect

args = parse_args(lambda p: p.add_argument("--kill-port", type=int, required=True))
conn = pymysql_connect(args, read_timeout=15)
with conn.cursor() as cur:
    cur.execute("SELECT CONNECTION_ID()")
    (cid,) = cur.fetchone()

killer = pymysql.connect(
    host=args.host, port=args.kill_port, user=args.user, password=args.password,
    connect_timeout=10, read_timeout=30,
)
with killer.cursor() as cur:
    cur.execute(f"KILL {cid}")
    deadline = time.monotonic() + 10
    while True:
        cur.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = %s", (cid,))
        if cur.fetchone()[0] == 0:
            break
        assert time.monotonic() < deadline, f"connection {cid} still in the processlist"
        time.sleep(0.05)
killer.close()

try:
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
        print("no error", cur.fetchall())
except pymysql.err.OperationalError as e:
    print(f"error {e.args[0]}")
