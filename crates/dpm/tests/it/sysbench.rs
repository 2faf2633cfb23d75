//! sysbench oltp_read_write through the proxy.

use crate::support::*;
use std::process::Command;
use std::time::Duration;

fn sysbench(port: u16, args: &[&str], timeout: Duration) -> ProcOutput {
    sysbench_as(port, (USER, PASSWORD), "sbtest", args, timeout)
}

/// sysbench against `port` as `user` (name, password) in database `db`: one table of
/// 1000 rows, no TLS, then `args`.
pub(crate) fn sysbench_as(
    port: u16,
    user: (&str, &str),
    db: &str,
    args: &[&str],
    timeout: Duration,
) -> ProcOutput {
    run_bounded(
        Command::new("sysbench")
            .arg("--db-driver=mysql")
            .arg("--mysql-host=127.0.0.1")
            .arg(format!("--mysql-port={port}"))
            .arg(format!("--mysql-user={}", user.0))
            .arg(format!("--mysql-password={}", user.1))
            .arg(format!("--mysql-db={db}"))
            .arg("--mysql-ssl=off")
            .arg("--tables=1")
            .arg("--table-size=1000")
            .args(args),
        None,
        timeout,
    )
}

/// The number in a sysbench summary line such as
/// `    reconnects:                          0      (0.00 per sec.)`.
pub(crate) fn stat(out: &str, name: &str) -> u64 {
    out.lines()
        .find_map(|l| l.trim_start().strip_prefix(&format!("{name}:")))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {name:?} in sysbench output:\n{out}"))
}

/// 4 threads for 10 s. Each transaction: 10 point selects, 4 range queries,
/// a DELETE and an INSERT of one row, all server-side prepared statements.
/// The two UPDATEs of the default mix are switched off: updating two random
/// rows per transaction deadlocks inherently on 1000 rows (MariaDB itself
/// reports ~1213 errors a second with them, proxy or not), and this test
/// demands zero errors.
#[test]
fn sysbench_oltp_read_write_4_threads_10s() {
    let db = MariaDb::get();
    db.direct_exec("DROP DATABASE IF EXISTS sbtest; CREATE DATABASE sbtest;");
    let t = passthrough();
    let prep = sysbench(
        t.port,
        &["oltp_read_write", "prepare"],
        Duration::from_secs(120),
    );
    prep.assert_success("sysbench prepare");
    assert_eq!(
        db.direct_exec("SELECT COUNT(*) FROM sbtest.sbtest1").trim(),
        "1000"
    );

    let run = sysbench(
        t.port,
        &[
            "--threads=4",
            "--time=10",
            "--index_updates=0",
            "--non_index_updates=0",
            "oltp_read_write",
            "run",
        ],
        Duration::from_secs(90),
    );
    run.assert_success("sysbench run");
    assert!(
        !run.stdout.contains("FATAL") && !run.stderr.contains("FATAL"),
        "{run}"
    );
    let transactions = stat(&run.stdout, "transactions");
    let errors = stat(&run.stdout, "ignored errors");
    let reconnects = stat(&run.stdout, "reconnects");
    eprintln!("sysbench: {transactions} transactions, {errors} errors, {reconnects} reconnects");
    assert!(transactions > 0, "{run}");
    assert_eq!((errors, reconnects), (0, 0), "{run}");
    // The DELETE+INSERT pairs kept the row count.
    assert_eq!(
        db.direct_exec("SELECT COUNT(*) FROM sbtest.sbtest1").trim(),
        "1000"
    );

    // The full default mix, UPDATEs included, on one thread (no concurrency, so no
    // deadlocks whoever is in the middle): zero errors too.
    let full = sysbench(
        t.port,
        &["--threads=1", "--time=5", "oltp_read_write", "run"],
        Duration::from_secs(60),
    );
    full.assert_success("sysbench run, default mix");
    assert!(stat(&full.stdout, "transactions") > 0, "{full}");
    assert_eq!(
        (
            stat(&full.stdout, "ignored errors"),
            stat(&full.stdout, "reconnects")
        ),
        (0, 0),
        "{full}"
    );
}
