//! Connection lifecycle: client goes away, backend goes away, many clients.

use crate::support::*;
use mysql_async::prelude::*;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

const GONE: Duration = Duration::from_secs(10);

async fn backend_id(c: &mut mysql_async::Conn) -> u64 {
    c.query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn client_quit_closes_backend_connection() {
    let db = MariaDb::get();
    let t = passthrough();
    let mut c = t.conn().await;
    let id = backend_id(&mut c).await;
    assert!(
        db.has_connection(id),
        "backend connection {id} not in the processlist"
    );
    // COM_QUIT, then the client closes its socket.
    c.disconnect().await.unwrap();
    db.wait_connection_gone(id, GONE);
}

#[test]
fn client_vanishing_without_quit_closes_backend_connection() {
    let db = MariaDb::get();
    let t = passthrough();
    // The script prints its CONNECTION_ID() and exits without COM_QUIT.
    let out = t.python("abrupt_exit.py", &[]);
    out.assert_success("abrupt_exit.py");
    let id: u64 = out
        .stdout
        .trim()
        .strip_prefix("connection_id ")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("unexpected output: {out}"));
    db.wait_connection_gone(id, GONE);
}

#[tokio::test]
async fn backend_killed_client_gets_lost_connection_mysql_async() {
    let db = MariaDb::get();
    let t = passthrough();
    let mut c = t.conn().await;
    let id = backend_id(&mut c).await;
    db.direct_exec(&format!("KILL {id}"));
    db.wait_connection_gone(id, GONE);
    let r = bounded(
        "query on a connection whose backend was killed",
        Duration::from_secs(15),
        c.query_drop("SELECT 1"),
    )
    .await;
    match r {
        Err(e) if e.is_fatal() => {}
        Err(e) => panic!("expected a lost-connection error, got {e:?}"),
        Ok(()) => panic!("query succeeded on a killed connection"),
    }
    drop(c);
    // Others are unaffected.
    let mut c = t.conn().await;
    let v: Option<i64> = c.query_first("SELECT 5").await.unwrap();
    assert_eq!(v, Some(5));
    c.disconnect().await.unwrap();
}

#[test]
fn backend_killed_client_gets_lost_connection_pymysql() {
    let db = MariaDb::get();
    let t = passthrough();
    // The script kills its own backend connection over a direct connection
    // to MariaDB, waits until it is gone, then queries through the target.
    let out = t.python("kill_backend.py", &["--kill-port", &db.port.to_string()]);
    out.assert_success("kill_backend.py");
    assert!(
        out.stdout.contains("error 2013") || out.stdout.contains("error 2006"),
        "expected 2013/2006: {out}"
    );
    let direct = Target::direct().python("kill_backend.py", &["--kill-port", &db.port.to_string()]);
    assert_eq!(out.stdout, direct.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_sessions_are_isolated() {
    const N: u64 = 50;
    let t = passthrough();
    let port = t.port;
    let barrier = Arc::new(tokio::sync::Barrier::new(N as usize));
    let mut set = tokio::task::JoinSet::new();
    for i in 0..N {
        let barrier = barrier.clone();
        set.spawn(async move {
            let mut c = connect(port).await;
            c.query_drop(format!("SET @mine = {i}")).await.unwrap();
            // All N sessions are open at once from here on.
            barrier.wait().await;
            let stmt = c.prep("SELECT CONNECTION_ID(), @mine, ?").await.unwrap();
            let mut ids = HashSet::new();
            for q in 0..20u64 {
                let row: Option<(u64, u64, u64)> = if q % 2 == 0 {
                    c.query_first(format!("SELECT CONNECTION_ID(), @mine, {q}"))
                        .await
                        .unwrap()
                } else {
                    c.exec_first(&stmt, (q,)).await.unwrap()
                };
                let (id, mine, echo) = row.unwrap();
                assert_eq!(
                    (mine, echo),
                    (i, q),
                    "session {i} saw another session's state"
                );
                ids.insert(id);
            }
            assert_eq!(
                ids.len(),
                1,
                "session {i} changed backend connection: {ids:?}"
            );
            c.disconnect().await.unwrap();
            ids.into_iter().next().unwrap()
        });
    }
    let ids: HashSet<u64> = bounded(
        "50 sessions x 20 queries",
        Duration::from_secs(120),
        async {
            let mut ids = HashSet::new();
            while let Some(r) = set.join_next().await {
                ids.insert(r.expect("session task"));
            }
            ids
        },
    )
    .await;
    assert_eq!(ids.len(), N as usize, "sessions shared backend connections");
}

/// A startfile's `print` reaches dpm's stdout (the harness API for Lua
/// tests: start a startfile with env vars, wait for a line).
#[test]
fn passthrough_startfile_prints_its_listening_line() {
    if direct_mode() {
        eprintln!("SKIPPED in DPM_TEST_DIRECT mode: needs a dpm process");
        return;
    }
    let db = MariaDb::get();
    let port = free_port();
    let dpm = Dpm::builder("examples/passthrough.lua")
        .env("DPM_LISTEN_PORT", port)
        .env("DPM_BACKEND_PORT", db.port)
        .spawn();
    let line = dpm.wait_for_line("passthrough: listening on", Duration::from_secs(30));
    assert_eq!(
        line,
        format!(
            "passthrough: listening on 127.0.0.1:{port}, backend 127.0.0.1:{}",
            db.port
        )
    );
    let t = Target::proxy(dpm, port);
    let out = t.cli().run("SELECT 'through dpm' AS via");
    out.assert_success("query through the startfile's listener");
    assert_eq!(out.stdout, "via\nthrough dpm\n");
}

/// Resident memory of a process in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A client that reads a 400 MiB result slowly: dpm applies backpressure to the backend
/// instead of buffering the result (its RSS stays far below the result's size).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_reader_of_a_large_result_keeps_dpm_memory_bounded() {
    let t = passthrough();
    if t.is_direct() {
        return;
    }
    let pid = t.dpm().pid();
    let mut c = t.conn().await;
    let mut result = c
        .query_iter("SELECT seq, REPEAT('y', 1048576) FROM seq_1_to_400")
        .await
        .unwrap();
    let (mut rows, mut peak) = (0u64, 0u64);
    bounded("slow read of 400 MiB", Duration::from_secs(120), async {
        while let Some(row) = result.next().await.unwrap() {
            let (_, data): (u64, Vec<u8>) = mysql_async::from_row(row);
            assert_eq!(data.len(), 1 << 20);
            rows += 1;
            if rows % 10 == 0 {
                peak = peak.max(rss_kib(pid));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    })
    .await;
    drop(result);
    assert_eq!(rows, 400);
    assert!(peak > 0, "could not read dpm's RSS");
    assert!(
        peak < 64 * 1024,
        "dpm's RSS reached {} MiB while a client read 400 MiB slowly",
        peak / 1024
    );
    let v: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(v, Some(1));
}
