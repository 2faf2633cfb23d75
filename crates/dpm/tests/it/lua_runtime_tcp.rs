//! Raw TCP services (issue 10, point 5): `dpm.listener(…, { mode = "tcp" })` with
//! `listener:register_action(fn(txn))`, the seed's txn and channel classes, the seed's
//! hello world (examples/hello-world.lua), an HTTP health endpoint in Lua answering curl
//! (examples/health-endpoint.lua), and a slow action that delays nobody else.

use crate::support::*;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// dpm on crates/dpm/tests/lua/tcp_service.lua, one worker; returns it and the port.
fn line_service() -> (Dpm, u16) {
    let port = free_port();
    let dpm = Dpm::builder("crates/dpm/tests/lua/tcp_service.lua")
        .env("DPM_TCP_PORT", port)
        .arg("--threads")
        .arg("1")
        .spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    (dpm, port)
}

fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// Sends `request` in one write, closes the sending side, and reads until dpm closes.
fn exchange(port: u16, request: &str) -> String {
    let mut stream = connect(port);
    stream.write_all(request.as_bytes()).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// Reads one `\n`-terminated line.
fn read_line(stream: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while stream.read(&mut byte).unwrap() == 1 {
        line.push(byte[0]);
        if byte[0] == b'\n' {
            break;
        }
    }
    String::from_utf8(line).unwrap()
}

#[test]
fn the_seeds_hello_world_answers_every_connection() {
    let port = free_port();
    let dpm = Dpm::builder("examples/hello-world.lua")
        .env("DPM_LISTEN_PORT", port)
        .spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    for _ in 0..3 {
        assert_eq!(exchange(port, "coucou\n"), "hello world\n");
    }
}

#[test]
fn an_action_reads_and_answers_with_the_txn_and_channel_classes() {
    let (dpm, port) = line_service();
    assert_eq!(
        exchange(port, "echo one\necho two\ncount\n"),
        "one\ntwo\nlines=3\n"
    );
    // get_line waits for the rest of a line that arrives in pieces.
    let mut stream = connect(port);
    stream.write_all(b"ec").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    stream.write_all(b"ho pieces\n").unwrap();
    assert_eq!(read_line(&mut stream), "pieces\n");
    // dup copies what waits, get takes it.
    stream.write_all(b"peek\nrest of it").unwrap();
    assert_eq!(read_line(&mut stream), "dup=10 get=10 same=true\n");
    drop(stream);
    // The lengths around set, append and forward; what append left in the response's
    // input is written when the action ends.
    assert_eq!(
        exchange(port, "lengths\nXYZ\n"),
        "abc| in=4 after=0 appended=4 res_in=7 moved=3 res_in=4 req_send=-1\ndef\n"
    );
    // finish sends what waits, then ends; close ends at once.
    assert_eq!(exchange(port, "echo a\nbye\necho not read\n"), "a\nbye\n");
    assert_eq!(exchange(port, "echo b\ndrop\necho not read\n"), "b\n");
    assert!(
        !dpm.output().contains("not reached"),
        "finish and close end the action:\n{}",
        dpm.output()
    );
}

#[test]
fn a_failing_or_runaway_action_is_logged_and_the_worker_goes_on() {
    let (dpm, port) = line_service();
    assert_eq!(exchange(port, "echo x\nfail\necho y\n"), "x\n");
    let failed = dpm.wait_for_line("failing on purpose", Duration::from_secs(10));
    assert!(
        failed.contains("ERROR: tcp action: ") && failed.contains("tcp_service.lua:"),
        "{failed}"
    );
    assert_eq!(exchange(port, "spin\necho z\n"), "");
    let stopped = dpm.wait_for_line("exceeded its CPU budget", Duration::from_secs(10));
    assert!(stopped.contains("ERROR: tcp action: "), "{stopped}");
    assert_eq!(exchange(port, "echo still serving\n"), "still serving\n");
}

#[test]
fn a_slow_action_does_not_delay_the_other_clients_of_its_worker() {
    let (_dpm, port) = line_service();
    let slow = std::thread::spawn(move || {
        let started = Instant::now();
        let answer = exchange(port, "slow 600\n");
        (answer, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(100));
    // Meanwhile, on the same (only) worker: 50 connections, one after the other.
    let started = Instant::now();
    for i in 0..50 {
        assert_eq!(exchange(port, &format!("echo {i}\n")), format!("{i}\n"));
    }
    let others = started.elapsed();
    let (answer, slept) = slow.join().unwrap();
    assert_eq!(answer, "slept 600\n");
    assert!(slept >= Duration::from_millis(600), "{slept:?}");
    assert!(
        others < Duration::from_millis(400),
        "50 other clients took {others:?} while one action slept 600 ms"
    );
}

#[test]
fn an_http_health_endpoint_in_lua_answers_curl() {
    let db = MariaDb::get();
    let health = free_port();
    let closed = free_port();
    let curl = |port: u16, path: &str| {
        let out = std::process::Command::new("curl")
            .args(["-s", "-i", "--max-time", "10"])
            .arg(format!("http://127.0.0.1:{port}{path}"))
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n")
    };
    for (backend, status, body) in [
        (db.port, "HTTP/1.0 200 OK", "up\n"),
        (
            closed,
            "HTTP/1.0 503 Service Unavailable",
            "down: connection refused\n",
        ),
    ] {
        let proxy = free_port();
        let dpm = Dpm::builder("examples/health-endpoint.lua")
            .env("DPM_LISTEN_HOST", "127.0.0.1")
            .env("DPM_LISTEN_PORT", proxy)
            .env("DPM_BACKEND_HOST", "127.0.0.1")
            .env("DPM_BACKEND_PORT", backend)
            .env("DPM_HEALTH_PORT", health)
            .spawn();
        dpm.wait_until_listening(health, LISTEN_TIMEOUT);
        let answer = curl(health, "/health");
        assert!(answer.starts_with(status), "{answer}");
        assert!(answer.ends_with(&format!("\n\n{body}")), "{answer}");
        assert!(curl(health, "/other").starts_with("HTTP/1.0 404"));
        if backend == db.port {
            // The MySQL side of the same dpm is served as usual.
            let out = Cli::new(proxy).arg("-N").run("SELECT 'proxied'");
            out.assert_success("the proxy next to the endpoint");
            assert_eq!(out.stdout.trim(), "proxied");
        }
        drop(dpm);
    }
}

#[test]
fn a_listener_mode_is_mysql_or_tcp() {
    assert_start_fails_at_line_2(
        "dpm.listener('127.0.0.1', 0, { mode = 'http' })",
        "dpm.listener: mode must be \"mysql\" or \"tcp\", not 'http'",
    );
    assert_start_fails_at_line_2(
        "dpm.listener('127.0.0.1', 0, { mode = 'tcp', max_connections = 3 })",
        "dpm.listener (mode = \"tcp\"): unknown field 'max_connections' (fields: mode)",
    );
    assert_start_fails_at_line_2(
        "dpm.listener('127.0.0.1', 0, { mode = 'tcp' }):register_action('f')",
        "register_action: the argument must be a function, not a string",
    );
}
