"""SQL-level prepared statements (PREPARE / EXECUTE / DEALLOCATE) with PyMySQL."""

import pymysql

from common import parse_args, pymysql_connect

args = parse_args()
conn = pymysql_connect(args)
out = []
with conn.cursor() as cur:
    cur.execute("PREPARE s FROM 'SELECT ?+?'")
    cur.execute("SET @a = 1, @b = 2")
    cur.execute("EXECUTE s USING @a, @b")
    assert cur.fetchall() == ((3,),)
    cur.execute("SET @a = 40")
    cur.execute("EXECUTE s USING @a, @b")
    assert cur.fetchall() == ((42,),)
    out.append("EXECUTE s USING @a, @b: 3 then 42")

    cur.execute("PREPARE t FROM 'SELECT seq, ? FROM seq_1_to_4 WHERE seq > ?'")
    cur.execute("SET @tag = 'tag', @min = 2")
    cur.execute("EXECUTE t USING @tag, @min")
    rows = cur.fetchall()
    assert rows == ((3, "tag"), (4, "tag")), rows
    cur.execute("SET @min = 10")
    cur.execute("EXECUTE t USING @tag, @min")
    assert cur.fetchall() == ()
    out.append(f"rows then empty: {rows!r}")

    cur.execute("DEALLOCATE PREPARE s")
    try:
        cur.execute("EXECUTE s USING @a, @b")
        raise AssertionError("no error")
    except pymysql.err.OperationalError as e:
        assert e.args[0] == 1243, e.args
        out.append(f"after DEALLOCATE: {e.args!r}")
    cur.execute("DEALLOCATE PREPARE t")
conn.close()
print("\n".join(out))
