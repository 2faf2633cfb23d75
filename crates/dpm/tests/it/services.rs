//! Services: a Lua filter in front of a readconnroute service (examples/lua-filter.lua)
//! against the real MariaDB, driven by the `mariadb` CLI and mysql_async.

use crate::support::*;
use std::time::{Duration, Instant};

fn lua_filter() -> (Dpm, u16) {
    let port = free_port();
    let dpm = Dpm::builder("examples/lua-filter.lua")
        .env("DPM_LISTEN_PORT", port)
        .env("DPM_BACKEND", format!("127.0.0.1:{}", MariaDb::get().port))
        .spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    (dpm, port)
}

fn cli(port: u16) -> Cli {
    Cli::new(port).user(USER).password(Some(PASSWORD)).db(DB)
}

#[test]
fn lua_filter_passes_blocks_answers_and_rewrites() {
    let (_dpm, port) = lua_filter();
    let db = MariaDb::get();
    db.direct_exec(&format!(
        "CREATE TABLE IF NOT EXISTS {DB}.modern_table (id INT PRIMARY KEY, v VARCHAR(10));
         REPLACE INTO {DB}.modern_table VALUES (1, 'new'), (2, 'newer');"
    ));
    // Passed on: the server answers.
    let out = cli(port).run("SELECT 40 + 2 AS answer");
    out.assert_success("a plain query");
    assert_eq!(out.stdout, "answer\n42\n");
    // Blocked with the filter's own error.
    let out = cli(port).run("DROP TABLE modern_table");
    assert!(!out.status.success());
    assert!(
        out.stderr
            .contains("ERROR 1142 (42000) at line 1: DROP is not allowed through this service"),
        "{}",
        out.stderr
    );
    assert_eq!(
        db.direct_exec(&format!("SELECT COUNT(*) FROM {DB}.modern_table"))
            .trim(),
        "2",
        "the DROP never reached the server"
    );
    // Rewritten: the old table name is served by the new table.
    let out = cli(port).run("SELECT v FROM legacy_table ORDER BY id");
    out.assert_success("rewritten query");
    assert_eq!(out.stdout, "v\nnew\nnewer\n");
    // Answered by the filter, with this session's counts (rows counted from replies).
    let out = cli(port).run_stdin("SELECT v FROM modern_table;\nSELECT 1;\nSHOW FILTER STATS;\n");
    out.assert_success("answered from Lua");
    assert!(
        out.stdout.ends_with("statements\trows\tserver\n3\t3\tdb\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_sleeping_filter_holds_up_only_its_own_session() {
    let (_dpm, port) = lua_filter();
    let slow = std::thread::spawn(move || {
        let started = Instant::now();
        let out = cli(port)
            .arg("--comments")
            .run("SELECT /* slow-down */ 1 AS slow");
        out.assert_success("slow query");
        started.elapsed()
    });
    std::thread::sleep(Duration::from_millis(20));
    let started = Instant::now();
    for _ in 0..3 {
        cli(port).run("SELECT 1").assert_success("fast query");
    }
    let fast = started.elapsed();
    let slow = slow.join().unwrap();
    assert!(
        slow >= Duration::from_millis(200),
        "the filter slept: {slow:?}"
    );
    // Three other sessions (CLI start-up included) were served meanwhile, unaffected.
    assert!(
        fast < slow + Duration::from_millis(400),
        "fast {fast:?} slow {slow:?}"
    );
}

#[test]
fn prepared_statements_pass_through_a_lua_filter() {
    let (_dpm, port) = lua_filter();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        use mysql_async::prelude::*;
        let mut conn = mysql_async::Conn::new(opts(port).db_name(Some(DB)))
            .await
            .unwrap();
        let stmt = conn.prep("SELECT ? + ? AS s").await.unwrap();
        let v: Vec<i64> = conn.exec(&stmt, (20, 22)).await.unwrap();
        assert_eq!(v, vec![42]);
        let err = conn
            .query_drop("DROP TABLE nothing_here")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("DROP is not allowed"), "{err}");
        // The session goes on after a blocked statement.
        let v: Vec<i64> = conn.query("SELECT 7").await.unwrap();
        assert_eq!(v, vec![7]);
        conn.disconnect().await.unwrap();
    });
}
