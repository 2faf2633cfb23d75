//! The shipped examples other than passthrough: dpm answering from Lua with no backend,
//! and passthrough on several worker threads.

use crate::support::*;
use std::time::Duration;

fn answer_from_lua() -> (Dpm, u16) {
    let port = free_port();
    let dpm = Dpm::builder("examples/answer-from-lua.lua")
        .env("DPM_LISTEN_PORT", port)
        .spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    (dpm, port)
}

#[test]
fn answer_from_lua_serves_queries_without_any_backend() {
    let (dpm, port) = answer_from_lua();
    let cli = Cli::new(port).user("dpm").password(Some("dpm"));
    let out = cli.run("HELLO");
    out.assert_success("HELLO");
    assert_eq!(
        out.stdout,
        "salutations\tnumber\nhi\t1\nhello\t2\nkonnichiwa\t3\n"
    );
    let out = cli.run("SELECT 'anything at all'");
    out.assert_success("echo");
    assert_eq!(
        out.stdout,
        "you_said\tlength\nSELECT 'anything at all'\t24\n"
    );
    // Several statements on one session stay in sync (sequence ids, EOFs).
    let out = cli.run_stdin("HELLO;\nSELECT 1;\nHELLO;\n");
    out.assert_success("three queries in one session");
    assert_eq!(
        out.stdout.matches("konnichiwa").count(),
        2,
        "{}",
        out.stdout
    );
    dpm.wait_for_line("login ok: dpm", Duration::from_secs(5));
    assert!(admin_as(port, "dpm", "dpm", &["ping"])
        .stdout
        .contains("mysqld is alive"));
}

#[test]
fn answer_from_lua_refuses_a_wrong_password() {
    let (dpm, port) = answer_from_lua();
    let out = Cli::new(port)
        .user("dpm")
        .password(Some("wrong"))
        .run("HELLO");
    assert!(!out.status.success());
    assert!(
        out.stderr
            .contains("ERROR 1045 (28000): Access denied for user 'dpm'@'dpm'"),
        "{}",
        out.stderr
    );
    let out = Cli::new(port)
        .user("mallory")
        .password(Some("dpm"))
        .run("HELLO");
    assert!(out.stderr.contains("ERROR 1045 (28000)"), "{}", out.stderr);
    dpm.wait_for_line("login refused: mallory", Duration::from_secs(5));
}

#[test]
fn answer_from_lua_works_with_the_interactive_cli() {
    let (_dpm, port) = answer_from_lua();
    let args: Vec<String> = [
        "--no-defaults",
        "-h127.0.0.1",
        &format!("-P{port}"),
        "-udpm",
        "-pdpm",
        "--skip-ssl",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let tmux = Tmux::start("mariadb", &args);
    tmux.wait_for("dpm answer-from-lua example", Duration::from_secs(10));
    tmux.send_line("HELLO;");
    tmux.wait_for("konnichiwa", Duration::from_secs(10));
    tmux.send_line("quit");
    tmux.wait_for("Bye", Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passthrough_on_two_worker_threads() {
    let t = passthrough_with(|b| b.arg("--threads").arg("2"));
    use mysql_async::prelude::Queryable;
    let mut tasks = Vec::new();
    for i in 0..20i64 {
        let opts = t.opts();
        tasks.push(tokio::spawn(async move {
            let mut conn = mysql_async::Conn::new(opts).await.unwrap();
            let v: Option<i64> = conn.exec_first("SELECT ? * 2", (i,)).await.unwrap();
            conn.disconnect().await.unwrap();
            v
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap(), Some(i as i64 * 2));
    }
}

/// examples/proxy-users.lua: the client logs in with a password the server never sees;
/// dpm logs in with the test account, over TLS towards the client when asked; the
/// server's connections are kept for the next session (one worker: one pool).
#[test]
fn proxy_users_example_logs_clients_in_with_dpm_held_users() {
    let db = MariaDb::get();
    let tls = tls_files();
    let port = free_port();
    let dpm = Dpm::builder("examples/proxy-users.lua")
        .arg("--threads")
        .arg("1")
        .env("DPM_LISTEN_PORT", port)
        .env("DPM_BACKEND", format!("127.0.0.1:{}", db.port))
        .env("DPM_BACKEND_USER", USER)
        .env("DPM_BACKEND_PASSWORD", PASSWORD)
        .env("DPM_TLS_CERT", path_str(&tls.dpm_cert))
        .env("DPM_TLS_KEY", path_str(&tls.dpm_key))
        .spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    let who = Cli::new(port)
        .user("app")
        .password(Some("apppass"))
        .tls(&tls.ca)
        .arg("-N")
        .run("SELECT CURRENT_USER()");
    who.assert_success("app over TLS");
    assert_eq!(who.stdout.trim(), format!("{USER}@%"), "{who}");
    // Sessions one after the other: a later one gets a connection an earlier one left.
    let mut seen = std::collections::HashSet::new();
    let reused = (0..10).any(|_| {
        let id = Cli::new(port)
            .user("app")
            .password(Some("apppass"))
            .arg("-N")
            .run("SELECT CONNECTION_ID()");
        id.assert_success("app");
        !seen.insert(id.stdout.trim().to_string())
    });
    assert!(reused, "10 sessions, 10 server connections: {seen:?}");
    let refused = Cli::new(port)
        .user("app")
        .password(Some("dpmpass"))
        .run("SELECT 1");
    assert!(
        refused.stderr.contains(
            "ERROR 1045 (28000): Access denied for user 'app'@'localhost' (using password: YES)"
        ),
        "{refused}"
    );
}

/// examples/readwritesplit.lua over the shared primary and two replicas: reads on a
/// replica, a transaction on the primary, and the route log that says so.
#[test]
fn readwritesplit_example_splits_reads_and_explains_them() {
    let r = SharedReplication::get();
    let port = free_port();
    let dpm = Dpm::builder("examples/readwritesplit.lua")
        .env("DPM_LISTEN_PORT", port)
        .env("DPM_PRIMARY", format!("127.0.0.1:{}", r.primary.port))
        .env("DPM_REPLICA1", format!("127.0.0.1:{}", r.replica.port))
        .env("DPM_REPLICA2", format!("127.0.0.1:{}", r.replica2.port))
        .env("DPM_BACKEND_USER", USER)
        .env("DPM_BACKEND_PASSWORD", PASSWORD)
        .spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    let out = Cli::new(port)
        .user("app")
        .password(Some("apppass"))
        .arg("-N")
        .run_stdin("SELECT @@server_id;\nBEGIN;\nSELECT @@server_id;\nCOMMIT;\nSHOW ROUTE LOG;\n");
    out.assert_success("a session through the example");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0] == "2" || lines[0] == "3", "a replica: {out}");
    assert_eq!(lines[1], "1", "the primary: {out}");
    assert!(
        lines[2].starts_with(&format!("db{}: read, lag", lines[0])),
        "{out}"
    );
    assert_eq!(lines[3..], ["db1: in transaction"; 3], "{out}");
}
