"""MariaDB Connector/Python (libmariadb): server-side prepared statements
with cursor(prepared=True, binary=True) (binary protocol), executemany (COM_STMT_BULK_EXECUTE
on MariaDB), rows and empty results, statement reuse, errors.

A cursor made with prepared=True stays bound to the first statement it
executes (later execute() calls reuse it and ignore the SQL text), so each
statement gets its own cursor."""

import datetime
from decimal import Decimal

import mariadb

from common import parse_args

args = parse_args(lambda p: p.add_argument(
    "--status-servers", default="",
    help="comma-separated server names: the session's Com_stmt_* counters are summed "
         "over its backend on each (asked with a dpm routing hint), for a proxy that "
         "spreads one session over several servers",
))
conn = mariadb.connect(
    host=args.host, port=args.port, user=args.user, password=args.password,
    database=args.db, autocommit=True, connect_timeout=10, read_timeout=60, write_timeout=60,
)
out = []

params = (
    -9000000000, None, "héllo ✓", b"\x00\x01\xff'\\", 2.5,
    datetime.date(2024, 2, 29), datetime.datetime(2024, 2, 29, 23, 59, 58, 123456),
    Decimal("12345.678900"), datetime.timedelta(hours=12, minutes=34, seconds=56),
)
echo = conn.cursor(prepared=True, binary=True)
echo.execute("SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?", params)
row = echo.fetchone()
assert row == params, f"{row!r} != {params!r}"
assert echo.fetchone() is None
out.append(f"echo params: {row!r}")
echo.close()

conn.cursor().execute(
    "CREATE OR REPLACE TABLE py_conn (id INT PRIMARY KEY, name VARCHAR(40), "
    "price DECIMAL(10,2), at DATETIME(6), data BLOB, f DOUBLE)"
)
data = [
    (i, f"name-{i}", Decimal(f"{i}.25"), datetime.datetime(2024, 1, 1, 0, 0, i % 60, i),
     bytes([i % 256]) * 3, None if i % 7 == 0 else i / 8)
    for i in range(1, 201)
]
ins = conn.cursor(prepared=True, binary=True)
ins.executemany("INSERT INTO py_conn VALUES (?, ?, ?, ?, ?, ?)", data)
assert ins.rowcount == 200, ins.rowcount
out.append(f"executemany: rowcount {ins.rowcount}")
ins.close()

# One prepared statement, executed with different parameters.
sel = conn.cursor(prepared=True, binary=True)
sql = "SELECT id, name, price, at, data, f FROM py_conn WHERE id BETWEEN ? AND ? ORDER BY id"
for lo, hi in [(1, 3), (7, 7), (500, 600), (199, 300)]:
    sel.execute(sql, (lo, hi))
    rows = sel.fetchall()
    assert rows == [d for d in data if lo <= d[0] <= hi], rows
    out.append(f"range {lo}..{hi}: {len(rows)} rows")
sel.close()

cnt = conn.cursor(prepared=True, binary=True)
cnt.execute("SELECT COUNT(*), SUM(f IS NULL) FROM py_conn WHERE id > ?", (0,))
assert cnt.fetchone() == (200, Decimal("28")), "count"
cnt.close()

bad = conn.cursor(prepared=True, binary=True)
try:
    bad.execute("SELECT * FROM no_such_table WHERE id = ?", (1,))
    raise AssertionError("no error")
except mariadb.ProgrammingError as e:
    out.append(f"error: {e}")
bad.close()

after = conn.cursor(prepared=True, binary=True)
after.execute("SELECT ? + 1", (41,))
assert after.fetchone() == (42,)
out.append("after error: ok")
after.close()

# The statements above really went through the binary protocol. (Session status is
# per server connection: through dpm's readwritesplit, which prepares every statement on
# each backend and executes it on one, the counters are summed over the servers named.)
st = conn.cursor()
status = {}
hints = [f" /* dpm: route to server {s} */" for s in args.status_servers.split(",") if s]
for hint in hints or [""]:
    st.execute("SHOW SESSION STATUS LIKE 'Com_stmt_%'" + hint)
    for k, v in st.fetchall():
        status[k] = status.get(k, 0) + int(v)
out.append(f"session status: {sorted(status.items())}")
assert status["Com_stmt_prepare"] >= 6 and status["Com_stmt_execute"] >= 8, status
conn.close()
print("\n".join(out))
