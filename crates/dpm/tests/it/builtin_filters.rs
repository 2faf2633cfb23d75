//! The built-in filters (qla, regex, firewall, tee, top) on a readconnroute service in
//! front of the real MariaDB, driven by the `mariadb` CLI and mysql_async.

use crate::support::*;
use std::time::{Duration, Instant};

/// dpm on `startfile` in front of the shared MariaDB, logs in a fresh directory
/// (`DPM_LOG_DIR`); returns dpm, its port and the directory.
fn filters_dpm(startfile: &str) -> (Dpm, u16, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let dpm = Dpm::builder(startfile)
        .env("DPM_LISTEN_PORT", port)
        .env("DPM_BACKEND", format!("127.0.0.1:{}", MariaDb::get().port))
        .env("DPM_LOG_DIR", dir.path().display().to_string())
        .spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    (dpm, port, dir)
}

fn cli(port: u16) -> Cli {
    Cli::new(port).user(USER).password(Some(PASSWORD)).db(DB)
}

/// The JSON lines of `file`, waiting until there are at least `n`.
fn json_lines(file: &std::path::Path, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn qla_logs_every_statement_as_the_server_saw_it_and_top_reports_the_session() {
    let (_dpm, port, dir) = filters_dpm("examples/builtin-filters.lua");
    let db = MariaDb::get();
    db.direct_exec(&format!(
        "CREATE TABLE IF NOT EXISTS {DB}.orders (id INT PRIMARY KEY, v VARCHAR(10));
         REPLACE INTO {DB}.orders VALUES (1, 'a'), (2, 'b'), (3, 'c');"
    ));
    let out = cli(port).run_stdin(
        "SELECT SQL_NO_CACHE v FROM legacy_orders ORDER BY id;\n\
         SELECT SLEEP(0.2) AS slept;\n\
         UPDATE orders SET v = 'a' WHERE id = 1;\n\
         SELECT @@port > 0 AS excluded;\n",
    );
    out.assert_success("statements through the chain");
    assert_eq!(out.stdout, "v\na\nb\nc\nslept\n0\nexcluded\n1\n");
    let out = cli(port).run("SELECT * FROM no_such_table");
    assert!(out.stderr.contains("ERROR 1146"), "{}", out.stderr);

    let log = json_lines(&dir.path().join("dpm-queries.log"), 4);
    let find = |needle: &str| {
        log.iter()
            .find(|l| l["sql"].as_str().is_some_and(|s| s.contains(needle)))
            .unwrap_or_else(|| panic!("no line with {needle}: {log:?}"))
            .clone()
    };
    // Rewritten before the log saw it: the server's SQL, not the client's.
    let select = find("FROM orders ORDER BY id");
    assert_eq!(select["sql"], "SELECT v FROM orders ORDER BY id");
    assert_eq!(select["rows"], 3);
    assert_eq!(select["user"], USER);
    assert_eq!(select["service"], "app");
    assert_eq!(select["server"], "db");
    assert!(select["error"].is_null());
    assert!(select["client"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(select["time"].as_str().unwrap().ends_with('Z'));
    let sleep = find("SLEEP(0.2)");
    let us = sleep["duration_us"].as_u64().unwrap();
    assert!((190_000..5_000_000).contains(&us), "{us}");
    assert_eq!(find("UPDATE orders")["affected_rows"], 0);
    assert_eq!(find("no_such_table")["error"], 1146);
    // `SELECT @@...` is out of the example's scope (`exclude`), yet top counts it.
    assert!(log
        .iter()
        .all(|l| !l["sql"].as_str().unwrap_or("").contains("@@")));

    // top: one line per closed session, slowest first.
    let top = json_lines(&dir.path().join("dpm-top.log"), 2);
    let first = top
        .iter()
        .find(|l| l["statements"].as_u64() == Some(4))
        .unwrap_or_else(|| panic!("{top:?}"));
    assert_eq!(first["top"][0]["sql"], "SELECT SLEEP(0.2) AS slept");
    assert!(first["top"][0]["duration_us"].as_u64().unwrap() >= 190_000);
    assert_eq!(first["user"], USER);
    assert!(first["statement_time_us"].as_u64().unwrap() >= 190_000);
}
