//! Unit tests (a table of input → expected output per rule) and property tests.

use super::*;
use proptest::prelude::*;

/// One row: SQL → kind, may_write, trx ("" = none), session_change, tables, digest.
struct Case {
    sql: &'static str,
    kind: &'static str,
    write: bool,
    trx: &'static str,
    session: bool,
    tables: &'static [&'static str],
    digest: &'static str,
}

const fn c(
    sql: &'static str,
    kind: &'static str,
    write: bool,
    trx: &'static str,
    session: bool,
    tables: &'static [&'static str],
    digest: &'static str,
) -> Case {
    Case {
        sql,
        kind,
        write,
        trx,
        session,
        tables,
        digest,
    }
}

const R: bool = false; // read
const W: bool = true; // may write
const S: bool = true; // session change
const NS: bool = false;

#[rustfmt::skip]
const CASES: &[Case] = &[
    // --- sysbench statements
    c("SELECT c FROM sbtest1 WHERE id=4711", "select", R, "", NS, &["sbtest1"], "SELECT c FROM sbtest1 WHERE id = ?"),
    c("SELECT c FROM sbtest3 WHERE id BETWEEN 10 AND 109", "select", R, "", NS, &["sbtest3"], "SELECT c FROM sbtest3 WHERE id BETWEEN ? AND ?"),
    c("SELECT SUM(k) FROM sbtest1 WHERE id BETWEEN 1 AND 100", "select", R, "", NS, &["sbtest1"], "SELECT SUM(k) FROM sbtest1 WHERE id BETWEEN ? AND ?"),
    c("SELECT DISTINCT c FROM sbtest1 WHERE id BETWEEN 1 AND 100 ORDER BY c", "select", R, "", NS, &["sbtest1"], "SELECT DISTINCT c FROM sbtest1 WHERE id BETWEEN ? AND ? ORDER BY c"),
    c("UPDATE sbtest1 SET k=k+1 WHERE id=5", "update", W, "", NS, &["sbtest1"], "UPDATE sbtest1 SET k = k + ? WHERE id = ?"),
    c("UPDATE sbtest1 SET c='12-34' WHERE id=5", "update", W, "", NS, &["sbtest1"], "UPDATE sbtest1 SET c = ? WHERE id = ?"),
    c("DELETE FROM sbtest1 WHERE id=5", "delete", W, "", NS, &["sbtest1"], "DELETE FROM sbtest1 WHERE id = ?"),
    c("INSERT INTO sbtest1 (id, k, c, pad) VALUES (5, 6, 'a-b', 'c-d')", "insert", W, "", NS, &["sbtest1"], "INSERT INTO sbtest1(id, k, c, pad) VALUES (...)"),
    c("BEGIN", "begin", R, "begin", NS, &[], "BEGIN"),
    c("COMMIT", "commit", R, "commit", NS, &[], "COMMIT"),
    // --- statement types
    c("insert sbtest1 values (1),(2),(3)", "insert", W, "", NS, &["sbtest1"], "INSERT sbtest1 VALUES (...)"),
    c("INSERT INTO t VALUES (1, 'x'), (2, NULL), (-3, DEFAULT)", "insert", W, "", NS, &["t"], "INSERT INTO t VALUES (...)"),
    c("INSERT INTO t (a) SELECT b FROM u", "insert", W, "", NS, &["t", "u"], "INSERT INTO t(a) SELECT b FROM u"),
    c("INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE a=VALUES(a)", "insert", W, "", NS, &["t"], "INSERT INTO t VALUES (...) ON DUPLICATE KEY UPDATE a = VALUES(a)"),
    c("REPLACE INTO t VALUES (1)", "replace", W, "", NS, &["t"], "REPLACE INTO t VALUES (...)"),
    c("UPDATE t1, t2 SET t1.a = t2.a WHERE t1.id = t2.id", "update", W, "", NS, &["t1", "t2"], "UPDATE t1, t2 SET t1.a = t2.a WHERE t1.id = t2.id"),
    c("DELETE t1 FROM t1 JOIN t2 ON t1.id = t2.id", "delete", W, "", NS, &["t1", "t2"], "DELETE t1 FROM t1 JOIN t2 ON t1.id = t2.id"),
    c("DELETE FROM t1 USING t1 JOIN t3", "delete", W, "", NS, &["t1", "t3"], "DELETE FROM t1 USING t1 JOIN t3"),
    c("WITH c AS (SELECT a FROM t) SELECT * FROM c", "select", R, "", NS, &["t"], "WITH c AS (SELECT a FROM t) SELECT * FROM c"),
    c("WITH RECURSIVE c (n) AS (SELECT 1 UNION SELECT n+1 FROM c) SELECT n FROM c", "select", R, "", NS, &[], "WITH RECURSIVE c(n) AS (SELECT ? UNION SELECT n + ? FROM c) SELECT n FROM c"),
    c("WITH c AS (SELECT a FROM t) UPDATE u JOIN c ON u.a=c.a SET u.b=1", "update", W, "", NS, &["t", "u"], "WITH c AS (SELECT a FROM t) UPDATE u JOIN c ON u.a = c.a SET u.b = ?"),
    c("(SELECT a FROM t1) UNION (SELECT a FROM t2)", "select", R, "", NS, &["t1", "t2"], "(SELECT a FROM t1) UNION (SELECT a FROM t2)"),
    c("VALUES (1, 2)", "select", R, "", NS, &[], "VALUES (...)"),
    c("CREATE TABLE t (id INT PRIMARY KEY, p INT REFERENCES parent(id))", "ddl", W, "", NS, &["t", "parent"], "CREATE TABLE t(id INT PRIMARY KEY, p INT REFERENCES parent(id))"),
    c("CREATE TABLE IF NOT EXISTS db.t LIKE db.s", "ddl", W, "", NS, &["db.t", "db.s"], "CREATE TABLE IF NOT EXISTS db.t LIKE db.s"),
    c("CREATE TEMPORARY TABLE tmp (a INT)", "ddl", W, "", S, &["tmp"], "CREATE TEMPORARY TABLE tmp(a INT)"),
    c("DROP TEMPORARY TABLE IF EXISTS tmp", "ddl", W, "", S, &["tmp"], "DROP TEMPORARY TABLE IF EXISTS tmp"),
    c("DROP TABLE a, b.c", "ddl", W, "", NS, &["a", "b.c"], "DROP TABLE a, b.c"),
    c("ALTER TABLE t ADD COLUMN x INT", "ddl", W, "", NS, &["t"], "ALTER TABLE t ADD COLUMN x INT"),
    c("RENAME TABLE a TO b, c TO d", "ddl", W, "", NS, &["a", "b", "c", "d"], "RENAME TABLE a TO b, c TO d"),
    c("TRUNCATE t", "ddl", W, "", NS, &["t"], "TRUNCATE t"),
    c("TRUNCATE TABLE t", "ddl", W, "", NS, &["t"], "TRUNCATE TABLE t"),
    c("CREATE INDEX i ON t (a)", "ddl", W, "", NS, &["t"], "CREATE INDEX i ON t(a)"),
    c("CREATE OR REPLACE VIEW v AS SELECT a FROM t", "ddl", W, "", NS, &["v", "t"], "CREATE OR REPLACE VIEW v AS SELECT a FROM t"),
    c("CREATE DATABASE d", "ddl", W, "", NS, &[], "CREATE DATABASE d"),
    c("CREATE USER 'u'@'%' IDENTIFIED BY 'p'", "grant", W, "", NS, &[], "CREATE USER ? @'%' IDENTIFIED BY ?"),
    c("GRANT SELECT ON db.* TO u", "grant", W, "", NS, &[], "GRANT SELECT ON db.* TO u"),
    c("REVOKE ALL ON *.* FROM u", "grant", W, "", NS, &[], "REVOKE ALL ON *.* FROM u"),
    c("USE shop", "use", R, "", S, &[], "USE shop"),
    c("CALL p(1, @x)", "call", W, "", S, &[], "CALL p(?, @x)"),
    c("CALL p(1, 2)", "call", W, "", NS, &[], "CALL p(?, ?)"),
    c("SHOW TABLES FROM db", "show", R, "", NS, &[], "SHOW TABLES FROM db"),
    c("SHOW CREATE TABLE db.t", "show", R, "", NS, &["db.t"], "SHOW CREATE TABLE db.t"),
    c("SHOW FULL COLUMNS FROM t", "show", R, "", NS, &["t"], "SHOW FULL COLUMNS FROM t"),
    c("SHOW VARIABLES LIKE 'x%'", "show", R, "", NS, &[], "SHOW VARIABLES LIKE ?"),
    c("LOCK TABLES t READ, u AS x WRITE", "lock", W, "", NS, &["t", "u"], "LOCK TABLES t READ, u AS x WRITE"),
    c("UNLOCK TABLES", "unlock", W, "", NS, &[], "UNLOCK TABLES"),
    c("PREPARE s FROM 'SELECT 1'", "prepare", R, "", S, &[], "PREPARE s FROM ?"),
    c("EXECUTE s USING @a", "execute", W, "", NS, &[], "EXECUTE s USING @a"),
    c("DEALLOCATE PREPARE s", "deallocate", R, "", S, &[], "DEALLOCATE PREPARE s"),
    c("DROP PREPARE s", "deallocate", R, "", S, &[], "DROP PREPARE s"),
    c("LOAD DATA INFILE '/tmp/x' INTO TABLE t", "load", W, "", NS, &["t"], "LOAD DATA INFILE ? INTO TABLE t"),
    c("DO SLEEP(1)", "do", R, "", NS, &[], "DO SLEEP(?)"),
    c("DO GET_LOCK('l', 10)", "do", W, "", NS, &[], "DO GET_LOCK(?, ?)"),
    c("EXPLAIN SELECT * FROM t WHERE a = 1", "explain", R, "", NS, &["t"], "EXPLAIN SELECT * FROM t WHERE a = ?"),
    c("EXPLAIN FORMAT=JSON DELETE FROM t", "explain", R, "", NS, &["t"], "EXPLAIN FORMAT = JSON DELETE FROM t"),
    c("DESCRIBE t", "explain", R, "", NS, &["t"], "DESCRIBE t"),
    c("desc `my t`", "explain", R, "", NS, &["my t"], "DESC `my t`"),
    c("ANALYZE DELETE FROM t", "explain", W, "", NS, &["t"], "ANALYZE DELETE FROM t"),
    c("ANALYZE TABLE t1, t2", "other", W, "", NS, &["t1", "t2"], "ANALYZE TABLE t1, t2"),
    c("CHECK TABLE t", "other", R, "", NS, &["t"], "CHECK TABLE t"),
    c("HANDLER t OPEN", "handler", R, "", S, &["t"], "HANDLER t OPEN"),
    c("HANDLER t READ FIRST", "handler", R, "", NS, &["t"], "HANDLER t READ FIRST"),
    c("FLUSH TABLES", "flush", W, "", NS, &[], "FLUSH TABLES"),
    c("KILL 42", "kill", W, "", NS, &[], "KILL ?"),
    c("HELP 'select'", "other", R, "", NS, &[], "HELP ?"),
    c("FOO BAR", "other", W, "", NS, &[], "FOO BAR"),
    c("", "other", R, "", NS, &[], ""),
    c("  /* only a comment */ ", "other", R, "", NS, &[], ""),
    // --- transactions
    c("BEGIN WORK", "begin", R, "begin", NS, &[], "BEGIN WORK"),
    c("START TRANSACTION", "begin", R, "begin", NS, &[], "START TRANSACTION"),
    c("start transaction read only", "begin", R, "begin", NS, &[], "START TRANSACTION READ ONLY"),
    c("COMMIT WORK", "commit", R, "commit", NS, &[], "COMMIT WORK"),
    c("COMMIT AND CHAIN", "commit", R, "begin", NS, &[], "COMMIT AND CHAIN"),
    c("COMMIT AND NO CHAIN", "commit", R, "commit", NS, &[], "COMMIT AND NO CHAIN"),
    c("ROLLBACK", "rollback", R, "rollback", NS, &[], "ROLLBACK"),
    c("ROLLBACK WORK TO SAVEPOINT s1", "savepoint", R, "", NS, &[], "ROLLBACK WORK TO SAVEPOINT s1"),
    c("ROLLBACK TO s1", "savepoint", R, "", NS, &[], "ROLLBACK TO s1"),
    c("SAVEPOINT s1", "savepoint", R, "", NS, &[], "SAVEPOINT s1"),
    c("RELEASE SAVEPOINT s1", "savepoint", R, "", NS, &[], "RELEASE SAVEPOINT s1"),
    c("XA START 'x'", "xa", W, "begin", NS, &[], "XA START ?"),
    c("XA END 'x'", "xa", W, "", NS, &[], "XA END ?"),
    c("XA COMMIT 'x'", "xa", W, "commit", NS, &[], "XA COMMIT ?"),
    c("XA ROLLBACK 'x'", "xa", W, "rollback", NS, &[], "XA ROLLBACK ?"),
    c("XA RECOVER", "xa", R, "", NS, &[], "XA RECOVER"),
    c("SET autocommit=0", "set", R, "begin", S, &[], "SET autocommit = ?"),
    c("SET autocommit=1", "set", R, "commit", S, &[], "SET autocommit = ?"),
    c("set @@autocommit = OFF", "set", R, "begin", S, &[], "SET @@autocommit = OFF"),
    c("SET SESSION autocommit=ON", "set", R, "commit", S, &[], "SET SESSION autocommit = ON"),
    c("SET @@session.autocommit=false", "set", R, "begin", S, &[], "SET @@session.autocommit = FALSE"),
    c("SET sql_mode='', autocommit=0", "set", R, "begin", S, &[], "SET sql_mode = ?, autocommit = ?"),
    c("SET GLOBAL autocommit=0", "set", W, "", NS, &[], "SET GLOBAL autocommit = ?"),
    c("SET autocommit=@x", "set", R, "", S, &[], "SET autocommit = @x"),
    // --- SET and session state
    c("SET NAMES utf8mb4", "set", R, "", S, &[], "SET NAMES utf8mb4"),
    c("SET TRANSACTION ISOLATION LEVEL READ COMMITTED", "set", R, "", S, &[], "SET TRANSACTION ISOLATION LEVEL READ COMMITTED"),
    c("SET @x = 5", "set", W, "", S, &[], "SET @x = ?"),
    c("SET @x := (SELECT a FROM t)", "set", W, "", S, &["t"], "SET @x := (SELECT a FROM t)"),
    c("SET PASSWORD = PASSWORD('x')", "grant", W, "", NS, &[], "SET PASSWORD = PASSWORD(?)"),
    c("SET STATEMENT max_statement_time=1 FOR SELECT a FROM t", "select", R, "", NS, &["t"], "SET STATEMENT max_statement_time = ? FOR SELECT a FROM t"),
    c("SET STATEMENT max_statement_time=1 FOR UPDATE t SET a=1", "update", W, "", NS, &["t"], "SET STATEMENT max_statement_time = ? FOR UPDATE t SET a = ?"),
    // --- reads that write
    c("SELECT a FROM t WHERE id=1 FOR UPDATE", "select", W, "", NS, &["t"], "SELECT a FROM t WHERE id = ? FOR UPDATE"),
    c("SELECT a FROM t WHERE id=1 LOCK IN SHARE MODE", "select", W, "", NS, &["t"], "SELECT a FROM t WHERE id = ? LOCK IN SHARE MODE"),
    c("SELECT GET_LOCK('x', 1)", "select", W, "", NS, &[], "SELECT GET_LOCK(?, ?)"),
    c("SELECT RELEASE_LOCK('x')", "select", W, "", NS, &[], "SELECT RELEASE_LOCK(?)"),
    c("SELECT LAST_INSERT_ID(5)", "select", W, "", NS, &[], "SELECT LAST_INSERT_ID(?)"),
    c("SELECT LAST_INSERT_ID()", "select", R, "", NS, &[], "SELECT LAST_INSERT_ID()"),
    c("SELECT NEXTVAL(s)", "select", W, "", NS, &[], "SELECT NEXTVAL(s)"),
    c("SELECT NEXT VALUE FOR s", "select", W, "", NS, &[], "SELECT NEXT VALUE FOR s"),
    c("SELECT SETVAL(s, 10)", "select", W, "", NS, &[], "SELECT SETVAL(s, ?)"),
    c("SELECT @x := a FROM t", "select", W, "", S, &["t"], "SELECT @x := a FROM t"),
    c("SELECT a INTO @x FROM t", "select", W, "", S, &["t"], "SELECT a INTO @x FROM t"),
    c("SELECT a INTO OUTFILE '/tmp/f' FROM t", "select", W, "", NS, &["t"], "SELECT a INTO OUTFILE ? FROM t"),
    c("SELECT @x", "select", R, "", NS, &[], "SELECT @x"),
    c("EXPLAIN SELECT a FROM t FOR UPDATE", "explain", R, "", NS, &["t"], "EXPLAIN SELECT a FROM t FOR UPDATE"),
    // --- tables
    c("SELECT * FROM `db`.`t``x` AS a JOIN u b ON a.id=b.id LEFT JOIN v USING (id)", "select", R, "", NS, &["db.t`x", "u", "v"], "SELECT * FROM db.`t``x` AS a JOIN u b ON a.id = b.id LEFT JOIN v USING (id)"),
    c("SELECT a FROM t1 x, t2 y USE INDEX (i), t3", "select", R, "", NS, &["t1", "t2", "t3"], "SELECT a FROM t1 x, t2 y USE INDEX (i), t3"),
    c("SELECT a FROM t WHERE b IN (SELECT c FROM u) AND d = EXTRACT(YEAR FROM e)", "select", R, "", NS, &["t", "u"], "SELECT a FROM t WHERE b IN (SELECT c FROM u) AND d = EXTRACT(YEAR FROM e)"),
    c("SELECT a FROM (SELECT b FROM t) AS d", "select", R, "", NS, &["t"], "SELECT a FROM (SELECT b FROM t) AS d"),
    c("SELECT 1 FROM DUAL", "select", R, "", NS, &[], "SELECT ? FROM DUAL"),
    c("SELECT a FROM t, t", "select", R, "", NS, &["t"], "SELECT a FROM t, t"),
    // --- digest rules
    c("select A from T where B in (1, 2, 3)", "select", R, "", NS, &["T"], "SELECT A FROM T WHERE B IN (...)"),
    c("SELECT a FROM t WHERE b NOT IN (?, ?, -3)", "select", R, "", NS, &["t"], "SELECT a FROM t WHERE b NOT IN (...)"),
    c("SELECT a FROM t WHERE b IN (c, 1)", "select", R, "", NS, &["t"], "SELECT a FROM t WHERE b IN (c, ?)"),
    c("SELECT 'it''s', \"say \\\"hi\\\"\", 'a\\'b'", "select", R, "", NS, &[], "SELECT ?, ?, ?"),
    c("SELECT 1.5, .5, 1e10, 2.5E-3, 0x1F, X'ab', b'101', 0b11, N'x', _utf8mb4'y'", "select", R, "", NS, &[], "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?"),
    c("SELECT a-1, a - -1, -1, a*-2", "select", R, "", NS, &[], "SELECT a - ?, a - ?, ?, a * ?"),
    c("SELECT (1)-2", "select", R, "", NS, &[], "SELECT (?) - ?"),
    c("SELECT NULL, TRUE, false", "select", R, "", NS, &[], "SELECT NULL, TRUE, FALSE"),
    c("SELECT 1abc, t.1col FROM t", "select", R, "", NS, &["t"], "SELECT 1abc, t.1col FROM t"),
    c("SELECT /* c */ a -- tail\n FROM t # hash\n", "select", R, "", NS, &["t"], "SELECT a FROM t"),
    c("SELECT 1--1", "select", R, "", NS, &[], "SELECT ? - ?"),
    c("SELECT /*+ MAX_EXECUTION_TIME(1000) */ a FROM t", "select", R, "", NS, &["t"], "SELECT /*+ MAX_EXECUTION_TIME(1000) */ a FROM t"),
    c("SELECT /*!40001 SQL_NO_CACHE */ a FROM t", "select", R, "", NS, &["t"], "SELECT SQL_NO_CACHE a FROM t"),
    c("/*M!100100 SELECT */ 1", "select", R, "", NS, &[], "SELECT ?"),
    c("/*!SELECT*/ 1", "select", R, "", NS, &[], "SELECT ?"),
    c("SELECT `a`, `select`, `my col`, `12` FROM `t`", "select", R, "", NS, &["t"], "SELECT a, `select`, `my col`, `12` FROM t"),
    c("SELECT @`q v`, @'x', @@global.max_connections, ?", "select", R, "", NS, &[], "SELECT @`q v`, @'x', @@global.max_connections, ?"),
    c("SELECT COUNT( * ) FROM t WHERE a<=>b AND c!=d OR e:=f", "select", R, "", NS, &["t"], "SELECT COUNT(*) FROM t WHERE a <=> b AND c != d OR e := f"),
    c("SELECT a FROM t;", "select", R, "", NS, &["t"], "SELECT a FROM t"),
    c("SELECT a FROM t ; ; ", "select", R, "", NS, &["t"], "SELECT a FROM t"),
    // --- the examples in docs/classifier.md
    c("SELECT a FROM t WHERE b IN (1, 2, -3) /* x */", "select", R, "", NS, &["t"], "SELECT a FROM t WHERE b IN (...)"),
    c("INSERT INTO t (a,b) VALUES (1,'x'),(2,'y')", "insert", W, "", NS, &["t"], "INSERT INTO t(a, b) VALUES (...)"),
    c("SELECT /*+ BKA(t) */ `a` FROM `db`.`t` FOR UPDATE", "select", W, "", NS, &["db.t"], "SELECT /*+ BKA(t) */ a FROM db.t FOR UPDATE"),
    c("/*!40101 SET NAMES utf8 */", "set", R, "", S, &[], "SET NAMES utf8"),
    c("EXECUTE IMMEDIATE 'SELECT 1'", "execute", W, "", NS, &[], "EXECUTE IMMEDIATE ?"),
    c("SELECT a FROM t WHERE d > NOW() - INTERVAL 1 DAY LIMIT 10, 20", "select", R, "", NS, &["t"], "SELECT a FROM t WHERE d > NOW() - INTERVAL ? DAY LIMIT ?, ?"),
    // --- multi-statements
    c("SELECT a FROM t; UPDATE u SET b=1", "select", W, "", NS, &["t", "u"], "SELECT a FROM t; UPDATE u SET b = ?"),
    c("BEGIN; INSERT INTO t VALUES (1); COMMIT", "begin", W, "commit", NS, &["t"], "BEGIN; INSERT INTO t VALUES (...); COMMIT"),
    c("SELECT ';'; SELECT 2", "select", R, "", NS, &[], "SELECT ?; SELECT ?"),
    c("CREATE PROCEDURE p() BEGIN SELECT a FROM t; UPDATE u SET b = 1; END; CALL p()", "ddl", W, "", NS, &["t", "u"], "CREATE PROCEDURE p() BEGIN SELECT a FROM t; UPDATE u SET b = ?; END; CALL p()"),
    c("BEGIN NOT ATOMIC IF 1 THEN SELECT 1; END IF; END", "other", W, "", NS, &[], "BEGIN NOT ATOMIC IF ? THEN SELECT ?; END IF; END"),
    // --- lex errors
    c("SELECT 'abc", "unknown", W, "", NS, &[], ""),
    c("SELECT \"abc\\\"", "unknown", W, "", NS, &[], ""),
    c("SELECT `abc", "unknown", W, "", NS, &[], ""),
    c("SELECT a /* never closed", "unknown", W, "", NS, &[], ""),
    c("SELECT /*!40001 a FROM t", "unknown", W, "", NS, &[], ""),
    c("SELECT @'x", "unknown", W, "", NS, &[], ""),
];

#[test]
fn table_of_cases() {
    let mut failures = Vec::new();
    for case in CASES {
        let got = classify(case.sql.as_bytes());
        let trx = got.trx.map_or("", TrxBoundary::as_str);
        let tables: Vec<&str> = got.tables.iter().map(String::as_str).collect();
        if got.kind.as_str() != case.kind
            || got.may_write != case.write
            || trx != case.trx
            || got.session_change != case.session
            || tables != case.tables
            || got.digest != case.digest
            || got.lex_error != (case.kind == "unknown")
        {
            failures.push(format!(
                "{:?}\n   want {} write={} trx={:?} session={} tables={:?} digest={:?}\n   got  {} write={} trx={:?} session={} tables={:?} digest={:?}",
                case.sql, case.kind, case.write, case.trx, case.session, case.tables, case.digest,
                got.kind.as_str(), got.may_write, trx, got.session_change, tables, got.digest
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn read_only_transactions() {
    assert_eq!(
        classify(b"START TRANSACTION READ ONLY").read_only_trx,
        Some(true)
    );
    assert_eq!(
        classify(b"START TRANSACTION READ WRITE").read_only_trx,
        Some(false)
    );
    assert_eq!(
        classify(b"START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY").read_only_trx,
        Some(true)
    );
    assert_eq!(classify(b"START TRANSACTION").read_only_trx, None);
    assert_eq!(classify(b"BEGIN").read_only_trx, None);
}

#[test]
fn autocommit_values() {
    for (sql, want) in [
        ("SET autocommit=0", Some(false)),
        ("SET autocommit=1", Some(true)),
        ("SET autocommit=ON", Some(true)),
        ("SET autocommit=off", Some(false)),
        ("SET autocommit=true", Some(true)),
        ("SET autocommit=FALSE", Some(false)),
        ("SET autocommit='ON'", Some(true)),
        ("SET @@autocommit=0", Some(false)),
        ("SET @@SESSION.autocommit=1", Some(true)),
        ("SET LOCAL autocommit=0", Some(false)),
        ("SET a=1, AUTOCOMMIT=0", Some(false)),
        ("SET autocommit=0, a=1", Some(false)),
        ("SET GLOBAL autocommit=0", None),
        ("SET @@global.autocommit=0", None),
        ("SET autocommit=2", None),
        ("SET @autocommit=0", None),
        ("SET autocommit=0; SET autocommit=1", Some(true)),
        ("SET names utf8", None),
    ] {
        assert_eq!(classify(sql.as_bytes()).autocommit, want, "{sql}");
    }
}

#[test]
fn multi_statement_counts() {
    assert_eq!(classify(b"SELECT 1").statements, 1);
    assert_eq!(classify(b"SELECT 1; SELECT 2;").statements, 2);
    assert_eq!(classify(b";;SELECT 1;;;SELECT 2;;").statements, 2);
    assert_eq!(classify(b"").statements, 0);
    assert_eq!(
        classify(b"CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END").statements,
        1
    );
    assert_eq!(classify(b"CREATE FUNCTION f() RETURNS INT BEGIN DECLARE x INT; CASE WHEN 1 THEN SET x = 1; END CASE; RETURN x; END; SELECT f()").statements, 2);
    // last transaction boundary wins
    assert_eq!(classify(b"COMMIT; BEGIN").trx, Some(TrxBoundary::Begin));
    assert_eq!(
        classify(b"BEGIN; SELECT 1; ROLLBACK").trx,
        Some(TrxBoundary::Rollback)
    );
}

#[test]
fn classify_command_picks_query_and_prepare() {
    let q = classify_command(b"\x03SELECT a FROM t").unwrap();
    assert_eq!(q.kind, StatementType::Select);
    assert_eq!(q.tables, vec!["t".to_string()]);
    let p = classify_command(b"\x16UPDATE t SET a = ? WHERE id = ?").unwrap();
    assert_eq!(p.kind, StatementType::Update);
    assert_eq!(p.digest, "UPDATE t SET a = ? WHERE id = ?");
    assert!(classify_command(b"\x01").is_none()); // COM_QUIT
    assert!(classify_command(b"\x17\x01\x00\x00\x00").is_none()); // COM_STMT_EXECUTE
    assert!(classify_command(b"").is_none());
    assert_eq!(classify_command(b"\x03").unwrap().statements, 0);
}

#[test]
fn non_utf8_bytes_are_identifiers() {
    let c = classify(b"SELECT \xff\xfe FROM t\xe9 WHERE x = '\xc3'");
    assert_eq!(c.kind, StatementType::Select);
    assert!(!c.lex_error);
    assert_eq!(c.tables, vec!["t\u{fffd}".to_string()]);
    assert_eq!(
        c.digest,
        "SELECT \u{fffd}\u{fffd} FROM t\u{fffd} WHERE x = ?"
    );
    assert_eq!(c.digest_hash, digest_hash(c.digest.as_bytes()));
}

#[test]
fn digest_hash_is_stable() {
    // Fixed vectors: these values are part of the output format (docs/classifier.md).
    assert_eq!(digest_hash(b""), DIGEST_HASH_EMPTY);
    assert_eq!(
        digest_hash(b"SELECT c FROM sbtest1 WHERE id = ?"),
        DIGEST_HASH_POINT_SELECT
    );
    assert_eq!(
        classify(b"select c from sbtest1 where id=1").digest_hash,
        DIGEST_HASH_POINT_SELECT
    );
    assert_ne!(digest_hash(b"SELECT ?"), digest_hash(b"SELECT ? "));
    assert_ne!(digest_hash(b"a"), digest_hash(b"a\0"));
}

const DIGEST_HASH_EMPTY: u64 = 8848935107335307795;
const DIGEST_HASH_POINT_SELECT: u64 = 15861197873390843796;

#[test]
fn lex_error_shape() {
    let c = classify(b"INSERT INTO t VALUES ('x");
    assert!(c.lex_error);
    assert_eq!(c.kind, StatementType::Unknown);
    assert!(c.may_write);
    assert!(c.tables.is_empty());
    assert_eq!(c.trx, None);
    assert!(!c.missing_where);
}

#[test]
fn statement_type_list_is_complete() {
    for (i, t) in StatementType::ALL.into_iter().enumerate() {
        assert_eq!(t as usize, i, "{t:?}");
        assert_eq!(StatementType::from_name(t.as_str()), Some(t));
    }
    assert_eq!(StatementType::ALL.last(), Some(&StatementType::Unknown));
    assert_eq!(StatementType::from_name("SELECT"), None);
}

#[test]
fn missing_where() {
    let missing = [
        "DELETE FROM t",
        "delete from t",
        "UPDATE t SET a=1 LIMIT 5",
        "UPDATE t SET a=1 ORDER BY id LIMIT 5",
        "DELETE FROM t ORDER BY id LIMIT 1",
        "DELETE FROM t RETURNING id",
        "UPDATE LOW_PRIORITY IGNORE t SET a=1",
        "UPDATE t1, t2 SET t1.a = t2.a",
        "UPDATE t1 JOIN t2 ON t1.id = t2.id SET t1.a = t2.a",
        "DELETE t1 FROM t1 JOIN t2 ON t1.id = t2.id",
        "DELETE FROM t1 USING t1 JOIN t3",
        // A WHERE in a subquery, derived table or CTE is not the statement's.
        "UPDATE t SET a = (SELECT b FROM u WHERE u.id = 1)",
        "DELETE FROM t ORDER BY (SELECT 1 FROM u WHERE x) LIMIT 1",
        "UPDATE t JOIN (SELECT id FROM u WHERE x = 1) d ON d.id = t.id SET t.a = 1",
        "WITH c AS (SELECT a FROM t WHERE a > 1) UPDATE u JOIN c ON u.a=c.a SET u.b=1",
        "WITH c AS (SELECT a FROM t WHERE a > 1) DELETE FROM u",
        "SET STATEMENT max_statement_time=1 FOR DELETE FROM t",
        "ANALYZE DELETE FROM t",
        // Any statement of a multi-statement.
        "SELECT 1 FROM t WHERE a = 1; DELETE FROM t",
        "DELETE FROM t WHERE a = 1; UPDATE t SET b = 2",
        "/*!DELETE FROM t */",
        // A quoted identifier is not the keyword.
        "DELETE FROM `where`",
        "UPDATE t SET `where` = 1",
    ];
    for sql in missing {
        assert!(classify(sql.as_bytes()).missing_where, "{sql}");
    }
    let present = [
        "DELETE FROM t WHERE 1",
        "DELETE FROM t WHERE id = 5",
        "UPDATE t SET a=1 WHERE id = 5 LIMIT 5",
        "UPDATE t1, t2 SET t1.a = t2.a WHERE t1.id = t2.id",
        "DELETE t1 FROM t1 JOIN t2 ON t1.id = t2.id WHERE t2.x = 1",
        "DELETE FROM t1 USING t1 JOIN t3 WHERE t1.id = t3.id",
        "UPDATE t SET a = (SELECT b FROM u) WHERE id = 1",
        "WITH c AS (SELECT a FROM t) DELETE FROM u WHERE u.a IN (SELECT a FROM c)",
        "SET STATEMENT max_statement_time=1 FOR DELETE FROM t WHERE a = 1",
        // EXPLAIN does not run the statement.
        "EXPLAIN DELETE FROM t",
        "EXPLAIN UPDATE t SET a = 1",
        // Not UPDATE/DELETE.
        "SELECT * FROM t",
        "INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE a = 1",
        "INSERT INTO t SELECT * FROM u",
        "TRUNCATE t",
        "DROP TABLE t",
        "SELECT a FROM t FOR UPDATE",
        "",
        "DELETE FROM t WHERE 'x",
    ];
    for sql in present {
        assert!(!classify(sql.as_bytes()).missing_where, "{sql}");
    }
}

// ---------------------------------------------------------------- property tests

/// Generated statement pieces: each piece is either fixed SQL or a literal slot.
#[derive(Clone, Debug)]
enum Lit {
    Int(i64),
    Dec(u32, u32),
    Str(String),
    Hex(Vec<u8>),
}

fn lit_text(l: &Lit) -> String {
    match l {
        Lit::Int(v) => v.to_string(),
        Lit::Dec(a, b) => format!("{a}.{b}"),
        Lit::Str(s) => {
            let mut o = String::from("'");
            for ch in s.chars() {
                match ch {
                    '\'' => o.push_str("''"),
                    '\\' => o.push_str("\\\\"),
                    c => o.push(c),
                }
            }
            o.push('\'');
            o
        }
        Lit::Hex(b) => {
            let mut o = String::from("0x");
            for x in b {
                o.push_str(&format!("{x:02x}"));
            }
            if b.is_empty() {
                o.push_str("00");
            }
            o
        }
    }
}

fn lit() -> impl Strategy<Value = Lit> {
    prop_oneof![
        any::<i64>().prop_map(Lit::Int),
        (any::<u32>(), any::<u32>()).prop_map(|(a, b)| Lit::Dec(a, b)),
        "[a-zA-Z0-9 '\\\\;\"`#*/-]{0,12}".prop_map(Lit::Str),
        proptest::collection::vec(any::<u8>(), 0..6).prop_map(Lit::Hex),
    ]
}

/// Statement templates: `{}` is a literal slot, words in UPPER are keywords.
const TEMPLATES: &[&str] = &[
    "SELECT c FROM sbtest1 WHERE id = {}",
    "SELECT c FROM sbtest1 WHERE id BETWEEN {} AND {}",
    "SELECT SUM(k) FROM sbtest1 WHERE id BETWEEN {} AND {}",
    "SELECT DISTINCT c FROM sbtest1 WHERE id BETWEEN {} AND {} ORDER BY c",
    "UPDATE sbtest1 SET k = k + {} WHERE id = {}",
    "UPDATE sbtest1 SET c = {} WHERE id = {}",
    "DELETE FROM sbtest1 WHERE id = {}",
    "INSERT INTO sbtest1 (id, k, c, pad) VALUES ({}, {}, {}, {})",
    "INSERT INTO t VALUES ({}, {}), ({}, {})",
    "SELECT a, b FROM t1 JOIN t2 ON t1.id = t2.id WHERE t1.x IN ({}, {}, {}) LIMIT {}",
    "SELECT a FROM t WHERE b = {} OR c LIKE {} GROUP BY a HAVING COUNT(*) > {}",
    "SET @x = {}",
    "SELECT a FROM t WHERE b = {} FOR UPDATE",
    "SELECT /*+ NO_RANGE_OPTIMIZATION(t) */ a FROM t WHERE b = {}",
];

fn fill(template: &str, lits: &[Lit]) -> String {
    let mut out = String::new();
    let mut k = 0;
    let mut rest = template;
    while let Some(p) = rest.find("{}") {
        out.push_str(&rest[..p]);
        out.push_str(&lit_text(&lits[k % lits.len()]));
        k += 1;
        rest = &rest[p + 2..];
    }
    out.push_str(rest);
    out
}

/// Rewrite a generated statement: change keyword case (words the keyword table knows),
/// widen whitespace, insert ordinary comments between tokens.
fn perturb(sql: &str, seed: &[u8]) -> String {
    let toks = {
        let mut v = Vec::new();
        lexer::lex(sql.as_bytes(), &mut v).unwrap();
        v
    };
    let mut out = String::new();
    let mut last = 0usize;
    for (i, t) in toks.iter().enumerate() {
        let gap = &sql[last..t.start as usize];
        let r = seed[i % seed.len()];
        if !gap.is_empty() {
            match r % 4 {
                0 => out.push_str(gap),
                1 => out.push_str("  \t "),
                2 => out.push_str(" /* note; 'x' */ "),
                _ => out.push_str(" -- c\n\n"),
            }
        } else if matches!(r % 5, 0) && t.tk != lexer::Tk::Op {
            // No gap: an inline comment still separates nothing.
            out.push_str("/**/");
        }
        let text = &sql[t.start as usize..t.end as usize];
        if t.tk == lexer::Tk::Word && t.kw != keywords::Kw::None {
            if matches!(r % 2, 0) {
                out.push_str(&text.to_ascii_lowercase());
            } else {
                out.push_str(&text.to_ascii_uppercase());
            }
        } else {
            out.push_str(text);
        }
        last = t.end as usize;
    }
    out.push_str(&"  "[..(seed[0] % 3).min(2) as usize]);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let c = classify(&bytes);
        prop_assert_eq!(c.digest_hash, digest_hash(c.digest.as_bytes()));
        if c.lex_error {
            prop_assert_eq!(c.kind, StatementType::Unknown);
            prop_assert!(c.may_write);
        }
    }

    #[test]
    fn never_panics_on_sql_like_text(s in "[a-zA-Z0-9 ,;()@`'\"\\\\.#*/!+=<>:?-]{0,200}") {
        let c = classify(s.as_bytes());
        prop_assert_eq!(c.digest_hash, digest_hash(c.digest.as_bytes()));
        prop_assert_eq!(c.lex_error, c.kind == StatementType::Unknown);
    }

    #[test]
    fn digest_ignores_literal_values(t in 0..TEMPLATES.len(), a in proptest::collection::vec(lit(), 1..5), b in proptest::collection::vec(lit(), 1..5)) {
        let x = classify(fill(TEMPLATES[t], &a).as_bytes());
        let y = classify(fill(TEMPLATES[t], &b).as_bytes());
        prop_assert!(!x.lex_error);
        prop_assert_eq!(&x.digest, &y.digest);
        prop_assert_eq!(x.digest_hash, y.digest_hash);
        prop_assert_eq!(x.kind, y.kind);
        prop_assert_eq!(x.may_write, y.may_write);
        prop_assert_eq!(&x.tables, &y.tables);
    }

    #[test]
    fn digest_ignores_case_whitespace_and_comments(t in 0..TEMPLATES.len(), a in proptest::collection::vec(lit(), 1..5), seed in proptest::collection::vec(any::<u8>(), 1..16)) {
        let sql = fill(TEMPLATES[t], &a);
        let x = classify(sql.as_bytes());
        let p = perturb(&sql, &seed);
        let y = classify(p.as_bytes());
        prop_assert_eq!(&x.digest, &y.digest, "{} vs {}", sql, p);
        prop_assert_eq!(x.kind, y.kind);
        prop_assert_eq!(x.may_write, y.may_write);
        prop_assert_eq!(&x.tables, &y.tables);
    }

    #[test]
    fn unterminated_quotes_are_unknown_writes(t in 0..TEMPLATES.len(), a in proptest::collection::vec(lit(), 1..5), q in prop_oneof![Just('\''), Just('"'), Just('`')], body in "[a-z0-9 ]{0,10}") {
        let sql = format!("{} {}{}", fill(TEMPLATES[t], &a), q, body);
        let c = classify(sql.as_bytes());
        prop_assert!(c.lex_error);
        prop_assert_eq!(c.kind, StatementType::Unknown);
        prop_assert!(c.may_write);
    }

    #[test]
    fn command_agrees_with_classify(bytes in proptest::collection::vec(any::<u8>(), 0..200), cmd in prop_oneof![Just(0x03u8), Just(0x16u8)]) {
        let mut payload = vec![cmd];
        payload.extend_from_slice(&bytes);
        prop_assert_eq!(classify_command(&payload), Some(classify(&bytes)));
    }

    #[test]
    fn other_commands_are_none(cmd in any::<u8>().prop_filter("not query/prepare", |c| *c != 0x03 && *c != 0x16), bytes in proptest::collection::vec(any::<u8>(), 0..50)) {
        let mut payload = vec![cmd];
        payload.extend_from_slice(&bytes);
        prop_assert_eq!(classify_command(&payload), None);
    }
}

#[test]
fn digest_into_writes_the_digest_classify_gives() {
    let mut out = Vec::new();
    for sql in [
        &b"SELECT * FROM t WHERE id = 42"[..],
        b"select a, b from `t` where x in (1, 2, 3) and y = 'q'",
        b"INSERT INTO t VALUES (1, 'a'), (2, 'b')",
        b"BEGIN; UPDATE t SET a = a + 1 WHERE id = -5; COMMIT",
        b"SELECT 'unterminated",
        b"",
    ] {
        let c = classify(sql);
        let hash = super::digest_into(sql, &mut out);
        assert_eq!(std::str::from_utf8(&out).unwrap(), c.digest, "{sql:?}");
        assert_eq!(hash, c.digest_hash, "{sql:?}");
    }
}
