//! Big things: LOAD DATA LOCAL INFILE, a 100 MB result set, a 40 MB BLOB.

use crate::support::*;
use mysql_async::prelude::*;
use mysql_async::Row;
use std::io::Write;
use std::time::Duration;

const BIG: Duration = Duration::from_secs(120);

#[test]
fn cli_load_data_local_infile_10k_lines() {
    let db = MariaDb::get();
    db.direct_exec(
        "CREATE OR REPLACE TABLE dpmtest.load_rows (id INT PRIMARY KEY, name VARCHAR(64), v INT)",
    );
    let t = passthrough();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let mut expected_sum = 0u64;
    for i in 1..=10_000u64 {
        let v = i * 7 % 1000;
        expected_sum += v;
        writeln!(file, "{i}\tname-{i}-{}\t{v}", "z".repeat((i % 40) as usize)).unwrap();
    }
    file.flush().unwrap();
    let sql = format!(
        "LOAD DATA LOCAL INFILE '{}' INTO TABLE load_rows; SELECT ROW_COUNT() AS loaded",
        file.path().display()
    );
    let out = t.cli().db(DB).arg("--local-infile=1").run(&sql);
    out.assert_success("LOAD DATA LOCAL INFILE through the target");
    assert_eq!(out.stdout, "loaded\n10000\n");
    let check = db.direct_exec(
        "SELECT COUNT(*), SUM(v), MAX(LENGTH(name)), (SELECT name FROM dpmtest.load_rows WHERE id = 42)
         FROM dpmtest.load_rows",
    );
    assert_eq!(
        check.trim(),
        format!(
            "10000\t{expected_sum}\t{}\tname-42-{}",
            "name-9999-".len() + 39,
            "z".repeat(2)
        )
    );
}

#[test]
fn cli_load_data_local_infile_missing_file_keeps_connection() {
    let db = MariaDb::get();
    db.direct_exec("CREATE OR REPLACE TABLE dpmtest.load_missing (a INT)");
    let t = passthrough();
    let script = "SELECT CONNECTION_ID() INTO @before;\n\
                  LOAD DATA LOCAL INFILE '/nonexistent/dpm-missing.tsv' INTO TABLE load_missing;\n\
                  SELECT CONNECTION_ID() = @before AS same_connection, COUNT(*) AS n FROM load_missing;\n";
    let cli = |target: &Target| {
        target
            .cli()
            .db(DB)
            .arg("--local-infile=1")
            .arg("--force")
            .arg("--skip-reconnect")
            .run_stdin(script)
    };
    let via = cli(&t);
    assert!(
        via.stderr
            .contains("ERROR 2 (HY000) at line 2: File '/nonexistent/dpm-missing.tsv' not found"),
        "{via}"
    );
    // The same connection answered the next statement.
    assert_eq!(via.stdout, "same_connection\tn\n1\t0\n", "{via}");
    let direct = cli(&Target::direct());
    assert_eq!((via.code(), &via.stderr), (direct.code(), &direct.stderr));
}

/// 100 rows of 1 MiB each = 100 MiB, streamed row by row.
#[tokio::test]
async fn result_set_100mb_streamed_mysql_async() {
    let t = passthrough();
    let mut c = t.conn().await;
    let expected = vec![b'x'; 1 << 20];
    let mut result = c
        .query_iter("SELECT seq, REPEAT('x', 1048576) FROM seq_1_to_100")
        .await
        .unwrap();
    let mut rows = 0u64;
    let mut bytes = 0u64;
    bounded(
        "100 MB result set",
        BIG,
        result.for_each(|row: Row| {
            let (seq, data): (u64, Vec<u8>) = mysql_async::from_row(row);
            rows += 1;
            assert_eq!(seq, rows, "rows out of order");
            assert!(data == expected, "row {seq} has wrong content");
            bytes += data.len() as u64;
        }),
    )
    .await
    .unwrap();
    drop(result);
    assert_eq!((rows, bytes), (100, 100 << 20));
    let v: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(v, Some(1));
    c.disconnect().await.unwrap();
}

#[test]
fn result_set_100mb_cli_byte_count() {
    MariaDb::get();
    let t = passthrough();
    let mut bytes = 0u64;
    let mut newlines = 0u64;
    let mut non_x = 0u64;
    let (status, stderr) = run_bounded_streaming(
        t.cli()
            .db(DB)
            .arg("--skip-column-names")
            .arg("--quick")
            .command()
            .arg("-e")
            .arg("SELECT REPEAT('x', 1048576) FROM seq_1_to_100"),
        None,
        BIG,
        |chunk| {
            bytes += chunk.len() as u64;
            for &c in chunk {
                match c {
                    b'\n' => newlines += 1,
                    b'x' => {}
                    _ => non_x += 1,
                }
            }
        },
    );
    assert!(status.success(), "CLI failed: {status}: {stderr}");
    assert_eq!((bytes, newlines, non_x), (100 * (1 << 20) + 100, 100, 0));
}

/// A 40 MB BLOB (packets over 16 MiB) in and out, text and binary protocol.
#[tokio::test]
async fn blob_40mb_prepared_and_text_round_trip() {
    MariaDb::get().direct_exec(
        "CREATE OR REPLACE TABLE dpmtest.big_blobs (id INT PRIMARY KEY, b LONGBLOB) ENGINE=MyISAM",
    );
    let t = passthrough();
    let mut c = t.conn().await;
    // Deterministic pseudo-random bytes (xorshift), all 256 values present.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let blob: Vec<u8> = (0..40 * 1024 * 1024 + 123)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();

    // Binary protocol: mysql_async sends the parameter with
    // COM_STMT_SEND_LONG_DATA in maximum-size (16 MiB - 1) packets.
    bounded(
        "prepared 40 MB insert",
        BIG,
        c.exec_drop("INSERT INTO big_blobs VALUES (?, ?)", (1, &blob)),
    )
    .await
    .expect("prepared insert of 40 MB");
    // Text protocol: one 80 MB COM_QUERY (hex literal), split into packets.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = Vec::with_capacity(blob.len() * 2 + 64);
    hex.extend_from_slice(b"INSERT INTO big_blobs VALUES (2, x'");
    for &byte in &blob {
        hex.push(HEX[(byte >> 4) as usize]);
        hex.push(HEX[(byte & 15) as usize]);
    }
    hex.extend_from_slice(b"')");
    let hex = String::from_utf8(hex).unwrap();
    bounded("80 MB COM_QUERY", BIG, c.query_drop(hex))
        .await
        .expect("text insert of 40 MB");

    let direct = MariaDb::get().direct_exec(
        "SELECT id, LENGTH(b), MD5(b) = (SELECT MD5(b) FROM dpmtest.big_blobs WHERE id = 1)
         FROM dpmtest.big_blobs ORDER BY id",
    );
    assert_eq!(
        direct,
        format!("1\t{0}\t1\n2\t{0}\t1\n", blob.len()),
        "both rows stored identically"
    );

    for id in [1, 2] {
        let text: Option<Vec<u8>> = bounded(
            "text select",
            BIG,
            c.query_first(format!("SELECT b FROM big_blobs WHERE id = {id}")),
        )
        .await
        .unwrap();
        assert!(
            text.as_ref() == Some(&blob),
            "text protocol: row {id} differs"
        );
        let binary: Option<Vec<u8>> = bounded(
            "binary select",
            BIG,
            c.exec_first("SELECT b FROM big_blobs WHERE id = ?", (id,)),
        )
        .await
        .unwrap();
        assert!(
            binary.as_ref() == Some(&blob),
            "binary protocol: row {id} differs"
        );
    }
    c.disconnect().await.unwrap();
}
