//! Protocol commands beyond COM_QUERY: PING, STATISTICS, CHANGE_USER,
//! RESET_CONNECTION, multi-statements, stored procedures, DEPRECATE_EOF.

use crate::support::*;
use mysql_async::prelude::*;
use mysql_async::{ChangeUserOpts, Row, Value};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

/// All result sets of a `query_iter` as rows of values.
async fn all_sets(conn: &mut mysql_async::Conn, sql: &str) -> Vec<Vec<Vec<Value>>> {
    let mut result = bounded(sql, T, conn.query_iter(sql)).await.expect(sql);
    let mut sets = Vec::new();
    while !result.is_empty() {
        let rows: Vec<Row> = bounded(sql, T, result.collect()).await.expect(sql);
        sets.push(rows.into_iter().map(Row::unwrap).collect());
    }
    sets
}

fn b(s: &str) -> Value {
    Value::Bytes(s.as_bytes().to_vec())
}

#[tokio::test]
async fn ping_mysql_async() {
    let t = passthrough();
    let mut c = t.conn().await;
    for _ in 0..3 {
        bounded("ping", T, c.ping()).await.expect("COM_PING");
    }
    let one: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    c.disconnect().await.unwrap();
}

#[test]
fn ping_and_status_with_mariadb_admin() {
    MariaDb::get();
    let t = passthrough();
    let out = admin(t.port, &["ping"]);
    out.assert_success("mariadb-admin ping");
    assert_eq!(out.stdout.trim(), "mysqld is alive");

    // `status` is COM_STATISTICS.
    let out = admin(t.port, &["status"]);
    out.assert_success("mariadb-admin status");
    assert!(
        out.stdout.starts_with("Uptime: ") && out.stdout.contains("Threads: "),
        "{out}"
    );
}

#[tokio::test]
async fn change_user_switches_current_user() {
    let t = passthrough();
    let mut c = t.conn().await;
    c.query_drop("SET @before_change = 'set'").await.unwrap();
    let who: Option<String> = c.query_first("SELECT CURRENT_USER()").await.unwrap();
    assert_eq!(who.as_deref(), Some("dpm@%"));

    bounded(
        "change_user",
        T,
        c.change_user(
            ChangeUserOpts::default()
                .with_user(Some(OTHER_USER.into()))
                .with_pass(Some(OTHER_PASSWORD.into()))
                .with_db_name(Some(DB.into())),
        ),
    )
    .await
    .expect("COM_CHANGE_USER");
    let row: Option<(String, Option<String>, String)> = c
        .query_first("SELECT CURRENT_USER(), @before_change, DATABASE()")
        .await
        .unwrap();
    assert_eq!(
        row,
        Some(("other@%".to_string(), None, DB.to_string())),
        "after COM_CHANGE_USER: user, old session variable, database"
    );
    // `other` has no rights outside dpmtest: the server now enforces them.
    let err = c.query_drop("SELECT * FROM mysql.user").await.unwrap_err();
    match err {
        mysql_async::Error::Server(e) => assert_eq!(e.code, 1142, "{e:?}"),
        e => panic!("expected ER_TABLEACCESS_DENIED_ERROR, got {e:?}"),
    }

    // And back.
    c.change_user(
        ChangeUserOpts::default()
            .with_user(Some(USER.into()))
            .with_pass(Some(PASSWORD.into())),
    )
    .await
    .expect("COM_CHANGE_USER back");
    let who: Option<String> = c.query_first("SELECT CURRENT_USER()").await.unwrap();
    assert_eq!(who.as_deref(), Some("dpm@%"));
    c.disconnect().await.unwrap();
}

#[tokio::test]
async fn reset_connection_clears_session_state() {
    let t = passthrough();
    let mut c = t.conn().await;
    c.query_drop("SET @x = 5, SESSION sql_mode = 'ANSI_QUOTES'")
        .await
        .unwrap();
    c.query_drop("CREATE TEMPORARY TABLE reset_tmp (a INT)")
        .await
        .unwrap();
    let id_before: Option<u64> = c.query_first("SELECT CONNECTION_ID()").await.unwrap();
    let x: Option<Option<i64>> = c.query_first("SELECT @x").await.unwrap();
    assert_eq!(x, Some(Some(5)));

    let supported = bounded("reset", T, c.reset())
        .await
        .expect("COM_RESET_CONNECTION");
    assert!(supported, "mysql_async did not send COM_RESET_CONNECTION");

    let row: Option<(Option<i64>, bool, Option<u64>)> = c
        .query_first("SELECT @x, @@session.sql_mode = @@global.sql_mode, CONNECTION_ID()")
        .await
        .unwrap();
    assert_eq!(
        row,
        Some((None, true, id_before)),
        "(@x, sql_mode reset, same connection)"
    );
    let err = c.query_drop("SELECT * FROM reset_tmp").await.unwrap_err();
    assert!(
        matches!(&err, mysql_async::Error::Server(e) if e.code == 1146),
        "temporary table should be gone: {err:?}"
    );
    c.disconnect().await.unwrap();
}

#[test]
fn multi_statements_three_result_sets_cli() {
    MariaDb::get();
    let t = passthrough();
    // With a different delimiter the CLI sends the three statements as ONE
    // COM_QUERY and prints every result set the server returns.
    let script = "DELIMITER //\nSELECT 1; SELECT 2, 3; SELECT 'x'//\n";
    let via = t.cli().run_stdin(script);
    via.assert_success("multi-statement through the target");
    assert_eq!(via.stdout, "1\n1\n2\t3\n2\t3\nx\nx\n");
    let direct = Target::direct().cli().run_stdin(script);
    assert_eq!(via.stdout, direct.stdout);
}

#[tokio::test]
async fn multi_statements_three_result_sets_mysql_async() {
    let t = passthrough();
    let mut c = t.conn().await;
    let sets = all_sets(&mut c, "SELECT 1; SELECT 2, 3; SELECT 'x'").await;
    assert_eq!(
        sets,
        vec![
            vec![vec![b("1")]],
            vec![vec![b("2"), b("3")]],
            vec![vec![b("x")]],
        ],
        "text protocol: every value arrives as bytes"
    );
    // An error in the middle ends the batch; the connection stays usable.
    let mut r = c
        .query_iter("SELECT 1; SELECT * FROM no_such_table; SELECT 3")
        .await
        .unwrap();
    let first: Vec<i64> = r.collect().await.unwrap();
    assert_eq!(first, vec![1]);
    let err = r.collect::<Row>().await.unwrap_err();
    drop(r);
    assert!(
        matches!(&err, mysql_async::Error::Server(e) if e.code == 1146),
        "{err:?}"
    );
    let v: Option<i64> = c.query_first("SELECT 42").await.unwrap();
    assert_eq!(v, Some(42));
    c.disconnect().await.unwrap();
}

fn create_two_set_procedure(name: &str) {
    MariaDb::get().direct_exec(&format!(
        "DELIMITER //
         CREATE OR REPLACE PROCEDURE dpmtest.{name}()
         BEGIN
           SELECT 1 AS a, 'one' AS b;
           SELECT seq AS n FROM dpmtest.seq_1_to_3;
         END//
         DELIMITER ;"
    ));
}

#[test]
fn stored_procedure_two_result_sets_cli() {
    create_two_set_procedure("sp_two_sets_cli");
    let t = passthrough();
    let sql = "CALL sp_two_sets_cli(); SELECT 'after' AS next";
    let via = t.cli().db(DB).run(sql);
    via.assert_success("CALL through the target");
    assert_eq!(via.stdout, "a\tb\n1\tone\nn\n1\n2\n3\nnext\nafter\n");
    let direct = Target::direct().cli().db(DB).run(sql);
    assert_eq!(via.stdout, direct.stdout);
}

#[tokio::test]
async fn stored_procedure_two_result_sets_mysql_async() {
    create_two_set_procedure("sp_two_sets_async");
    let t = passthrough();
    let mut c = t.conn().await;
    let mut result = c.query_iter("CALL sp_two_sets_async()").await.unwrap();
    let first: Vec<(i64, String)> = result.collect().await.unwrap();
    assert_eq!(first, vec![(1, "one".to_string())]);
    let second: Vec<i64> = result.collect().await.unwrap();
    assert_eq!(second, vec![1, 2, 3]);
    // What remains is the CALL's own final OK packet: no columns, no rows.
    let rest: Vec<Row> = result.collect().await.unwrap();
    assert!(rest.is_empty());
    assert!(
        result.is_empty(),
        "more result sets than the procedure produced"
    );
    drop(result);
    let v: Option<String> = c.query_first("SELECT 'still in sync'").await.unwrap();
    assert_eq!(v.as_deref(), Some("still in sync"));
    c.disconnect().await.unwrap();
}

/// mysql_async always asks for CLIENT_DEPRECATE_EOF (mysql_async
/// src/opts/mod.rs, default client capabilities), so when the greeting
/// offers it, every result set below ends with an OK packet instead of EOF.
#[tokio::test]
async fn deprecate_eof_on_mysql_async_rows_and_empty_result_sets() {
    let t = passthrough();
    let g = read_greeting(t.port);
    assert!(
        g.capabilities & CLIENT_DEPRECATE_EOF != 0,
        "greeting does not offer CLIENT_DEPRECATE_EOF: {g:?}"
    );
    let mut c = t.conn().await;

    // Text protocol: rows, no rows, NULLs, OK.
    let rows: Vec<(i64, String)> = c
        .query("SELECT seq, CONCAT('v', seq) FROM seq_1_to_5")
        .await
        .unwrap();
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[4], (5, "v5".to_string()));
    let mut r = c
        .query_iter("SELECT seq AS n, 'c' AS c FROM seq_1_to_5 WHERE seq > 10")
        .await
        .unwrap();
    assert_eq!(
        r.columns_ref().len(),
        2,
        "empty result set keeps its columns"
    );
    let none: Vec<Row> = r.collect().await.unwrap();
    assert!(none.is_empty());
    drop(r);
    let nulls: Option<Row> = c.query_first("SELECT NULL, '', 0").await.unwrap();
    assert_eq!(nulls.unwrap().unwrap(), vec![Value::NULL, b(""), b("0")]);
    c.query_drop("DO 1").await.unwrap();
    assert_eq!(c.affected_rows(), 0);

    // Binary protocol: rows and no rows.
    let stmt = c
        .prep("SELECT seq, ? FROM seq_1_to_5 WHERE seq > ?")
        .await
        .unwrap();
    let rows: Vec<(i64, String)> = c.exec(&stmt, ("p", 2)).await.unwrap();
    assert_eq!(
        rows,
        vec![(3, "p".into()), (4, "p".into()), (5, "p".into())]
    );
    let rows: Vec<(i64, String)> = c.exec(&stmt, ("p", 9)).await.unwrap();
    assert!(rows.is_empty());

    // Multi-result with an empty set in the middle.
    let sets = all_sets(&mut c, "SELECT 1; SELECT 2 FROM DUAL WHERE 0; SELECT 3").await;
    assert_eq!(sets, vec![vec![vec![b("1")]], vec![], vec![vec![b("3")]]]);
    c.disconnect().await.unwrap();
}
