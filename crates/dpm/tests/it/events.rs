//! Every protocol flow a modern client uses, with a callback on every event of both
//! connections: the events a script can hook appear in protocol order, each packet is
//! decoded into its object, and nothing desynchronises.

use crate::support::*;
use mysql_async::prelude::*;
use std::time::Duration;

fn trace_target() -> Target {
    let (builder, port) = Dpm::in_front_of_mariadb("crates/dpm/tests/lua/trace.lua");
    Target::proxy(builder.spawn(), port)
}

/// The trace lines (without the "trace " prefix) among dpm's output lines after
/// position `from` (a [`Dpm::line_count`]).
fn trace_after(t: &Target, from: usize) -> Vec<String> {
    t.dpm()
        .output()
        .lines()
        .skip(from)
        .filter_map(|l| l.strip_prefix("trace "))
        .map(str::to_string)
        .collect()
}

/// Whether `expected` appears in `trace` in this order (not necessarily adjacent).
fn in_order(trace: &[String], expected: &[&str]) -> bool {
    let mut rest = trace.iter();
    expected.iter().all(|want| rest.any(|l| l == want))
}

/// Waits (up to 10 s) until the trace lines printed after position `from` contain
/// `expected` in order; panics with the trace so far otherwise. Polling for the whole
/// sequence (rather than one last line) keeps the check free of races with the
/// thread that collects dpm's output.
fn expect_trace(t: &Target, from: usize, expected: &[&str]) {
    let seen = try_wait_until(Duration::from_secs(10), || {
        in_order(&trace_after(t, from), expected).then_some(())
    });
    if seen.is_none() {
        panic!(
            "expected (in order) {expected:#?}\nin trace:\n{}",
            trace_after(t, from).join("\n")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_flow_moves_through_the_state_machine_with_hookable_events() {
    let t = trace_target();
    let mut c = t.conn().await;
    let n = t.dpm().line_count();

    // A result set (mysql_async negotiates CLIENT_DEPRECATE_EOF).
    let rows: Vec<(i64, String)> = c.query("SELECT 1, 'a' UNION SELECT 2, 'b'").await.unwrap();
    assert_eq!(rows.len(), 2);
    expect_trace(
        &t,
        n,
        &[
            "client MYC_SENT_CMD dpm.cmd",
            "backend MYS_GOT_CMD id",
            "backend MYS_SENT_RSET dpm.rset",
            "backend MYS_SENDING_FIELDS dpm.field",
            "backend MYS_SENDING_FIELDS dpm.field",
            "backend MYS_SENDING_ROWS dpm.row",
            "backend MYS_SENDING_ROWS dpm.row",
            "backend MYS_WAIT_CMD dpm.ok",
        ],
    );

    // PING, RESET_CONNECTION, INIT_DB: one OK each.
    let n = t.dpm().line_count();
    c.ping().await.unwrap();
    expect_trace(
        &t,
        n,
        &["client MYC_SENT_CMD dpm.cmd", "backend MYS_WAIT_CMD dpm.ok"],
    );
    let n = t.dpm().line_count();
    c.reset().await.unwrap();
    expect_trace(
        &t,
        n,
        &["client MYC_SENT_CMD dpm.cmd", "backend MYS_WAIT_CMD dpm.ok"],
    );

    // Multi-results: a stored procedure's results end in MYS_MORE_RESULTS, the last in MYS_WAIT_CMD.
    c.query_drop("DROP PROCEDURE IF EXISTS dpmtest.trace_two")
        .await
        .unwrap();
    c.query_drop("CREATE PROCEDURE dpmtest.trace_two() BEGIN SELECT 1; SELECT 2; END")
        .await
        .unwrap();
    let n = t.dpm().line_count();
    let mut result = c.query_iter("CALL dpmtest.trace_two()").await.unwrap();
    let first: Vec<i64> = result.collect().await.unwrap();
    let second: Vec<i64> = result.collect().await.unwrap();
    drop(result);
    assert_eq!((first, second), (vec![1], vec![2]));
    expect_trace(
        &t,
        n,
        &[
            "backend MYS_SENT_RSET dpm.rset",
            "backend MYS_MORE_RESULTS dpm.ok",
            "backend MYS_SENT_RSET dpm.rset",
            "backend MYS_MORE_RESULTS dpm.ok",
            "backend MYS_WAIT_CMD dpm.ok",
        ],
    );

    // Prepared statements: prepare OK, parameter and column definitions, binary rows.
    // Under CLIENT_DEPRECATE_EOF no EOF follows the definitions, so the last column
    // definition ends the response: it reaches MYS_WAIT_CMD, still as a dpm.field.
    let n = t.dpm().line_count();
    let stmt = c.prep("SELECT ? + 1 AS x, ? AS y").await.unwrap();
    let row: Option<(i64, String)> = c.exec_first(&stmt, (41, "z")).await.unwrap();
    assert_eq!(row, Some((42, "z".to_string())));
    c.close(stmt).await.unwrap();
    expect_trace(
        &t,
        n,
        &[
            "backend MYS_SENT_PREPARE_OK dpm.row",
            "backend MYS_SENDING_PARAMS dpm.field",
            "backend MYS_SENDING_PARAMS dpm.field",
            "backend MYS_SENDING_FIELDS dpm.field",
            "backend MYS_WAIT_CMD dpm.field",
            "client MYC_SENT_CMD dpm.cmd",
            "backend MYS_SENT_RSET dpm.rset",
            "backend MYS_SENDING_ROWS dpm.row",
        ],
    );

    // COM_CHANGE_USER ends in MYS_WAIT_CMD and the session works afterwards.
    let n = t.dpm().line_count();
    c.change_user(
        mysql_async::ChangeUserOpts::default()
            .with_user(Some(OTHER_USER.into()))
            .with_pass(Some(OTHER_PASSWORD.into())),
    )
    .await
    .unwrap();
    expect_trace(
        &t,
        n,
        &["client MYC_SENT_CMD dpm.cmd", "backend MYS_WAIT_CMD dpm.ok"],
    );
    let user: Option<String> = c.query_first("SELECT CURRENT_USER()").await.unwrap();
    assert!(user.unwrap().starts_with(OTHER_USER));
    c.disconnect().await.unwrap();
    t.dpm()
        .wait_for_line("trace client MY_CLOSING id", Duration::from_secs(10));
}

#[test]
fn local_infile_and_login_events_with_the_cli() {
    let t = trace_target();
    let dir = std::env::temp_dir().join(unique_name("trace-infile"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rows.csv");
    std::fs::write(&file, "1,one\n2,two\n").unwrap();
    let sql = format!(
        "CREATE TEMPORARY TABLE t (a INT, b TEXT); LOAD DATA LOCAL INFILE '{}' INTO TABLE t FIELDS TERMINATED BY ','; SELECT COUNT(*) FROM t",
        file.display()
    );
    let out = t.cli().db(DB).arg("--local-infile=1").run(&sql);
    out.assert_success("LOAD DATA LOCAL INFILE with every event traced");
    assert!(out.stdout.ends_with("2\n"), "{}", out.stdout);
    expect_trace(
        &t,
        0,
        &[
            "backend MYS_WAIT_AUTH dpm.handshake",
            "client MYC_WAIT_AUTH id",
            "client MYC_WAITING dpm.auth",
            "backend MYS_SENDING_OK id",
            "backend MYS_WAIT_CMD dpm.ok",
            "backend MYS_INFILE_REQUEST dpm.row",
            "client MYC_INFILE_DATA dpm.row",
            "client MYC_INFILE_DATA dpm.row",
            "backend MYS_WAIT_CMD dpm.ok",
        ],
    );
}

/// A "sent" callback runs after its packet was queued, on the fast path and after a
/// callback alike: a MYS_GOT_CMD callback that closes the backend does not lose the
/// command (the close flushes it), so the INSERT happens.
#[test]
fn sent_callbacks_run_after_the_packet_is_queued_on_every_path() {
    let db = MariaDb::get();
    db.direct_exec(&format!(
        "CREATE OR REPLACE TABLE {DB}.sent_order (path VARCHAR(20) PRIMARY KEY)"
    ));
    let fast_port = free_port();
    let (builder, port) = Dpm::in_front_of_mariadb("crates/dpm/tests/lua/sent_order.lua");
    let dpm = builder
        .env("DPM_FAST_PORT", fast_port)
        .arg("--threads")
        .arg("1")
        .spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    dpm.wait_until_listening(fast_port, LISTEN_TIMEOUT);
    let cli = |p: u16| Cli::new(p).user(USER).password(Some(PASSWORD)).db(DB);
    // After a callback: the MYC_SENT_CMD callback arms, the INSERT is forwarded after it.
    let _ = cli(port).run("INSERT INTO sent_order VALUES ('via-callback')");
    // Fast path: armed by another session, the INSERT goes out without any client callback.
    cli(port).run("SELECT 'arm'").assert_success("arm");
    let _ = cli(fast_port).run("INSERT INTO sent_order VALUES ('fast-path')");
    let closes = dpm.wait_for_line("from MYS_GOT_CMD", Duration::from_secs(5));
    assert!(!closes.is_empty());
    let rows = wait_until(
        "both INSERTs to reach the server",
        Duration::from_secs(10),
        || {
            let rows = db.direct_exec(&format!("SELECT path FROM {DB}.sent_order ORDER BY path"));
            (rows.lines().count() == 2).then_some(rows)
        },
    );
    assert_eq!(rows, "fast-path\nvia-callback\n");
    assert_eq!(
        dpm.output().matches("from MYS_GOT_CMD").count(),
        2,
        "{}",
        dpm.output()
    );
}
