//! Bad input gets a clear error and loses nothing: broken startup files, unreachable
//! backends, malformed client packets and Lua errors in callbacks.

use crate::support::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

fn write_startfile(name: &str, body: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(unique_name("dpm-startfile"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

/// Runs dpm on a startfile that must fail; returns (exit status, stderr).
fn failing_start(path: &std::path::Path) -> (std::process::ExitStatus, String) {
    let dpm = Dpm::builder(path).verbose(None).spawn();
    let status = dpm.wait_exit(EXIT_TIMEOUT);
    (status, dpm.stderr_after_exit())
}

#[test]
fn startfile_syntax_error_exits_nonzero_naming_file_and_line() {
    let path = write_startfile("syntax.lua", "local ok = 1\nlocal broken = = 2\n");
    let (status, stderr) = failing_start(&path);
    assert!(!status.success(), "dpm must fail: {stderr}");
    let expected = format!("{}:2: unexpected symbol near '='", path.display());
    assert!(
        stderr.contains(&expected),
        "stderr {stderr:?} lacks {expected:?}"
    );
}

#[test]
fn startfile_runtime_error_exits_nonzero_naming_file_and_line() {
    let path = write_startfile(
        "raises.lua",
        "local x = 1\n\nerror('no backend configured')\n",
    );
    let (status, stderr) = failing_start(&path);
    assert!(!status.success());
    let expected = format!("{}:3: no backend configured", path.display());
    assert!(
        stderr.contains(&expected),
        "stderr {stderr:?} lacks {expected:?}"
    );
}

#[test]
fn startfile_bad_dpm_call_names_the_calling_line() {
    let path = write_startfile("badcall.lua", "\ndpm.proxy_connect(nil, nil)\n");
    let (status, stderr) = failing_start(&path);
    assert!(!status.success());
    let expected = format!("{}:2: Arg 1 must be a valid client", path.display());
    assert!(
        stderr.contains(&expected),
        "stderr {stderr:?} lacks {expected:?}"
    );
}

#[test]
fn missing_startfile_exits_nonzero_with_the_reason() {
    let path = std::env::temp_dir()
        .join(unique_name("missing"))
        .join("nope.lua");
    let (status, stderr) = failing_start(&path);
    assert!(!status.success());
    assert!(
        stderr.contains(&format!("{}: cannot read the startup file", path.display())),
        "{stderr}"
    );
}

#[test]
fn unreachable_backend_gives_the_client_an_error_naming_the_address() {
    let dead_port = free_port(); // nothing listens there
    let port = free_port();
    let dpm = Dpm::builder("examples/passthrough.lua")
        .env("DPM_LISTEN_PORT", port)
        .env("DPM_BACKEND_PORT", dead_port)
        .spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    let out = Cli::new(port)
        .timeout(Duration::from_secs(15))
        .run("SELECT 1");
    assert!(!out.status.success());
    let expected =
        format!("Can't connect to server on '127.0.0.1:{dead_port}' (111 \"Connection refused\")");
    assert!(
        out.stderr.contains(&expected),
        "client stderr {:?} lacks {expected:?}",
        out.stderr
    );
    assert!(out.stderr.contains("ERROR 1429 (HY000)"), "{}", out.stderr);
    // dpm itself keeps running and says why.
    assert!(dpm.try_status().is_none(), "dpm exited");
    dpm.wait_for_line("backend connect failed", Duration::from_secs(5));
}

/// Connects raw, reads the greeting, sends `payload` as the login packet and returns
/// true if dpm closed the socket.
fn send_raw_login(port: u16, payload: &[u8]) -> bool {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut header = [0u8; 4];
    s.read_exact(&mut header).unwrap();
    let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
    let mut greeting = vec![0; len];
    s.read_exact(&mut greeting).unwrap();
    let mut packet = (payload.len() as u32).to_le_bytes();
    packet[3] = 1;
    let _ = s.write_all(&packet);
    let _ = s.write_all(payload);
    let mut rest = Vec::new();
    match s.read_to_end(&mut rest) {
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_client_packets_close_only_that_client() {
    let t = passthrough();
    if t.is_direct() {
        return; // the server's own handling is not what this test is about
    }
    let mut good = t.conn().await;
    use mysql_async::prelude::Queryable;
    let before: Option<u64> = good.query_first("SELECT CONNECTION_ID()").await.unwrap();

    let port = t.port;
    let closed = tokio::task::spawn_blocking(move || send_raw_login(port, b"garbage"))
        .await
        .unwrap();
    assert!(closed, "a malformed login must close the client");
    t.dpm().wait_for_line(
        "malformed handshake response (7 bytes)",
        Duration::from_secs(5),
    );

    let huge = vec![b'x'; 2 << 20];
    let closed = tokio::task::spawn_blocking(move || send_raw_login(port, &huge))
        .await
        .unwrap();
    assert!(closed, "an oversized login must close the client");
    t.dpm()
        .wait_for_line("oversized authentication packet", Duration::from_secs(5));

    // The other session never noticed.
    let after: Option<u64> = good.query_first("SELECT CONNECTION_ID()").await.unwrap();
    assert_eq!(before, after);
    let two: Option<i64> = good.query_first("SELECT 1 + 1").await.unwrap();
    assert_eq!(two, Some(2));
    assert!(t.dpm().try_status().is_none(), "dpm exited");
}

#[test]
fn lua_error_in_a_callback_is_logged_with_file_and_line_and_the_query_still_runs() {
    let (builder, port) = Dpm::in_front_of_mariadb("crates/dpm/tests/lua/callback_error.lua");
    let t = Target::proxy(builder.spawn(), port);
    let out = t.cli().run("SELECT 'boom'");
    out.assert_success("a failing callback counts as DPM_OK: the query is forwarded");
    assert!(out.stdout.contains("boom"), "{}", out.stdout);
    t.dpm().wait_for_line(
        "ERROR: running callback 'Client sent command': crates/dpm/tests/lua/callback_error.lua:5: kaboom on purpose",
        Duration::from_secs(5),
    );
    let again = t.cli().run("SELECT 'after'");
    again.assert_success("dpm goes on after a callback error");
    assert!(again.stdout.contains("after"));
}

#[test]
fn command_line_help_and_short_options() {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_dpm"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in ["--startfile", "-s", "--verbose", "-v", "--threads"] {
        assert!(text.contains(flag), "--help lacks {flag}: {text}");
    }
    // -s FILE -v N work like the long forms.
    let path = write_startfile(
        "short.lua",
        "print('started with short options')\nos.exit(0)\n",
    );
    // One worker: with two, the other worker's os.exit(0) may end the process before
    // worker 0 (whose load-time prints are the ones shown) printed.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dpm"))
        .args(["-s", path.to_str().unwrap(), "-v", "2"])
        .env("DPM_THREADS", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("started with short options"));
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_dpm"))
        .arg("--no-such-flag")
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

/// Out of file descriptors: dpm says so at start, each client it cannot serve gets an
/// ERR naming the cause (not a hang or a silent close), the sessions it holds keep working,
/// and new clients are served again once descriptors are free. Run at two limits of
/// different parity: with one, the last free descriptor goes to a client and its backend
/// cannot be opened (1429); with the other, the accept itself fails (1040, sent through
/// the spare descriptor dpm keeps for that) — which one a machine hits depends on how
/// many descriptors dpm inherits, so both must hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_descriptors_refuses_clients_with_an_error_and_recovers() {
    if direct_mode() {
        return;
    }
    let mut codes = Vec::new();
    // Not much above what dpm opens for itself, so that a few dozen sessions fill it even
    // if the machine hands dpm some inherited descriptors.
    for limit in [64, 65] {
        codes.extend(out_of_descriptors_at(limit).await);
    }
    assert!(
        codes.contains(&1040) && codes.contains(&1429),
        "both ways of running out must have been met, got codes {codes:?}"
    );
}

/// Runs the scenario at one descriptor limit; returns the error codes clients were refused with.
async fn out_of_descriptors_at(limit: u64) -> Vec<u16> {
    use mysql_async::prelude::Queryable;
    let (builder, port) = Dpm::in_front_of_mariadb("examples/passthrough.lua");
    let dpm = builder.fd_limit(limit).spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    dpm.wait_for_line(
        &format!("file descriptor limit {limit}"),
        Duration::from_secs(5),
    );
    let connect = || async {
        tokio::time::timeout(Duration::from_secs(10), mysql_async::Conn::new(opts(port)))
            .await
            .unwrap_or_else(|_| panic!("limit {limit}: a connect hung instead of failing"))
    };
    let mut held = Vec::new();
    let mut refused = Vec::new();
    // Connect until refused a few times: how many fit depends on what dpm inherited.
    for _ in 0..200 {
        match connect().await {
            Ok(conn) => held.push(conn),
            Err(e) => refused.push(e.to_string()),
        }
        if refused.len() == 3 {
            break;
        }
    }
    assert!(
        held.len() >= 5,
        "limit {limit}: only {} sessions",
        held.len()
    );
    assert!(
        !refused.is_empty(),
        "limit {limit}: 200 sessions cannot fit in {limit} descriptors"
    );
    let mut codes = Vec::new();
    for e in &refused {
        let backend_refused = e.contains("1429") && e.contains("Too many open files");
        let accept_refused = e.contains("1040")
            && e.contains("Too many connections")
            && e.contains("Too many open files");
        assert!(
            backend_refused || accept_refused,
            "limit {limit}: refused with {e:?}"
        );
        codes.push(if accept_refused { 1040 } else { 1429 });
    }
    for conn in &mut held {
        let one: Option<i64> = conn.query_first("SELECT 1").await.unwrap();
        assert_eq!(one, Some(1));
    }
    for conn in held {
        conn.disconnect().await.unwrap();
    }
    let mut again = wait_until_async(
        "a session once the others closed",
        Duration::from_secs(10),
        || async { connect().await.ok() },
    )
    .await;
    let two: Option<i64> = again.query_first("SELECT 2").await.unwrap();
    assert_eq!(two, Some(2));
    again.disconnect().await.unwrap();
    codes
}
