//! neper's model in the proxy: socket hooks (examples/socket_hooks.lua in front of the
//! shared MariaDB, driven by the `mariadb` CLI — every hook runs at its moment with the
//! right descriptor and address, options set there hold, and a failing hook costs the
//! connection nothing) and values collected from every worker (examples/collect.lua).

use crate::support::*;
use std::time::Duration;

fn hooked_dpm(extra: &[(&str, &str)]) -> (Dpm, u16, u16) {
    let env: Vec<(&str, String)> = extra.iter().map(|(k, v)| (*k, v.to_string())).collect();
    let (dpm, port) = scripted_passthrough("examples/socket_hooks.lua", 1, &env);
    (dpm, port, MariaDb::get().port)
}

/// The number after `key=` in `line`.
fn field(line: &str, key: &str) -> i64 {
    let start = line
        .find(&format!("{key}="))
        .unwrap_or_else(|| panic!("{key} in {line}"));
    line[start + key.len() + 1..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("{key} in {line}"))
}

#[test]
fn every_socket_hook_runs_at_its_moment_and_its_options_hold() {
    let (dpm, port, db_port) = hooked_dpm(&[]);
    let wait = Duration::from_secs(10);
    let listener = dpm.wait_for_line(&format!("listener_socket 127.0.0.1:{port} "), wait);
    assert!(field(&listener, "rcvbuf") >= 262144, "{listener}");
    let out = Cli::new(port).arg("-N").run("SELECT 6 * 7");
    out.assert_success("a query through the hooked proxy");
    assert_eq!(out.stdout.trim(), "42");
    let client = dpm.wait_for_line("client_socket from 127.0.0.1:", wait);
    assert!(client.contains("keepalive=true idle=60"), "{client}");
    assert!(
        field(&client, "rcvbuf") >= 262144,
        "a client inherits the listener's buffer: {client}"
    );
    // Before its connect: TCP_CLOSE (7), with dpm's TCP_NODELAY already set.
    let server = dpm.wait_for_line(&format!("server_socket to 127.0.0.1:{db_port} "), wait);
    assert!(server.contains("state=7 nodelay=true"), "{server}");
    // The CLI quit: both sides closed, each read its TCP_INFO while still open.
    for kind in [
        "client_close 127.0.0.1:",
        &format!("server_close 127.0.0.1:{db_port}"),
    ] {
        let line = dpm.wait_for_line(kind, wait);
        assert!(field(&line, "rtt_us") > 0, "a measured round trip: {line}");
        assert_eq!(field(&line, "retransmits"), 0, "{line}");
    }
}

#[test]
fn a_failing_socket_hook_is_logged_with_its_line_and_the_connection_goes_on() {
    let (dpm, port, _) = hooked_dpm(&[("DPM_HOOK_FAIL", "1")]);
    for _ in 0..2 {
        let out = Cli::new(port).arg("-N").run("SELECT 1");
        out.assert_success("the client whose hook failed is served");
        assert_eq!(out.stdout.trim(), "1");
    }
    let line = dpm.wait_for_line("ERROR: socket hook client_socket:", Duration::from_secs(10));
    assert!(
        line.contains("examples/socket_hooks.lua:") && line.contains(": a failing client hook"),
        "{line}"
    );
    // The other hooks still ran.
    dpm.wait_for_line("server_close 127.0.0.1:", Duration::from_secs(10));
}

#[test]
fn socket_options_refuse_what_they_cannot_do_with_the_callers_line() {
    for (line, expected) in [
        (
            "dpm.setsockopt(0, 'SO_NOSUCH', 1)",
            "dpm.setsockopt: unknown socket option 'SO_NOSUCH'",
        ),
        (
            "dpm.getsockopt(0, 'TCP_NODELAY')",
            "dpm.getsockopt: descriptor 0:",
        ),
        (
            "dpm.client_socket(42)",
            "dpm.client_socket: the hook must be a function",
        ),
    ] {
        assert_start_fails_at_line_2(line, expected);
    }
}

/// examples/collect.lua on two workers: each counts its clients' commands in a table of
/// its own; worker 0's timer reads both with dpm.collected and prints the sum.
#[test]
fn collected_values_arrive_from_every_worker() {
    let (dpm, port) = scripted_passthrough("examples/collect.lua", 2, &[]);
    // Enough connections that the kernel gives both workers some (SO_REUSEPORT spreads
    // them by the client's port); each sends its login's queries and three statements.
    for _ in 0..16 {
        Cli::new(port)
            .arg("-N")
            .run("SELECT 1; SELECT 2; SELECT 3")
            .assert_success("a session");
    }
    let line = dpm.wait_for_line(" in all (worker 0: ", Duration::from_secs(10));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut line = line;
    loop {
        let counts: Vec<i64> = ["worker 0", "worker 1"]
            .iter()
            .map(|w| field(&line.replace(": ", "="), w))
            .collect();
        let total = field(&line.replace("commands: ", "commands="), "commands");
        if counts.iter().all(|&c| c > 0) && total >= 48 {
            assert_eq!(total, counts.iter().sum::<i64>(), "{line}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "both workers counted 48+ commands: {line}\n{}",
            dpm.output()
        );
        std::thread::sleep(Duration::from_millis(300));
        line = dpm
            .output()
            .lines()
            .rev()
            .find(|l| l.contains(" in all ("))
            .unwrap()
            .to_string();
    }
}
