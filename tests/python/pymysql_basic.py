"""PyMySQL (text protocol, never negotiates CLIENT_DEPRECATE_EOF): rows,
empty result sets, NULLs, DML, errors, warnings, unbuffered reads, COM_PING,
COM_INIT_DB, transactions."""

from decimal import Decimal

import pymysql
import pymysql.cursors
from pymysql.constants import CLIENT

from common import parse_args, pymysql_connect

args = parse_args()
conn = pymysql_connect(args)
out = []
# The EOF path: PyMySQL does not ask for CLIENT_DEPRECATE_EOF.
assert not conn.client_flag & CLIENT.DEPRECATE_EOF, "PyMySQL asked for DEPRECATE_EOF"
out.append(f"client asked DEPRECATE_EOF: {bool(conn.client_flag & CLIENT.DEPRECATE_EOF)}")

with conn.cursor() as cur:
    n = cur.execute(
        "SELECT seq, CONCAT('r', seq) AS s, IF(seq % 2, NULL, seq * 1.5) AS maybe, "
        "_utf8mb4'ünï ✓' AS u FROM seq_1_to_5"
    )
    rows = cur.fetchall()
    assert n == 5 and rows[1] == (2, "r2", Decimal("3.0"), "ünï ✓"), rows
    assert rows[0][2] is None
    out.append(f"rows: {rows!r}")
    out.append(f"columns: {[d[0] for d in cur.description]}")

    n = cur.execute("SELECT seq AS n, 'c' AS c FROM seq_1_to_5 WHERE seq > 10")
    rows = cur.fetchall()
    assert n == 0 and rows == () and [d[0] for d in cur.description] == ["n", "c"]
    out.append(f"empty: {rows!r} columns {[d[0] for d in cur.description]}")

    cur.execute("CREATE OR REPLACE TABLE py_basic (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(10))")
    n = cur.execute("INSERT INTO py_basic (v) VALUES ('a'), ('b'), (NULL)")
    assert n == 3 and cur.lastrowid == 1, (n, cur.lastrowid)
    n = cur.execute("UPDATE py_basic SET v = 'z' WHERE id > 1")
    assert n == 2
    out.append(f"dml: inserted 3, lastrowid {cur.lastrowid}, updated {n}")

    cur.execute("SELECT 1/0 AS d")
    assert cur.fetchall() == ((None,),)
    assert cur._result.warning_count == 1, cur._result.warning_count
    cur.execute("SHOW WARNINGS")
    warnings = cur.fetchall()
    out.append(f"warnings: {warnings!r}")

    try:
        cur.execute("SELECT * FROM no_such_table")
        raise AssertionError("no error")
    except pymysql.err.ProgrammingError as e:
        assert e.args[0] == 1146, e.args
        out.append(f"error: {e.args!r}")

    # Transactions.
    conn.begin()
    cur.execute("INSERT INTO py_basic (v) VALUES ('gone')")
    conn.rollback()
    cur.execute("SELECT COUNT(*) FROM py_basic")
    assert cur.fetchone() == (3,)
    out.append("rollback: ok")

# Unbuffered (streaming) reads: many rows, then an empty set.
with conn.cursor(pymysql.cursors.SSCursor) as cur:
    cur.execute("SELECT seq, REPEAT('y', seq % 100) FROM seq_1_to_20000")
    count = total = 0
    for seq, s in cur:
        count += 1
        total += len(s)
    assert count == 20000, count
    out.append(f"streamed: {count} rows, {total} bytes")
    cur.execute("SELECT 1 FROM DUAL WHERE 0")
    assert list(cur) == []
    out.append("streamed empty: ok")

conn.ping(reconnect=False)
conn.select_db("mysql")  # COM_INIT_DB
with conn.cursor() as cur:
    cur.execute("SELECT DATABASE()")
    assert cur.fetchone() == ("mysql",)
out.append("ping, select_db: ok")
conn.close()
print("\n".join(out))
