//! The Lua runtime of HAProxy's model: init functions and tasks on several workers
//! (once per process, or per worker), a task that fails, the context rules (what waits
//! cannot run while the startup file loads), and `core`'s log, time and file functions.

use crate::support::*;
use std::time::Duration;

#[test]
fn tasks_run_once_per_process_or_per_worker_and_a_failing_one_harms_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let map = dir.path().join("servers.map");
    std::fs::write(
        &map,
        "# name address\ndb1 127.0.0.1:3306\n\ndb2   10.0.0.2:3306\n",
    )
    .unwrap();
    let acl = dir.path().join("users.acl");
    std::fs::write(&acl, "app\nreport\n# not a user\n").unwrap();
    let env = [
        ("DPM_MAP_FILE", path_str(&map).to_string()),
        ("DPM_ACL_FILE", path_str(&acl).to_string()),
    ];
    let (dpm, port) = scripted_passthrough("crates/dpm/tests/lua/tasks.lua", 2, &env);
    let wait = Duration::from_secs(10);
    for w in 0..2 {
        dpm.wait_for_line(
            &format!("init ran on worker {w}, map says 127.0.0.1:3306"),
            wait,
        );
        dpm.wait_for_line(&format!("task per worker: worker {w}"), wait);
        dpm.wait_for_line(&format!("a warning from worker {w}'s task"), wait);
    }
    dpm.wait_for_line(
        "task once: worker 0, round 3, acl has app=true, now true",
        wait,
    );
    dpm.wait_for_line("task started by a task: worker 0", wait);
    let failed = dpm.wait_for_line("ERROR: task: ", wait);
    assert!(
        failed.contains("tasks.lua:") && failed.contains("a task that fails on purpose"),
        "{failed}"
    );
    // Both workers still serve.
    for _ in 0..6 {
        let out = Cli::new(port).arg("-N").run("SELECT 1");
        out.assert_success("served after a task failed");
    }
    let output = dpm.output();
    assert_eq!(
        output.matches("task once:").count(),
        1,
        "once per process:\n{output}"
    );
    assert!(
        !output.contains("task started by a task: worker 1"),
        "{output}"
    );
    assert_eq!(output.matches("ERROR: task: ").count(), 1, "{output}");
}

#[test]
fn what_waits_is_refused_while_the_startup_file_loads_by_name_and_context() {
    assert_start_fails_at_line_2(
        "core.msleep(10)",
        "core.msleep waits, and cannot be called in the body context (the startup file as it loads)",
    );
    assert_start_fails_at_line_2(
        "core.register_init(function() core.sleep(1) end)",
        "core.sleep waits, and cannot be called in the init context",
    );
    assert_start_fails_at_line_2(
        "core.register_task(42)",
        "core.register_task: the argument must be a function, not a integer",
    );
    assert_start_fails_at_line_2(
        "core.load_map('m', '/nonexistent/servers.map')",
        "core.load_map: cannot read /nonexistent/servers.map",
    );
    assert_start_fails_at_line_2(
        "core.register_init(function() error('init says no') end)",
        "init says no",
    );
}

/// A tiny HTTP/1.0 service on loopback answering every request with `body`; it stops
/// when the test ends (its thread is detached, the listener dropped with the process).
fn http_service(body: &'static str) -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let mut stream = reader.into_inner();
            let _ = write!(
                stream,
                "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

/// An echo service: echoes what it reads; closes once it has read "close".
fn echo_service() -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut seen = Vec::new();
            let mut buf = [0u8; 1024];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 || stream.write_all(&buf[..n]).is_err() {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
                if seen.ends_with(b"close") {
                    break;
                }
            }
        }
    });
    port
}

#[test]
fn cosockets_ask_a_service_refuse_at_once_and_health_check_from_a_task() {
    let http = http_service("forty-two");
    let echo = echo_service();
    let closed = free_port();
    let health = free_port();
    let tls = tls_files();
    let tls_port = free_port();
    let mut web = std::process::Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(tls_port.to_string())
        .arg("-cert")
        .arg(&tls.dpm_cert)
        .arg("-key")
        .arg(&tls.dpm_key)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl s_server");
    let env = [
        ("DPM_TLS_PORT", tls_port.to_string()),
        ("DPM_TLS_CA", path_str(&tls.ca).to_string()),
        ("DPM_OTHER_CA", path_str(&tls.other_ca).to_string()),
        ("DPM_HTTP_PORT", http.to_string()),
        ("DPM_CLOSED_PORT", closed.to_string()),
        ("DPM_ECHO_PORT", echo.to_string()),
        ("DPM_HEALTH_PORT", health.to_string()),
    ];
    let (dpm, port) = scripted_passthrough("crates/dpm/tests/lua/cosocket.lua", 1, &env);
    let wait = Duration::from_secs(10);
    let ask = |sql: &str| {
        let out = Cli::new(port).arg("-N").run(sql);
        out.assert_success(sql);
        out.stdout.trim().to_string()
    };
    assert_eq!(
        ask("SELECT 'ask'"),
        "forty-two",
        "the callback asked the service"
    );
    assert_eq!(ask("SELECT 'patterns'"), "patterns ok");
    wait_for_port(tls_port);
    let answer = ask("SELECT 'tls'");
    let _ = web.kill();
    let _ = web.wait();
    let (trusted, untrusted) = answer.split_once(" | ").unwrap();
    assert!(
        trusted.starts_with("HTTP/1.0 200"),
        "verified TLS: {answer}"
    );
    assert!(
        untrusted.starts_with("nil ") && untrusted.contains("certificate"),
        "a certificate from an unknown CA is refused: {answer}"
    );
    // A refused connect answers at once, and the worker's other clients are served
    // meanwhile: many refused connects while another client runs its statements.
    let other = std::thread::spawn(move || {
        let out = Cli::new(port).arg("-N").run(&"SELECT 1;".repeat(200));
        out.assert_success("another client of the worker");
        out.stdout.lines().count()
    });
    for _ in 0..20 {
        assert_eq!(ask("SELECT 'refused'"), "nil connection refused at once");
    }
    assert_eq!(other.join().unwrap(), 200);
    // The task sees the port come up and go down again.
    dpm.wait_for_line(&format!("health: port {health} down"), wait);
    let listener = std::net::TcpListener::bind(("127.0.0.1", health)).unwrap();
    dpm.wait_for_line(&format!("health: port {health} up"), wait);
    drop(listener);
    let skip = dpm.line_count();
    dpm.wait_for_line_after(skip, &format!("health: port {health} down"), wait);
}

/// Waits until something listens on loopback `port` (bounded).
fn wait_for_port(port: u16) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing listens on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sockets_cannot_be_used_while_the_startup_file_loads() {
    assert_start_fails_at_line_2(
        "core.tcp():connect('127.0.0.1', 1)",
        "socket:connect waits, and cannot be called in the body context",
    );
}

#[test]
fn the_sandbox_stops_a_runaway_callback_with_an_error_and_the_worker_goes_on() {
    let (dpm, port) = scripted_passthrough("crates/dpm/tests/lua/sandbox.lua", 1, &[]);
    let wait = Duration::from_secs(20);
    for (sql, why) in [
        (
            "SELECT 'spin'",
            "exceeded its CPU budget (2000000 instructions",
        ),
        ("SELECT 'hog'", "not enough memory"),
    ] {
        let out = Cli::new(port)
            .arg("-N")
            .run(&format!("{sql}; SELECT 'after'"));
        assert!(
            out.stderr.contains("ERROR 1105 (HY000)")
                && out
                    .stderr
                    .contains("exceeded its CPU budget or memory limit"),
            "{sql}: {out}"
        );
        let logged = dpm.wait_for_line(why, wait);
        assert!(logged.contains("ERROR: running callback"), "{logged}");
        if sql == "SELECT 'spin'" {
            assert!(
                logged.contains("sandbox.lua:"),
                "the loop's file and line: {logged}"
            );
        }
        // The worker and this session's backend go on.
        let again = Cli::new(port).arg("-N").run("SELECT 'fine'");
        again.assert_success("served after the callback was stopped");
        assert_eq!(again.stdout.trim(), "fine");
    }
    // A 50 ms sleep in one session's callback does not delay another session's
    // statements on the same worker.
    let napping = std::thread::spawn(move || {
        let started = std::time::Instant::now();
        let out = Cli::new(port).arg("-N").run(&"SELECT 'nap';".repeat(20));
        out.assert_success("the napping session");
        started.elapsed()
    });
    std::thread::sleep(Duration::from_millis(100));
    let started = std::time::Instant::now();
    let busy = Cli::new(port).arg("-N").run(&"SELECT 1;".repeat(200));
    busy.assert_success("the other session");
    let other = started.elapsed();
    let napped = napping.join().unwrap();
    assert!(
        napped >= Duration::from_millis(1000),
        "20 naps of 50 ms: {napped:?}"
    );
    assert!(
        other < Duration::from_millis(700),
        "200 statements of another session took {other:?} while the first napped"
    );
    // Bursts with waits in between never add up to the budget.
    dpm.wait_for_line("bursty task done", wait);
    assert!(!dpm.output().contains("ERROR: task:"), "{}", dpm.output());
}

#[test]
fn what_reaches_outside_the_process_is_off_unless_the_startup_file_allows_it() {
    assert_start_fails_at_line_2(
        "os.execute('true')",
        "os.execute is off in dpm (dpm.limits{ unsafe = true } turns it on)",
    );
    assert_start_fails_at_line_2(
        "io.open('/tmp/dpm-sandbox-test', 'w')",
        "io.open: writing /tmp/dpm-sandbox-test is off in dpm",
    );
    assert_start_fails_at_line_2(
        "dpm.limits{ callback_instructions = -1 }",
        "dpm.limits: callback_instructions must be a positive integer",
    );
}

#[test]
fn a_nice_coroutine_gives_way_at_each_yield() {
    let dpm = Dpm::builder("crates/dpm/tests/lua/nice.lua")
        .arg("--threads")
        .arg("1")
        .spawn();
    let line = dpm.wait_for_line("nice counts: ", Duration::from_secs(10));
    let count = |name: &str| -> f64 {
        let at = line.find(&format!("{name}=")).unwrap() + name.len() + 1;
        line[at..]
            .split(' ')
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let (normal, nice, negative) = (count("normal"), count("nice"), count("negative"));
    assert!(normal > 1000.0, "{line}");
    // Nice 1024 steps back 9 times per yield: the others run about 9 times as often.
    let ratio = normal / nice;
    assert!(
        (5.0..=13.0).contains(&ratio),
        "normal/nice = {ratio}: {line}"
    );
    // A negative nice cannot put a coroutine ahead: it acts as 0.
    let ratio = negative / normal;
    assert!(
        (0.8..=1.25).contains(&ratio),
        "negative/normal = {ratio}: {line}"
    );
    let refused = dpm.wait_for_line("out of range: ", Duration::from_secs(10));
    assert!(
        refused.contains("false core.set_nice: the nice must be between -1024 and 1024, got 2000"),
        "{refused}"
    );
    assert_start_fails_at_line_2(
        "core.set_nice(10)",
        "core.set_nice sets the nice of the calling task or callback, and cannot be called while the startup file loads",
    );
}
