"""Logs in, prints CONNECTION_ID() and exits without COM_QUIT."""

import os
import sys

from common import parse_args, pymysql_connect

args = parse_args()
conn = pymysql_connect(args)
with conn.cursor() as cur:
    cur.execute("SELECT CONNECTION_ID()")
    (cid,) = cur.fetchone()
print(f"connection_id {cid}", flush=True)
sys.stdout.flush()
# No conn.close(): the process ends and the kernel closes the socket.
os._exit(0)
