//! Server-side prepared statements (binary protocol) with mysql_async.

use crate::support::*;
use mysql_async::prelude::*;
use mysql_async::{Params, Row, Value};
use std::collections::HashMap;

fn b(s: &str) -> Value {
    Value::Bytes(s.as_bytes().to_vec())
}

async fn session_status(c: &mut mysql_async::Conn, like: &str) -> HashMap<String, u64> {
    let rows: Vec<(String, String)> = c
        .query(format!("SHOW SESSION STATUS LIKE '{like}'"))
        .await
        .unwrap();
    rows.into_iter()
        .map(|(k, v)| (k, v.parse().unwrap()))
        .collect()
}

#[tokio::test]
async fn prepared_params_of_many_types_binary_rows() {
    MariaDb::get().direct_exec(
        "CREATE OR REPLACE TABLE dpmtest.prep_types (
           id INT PRIMARY KEY, i BIGINT, n INT NULL, s VARCHAR(50), bl BLOB,
           f DOUBLE, fl FLOAT, d DATE, dt DATETIME(6), t TIME(6),
           de DECIMAL(20,6), u BIGINT UNSIGNED, ti TINYINT)",
    );
    let t = passthrough();
    let mut c = t.conn().await;
    let blob = vec![0u8, 1, 2, 0xff, 0xfe, b'\'', b'\\', 0, b'"'];
    let params: Vec<Value> = vec![
        Value::Int(1),
        Value::Int(-9_000_000_000),
        Value::NULL,
        b("héllo ✓ 'quoted'"),
        Value::Bytes(blob.clone()),
        Value::Double(3.25),
        Value::Float(1.5),
        Value::Date(2024, 2, 29, 0, 0, 0, 0),
        Value::Date(2024, 2, 29, 23, 59, 58, 123_456),
        Value::Time(true, 1, 2, 3, 4, 500_000),
        b("12345.678900"),
        Value::UInt(u64::MAX),
        Value::Int(-128),
    ];
    c.exec_drop(
        "INSERT INTO prep_types VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        Params::Positional(params),
    )
    .await
    .expect("prepared INSERT");
    assert_eq!(c.affected_rows(), 1);

    let row: Row = c
        .exec_first("SELECT * FROM prep_types WHERE id = ?", (1,))
        .await
        .unwrap()
        .expect("one row");
    assert_eq!(
        row.unwrap(),
        vec![
            Value::Int(1),
            Value::Int(-9_000_000_000),
            Value::NULL,
            b("héllo ✓ 'quoted'"),
            Value::Bytes(blob),
            Value::Double(3.25),
            Value::Float(1.5),
            Value::Date(2024, 2, 29, 0, 0, 0, 0),
            Value::Date(2024, 2, 29, 23, 59, 58, 123_456),
            // -(1 day 02:03:04.5)
            Value::Time(true, 1, 2, 3, 4, 500_000),
            b("12345.678900"),
            Value::UInt(u64::MAX),
            Value::Int(-128),
        ],
        "binary row"
    );
    // The same row in the text protocol.
    let row: Row = c
        .query_first("SELECT i, n, s, f, fl, d, dt, t, de, u, ti FROM prep_types WHERE id = 1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.unwrap(),
        vec![
            b("-9000000000"),
            Value::NULL,
            b("héllo ✓ 'quoted'"),
            b("3.25"),
            b("1.5"),
            b("2024-02-29"),
            b("2024-02-29 23:59:58.123456"),
            b("-26:03:04.500000"),
            b("12345.678900"),
            b("18446744073709551615"),
            b("-128"),
        ],
        "text row"
    );

    // Parameters used in expressions, result columns computed by the server.
    let row: Row = c
        .exec_first(
            "SELECT ? + 1, CONCAT(?, '!'), ? IS NULL, ? * 2, LENGTH(?)",
            (41, "hi", Value::NULL, 1.25, vec![0u8; 1000]),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.unwrap(),
        vec![
            Value::Int(42),
            b("hi!"),
            Value::Int(1),
            Value::Double(2.5),
            Value::Int(1000)
        ]
    );
    c.disconnect().await.unwrap();
}

#[tokio::test]
async fn prepared_statement_reuse_and_close() {
    let t = passthrough();
    let mut c = t.conn().await;
    let before = session_status(&mut c, "Com_stmt_%").await;
    let double = c.prep("SELECT ? * 2").await.unwrap();
    let concat = c.prep("SELECT CONCAT(?, '-', ?)").await.unwrap();
    assert_eq!(double.num_params(), 1);
    assert_eq!(concat.num_params(), 2);
    for i in 0..50i64 {
        let v: Option<i64> = c.exec_first(&double, (i,)).await.unwrap();
        assert_eq!(v, Some(i * 2));
        let s: Option<String> = c.exec_first(&concat, (i, "x")).await.unwrap();
        assert_eq!(s, Some(format!("{i}-x")));
    }
    let mid = session_status(&mut c, "Com_stmt_%").await;
    let delta = |m: &HashMap<String, u64>, k: &str| m[k] - before[k];
    assert_eq!(
        delta(&mid, "Com_stmt_prepare"),
        2,
        "each statement prepared once"
    );
    assert_eq!(delta(&mid, "Com_stmt_execute"), 100);
    assert_eq!(delta(&mid, "Com_stmt_close"), 0);

    c.close(double).await.unwrap();
    c.close(concat).await.unwrap();
    let after = session_status(&mut c, "Com_stmt_%").await;
    assert_eq!(
        delta(&after, "Com_stmt_close"),
        2,
        "COM_STMT_CLOSE reached the server"
    );

    // Preparing again after close works and gets a working statement.
    let again = c.prep("SELECT ? * 3").await.unwrap();
    let v: Option<i64> = c.exec_first(&again, (7,)).await.unwrap();
    assert_eq!(v, Some(21));
    c.disconnect().await.unwrap();
}

#[tokio::test]
async fn prepared_insert_then_select() {
    MariaDb::get().direct_exec(
        "CREATE OR REPLACE TABLE dpmtest.prep_rows (id INT PRIMARY KEY, name VARCHAR(40), v DOUBLE NULL)",
    );
    let t = passthrough();
    let mut c = t.conn().await;
    // exec_batch: MariaDB's COM_STMT_BULK_EXECUTE when the server offers it.
    c.exec_batch(
        "INSERT INTO prep_rows (id, name, v) VALUES (?, ?, ?)",
        (1..=300).map(|i: i32| {
            (
                i,
                format!("name-{i}"),
                if i % 10 == 0 {
                    None
                } else {
                    Some(i as f64 / 4.0)
                },
            )
        }),
    )
    .await
    .expect("batch insert");
    let stmt = c
        .prep("INSERT INTO prep_rows (id, name, v) VALUES (?, ?, ?)")
        .await
        .unwrap();
    c.exec_drop(&stmt, (301, "single", 0.5)).await.unwrap();
    assert_eq!(c.affected_rows(), 1);

    let n: Option<i64> = c
        .exec_first("SELECT COUNT(*) FROM prep_rows WHERE id > ?", (0,))
        .await
        .unwrap();
    assert_eq!(n, Some(301));
    let rows: Vec<(i32, String, Option<f64>)> = c
        .exec(
            "SELECT id, name, v FROM prep_rows WHERE id BETWEEN ? AND ? ORDER BY id",
            (9, 11),
        )
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![
            (9, "name-9".into(), Some(2.25)),
            (10, "name-10".into(), None),
            (11, "name-11".into(), Some(2.75)),
        ]
    );
    // And the server really holds them (checked directly, not via the proxy).
    let direct = MariaDb::get()
        .direct_exec("SELECT COUNT(*), SUM(v IS NULL), MAX(name) FROM dpmtest.prep_rows");
    assert_eq!(direct.trim(), "301\t30\tsingle");
    c.disconnect().await.unwrap();
}
