//! `dpm bench` against the real MariaDB: the built-in sysbench workloads on tables that
//! `sysbench oltp_read_write prepare` made, every hook of a script (socket, packet,
//! error queue) with values collected from every thread, the examples of docs/bench.md,
//! error counting, logins, and bad scripts failing with `FILE:LINE: message`. Runs are
//! 1 s or less; every process is bounded by a timeout.

use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::support::*;

/// The database `sysbench prepare` fills once for these tests: 2 tables of 1000 rows.
const SB_DB: &str = "bench_sb";

fn sbtest_prepared() -> &'static MariaDb {
    static DONE: OnceLock<()> = OnceLock::new();
    let db = MariaDb::get();
    DONE.get_or_init(|| {
        db.direct_exec(&format!(
            "DROP DATABASE IF EXISTS {SB_DB}; CREATE DATABASE {SB_DB};"
        ));
        let out = crate::sysbench::sysbench_as(
            db.port,
            (USER, PASSWORD),
            SB_DB,
            &["--tables=2", "oltp_read_write", "prepare"],
            Duration::from_secs(120),
        );
        out.assert_success("sysbench prepare");
    });
    db
}

/// Runs `dpm bench` with the test account on the shared MariaDB, then `args`.
fn bench(args: &[&str], env: &[(&str, &str)]) -> ProcOutput {
    let db = MariaDb::get();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dpm"));
    cmd.current_dir(workspace_root())
        .arg("bench")
        .arg("--port")
        .arg(db.port.to_string())
        .arg("--user")
        .arg(USER)
        .arg("--password")
        .arg(PASSWORD)
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_bounded(&mut cmd, None, Duration::from_secs(60))
}

/// The JSON report: the last line of standard output.
fn json_report(out: &ProcOutput) -> serde_json::Value {
    let line = out.stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("no JSON report ({e}): {out}"))
}

fn n(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

fn status(db: &MariaDb, name: &str) -> u64 {
    let out = db.direct_exec(&format!("SHOW GLOBAL STATUS LIKE '{name}'"));
    out.split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no status {name}: {out}"))
}

/// sysbench's three OLTP workloads: each transaction has sysbench's query count
/// (point select 1; read only 10 points + 4 ranges + BEGIN/COMMIT = 16; read write adds
/// 2 updates and a delete/insert pair: 20), no errors (read_write: only the deadlocks
/// sysbench ignores too), every thread did work, the
/// prepared statements reached the server as executes, and the tables keep their rows.
#[test]
fn bench_builtin_oltp_workloads_count_as_sysbench_does() {
    let db = sbtest_prepared();
    for (workload, per_txn) in [
        ("oltp_point_select", 1),
        ("oltp_read_only", 16),
        ("oltp_read_write", 20),
    ] {
        let executes = status(db, "Com_stmt_execute");
        let out = bench(
            &[
                "--workload",
                workload,
                "--database",
                SB_DB,
                "--tables",
                "2",
                "--table-size",
                "1000",
                "--threads",
                "2",
                "--connections",
                "4",
                "--duration",
                "0.8",
                "--json",
            ],
            &[],
        );
        out.assert_success(workload);
        let r = json_report(&out);
        let (txn, queries) = (n(&r["transactions"]), n(&r["queries"]));
        assert!(txn > 20, "{workload}: {txn} transactions: {out}");
        assert_eq!(queries, txn * per_txn, "{workload}: {out}");
        if workload == "oltp_read_write" {
            // Updates of random rows of 1000 deadlock now and then (sysbench's own test
            // says so): counted by code, retried, never fatal by default.
            for code in r["error_codes"].as_object().unwrap().keys() {
                assert!(["1213", "1205", "1020"].contains(&code.as_str()), "{out}");
            }
        } else {
            assert_eq!(n(&r["errors"]), 0, "{workload}: {out}");
        }
        let threads = r["per_thread"].as_array().unwrap();
        assert_eq!(threads.len(), 2);
        for t in threads {
            assert!(
                n(&t["transactions"]) > 0,
                "{workload}: a thread did nothing: {out}"
            );
        }
        assert!(r["latency_ms"]["p99"].as_f64().unwrap() > 0.0);
        assert!(
            status(db, "Com_stmt_execute") - executes >= queries,
            "{workload}: the queries were not binary executes"
        );
    }
    for t in ["sbtest1", "sbtest2"] {
        let rows = db.direct_exec(&format!("SELECT COUNT(*) FROM {SB_DB}.{t}"));
        assert_eq!(rows.trim(), "1000", "{t}: a delete without its insert");
    }
    // Text protocol (--db-ps-mode disable): the same counts.
    let out = bench(
        &[
            "--workload",
            "oltp_read_only",
            "--database",
            SB_DB,
            "--tables",
            "2",
            "--table-size",
            "1000",
            "--connections",
            "2",
            "--duration",
            "0.5",
            "--db-ps-mode",
            "disable",
            "--json",
        ],
        &[],
    );
    out.assert_success("oltp_read_only, text");
    let r = json_report(&out);
    assert_eq!(n(&r["queries"]), n(&r["transactions"]) * 16, "{out}");
}

/// Every hook of a script runs in every thread, and the values it collects arrive from
/// each thread: sockets opened (a number kept in a local) and closed per thread match
/// that thread's share of the connections; TCP_NODELAY was on before the hook; TCP_INFO
/// at close; every packet went through the packet hooks; the per-thread transaction
/// counts add up to the report's.
#[test]
fn bench_script_hooks_run_and_collect_from_every_thread() {
    MariaDb::get();
    let out = bench(
        &[
            "--script",
            "crates/dpm/tests/lua/bench_hooks.lua",
            "--threads",
            "2",
            "--connections",
            "5",
            "--duration",
            "0.6",
        ],
        &[],
    );
    out.assert_success("bench_hooks.lua");
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("thread="))
        .collect();
    assert_eq!(lines.len(), 2, "one line per thread: {out}");
    let field = |line: &str, name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {line}"))
    };
    let mut txn = 0;
    for (line, share) in lines.iter().zip([3, 2]) {
        assert_eq!(field(line, "opened"), share, "{line}");
        assert_eq!(field(line, "closed"), share, "{line}");
        assert_eq!(field(line, "nodelay"), share, "{line}");
        assert_eq!(field(line, "rtt_ok"), share, "{line}");
        assert_eq!(field(line, "errs"), 0, "{line}");
        let t = field(line, "txn");
        assert!(t > 0, "{line}");
        // Three commands per transaction, each one write; a login adds some.
        assert!(field(line, "sends") >= 3 * t, "{line}");
        assert!(field(line, "recvs") >= 3 * t, "{line}");
        txn += t;
    }
    let report = out
        .stdout
        .lines()
        .find(|l| l.starts_with("report "))
        .unwrap_or_else(|| panic!("no report line: {out}"));
    let reported = field(report, "transactions");
    // A transaction that ends after the stop is run but not counted.
    assert!(txn >= reported && txn <= reported + 5, "{txn} vs {report}");
    assert_eq!(field(report, "queries"), 3 * reported, "{report}");
    assert_eq!(field(report, "threads"), 2);
}

/// client_recverr: TX software timestamps (SO_TIMESTAMPING set in client_socket) are
/// read from the error queue of every connection.
#[test]
fn bench_recverr_reads_the_error_queue() {
    MariaDb::get();
    let out = bench(
        &[
            "--script",
            "crates/dpm/tests/lua/bench_recverr.lua",
            "--threads",
            "2",
            "--connections",
            "2",
            "--duration",
            "0.4",
        ],
        &[],
    );
    out.assert_success("bench_recverr.lua");
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("timestamps="))
        .unwrap_or_else(|| panic!("{out}"));
    let stamps: u64 = line["timestamps=".len()..]
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(stamps > 100, "{line}");
    assert!(line.ends_with("threads=2"), "{line}");
}

/// The examples of docs/bench.md, as the document runs them.
#[test]
fn bench_examples_of_the_manual_run() {
    sbtest_prepared();
    // A map of queries from a file: every name ran, and the counts add up.
    let out = bench(
        &[
            "--script",
            "examples/bench/query-map.lua",
            "--database",
            SB_DB,
            "--connections",
            "4",
            "--duration",
            "0.5",
            "--json",
        ],
        &[],
    );
    out.assert_success("query-map.lua");
    let r = json_report(&out);
    let mut sum = 0;
    for name in ["point", "range", "now"] {
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name}: {out}"));
        let count: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(count > 0, "{line}");
        sum += count;
    }
    assert!(sum >= n(&r["transactions"]), "{out}");
    // 1 ms injected before every write: no transaction is faster than that.
    let out = bench(
        &[
            "--script",
            "examples/bench/latency.lua",
            "--workload",
            "oltp_point_select",
            "--database",
            SB_DB,
            "--tables",
            "2",
            "--table-size",
            "1000",
            "--connections",
            "4",
            "--duration",
            "0.5",
            "--json",
        ],
        &[],
    );
    out.assert_success("latency.lua");
    let r = json_report(&out);
    assert!(n(&r["transactions"]) > 50, "{out}");
    assert!(r["latency_ms"]["min"].as_f64().unwrap() >= 1.0, "{out}");
    assert!(out.stdout.contains("writes delayed by 1 ms"), "{out}");
    // Nagle's algorithm against a client that writes header and body apart.
    let p50 = |nodelay: &str| {
        let out = bench(
            &[
                "--script",
                "examples/bench/nodelay.lua",
                "--connections",
                "2",
                "--duration",
                "0.6",
                "--json",
            ],
            &[("NODELAY", nodelay)],
        );
        out.assert_success("nodelay.lua");
        assert!(
            out.stdout.contains(&format!("TCP_NODELAY {nodelay}:")),
            "{out}"
        );
        json_report(&out)["latency_ms"]["p50"].as_f64().unwrap()
    };
    let (off, on) = (p50("off"), p50("on"));
    assert!(off >= 20.0, "TCP_NODELAY off: p50 {off} ms");
    assert!(on < 5.0, "TCP_NODELAY on: p50 {on} ms");
}

/// An error not in --ignore-errors stops the run (exit 1, the script's line and the
/// server's error); an ignored one is counted by code and the run goes on.
#[test]
fn bench_errors_stop_the_run_unless_ignored() {
    MariaDb::get();
    let script = "crates/dpm/tests/lua/bench_errors.lua";
    let args = [
        "--script",
        script,
        "--database",
        DB,
        "--connections",
        "2",
        "--duration",
        "0.3",
    ];
    let out = bench(&args, &[]);
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(
        out.stderr.contains("bench_errors.lua:3: error 1146 (42S02): Table 'dpmtest.no_such_table_here' doesn't exist"),
        "{out}"
    );
    assert!(out.stdout.contains("FATAL:"), "{out}");
    let mut ignoring = args.to_vec();
    ignoring.extend(["--ignore-errors", "1146", "--json"]);
    let out = bench(&ignoring, &[]);
    out.assert_success("ignored errors");
    let r = json_report(&out);
    assert_eq!(n(&r["transactions"]), 0);
    assert!(n(&r["error_codes"]["1146"]) > 10, "{out}");
    assert_eq!(n(&r["errors"]), n(&r["error_codes"]["1146"]));
}

/// Bad scripts and bad logins fail at once, non-zero, saying where.
#[test]
fn bench_bad_scripts_fail_with_file_and_line() {
    MariaDb::get();
    for (script, expected) in [
        ("bench_syntax.lua", "bench_syntax.lua:4: ')' expected"),
        (
            "bench_main_error.lua",
            "bench_main_error.lua:2: attempt to perform arithmetic on a nil value",
        ),
        (
            "bench_bad_workload.lua",
            "bench_bad_workload.lua:3: boom in the workload",
        ),
        (
            "bench_bad_hook.lua",
            "bench_bad_hook.lua:3: setsockopt: unknown socket option 'SO_NOSUCH'",
        ),
    ] {
        let path = format!("crates/dpm/tests/lua/{script}");
        let out = bench(
            &["--script", &path, "--connections", "2", "--duration", "0.3"],
            &[],
        );
        assert_eq!(out.code(), Some(1), "{script}: {out}");
        assert!(out.stderr.contains(expected), "{script}: {out}");
    }
    let out = bench(&["--script", "crates/dpm/tests/lua/no_such.lua"], &[]);
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stderr.contains("cannot read"), "{out}");
    let out = bench(&["--workload", "oltp_nothing"], &[]);
    assert_eq!(out.code(), Some(2), "{out}");
    // A wrong password: the server's refusal, before any load.
    let out = run_bounded(
        Command::new(env!("CARGO_BIN_EXE_dpm")).args([
            "bench",
            "--workload",
            "oltp_point_select",
            "--port",
            &MariaDb::get().port.to_string(),
            "--user",
            USER,
            "--password",
            "wrong",
            "--duration",
            "0.3",
        ]),
        None,
        Duration::from_secs(30),
    );
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(out.stderr.contains("error 1045"), "{out}");
}

/// client_ed25519 logins (an auth switch from the default plugin).
#[test]
fn bench_logs_in_with_ed25519() {
    let db = MariaDb::get();
    if !db.ed25519 {
        panic!("the test MariaDB has no ed25519 account (auth_ed25519 could not be loaded)");
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dpm"));
    cmd.current_dir(workspace_root()).args([
        "bench",
        "--script",
        "examples/bench/nodelay.lua",
        "--port",
        &db.port.to_string(),
        "--user",
        ED_USER,
        "--password",
        ED_PASSWORD,
        "--database",
        DB,
        "--connections",
        "1",
        "--duration",
        "0.3",
        "--json",
    ]);
    let out = run_bounded(cmd.env("NODELAY", "on"), None, Duration::from_secs(30));
    out.assert_success("ed25519 login");
    assert!(n(&json_report(&out)["transactions"]) > 0, "{out}");
}
