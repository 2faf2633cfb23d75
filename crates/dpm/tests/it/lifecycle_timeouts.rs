//! Session lifecycle limits: the handshake (connect) timeout, the idle timeout, and the
//! graceful drain on SIGTERM.

use crate::support::*;
use mysql_async::prelude::*;
use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// Open sockets of a process (its `/proc/<pid>/fd` entries that are sockets).
fn socket_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|target| target.to_string_lossy().starts_with("socket:"))
                .count()
        })
        .unwrap_or(0)
}

/// Connections MariaDB holds that have not logged in.
fn unauthenticated_on_mariadb(db: &MariaDb) -> u64 {
    db.direct_exec(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'unauthenticated user'",
    )
    .trim()
    .parse()
    .unwrap_or(u64::MAX)
}

/// Lets this process open `n` more descriptors (the soft limit up to the hard one).
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit on a struct we own.
    unsafe {
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < l.rlim_max {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

/// A startfile that runs `example` with `set_timeouts(timeouts)` applied to each
/// listener it opens (the examples keep their listener local).
fn with_listener_timeouts(example: &str, timeouts: &str) -> tempfile::TempPath {
    let mut f = tempfile::Builder::new()
        .prefix("timeouts")
        .suffix(".lua")
        .tempfile()
        .unwrap();
    write!(
        f,
        r#"local listen = dpm.listener
dpm.listener = function(...)
    local l, err = listen(...)
    if l then l:set_timeouts{timeouts} end
    return l, err
end
dofile("{}")
"#,
        workspace_root().join(example).display()
    )
    .unwrap();
    f.into_temp_path()
}

/// Connects `n` clients that never send anything; returns, for each, how long after
/// its connect dpm closed it (EOF or reset). Panics if one is still open after `limit`.
async fn silent_clients_closed_after(port: u16, n: usize, limit: Duration) -> Vec<Duration> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect a silent client");
        let connected = Instant::now();
        set.spawn(async move {
            let mut stream = stream;
            let mut buf = [0u8; 1024];
            let read_all = async {
                // The greeting may come; the client answers nothing and reads until dpm
                // closes the connection.
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
            };
            tokio::time::timeout(limit, read_all)
                .await
                .map(|()| connected.elapsed())
        });
    }
    let mut closed = Vec::new();
    while let Some(r) = set.join_next().await {
        match r.unwrap() {
            Ok(after) => closed.push(after),
            Err(_) => panic!("a silent client was still open {limit:?} after connecting"),
        }
    }
    closed
}

/// 1,000 clients that connect and say nothing are all closed by dpm about 2 s after they
/// connected, the backends opened for them are released (dpm's sockets and MariaDB's
/// unauthenticated connections go back to where they were), and a client running
/// queries — and logging in anew — meanwhile is served throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_silent_clients_are_closed_after_the_connect_timeout() {
    if direct_mode() {
        eprintln!("SKIPPED in DPM_TEST_DIRECT mode: needs a dpm process");
        return;
    }
    const SILENT: usize = 1000;
    const TIMEOUT: Duration = Duration::from_secs(2);
    raise_fd_limit();
    let db = MariaDb::get();
    let t = passthrough_with(|b| b.arg("--connect-timeout").arg("2"));
    let pid = t.dpm().pid();
    let port = t.port;
    let mut busy = t.conn().await;
    let baseline = socket_count(pid);

    // A real client querying (and now and then logging in anew) all along.
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let worker = {
        let (stop, served) = (stop.clone(), served.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let v: Option<u64> = busy.query_first("SELECT 41 + 1").await.unwrap();
                assert_eq!(v, Some(42));
                if served.fetch_add(1, Ordering::Relaxed) % 20 == 19 {
                    let mut fresh = connect(port).await;
                    let v: Option<u64> = fresh.query_first("SELECT 7").await.unwrap();
                    assert_eq!(v, Some(7));
                    fresh.disconnect().await.unwrap();
                }
            }
            busy.disconnect().await.unwrap();
        })
    };

    let started = Instant::now();
    let closed = silent_clients_closed_after(port, SILENT, TIMEOUT * 4).await;
    let all_closed = started.elapsed();
    let served_meanwhile = served.load(Ordering::Relaxed);
    assert_eq!(closed.len(), SILENT);
    let earliest = closed.iter().min().unwrap();
    let latest = closed.iter().max().unwrap();
    eprintln!(
        "{SILENT} silent clients: closed {earliest:?}..{latest:?} after their connect, all within {all_closed:?}; {served_meanwhile} queries served meanwhile"
    );
    assert!(
        *earliest >= TIMEOUT - Duration::from_millis(50),
        "a silent client was closed after {earliest:?}, before the connect timeout"
    );
    assert!(
        *latest < TIMEOUT + Duration::from_secs(3),
        "a silent client was closed only after {latest:?}"
    );
    assert!(
        served_meanwhile >= 5,
        "only {served_meanwhile} queries were served while the silent clients waited"
    );
    stop.store(true, Ordering::Relaxed);
    bounded("the busy client", Duration::from_secs(30), worker)
        .await
        .unwrap();

    // Their backends are gone too: dpm is back to the listener and its spare sockets,
    // MariaDB holds no half-open logins.
    wait_until(
        "dpm to release the silent clients' backends",
        Duration::from_secs(10),
        || (socket_count(pid) <= baseline.saturating_sub(2)).then_some(()),
    );
    wait_until(
        "MariaDB to drop the unauthenticated connections",
        Duration::from_secs(10),
        || (unauthenticated_on_mariadb(db) == 0).then_some(()),
    );
    let out = t.dpm().output();
    let lines = out
        .lines()
        .filter(|l| l.contains("did not finish its handshake within 2s; closed"))
        .count();
    assert_eq!(lines, SILENT, "one info line per closed client");
}

/// A listener that answers from Lua (no backend): silent clients are closed after the
/// connect timeout the startfile sets on the listener (`set_timeouts`, overriding the
/// command line's), while a real client logs in and queries.
#[test]
fn silent_clients_of_a_lua_answered_listener_are_closed() {
    if direct_mode() {
        eprintln!("SKIPPED in DPM_TEST_DIRECT mode: needs a dpm process");
        return;
    }
    let startfile = with_listener_timeouts("examples/answer-from-lua.lua", "{ connect = 0.5 }");
    let port = free_port();
    let dpm = Dpm::builder(&startfile)
        .env("DPM_LISTEN_PORT", port)
        .arg("--connect-timeout")
        .arg("60")
        .spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let closed = runtime.block_on(silent_clients_closed_after(
        port,
        100,
        Duration::from_secs(10),
    ));
    let latest = closed.iter().max().unwrap();
    let earliest = closed.iter().min().unwrap();
    assert!(
        *earliest >= Duration::from_millis(450) && *latest < Duration::from_secs(4),
        "silent clients closed {earliest:?}..{latest:?} after connecting (timeout 0.5 s)"
    );
    let out = Cli::new(port)
        .user("dpm")
        .password(Some("dpm"))
        .run("HELLO");
    out.assert_success("HELLO through the Lua-answered listener");
    assert!(out.stdout.contains("konnichiwa"), "{out}");
    dpm.wait_for_line(
        "did not finish its handshake within 0.5s; closed",
        Duration::from_secs(5),
    );
}

/// `set_timeouts` mistakes stop the startfile with `file:line: message`.
#[test]
fn set_timeouts_errors_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "local l = assert(dpm.listener('127.0.0.1', 0))\nl:set_timeouts{ idel = 5 }\n",
            "conf.lua:2: set_timeouts: unknown key 'idel' (expected connect or idle)",
        ),
        (
            "local l = assert(dpm.listener('127.0.0.1', 0))\nl:set_timeouts{ connect = 'soon' }\n",
            "conf.lua:2: set_timeouts: 'connect' must be a number of seconds, got string",
        ),
        (
            "local l = assert(dpm.listener('127.0.0.1', 0))\nl:set_timeouts(3)\n",
            "conf.lua:2: set_timeouts takes one table: { connect = seconds, idle = seconds }",
        ),
    ];
    for (code, want) in cases {
        std::fs::write(dir.path().join("conf.lua"), code).unwrap();
        let dpm = Dpm::builder("conf.lua").current_dir(dir.path()).spawn();
        let status = dpm.wait_exit(Duration::from_secs(30));
        assert_eq!(status.code(), Some(1), "{}", dpm.output());
        let stderr = dpm.stderr_after_exit();
        assert!(stderr.contains(&format!("dpm: {want}")), "{stderr}");
    }
}

/// With an idle timeout (set on the listener from Lua), a logged-in client that sends
/// nothing is disconnected — its next query fails — while a client that keeps
/// querying, or runs a statement longer than the idle timeout, is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_clients_are_disconnected_active_ones_are_not() {
    if direct_mode() {
        eprintln!("SKIPPED in DPM_TEST_DIRECT mode: needs a dpm process");
        return;
    }
    MariaDb::get();
    let startfile = with_listener_timeouts("examples/passthrough.lua", "{ idle = 1 }");
    let t = passthrough_with(|b| b.startfile(&startfile));
    let mut idle = t.conn().await;
    let mut active = t.conn().await;
    let v: Option<u64> = idle.query_first("SELECT 1").await.unwrap();
    assert_eq!(v, Some(1));
    // Busy longer than the idle timeout: a running statement is not idleness.
    let v: Option<u64> = active.query_first("SELECT SLEEP(1.5)").await.unwrap();
    assert_eq!(v, Some(0));
    // Keep `active` busy until the idle one has been closed.
    let dpm = t.dpm();
    let deadline = Instant::now() + Duration::from_secs(15);
    while dpm
        .try_wait_for_line("(idle timeout); closed", Duration::ZERO)
        .is_none()
    {
        assert!(Instant::now() < deadline, "no idle timeout within 15 s");
        let v: Option<u64> = active.query_first("SELECT 2").await.unwrap();
        assert_eq!(v, Some(2));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let closed = dpm.output();
    assert_eq!(
        closed.matches("(idle timeout); closed").count(),
        1,
        "only the idle client is closed:\n{closed}"
    );
    let err = bounded(
        "a query on the idle-closed connection",
        Duration::from_secs(10),
        idle.query_drop("SELECT 3"),
    )
    .await
    .expect_err("the idle client's query succeeded");
    eprintln!("idle client's next query: {err}");
    match &err {
        mysql_async::Error::Server(e) => assert_eq!(e.code, 4031, "{err}"),
        e => assert!(e.is_fatal(), "expected a connection error, got {err:?}"),
    }
    let v: Option<u64> = active.query_first("SELECT 4").await.unwrap();
    assert_eq!(v, Some(4));
    active.disconnect().await.unwrap();
}

/// Waits until MariaDB runs a statement whose text starts with `prefix`.
fn wait_running(db: &MariaDb, prefix: &str) {
    let sql =
        format!("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '{prefix}%'");
    wait_until(
        &format!("MariaDB to run {prefix}"),
        Duration::from_secs(20),
        || (db.direct_exec(&sql).trim() != "0").then_some(()),
    );
}

/// SIGTERM while clients are mid-statement: each running statement completes (exact row
/// counts: 2,000,000 rows to the `mariadb` CLI, 200,000 streamed to mysql_async, a
/// `SLEEP(2)`), the idle client is closed (told "Server shutdown in progress"), new
/// connects are refused, and dpm exits 0 well within the drain timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_running_statements_finish() {
    if direct_mode() {
        eprintln!("SKIPPED in DPM_TEST_DIRECT mode: needs a dpm process");
        return;
    }
    const DRAIN: Duration = Duration::from_secs(40);
    let db = MariaDb::get();
    let t = passthrough_with(|b| b.arg("--drain-timeout").arg("40"));
    let port = t.port;
    let dpm = t.dpm();
    let mut idle = t.conn().await;
    let v: Option<u64> = idle.query_first("SELECT 1").await.unwrap();
    assert_eq!(v, Some(1));

    // 1. The mariadb CLI reading 2,000,000 rows (--quick: row by row); the last one
    //    comes 2 s late, so the result is still streaming when the signal arrives.
    let (first_rows, first_rows_seen) = std::sync::mpsc::channel();
    let cli = {
        let mut cmd = Cli::new(port)
            .db(DB)
            .arg("--quick")
            .arg("--skip-column-names")
            .timeout(Duration::from_secs(120))
            .command();
        cmd.arg("-e")
            .arg("SELECT seq FROM seq_1_to_2000000 WHERE seq < 2000000 OR SLEEP(2) = 0");
        std::thread::spawn(move || {
            let mut lines = 0u64;
            let mut signalled = false;
            let (status, stderr) =
                run_bounded_streaming(&mut cmd, None, Duration::from_secs(120), |chunk| {
                    lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
                    if !signalled {
                        signalled = true;
                        let _ = first_rows.send(());
                    }
                });
            (status, stderr, lines)
        })
    };
    // 2. mysql_async streaming 200,000 rows, reading at its own pace.
    let mut streaming = t.conn().await;
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let streamer = tokio::spawn(async move {
        let mut result = streaming
            .query_iter("SELECT seq FROM seq_1_to_200000")
            .await
            .unwrap();
        let mut started = Some(started_tx);
        let mut rows = 0u64;
        let mut sum = 0u64;
        while let Some(row) = result.next().await.unwrap() {
            let seq: u64 = mysql_async::from_row(row);
            rows += 1;
            sum += seq;
            if let Some(tx) = started.take() {
                let _ = tx.send(());
            }
            if rows.is_multiple_of(20_000) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        drop(result);
        (rows, sum)
    });
    // 3. A statement that runs 2 s.
    let mut sleeper = t.conn().await;
    let sleeping = tokio::spawn(async move {
        sleeper
            .query_first::<u64, _>("SELECT SLEEP(2) /* drain test */")
            .await
    });

    // Everything is mid-statement: signal.
    wait_running(db, "SELECT SLEEP(2) /* drain test */");
    bounded(
        "the streaming client's first row",
        Duration::from_secs(30),
        started_rx,
    )
    .await
    .unwrap();
    first_rows_seen
        .recv_timeout(Duration::from_secs(30))
        .expect("the CLI's first rows");
    let skip = dpm.line_count();
    let signalled = Instant::now();
    dpm.signal(libc::SIGTERM);
    let draining =
        dpm.wait_for_line_after(skip, "sessions (drain timeout", Duration::from_secs(10));
    assert!(
        draining.contains("draining 4 sessions"),
        "expected the idle client and the three busy ones: {draining}"
    );
    // New connects are refused from now on.
    wait_until(
        "dpm to refuse new connections",
        Duration::from_secs(5),
        || {
            TcpStream::connect(("127.0.0.1", port))
                .is_err()
                .then_some(())
        },
    );
    // The idle client was closed.
    let err = bounded(
        "a query on the idle client after SIGTERM",
        Duration::from_secs(10),
        idle.query_drop("SELECT 2"),
    )
    .await
    .expect_err("the idle client was still served after SIGTERM");
    match &err {
        mysql_async::Error::Server(e) => {
            assert_eq!(
                (e.code, e.message.as_str()),
                (1053, "Server shutdown in progress")
            )
        }
        e => assert!(e.is_fatal(), "expected a connection error, got {err:?}"),
    }

    // Every running statement completes.
    let slept = bounded("SLEEP(2)", DRAIN, sleeping).await.unwrap();
    assert_eq!(slept.unwrap(), Some(0));
    let (rows, sum) = bounded("the streamed 200,000 rows", DRAIN, streamer)
        .await
        .unwrap();
    assert_eq!((rows, sum), (200_000, 200_000 * 200_001 / 2));
    let (status, stderr, lines) = cli.join().unwrap();
    assert!(status.success(), "mariadb CLI: {status}: {stderr}");
    assert_eq!(lines, 2_000_000, "the CLI got a partial result: {stderr}");

    let status = dpm.wait_exit(DRAIN);
    let took = signalled.elapsed();
    assert_eq!(status.code(), Some(0), "{}", dpm.output());
    assert!(took < DRAIN, "dpm took {took:?} to drain");
    let out = dpm.stderr_after_exit();
    assert!(out.contains("drained"), "{out}");
    assert!(!out.contains("at drain timeout"), "{out}");
    eprintln!("drained 4 sessions in {took:?}");
}

/// With `--drain-timeout 1`, a statement that would run 5 s is answered ERR 1053 at the
/// drain timeout (not cut in the middle of a result), and dpm exits promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drain_timeout_answers_err_1053() {
    if direct_mode() {
        eprintln!("SKIPPED in DPM_TEST_DIRECT mode: needs a dpm process");
        return;
    }
    let db = MariaDb::get();
    let t = passthrough_with(|b| b.arg("--drain-timeout").arg("1"));
    let dpm = t.dpm();
    let mut c = t.conn().await;
    let running = tokio::spawn(async move {
        c.query_first::<u64, _>("SELECT SLEEP(5) /* drain timeout test */")
            .await
    });
    wait_running(db, "SELECT SLEEP(5) /* drain timeout test */");
    let signalled = Instant::now();
    dpm.signal(libc::SIGTERM);
    let result = bounded("the SLEEP(5) client", Duration::from_secs(10), running)
        .await
        .unwrap();
    match result {
        Err(mysql_async::Error::Server(e)) => {
            assert_eq!((e.code, e.state.as_str()), (1053, "08S01"), "{e}");
            assert_eq!(e.message, "Server shutdown in progress");
        }
        other => panic!("expected ERR 1053, got {other:?}"),
    }
    let answered = signalled.elapsed();
    let status = dpm.wait_exit(Duration::from_secs(10));
    let took = signalled.elapsed();
    assert_eq!(status.code(), Some(0), "{}", dpm.output());
    assert!(
        answered >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "answered after {answered:?}, exited after {took:?} (drain timeout 1 s)"
    );
    let out = dpm.stderr_after_exit();
    assert!(out.contains("closed 1 sessions at drain timeout"), "{out}");
}

/// A second SIGTERM during the drain exits at once (status 0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_sigterm_exits_at_once() {
    if direct_mode() {
        eprintln!("SKIPPED in DPM_TEST_DIRECT mode: needs a dpm process");
        return;
    }
    let db = MariaDb::get();
    let t = passthrough_with(|b| b.arg("--drain-timeout").arg("30"));
    let dpm = t.dpm();
    let mut c = t.conn().await;
    let running = tokio::spawn(async move {
        c.query_first::<u64, _>("SELECT SLEEP(20) /* second signal test */")
            .await
    });
    wait_running(db, "SELECT SLEEP(20) /* second signal test */");
    dpm.signal(libc::SIGTERM);
    dpm.wait_for_line("sessions (drain timeout 30s)", Duration::from_secs(10));
    let again = Instant::now();
    dpm.signal(libc::SIGTERM);
    let status = dpm.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", dpm.output());
    assert!(
        again.elapsed() < Duration::from_secs(3),
        "{:?}",
        again.elapsed()
    );
    assert!(dpm.stderr_after_exit().contains("SIGTERM again"));
    let result = bounded(
        "the interrupted SLEEP(20)",
        Duration::from_secs(10),
        running,
    )
    .await
    .unwrap();
    assert!(result.is_err(), "{result:?}");
}

/// Timeouts on the command line are checked like every other option (exit 2).
#[test]
fn timeout_options_are_validated() {
    for (args, want) in [
        (&["--connect-timeout", "0"][..], "must be greater than 0"),
        (&["--idle-timeout", "-1"][..], "is negative"),
        (
            &["--drain-timeout", "soon"][..],
            "'soon' is not a number of seconds",
        ),
    ] {
        let out = run_bounded(
            std::process::Command::new(env!("CARGO_BIN_EXE_dpm")).args(args),
            None,
            Duration::from_secs(30),
        );
        assert_eq!(out.code(), Some(2), "{args:?}: {out}");
        assert!(out.stderr.contains(want), "{args:?}: {out}");
    }
}
