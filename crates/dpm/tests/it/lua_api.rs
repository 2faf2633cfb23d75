//! The Lua runtime around callbacks: the fast path that never enters Lua, coroutines
//! that sleep without blocking the worker, timers, listeners opened and closed at run
//! time, and connections closed by the garbage collector.

use crate::support::*;
use mysql_async::prelude::Queryable;
use std::time::{Duration, Instant};

const LUA_DIR: &str = "crates/dpm/tests/lua";

fn start(file: &str, extra_env: &[(&str, u16)]) -> (Dpm, u16) {
    let (mut builder, port) = Dpm::in_front_of_mariadb(format!("{LUA_DIR}/{file}"));
    for (k, v) in extra_env {
        builder = builder.env(*k, v);
    }
    let dpm = builder.spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    (dpm, port)
}

/// Runs `n` queries through `port` on one connection.
async fn run_queries(port: u16, n: usize) {
    let mut conn = mysql_async::Conn::new(opts(port)).await.unwrap();
    for i in 0..n {
        let v: Option<i64> = conn.query_first(format!("SELECT {i}")).await.unwrap();
        assert_eq!(v, Some(i as i64));
    }
    conn.disconnect().await.unwrap();
}

/// Asks the stats port for dpm.stats() and returns (lua_calls, packets_decoded).
/// (Lua calls, packets decoded, pipeline runs) of the worker that serves `stats_port`.
fn stats(dpm: &Dpm, stats_port: u16) -> (u64, u64, u64) {
    let before = dpm.line_count();
    // The stats listener opens after the proxy's listener: retry until it is up.
    wait_until("the stats listener", LISTEN_TIMEOUT, || {
        std::net::TcpStream::connect(("127.0.0.1", stats_port)).ok()
    });
    let line = dpm.wait_for_line_after(before, "stats lua_calls=", Duration::from_secs(5));
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    (nums[0], nums[1], nums[2])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_callback_for_the_event_lua_is_not_entered_and_nothing_is_decoded() {
    let stats_port = free_port();
    let (dpm, port) = start("fast_path.lua", &[("DPM_STATS_PORT", stats_port)]);
    let (calls_before, decoded_before, _) = stats(&dpm, stats_port);
    run_queries(port, 200).await;
    let (calls_after, decoded_after, _) = stats(&dpm, stats_port);
    // Only connection lifecycle enters Lua: per client one MYC_CONNECT and the two
    // MY_CLOSING callbacks of the client and its backend (the test's client, and the
    // harness's listening probe whose closes may land after the first reading), plus
    // the second stats connection. Nothing per packet: 200 queries would be 200+ calls.
    assert!(
        calls_after - calls_before <= 7,
        "{calls_before} -> {calls_after} Lua calls for 200 queries: {}",
        dpm.output()
    );
    assert_eq!(
        decoded_after, decoded_before,
        "packets were decoded with no callback on their events"
    );
    assert!(!dpm.output().contains("never"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_on_the_command_event_is_entered_once_per_query() {
    // The same counters, with MYC_SENT_CMD registered: proves they count.
    let stats_port = free_port();
    let (dpm, port) = start(
        "fast_path.lua",
        &[("DPM_STATS_PORT", stats_port), ("DPM_HOOK_CMD", 1)],
    );
    let (calls_before, decoded_before, _) = stats(&dpm, stats_port);
    run_queries(port, 200).await;
    let (calls_after, decoded_after, _) = stats(&dpm, stats_port);
    assert!(
        calls_after - calls_before >= 200,
        "{calls_before} -> {calls_after}"
    );
    assert!(
        decoded_after - decoded_before >= 200,
        "{decoded_before} -> {decoded_after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sleeping_callback_does_not_hold_up_other_clients() {
    let (dpm, port) = start("sleepy.lua", &[]);
    let mut slow = mysql_async::Conn::new(opts(port)).await.unwrap();
    let mut fast = mysql_async::Conn::new(opts(port)).await.unwrap();
    let started = Instant::now();
    let slow_query = tokio::spawn(async move {
        let v: Option<String> = slow.query_first("SELECT 'slow'").await.unwrap();
        (v, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    let fast_start = Instant::now();
    for i in 0..50i64 {
        let v: Option<i64> = fast.query_first(format!("SELECT {i}")).await.unwrap();
        assert_eq!(v, Some(i));
    }
    let fast_elapsed = fast_start.elapsed();
    assert!(
        !slow_query.is_finished(),
        "the slow query finished before 50 fast ones: the worker was blocked?"
    );
    let (v, slow_elapsed) = slow_query.await.unwrap();
    assert_eq!(v.as_deref(), Some("slow"));
    assert!(
        slow_elapsed >= Duration::from_millis(300),
        "slow query took {slow_elapsed:?}"
    );
    assert!(
        fast_elapsed < Duration::from_millis(250),
        "50 queries took {fast_elapsed:?} while another callback slept"
    );
    dpm.wait_for_line("slow query released", Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_tick_cancel_reschedule_report_errors_and_flush_what_they_wire() {
    let (dpm, port) = start("timers.lua", &[]);
    dpm.wait_for_line("tick 3", Duration::from_secs(5));
    dpm.wait_for_line("rescheduled got hello", Duration::from_secs(5));
    dpm.wait_for_line(
        "ERROR: cancelling timer: crates/dpm/tests/lua/timers.lua:19: timer went wrong",
        Duration::from_secs(5),
    );
    // A packet wired from a timer callback goes out at once.
    let mut conn = mysql_async::Conn::new(opts(port)).await.unwrap();
    let started = Instant::now();
    let v: Option<String> = bounded(
        "query answered by a timer",
        Duration::from_secs(5),
        conn.query_first("SELECT 'later'"),
    )
    .await
    .unwrap();
    assert_eq!(v.as_deref(), Some("later"));
    assert!(started.elapsed() >= Duration::from_millis(100));
    // The failing timer and the cancelled one stopped.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let out = dpm.output();
    assert_eq!(out.matches("timer went wrong").count(), 1, "{out}");
    assert!(!out.contains("tick 4"), "{out}");
    assert_eq!(out.matches("rescheduled got hello").count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_open_and_close_from_callbacks_and_unreferenced_clients_are_collected() {
    let extra_port = free_port();
    let gc_port = free_port();
    let (dpm, port) = start(
        "runtime.lua",
        &[("DPM_EXTRA_PORT", extra_port), ("DPM_GC_PORT", gc_port)],
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", extra_port)).is_err());
    let mut conn = mysql_async::Conn::new(opts(port)).await.unwrap();
    let _: Option<String> = conn.query_first("SELECT 'open'").await.unwrap();
    dpm.wait_for_line("extra listener opened", Duration::from_secs(5));
    run_queries(extra_port, 3).await;
    let _: Option<String> = conn.query_first("SELECT 'close'").await.unwrap();
    dpm.wait_for_line("extra listener closed: 1", Duration::from_secs(5));
    dpm.wait_for_line("closing again: nil", Duration::from_secs(5));
    wait_until(
        "the extra port refuses connections",
        Duration::from_secs(5),
        || {
            std::net::TcpStream::connect(("127.0.0.1", extra_port))
                .is_err()
                .then_some(())
        },
    );
    // A client whose object the script did not keep is closed by the garbage collector.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", gc_port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = Vec::new();
    use std::io::Read;
    assert_eq!(
        s.read_to_end(&mut buf).map(|_| ()).map_err(|e| e.kind()),
        Ok(()),
        "the socket must be closed"
    );
    dpm.wait_for_line("collected client", Duration::from_secs(5));
}

/// What `SELECT 'shared'` returns through `shared.lua`: (hits counted by every worker,
/// this client's worker, workers marked in the shared map, whether the shared ACL holds
/// both workers, workers in the process).
async fn shared_view(conn: &mut mysql_async::Conn) -> (i64, i64, i64, String, i64) {
    conn.query_first("SELECT 'shared'").await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_share_counters_maps_and_acls_kept_in_rust() {
    let (builder, port) = Dpm::in_front_of_mariadb(format!("{LUA_DIR}/shared.lua"));
    let dpm = builder.env("DPM_THREADS", "2").spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    // SO_REUSEPORT spreads clients over the two workers by a hash of their address:
    // connect until each worker has clients.
    let mut clients = Vec::new();
    let mut hits = 0;
    for _ in 0..64 {
        let mut conn = mysql_async::Conn::new(opts(port)).await.unwrap();
        let _: Option<String> = conn.query_first("SELECT 'hit'").await.unwrap();
        hits += 1;
        let worker = shared_view(&mut conn).await.1;
        clients.push((worker, conn));
        let on = |w| clients.iter().filter(|(cw, _)| *cw == w).count();
        if on(0) >= 2 && on(1) >= 2 {
            break;
        }
    }
    let workers: std::collections::BTreeSet<i64> = clients.iter().map(|(w, _)| *w).collect();
    assert_eq!(
        workers.len(),
        2,
        "{} clients all landed on one worker",
        clients.len()
    );
    // Every client, whichever worker serves it, sees every worker's writes.
    for (worker, conn) in &mut clients {
        let view = shared_view(conn).await;
        assert_eq!(view, (hits, *worker, 2, "true".to_string(), 2));
    }
    for (_, conn) in clients {
        conn.disconnect().await.unwrap();
    }
}

/// Lua calls made for 200 queries through a service whose chain is `filter` (see
/// tests/lua/service_fast_path.lua): the calls of a connection that runs 200 queries
/// less those of one that runs none (the driver's own set-up queries, closes), the
/// packets decoded meanwhile, and the pipeline runs counted like the calls.
async fn service_lua_calls(filter: &str) -> (u64, u64, u64) {
    let stats_port = free_port();
    let (builder, port) = Dpm::in_front_of_mariadb(format!("{LUA_DIR}/service_fast_path.lua"));
    let dpm = builder
        .env("DPM_STATS_PORT", stats_port)
        .env("DPM_FILTER", filter)
        .spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    let (c0, d0, r0) = stats(&dpm, stats_port);
    run_queries(port, 0).await;
    let (c1, d1, r1) = stats(&dpm, stats_port);
    run_queries(port, 200).await;
    let (c2, d2, r2) = stats(&dpm, stats_port);
    (
        (c2 - c1) - (c1 - c0),
        (d2 - d1) + (d1 - d0),
        (r2 - r1) - (r1 - r0),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_enters_lua_only_where_its_chain_asked() {
    // No filter: routed once, then forwarded like passthrough: no Lua per query.
    let (calls, decoded, _) = service_lua_calls("none").await;
    assert_eq!(
        calls, 0,
        "Lua calls for 200 queries through a service with no filter"
    );
    assert_eq!(decoded, 0);
    // A filter watching replies: one call per reply, none per request, and nothing is
    // decoded into Lua packet objects.
    let (calls, decoded, _) = service_lua_calls("replies").await;
    assert_eq!(
        calls, 200,
        "Lua calls for 200 queries with a reply-only filter"
    );
    assert_eq!(decoded, 0);
    // A filter on requests only: one call per request.
    let (calls, decoded, _) = service_lua_calls("requests").await;
    assert_eq!(
        calls, 200,
        "Lua calls for 200 queries with a request-only filter"
    );
    assert_eq!(decoded, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_in_filters_whose_match_never_matches_never_stop_the_forwarding() {
    // qla, regex and tee with a `match` no statement matches: neither the requests nor
    // their replies are stopped for; forwarded as without filters.
    let (calls, decoded, runs) = service_lua_calls("nomatch").await;
    assert_eq!((calls, decoded, runs), (0, 0, 0));
    // The same filters matching everything: each request and each reply runs the chain.
    let (calls, _, runs) = service_lua_calls("match").await;
    assert_eq!(calls, 0, "built-in filters never enter Lua");
    assert_eq!(runs, 400, "200 requests and their 200 replies");
}
