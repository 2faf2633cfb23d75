//! readwritesplit against a real GTID primary and two replicas under mariadbmon, with
//! real clients (the mariadb CLI, mysql_async): where statements land (checked with
//! `@@server_id`: 1 is the primary, 2 and 3 the replicas), session state on every
//! backend, pins, hints, the route log, and a replica lost between statements.

use crate::support::*;
use std::sync::OnceLock;
use std::time::Duration;

const APP_USER: &str = "rwapp";
const APP_PASSWORD: &str = "rwpass";

fn app_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_password("mysql_native_password", APP_PASSWORD))
}

/// dpm on tests/lua/rwsplit.lua in front of a primary and two replicas (`ports`), with
/// extra environment; returns it and its port once the monitor has found the roles.
fn rwsplit_dpm(ports: [u16; 3], extra: &[(&str, String)]) -> (Dpm, u16) {
    let port = free_port();
    let mut builder = Dpm::builder("crates/dpm/tests/lua/rwsplit.lua")
        .env("DPM_LISTEN_PORT", port)
        .env("DPM_DB1", format!("127.0.0.1:{}", ports[0]))
        .env("DPM_DB2", format!("127.0.0.1:{}", ports[1]))
        .env("DPM_DB3", format!("127.0.0.1:{}", ports[2]))
        .env("DPM_MONITOR_USER", USER)
        .env("DPM_MONITOR_PASSWORD", PASSWORD)
        .env("DPM_BACKEND_USER", USER)
        .env("DPM_BACKEND_PASSWORD", PASSWORD)
        .env("DPM_APP_USER", APP_USER)
        .env("DPM_APP_HASH", app_hash());
    for (k, v) in extra {
        builder = builder.env(*k, v);
    }
    let dpm = builder.spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    let wait = Duration::from_secs(10);
    dpm.wait_for_line("server event new_primary db1", wait);
    dpm.wait_for_line("server event server_up db2 role=replica", wait);
    dpm.wait_for_line("server event server_up db3 role=replica", wait);
    (dpm, port)
}

fn shared_dpm() -> (Dpm, u16) {
    let r = SharedReplication::get();
    rwsplit_dpm([r.primary.port, r.replica.port, r.replica2.port], &[])
}

fn cli(port: u16) -> Cli {
    Cli::new(port)
        .user(APP_USER)
        .password(Some(APP_PASSWORD))
        .db(DB)
        .arg("--skip-column-names")
        // Keep comments: hints live in them.
        .arg("--comments")
}

/// Runs `script` in one session; returns its output lines.
fn session(port: u16, script: &str) -> Vec<String> {
    let out = cli(port).run_stdin(script);
    out.assert_success("the session");
    out.stdout.lines().map(str::to_string).collect()
}

#[test]
fn reads_go_to_replicas_writes_and_transactions_to_the_primary() {
    let (_dpm, port) = shared_dpm();
    let lines = session(
        port,
        "SELECT @@server_id;\n\
         SELECT @@server_id;\n\
         CREATE TABLE IF NOT EXISTS rw_where (id INT PRIMARY KEY, at INT);\n\
         REPLACE INTO rw_where VALUES (1, @@server_id);\n\
         SELECT @@server_id -- dpm: route to primary\n;\n\
         BEGIN;\n\
         SELECT @@server_id;\n\
         COMMIT;\n\
         START TRANSACTION READ ONLY;\n\
         SELECT @@server_id;\n\
         COMMIT;\n\
         /* dpm: route to server db3 */ SELECT @@server_id;\n\
         SHOW ROUTE LOG;\n",
    );
    let read = &lines[0];
    assert!(
        read == "2" || read == "3",
        "a read runs on a replica: {lines:?}"
    );
    assert_eq!(
        lines[1], *read,
        "the session keeps reading from its replica"
    );
    assert_eq!(lines[2], "1", "the write ran on the primary: {lines:?}");
    assert_eq!(
        lines[3], "1",
        "a hint sends a read to the primary: {lines:?}"
    );
    assert_eq!(
        lines[4], "1",
        "a transaction runs on the primary: {lines:?}"
    );
    assert_eq!(
        lines[5], *read,
        "a read-only transaction runs on the replica"
    );
    assert_eq!(lines[6], "3", "a hint names the server");
    let log = &lines[7..];
    let expect = [
        format!("db{read}: read, lag"),
        format!("db{read}: read, lag"),
        "db1: write".to_string(),
        "db1: write".to_string(),
        "db1: hint (route to primary)".to_string(),
        "db1: in transaction".to_string(),
        "db1: in transaction".to_string(),
        "db1: in transaction".to_string(),
        format!("db{read}: in read-only transaction"),
        format!("db{read}: in read-only transaction"),
        format!("db{read}: in read-only transaction"),
        "db3: hint (route to server db3)".to_string(),
    ];
    assert_eq!(log.len(), expect.len(), "{log:#?}");
    for (got, want) in log.iter().zip(&expect) {
        assert!(
            got.starts_with(want.as_str()),
            "{got:?} should start with {want:?}: {log:#?}"
        );
    }
}
