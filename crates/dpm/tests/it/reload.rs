//! Hot reload of the startup file (docs/reload.md): SIGHUP and `POST /v1/reload` run
//! the file again in fresh Lua states; new sessions get the new code, open sessions
//! finish on theirs, an old state goes once its last session ended, a file with an
//! error keeps the old code, and the listeners never stop accepting — under sysbench
//! with a reload every second too.

use crate::support::*;
use serde_json::Value;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A startup file whose Lua filter answers `SELECT code_version` with the file's
/// version and the generation (which run of the file) of the state that answered;
/// everything else goes to the shared MariaDB through readconnroute.
fn startfile(version: &str) -> String {
    format!(
        r#"local VERSION = "{version}"
local versioned = dpm.filter{{
    name = "versioned",
    route_query = function(session, query)
        local sql = query:sql()
        if sql and sql:match("^SELECT code_version") then
            return {{ columns = {{ "version", "generation" }}, rows = {{ {{ VERSION, dpm.stats().generation }} }} }}
        end
    end,
}}
local db = dpm.server{{ name = "db", address = os.getenv("DPM_BACKEND") }}
app = dpm.service{{ name = "app", router = "readconnroute", servers = {{ db }}, filters = {{ versioned }} }}
listener = assert(dpm.listener("127.0.0.1", tonumber(os.getenv("PORT"))))
listener:serve(app)
dpm.admin{{ listen = "127.0.0.1:" .. os.getenv("ADMIN_PORT") }}
"#
    )
}

/// dpm (two workers) on `file` holding [`startfile`]`(version)`: (dpm, SQL port, admin port).
fn reloadable_dpm(file: &Path, version: &str) -> (Dpm, u16, u16) {
    let backend = format!("127.0.0.1:{}", MariaDb::get().port);
    dpm_on(file, &startfile(version), |b| {
        b.env("DPM_BACKEND", backend).verbose(Some(1))
    })
}

/// dpm (two workers) on `file` holding `script`, which reads its SQL port from `PORT`
/// and its admin port from `ADMIN_PORT`, once both listen: (dpm, port, admin port).
fn dpm_on(
    file: &Path,
    script: &str,
    customize: impl FnOnce(DpmBuilder) -> DpmBuilder,
) -> (Dpm, u16, u16) {
    std::fs::write(file, script).unwrap();
    let (port, admin_port) = (free_port(), free_port());
    let builder = Dpm::builder(file)
        .env("PORT", port)
        .env("ADMIN_PORT", admin_port)
        .arg("--threads")
        .arg("2");
    let dpm = customize(builder).spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    dpm.wait_until_listening(admin_port, LISTEN_TIMEOUT);
    (dpm, port, admin_port)
}

fn post_reload(admin_port: u16) -> (u16, Value) {
    admin_request(admin_port, &[], "POST", "/v1/reload", None)
}

/// The generations alive, summed over the workers (`GET /v1/workers`).
fn generations(admin_port: u16) -> u64 {
    let (status, body) = admin_request(admin_port, &[], "GET", "/v1/workers", None);
    assert_eq!(status, 200, "{body}");
    body["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["generations"].as_u64().unwrap())
        .sum()
}

fn wait_for_generations(admin_port: u16, expected: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while generations(admin_port) != expected {
        assert!(
            Instant::now() < deadline,
            "still {} generations alive, expected {expected}",
            generations(admin_port)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The text statements of kind `select` service `app` counted (`/metrics`).
fn selects(admin_port: u16) -> f64 {
    let (_, text) = admin_metrics(admin_port, &[]);
    metrics_sample(&text, "dpm_queries_total{service=\"app\",kind=\"select\"}")
}

/// `SELECT code_version` on an open session: (version, generation).
async fn code_version(conn: &mut mysql_async::Conn) -> (String, u64) {
    use mysql_async::prelude::*;
    conn.query_first("SELECT code_version")
        .await
        .unwrap()
        .expect("a row")
}

/// `SELECT code_version` on a new session.
async fn new_session_version(port: u16) -> (String, u64) {
    let mut conn = connect_with(opts(port)).await;
    let answer = code_version(&mut conn).await;
    conn.disconnect().await.unwrap();
    answer
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_reload_gives_new_sessions_the_new_code_and_open_ones_keep_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("reload.lua");
    let (dpm, port, admin_port) = reloadable_dpm(&file, "v1");
    runtime().block_on(async {
        let mut old = connect_with(opts(port)).await;
        assert_eq!(code_version(&mut old).await, ("v1".to_string(), 1));

        let selects_before = selects(admin_port);
        assert!(selects_before >= 1.0);

        std::fs::write(&file, startfile("v2")).unwrap();
        let (status, body) = post_reload(admin_port);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["generation"], 2, "{body}");
        assert_eq!(new_session_version(port).await, ("v2".to_string(), 2));
        // The service's counters go on across the reload.
        assert!(selects(admin_port) > selects_before);
        // The open session finishes on the code it started with, backend and all.
        assert_eq!(code_version(&mut old).await, ("v1".to_string(), 1));
        {
            use mysql_async::prelude::*;
            let one: Option<i64> = old.query_first("SELECT 1").await.unwrap();
            assert_eq!(one, Some(1));
        }
        // Two workers on generation 2, and the old session's worker on 1 as well (the
        // other worker's generation 1 goes as soon as its state is cleared).
        wait_for_generations(admin_port, 3);
        old.disconnect().await.unwrap();
        // Its last session ended: the old state is gone.
        wait_for_generations(admin_port, 2);

        // A file with an error: the API says where, the log too, the old code runs on.
        std::fs::write(&file, startfile("v3") + "this is not Lua\n").unwrap();
        let (status, body) = post_reload(admin_port);
        assert_eq!(status, 422, "{body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains("reload.lua:16:"), "{error}");
        dpm.wait_for_line(
            "reload failed, the running code stays",
            Duration::from_secs(5),
        );
        assert_eq!(new_session_version(port).await, ("v2".to_string(), 2));
        wait_for_generations(admin_port, 2);

        // SIGHUP reloads too (systemd's ExecReload).
        std::fs::write(&file, startfile("v4")).unwrap();
        let before = dpm.line_count();
        dpm.signal(libc::SIGHUP);
        dpm.wait_for_line_after(before, "reloaded the startup file", Duration::from_secs(10));
        let (version, _) = new_session_version(port).await;
        assert_eq!(version, "v4");
        wait_for_generations(admin_port, 2);
    });
}

#[test]
fn a_reload_stops_the_old_states_tasks_and_starts_the_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tasks.lua");
    let script = |version: &str| {
        format!(
            "core.register_task(function()\n\
             \x20   while true do print('tick {version} generation ' .. dpm.stats().generation) core.msleep(100) end\n\
             end)\n\
             listener = dpm.listener('127.0.0.1', tonumber(os.getenv('PORT')))\n\
             dpm.admin{{ listen = '127.0.0.1:' .. os.getenv('ADMIN_PORT') }}\n"
        )
    };
    let (dpm, _, admin_port) = dpm_on(&file, &script("old"), |b| b);
    dpm.wait_for_line("tick old generation 1", Duration::from_secs(5));
    std::fs::write(&file, script("new")).unwrap();
    let (status, body) = post_reload(admin_port);
    assert_eq!(status, 200, "{body}");
    let reloaded_at = dpm.line_count();
    dpm.wait_for_line_after(reloaded_at, "tick new generation 2", Duration::from_secs(5));
    // Give the old task a few ticks' time to show itself, had it survived.
    std::thread::sleep(Duration::from_millis(500));
    let after: Vec<String> = dpm
        .output()
        .lines()
        .skip(reloaded_at + 1)
        .map(str::to_string)
        .collect();
    assert!(
        !after.iter().any(|l| l.contains("tick old")),
        "the old task still runs: {after:?}"
    );
    // No session held the old states: they are gone.
    wait_for_generations(admin_port, 2);

    // A file that fails after setting up a timer and a task: none of it runs, ever.
    std::fs::write(
        &file,
        "t = dpm.new_timer()\n\
         t:schedule(0, 10, function() print('aborted timer ran') end, nil)\n\
         core.register_task(function() print('aborted task ran') end)\n\
         error('this file fails on line 4')\n",
    )
    .unwrap();
    let (status, body) = post_reload(admin_port);
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("tasks.lua:4: this file fails on line 4"),
        "{body}"
    );
    std::thread::sleep(Duration::from_millis(500));
    let out = dpm.output();
    assert!(
        !out.contains("aborted timer ran") && !out.contains("aborted task ran"),
        "{out}"
    );
    wait_for_generations(admin_port, 2);
    dpm.wait_for_line_after(
        dpm.line_count(),
        "tick new generation 2",
        Duration::from_secs(5),
    );

    // SIGUSR1 reopens and rereads files only: the same generation goes on.
    dpm.signal(libc::SIGUSR1);
    dpm.wait_for_line("SIGUSR1: reopening filter logs", Duration::from_secs(5));
    dpm.wait_for_line_after(
        dpm.line_count(),
        "tick new generation 2",
        Duration::from_secs(5),
    );
    assert!(
        !dpm.output().contains("tick new generation 3"),
        "{}",
        dpm.output()
    );
}

/// sysbench oltp_read_write (4 threads, 60 s) through dpm while the startup file is
/// changed and reloaded every second, and a client connects, asks which code answers
/// and quits in a loop: sysbench sees no error and no reconnect, no connection is
/// refused, and each new session after a reload runs the new file.
#[test]
fn reloading_every_second_for_60s_during_sysbench_oltp_read_write_loses_nothing() {
    let db = MariaDb::get();
    db.direct_exec("DROP DATABASE IF EXISTS sbreload; CREATE DATABASE sbreload;");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("reload.lua");
    let (_dpm, port, admin_port) = reloadable_dpm(&file, "v0");
    let sb = |args: &[&str], timeout| {
        crate::sysbench::sysbench_as(port, (USER, PASSWORD), "sbreload", args, timeout)
    };
    sb(&["oltp_read_write", "prepare"], Duration::from_secs(120))
        .assert_success("sysbench prepare");

    let done = Arc::new(AtomicBool::new(false));
    let (sessions, failures) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let connector = {
        let (done, sessions, failures) = (done.clone(), sessions.clone(), failures.clone());
        std::thread::spawn(move || {
            runtime().block_on(async move {
                while !done.load(Ordering::Relaxed) {
                    let attempt = async {
                        let mut conn = mysql_async::Conn::new(opts(port)).await?;
                        use mysql_async::prelude::*;
                        let _: Option<(String, u64)> =
                            conn.query_first("SELECT code_version").await?;
                        conn.disconnect().await
                    };
                    match tokio::time::timeout(Duration::from_secs(10), attempt).await {
                        Ok(Ok(())) => sessions.fetch_add(1, Ordering::Relaxed),
                        other => {
                            eprintln!("connect/query/quit failed: {other:?}");
                            failures.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            })
        })
    };
    let reloader = {
        let (file, done) = (file.clone(), done.clone());
        std::thread::spawn(move || {
            let rt = runtime();
            let mut reloads = 0;
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(60) {
                reloads += 1;
                let version = format!("v{reloads}");
                std::fs::write(&file, startfile(&version)).unwrap();
                let (status, body) = post_reload(admin_port);
                assert_eq!(status, 200, "reload {reloads}: {body}");
                let (seen, _) = rt.block_on(new_session_version(port));
                assert_eq!(seen, version, "a new session after reload {reloads}");
                std::thread::sleep(Duration::from_secs(1));
            }
            done.store(true, Ordering::Relaxed);
            reloads
        })
    };
    let run = sb(
        &[
            "--threads=4",
            "--time=62",
            "--index_updates=0",
            "--non_index_updates=0",
            "oltp_read_write",
            "run",
        ],
        Duration::from_secs(150),
    );
    let reloads = reloader.join().expect("the reloads went as expected");
    done.store(true, Ordering::Relaxed);
    connector.join().unwrap();
    run.assert_success("sysbench run");
    let transactions = crate::sysbench::stat(&run.stdout, "transactions");
    let errors = crate::sysbench::stat(&run.stdout, "ignored errors");
    let reconnects = crate::sysbench::stat(&run.stdout, "reconnects");
    let (sessions, failures) = (
        sessions.load(Ordering::Relaxed),
        failures.load(Ordering::Relaxed),
    );
    eprintln!(
        "{reloads} reloads; sysbench: {transactions} transactions, {errors} errors, {reconnects} reconnects; \
         {sessions} short sessions, {failures} failed"
    );
    assert!(reloads >= 50, "{reloads} reloads");
    assert!(transactions > 0, "{run}");
    assert_eq!((errors, reconnects), (0, 0), "{run}");
    assert_eq!(failures, 0, "short sessions failed ({sessions} went well)");
    assert!(sessions > 100, "only {sessions} short sessions");
}

/// A raw TCP listener (`{ mode = "tcp" }`) across a reload: the new state's listener takes
/// the socket over, so every connection after the reload is the new code's, and a
/// connection the old code is serving when the reload comes finishes on it.
#[test]
fn a_raw_tcp_listener_is_taken_over_by_the_new_state() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("raw.lua");
    let script = |version: &str| {
        format!(
            "raw = assert(dpm.listener('127.0.0.1', tonumber(os.getenv('PORT')), {{ mode = 'tcp' }}))\n\
             raw:register_action(function(txn)\n\
             \x20   local line = txn:req_channel():get_line()\n\
             \x20   txn:res_channel():send('{version} ' .. (line or ''))\n\
             end)\n\
             dpm.admin{{ listen = '127.0.0.1:' .. os.getenv('ADMIN_PORT') }}\n"
        )
    };
    let (_dpm, port, admin_port) = dpm_on(&file, &script("old"), |b| b);
    let ask = |stream: &mut std::net::TcpStream, line: &str| {
        stream.write_all(line.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    };
    let connect = || {
        let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    };
    assert_eq!(ask(&mut connect(), "hello\n"), "old hello\n");
    // Accepted by the old code, its request not sent yet when the reload comes.
    let mut served_by_old = connect();
    std::thread::sleep(Duration::from_millis(200));
    std::fs::write(&file, script("new")).unwrap();
    let (status, body) = post_reload(admin_port);
    assert_eq!(status, 200, "{body}");
    for i in 0..20 {
        assert_eq!(ask(&mut connect(), &format!("{i}\n")), format!("new {i}\n"));
    }
    assert_eq!(ask(&mut served_by_old, "late\n"), "old late\n");
    wait_for_generations(admin_port, 2);
}
