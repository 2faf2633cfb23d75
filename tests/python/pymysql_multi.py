"""PyMySQL multi-statements and CALL: several result sets via nextset()."""

from pymysql.constants import CLIENT

from common import parse_args, pymysql_connect

args = parse_args()
conn = pymysql_connect(args, client_flag=CLIENT.MULTI_STATEMENTS)
out = []


def all_sets(cur, sql):
    cur.execute(sql)
    sets = [tuple(cur.fetchall())]
    while cur.nextset():
        sets.append(tuple(cur.fetchall()))
    return sets


with conn.cursor() as cur:
    sets = all_sets(cur, "SELECT 1; SELECT 2, 3; SELECT 'x'")
    assert sets == [((1,),), ((2, 3),), (("x",),)], sets
    out.append(f"three sets: {sets!r}")

    sets = all_sets(cur, "SELECT 1; SELECT 2 FROM DUAL WHERE 0; SELECT 3; DO 4")
    assert sets == [((1,),), (), ((3,),), ()], sets
    out.append(f"with empty set and OK: {sets!r}")

    cur.execute(
        "CREATE OR REPLACE PROCEDURE py_two_sets() BEGIN "
        "SELECT 1 AS a, 'one' AS b; SELECT seq AS n FROM seq_1_to_3; END"
    )
    sets = all_sets(cur, "CALL py_two_sets()")
    # Two result sets, then the CALL's own OK (an empty "set").
    assert sets == [((1, "one"),), ((1,), (2,), (3,)), ()], sets
    out.append(f"CALL: {sets!r}")

    cur.execute("SELECT 'in sync'")
    assert cur.fetchall() == (("in sync",),)
conn.close()
print("\n".join(out))
