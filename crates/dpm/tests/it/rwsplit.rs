//! readwritesplit against a real GTID primary and two replicas under mariadbmon, with
//! real clients (the mariadb CLI, mysql_async): where statements land (checked with
//! `@@server_id`: 1 is the primary, 2 and 3 the replicas), session state on every
//! backend, pins, hints, the route log, and a replica lost between statements.

use crate::support::*;
use std::sync::OnceLock;
use std::time::Duration;

pub(crate) const APP_USER: &str = "rwapp";
pub(crate) const APP_PASSWORD: &str = "rwpass";

fn app_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_password("mysql_native_password", APP_PASSWORD))
}

/// dpm on tests/lua/rwsplit.lua in front of a primary and two replicas (`ports`), with
/// extra environment; returns it and its port once the monitor has found the roles.
pub(crate) fn rwsplit_dpm(ports: [u16; 3], extra: &[(&str, String)]) -> (Dpm, u16) {
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

/// [`rwsplit_dpm`] in front of the shared primary and two replicas ([`SharedReplication`]).
pub(crate) fn shared_dpm() -> (Dpm, u16) {
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
    assert_eq!(
        lines[2], "1",
        "a hint sends a read to the primary: {lines:?}"
    );
    assert_eq!(
        lines[3], "1",
        "a transaction runs on the primary: {lines:?}"
    );
    assert_eq!(
        lines[4], *read,
        "a read-only transaction runs on the replica"
    );
    assert_eq!(lines[5], "3", "a hint names the server");
    let log = &lines[6..];
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

/// The values a session's state shows on whatever server answers.
const STATE: &str = "SELECT @x, @@sql_mode, DATABASE(), @@character_set_client, @@autocommit";

#[test]
fn session_state_holds_on_every_backend_the_session_uses() {
    let (_dpm, port) = shared_dpm();
    let lines = session(
        port,
        &format!(
            "SET @x = 42;\n\
             SELECT @x, @@server_id;\n\
             SET SESSION sql_mode = 'ANSI_QUOTES';\n\
             USE mysql;\n\
             SET NAMES latin1;\n\
             {STATE}, @@server_id;\n\
             BEGIN;\n\
             {STATE}, @@server_id;\n\
             COMMIT;\n\
             /* dpm: route to server db2 */ {STATE}, @@server_id;\n\
             /* dpm: route to server db3 */ {STATE}, @@server_id;\n\
             PREPARE s FROM 'SELECT @x + 1';\n\
             EXECUTE s;\n\
             /* dpm: route to server db2 */ EXECUTE s;\n\
             /* dpm: route to server db3 */ EXECUTE s;\n\
             SHOW BACKENDS;\n"
        ),
    );
    let first: Vec<&str> = lines[0].split('\t').collect();
    assert_eq!(
        first[0], "42",
        "the history was replayed on the replica: {lines:?}"
    );
    let replica = first[1];
    assert!(replica == "2" || replica == "3", "{lines:?}");
    let state = "42\tANSI_QUOTES\tmysql\tlatin1\t1";
    for (line, server) in [(1, replica), (2, "1"), (3, "2"), (4, "3")] {
        assert_eq!(
            lines[line],
            format!("{state}\t{server}"),
            "the state on server {server}: {lines:#?}"
        );
    }
    assert_eq!(
        lines[5..8],
        ["43", "43", "43"],
        "SQL PREPARE on every backend"
    );
    let mut backends = lines[8..].to_vec();
    backends.sort();
    assert_eq!(
        backends,
        ["db1", "db2", "db3"],
        "one backend per server used"
    );
}

#[test]
fn what_cannot_be_replayed_pins_the_session_to_the_primary_and_says_why() {
    let (_dpm, port) = shared_dpm();
    let lines = session(
        port,
        "SELECT @@server_id;\n\
         CREATE TEMPORARY TABLE tt (a INT);\n\
         INSERT INTO tt VALUES (7);\n\
         SELECT a FROM tt;\n\
         SELECT @@server_id;\n\
         SHOW ROUTE LOG;\n\
         SHOW RWSPLIT;\n",
    );
    assert!(lines[0] == "2" || lines[0] == "3", "{lines:?}");
    assert_eq!(lines[1], "7", "the temporary table is read where it lives");
    assert_eq!(lines[2], "1", "pinned to the primary");
    let pinned = "db1: pinned since `CREATE TEMPORARY TABLE tt (a INT)` (temporary table)";
    assert!(
        lines[3].starts_with(&format!("db{}: read", lines[0])),
        "{lines:#?}"
    );
    assert_eq!(lines[4..8], [pinned; 4], "{lines:#?}");
    let diagnostics = &lines[8];
    assert!(
        diagnostics.contains(r#""sessions_pinned_now":1"#),
        "{diagnostics}"
    );
    assert!(diagnostics.contains(r#""pinned":4"#), "{diagnostics}");
}

#[test]
fn autocommit_off_keeps_statements_on_the_primary_and_last_insert_id_answers_as_on_one_server() {
    let (_dpm, port) = shared_dpm();
    let lines = session(
        port,
        "CREATE TABLE IF NOT EXISTS rw_auto (id INT AUTO_INCREMENT PRIMARY KEY, v INT);\n\
         INSERT INTO rw_auto (v) VALUES (1);\n\
         SELECT LAST_INSERT_ID() = (SELECT MAX(id) FROM rw_auto), @@server_id;\n\
         SELECT @@server_id;\n\
         SET autocommit = 0;\n\
         SELECT @@server_id;\n\
         COMMIT;\n\
         SET autocommit = 1;\n\
         SELECT @@server_id;\n",
    );
    assert_eq!(
        lines[0], "1\t1",
        "LAST_INSERT_ID() where the insert ran: {lines:?}"
    );
    assert_ne!(lines[1], "1", "a read on a replica");
    assert_eq!(lines[2], "1", "autocommit off: on the primary");
    assert_eq!(
        lines[3], lines[1],
        "autocommit on again: back on the replica"
    );
}

/// Binary prepared statements are prepared on every backend (a backend opened later
/// prepares them when it replays the history), and each execute runs where its SQL would
/// as a query: reads on a replica, writes on the primary, hints obeyed. The client sees
/// dpm's statement ids; each backend gets its own.
#[tokio::test]
async fn binary_prepared_statements_are_prepared_everywhere_and_run_where_their_sql_would() {
    use mysql_async::prelude::*;
    let r = SharedReplication::get();
    r.primary.direct_exec(&format!(
        "CREATE TABLE IF NOT EXISTS {DB}.ps_rw (id INT AUTO_INCREMENT PRIMARY KEY, v INT)"
    ));
    let (_dpm, port) = shared_dpm();
    let mut c = connect_with(opts_as(port, APP_USER, APP_PASSWORD)).await;
    // Prepared while the session has only its first backend (on the primary).
    let read = c.prep("SELECT ? + 1, @@server_id").await.unwrap();
    let write = c
        .prep(format!("INSERT INTO {DB}.ps_rw (v) VALUES (?)"))
        .await
        .unwrap();
    let on = |server: u32| format!("/* dpm: route to server db{server} */ SELECT ?, @@server_id");
    let on2 = c.prep(on(2)).await.unwrap();
    let on3 = c.prep(on(3)).await.unwrap();
    let mut ids = vec![read.id(), write.id(), on2.id(), on3.id()];
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "one id per statement: {ids:?}");
    let mut replica = None;
    for i in 0..3i64 {
        let row: Option<(i64, u32)> = c.exec_first(&read, (i,)).await.unwrap();
        let (value, server) = row.unwrap();
        assert_eq!(value, i + 1);
        assert_ne!(server, 1, "a prepared read runs on a replica");
        assert_eq!(
            *replica.get_or_insert(server),
            server,
            "on the session's replica"
        );
        c.exec_drop(&write, (i,)).await.unwrap();
        assert_eq!(c.affected_rows(), 1, "a prepared write runs on the primary");
        assert!(c.last_insert_id().is_some_and(|id| id > 0));
        for (stmt, server) in [(&on2, 2u32), (&on3, 3)] {
            let row: Option<(i64, u32)> = c.exec_first(stmt, (i,)).await.unwrap();
            assert_eq!(row, Some((i, server)), "a hint in a prepared statement");
        }
    }
    let last: u64 = c
        .query_first("SELECT LAST_INSERT_ID()")
        .await
        .unwrap()
        .unwrap();
    let written: u64 = c
        .query_first(format!(
            "SELECT /* dpm: route to primary */ MAX(id) FROM {DB}.ps_rw"
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last, written, "the writes ran on the primary");
    // Closed everywhere; a statement prepared now, with every backend open, gets a new id.
    c.close(read).await.unwrap();
    let again = c.prep("SELECT ? * 2, @@server_id").await.unwrap();
    assert!(!ids.contains(&again.id()), "ids are not reused");
    let row: Option<(i64, u32)> = c.exec_first(&again, (21,)).await.unwrap();
    assert_eq!(row.map(|r| r.0), Some(42));
    c.disconnect().await.unwrap();
}

/// A statement that only the primary can prepare (its table is not on the replicas):
/// the replicas' backends, where it failed, leave the session, no replica backend can be
/// given it, and its reads run on the primary — the client sees no error.
#[tokio::test]
async fn a_statement_the_replicas_cannot_prepare_runs_on_the_primary() {
    use mysql_async::prelude::*;
    let r = SharedReplication::get();
    r.primary.direct_exec(&format!(
        "SET sql_log_bin = 0; CREATE TABLE IF NOT EXISTS {DB}.ps_primary_only (a INT); \
         DELETE FROM {DB}.ps_primary_only; INSERT INTO {DB}.ps_primary_only VALUES (7)"
    ));
    let (_dpm, port) = shared_dpm();
    let mut c = connect_with(opts_as(port, APP_USER, APP_PASSWORD)).await;
    // A backend on each replica first.
    for server in [2u32, 3] {
        let sql = format!("SELECT /* dpm: route to server db{server} */ @@server_id");
        let id: Option<u32> = c.query_first(sql).await.unwrap();
        assert_eq!(id, Some(server));
    }
    let sql = format!("SELECT a + ?, @@server_id FROM {DB}.ps_primary_only");
    let stmt = c.prep(sql).await.unwrap();
    for i in 0..3i64 {
        let row: Option<(i64, u32)> = c.exec_first(&stmt, (i,)).await.unwrap();
        assert_eq!(row, Some((7 + i, 1)), "read on the primary");
    }
    // The session goes on reading text queries (from the primary now, or a replica
    // backend opened again once its prepare can succeed: not here).
    let id: Option<u32> = c.query_first("SELECT @@server_id").await.unwrap();
    assert!(id.is_some());
    c.disconnect().await.unwrap();
}

/// A session command inside a read-only transaction on a replica runs there first (and
/// on every other backend), not on the primary: the transaction stays where it is, and
/// its COMMIT ends it there.
#[test]
fn a_session_command_in_a_read_only_transaction_leaves_it_where_it_is() {
    let (_dpm, port) = shared_dpm();
    let lines = session(
        port,
        "SELECT @@server_id;\n\
         START TRANSACTION READ ONLY;\n\
         SELECT @@server_id, @@in_transaction;\n\
         SET @x = 5;\n\
         SELECT @@server_id, @@in_transaction, @x;\n\
         COMMIT;\n\
         /* dpm: route to server db2 */ SELECT @@in_transaction, @x;\n\
         /* dpm: route to server db3 */ SELECT @@in_transaction, @x;\n\
         /* dpm: route to server db1 */ SELECT @@in_transaction, @x;\n",
    );
    let replica = lines[0].clone();
    assert!(replica == "2" || replica == "3", "{lines:?}");
    assert_eq!(
        lines[1],
        format!("{replica}\t1"),
        "the transaction on the replica: {lines:?}"
    );
    assert_eq!(
        lines[2],
        format!("{replica}\t1\t5"),
        "still in it after SET: {lines:?}"
    );
    assert_eq!(
        lines[3..6],
        ["0\t5", "0\t5", "0\t5"],
        "COMMIT ended it; @x everywhere: {lines:?}"
    );
}

/// COM_RESET_CONNECTION drops the session's prepared statements on every backend;
/// statements prepared after it work everywhere, with new ids.
#[tokio::test]
async fn prepared_statements_after_a_reset_connection_work_on_every_backend() {
    use mysql_async::prelude::*;
    let (_dpm, port) = shared_dpm();
    let mut c = connect_with(opts_as(port, APP_USER, APP_PASSWORD)).await;
    let before = c.prep("SELECT ? + 1, @@server_id").await.unwrap();
    let row: Option<(i64, u32)> = c.exec_first(&before, (1,)).await.unwrap();
    assert!(row.is_some_and(|(v, s)| v == 2 && s != 1), "{row:?}");
    c.reset().await.unwrap();
    let after = c.prep("SELECT ? + 2, @@server_id").await.unwrap();
    assert_ne!(after.id(), before.id(), "a new id");
    for i in 0..3i64 {
        let row: Option<(i64, u32)> = c.exec_first(&after, (i,)).await.unwrap();
        assert!(row.is_some_and(|(v, s)| v == i + 2 && s != 1), "{row:?}");
        let on = "/* dpm: route to primary */ SELECT ? * 3, @@server_id";
        let row: Option<(i64, u32)> = c.exec_first(on, (i,)).await.unwrap();
        assert_eq!(row, Some((i * 3, 1)));
    }
    c.disconnect().await.unwrap();
}

#[test]
fn a_session_without_a_proxy_held_user_stays_on_its_one_backend_and_says_why() {
    let r = SharedReplication::get();
    let pass_port = free_port();
    let (_dpm, _) = rwsplit_dpm(
        [r.primary.port, r.replica.port, r.replica2.port],
        &[("DPM_PASS_PORT", pass_port.to_string())],
    );
    let out = Cli::new(pass_port)
        .user(USER)
        .password(Some(PASSWORD))
        .db(DB)
        .arg("--skip-column-names")
        .run_stdin("SELECT @@server_id;\nSHOW ROUTE LOG;\n");
    out.assert_success("a pass-through session");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "1", "{lines:?}");
    assert!(
        lines[1].starts_with("db1: read, stays on the current server (dpm cannot log in"),
        "{lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lagging_replica_is_left_and_a_killed_one_costs_the_client_no_error() {
    use mysql_async::prelude::*;
    let set = ReplicaSet::start(2, 60);
    let ports = [set.primary.port, set.replicas[0].port, set.replicas[1].port];
    let (dpm, port) = rwsplit_dpm(ports, &[("DPM_MAX_LAG", "5".to_string())]);
    let mut c = connect_with(opts_as(port, APP_USER, APP_PASSWORD)).await;
    let first = server_id(&mut c).await;
    assert!(first == 61 || first == 62, "a replica: {first}");
    let (lagging, other) = match first {
        61 => (&set.replicas[0], 62),
        _ => (&set.replicas[1], 61),
    };
    // Its SQL thread stopped, the replica falls behind with every write; the monitor
    // reports no lag figure for it, and readwritesplit leaves it.
    lagging.direct_exec("STOP SLAVE SQL_THREAD");
    c.query_drop("CREATE TABLE IF NOT EXISTS rw_lag (id INT PRIMARY KEY)")
        .await
        .unwrap();
    c.query_drop("REPLACE INTO rw_lag VALUES (1)")
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while server_id(&mut c).await != other {
        assert!(
            std::time::Instant::now() < deadline,
            "reads did not leave the lagging replica"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    lagging.direct_exec("START SLAVE SQL_THREAD");
    // The replica in use dies between two statements: the next read goes elsewhere,
    // and the client sees no error.
    let dead = if other == 61 {
        &set.replicas[0]
    } else {
        &set.replicas[1]
    };
    dead.kill();
    for _ in 0..5 {
        let id = server_id(&mut c).await;
        assert_ne!(id, other, "not the dead replica");
    }
    let log: Vec<String> = c.query("SHOW ROUTE LOG").await.unwrap();
    let last = log.last().expect("a route log");
    assert!(
        last == "db1: read, no replica usable"
            || last.starts_with(&format!("db{}: read", first - 59)),
        "the primary or the replica that caught up: {log:#?}"
    );
    let diagnostics: String = c.query_first("SHOW RWSPLIT").await.unwrap().unwrap();
    assert!(
        diagnostics.contains(r#""backends_lost":1"#),
        "{diagnostics}"
    );
    c.disconnect().await.unwrap();
    drop(dpm);
}

/// `@@server_id` of whichever server answers a read of `c`'s session.
async fn server_id(c: &mut mysql_async::Conn) -> u32 {
    use mysql_async::prelude::*;
    c.query_first("SELECT @@server_id").await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_whose_replica_dies_before_answering_is_answered_by_another_server() {
    use mysql_async::prelude::*;
    let set = ReplicaSet::start(2, 70);
    let ports = [set.primary.port, set.replicas[0].port, set.replicas[1].port];
    let (_dpm, port) = rwsplit_dpm(ports, &[]);
    let mut c = connect_with(opts_as(port, APP_USER, APP_PASSWORD)).await;
    let first = server_id(&mut c).await;
    let dying = match first {
        71 => &set.replicas[0],
        72 => &set.replicas[1],
        other => panic!("a read on a replica, not {other}"),
    };
    let slow = c.query_first::<(i64, u32), _>("SELECT SLEEP(4), @@server_id");
    let kill = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        tokio::task::block_in_place(|| dying.kill());
    };
    let (answer, ()) = tokio::join!(slow, kill);
    let (slept, by) = answer
        .expect("the read is answered, not failed")
        .expect("a row");
    assert_eq!(slept, 0);
    assert_ne!(by, first, "answered by another server");
    let diagnostics: String = c.query_first("SHOW RWSPLIT").await.unwrap().unwrap();
    assert!(
        diagnostics.contains(r#""reads_retried_elsewhere":1"#),
        "{diagnostics}"
    );
    c.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_while_the_primary_is_failing_over_waits_for_the_new_one() {
    use mysql_async::prelude::*;
    let set = ReplicaSet::start(2, 80);
    let ports = [set.primary.port, set.replicas[0].port, set.replicas[1].port];
    let extra = [
        ("DPM_AUTO_FAILOVER", "1".to_string()),
        ("DPM_REPL_USER", REPL_USER.to_string()),
        ("DPM_REPL_PASSWORD", REPL_PASSWORD.to_string()),
    ];
    let (dpm, port) = rwsplit_dpm(ports, &extra);
    let mut c = connect_with(opts_as(port, APP_USER, APP_PASSWORD)).await;
    c.query_drop("SET @who = 'rw'").await.unwrap();
    c.query_drop("CREATE TABLE IF NOT EXISTS rw_failover (id INT PRIMARY KEY, who VARCHAR(8))")
        .await
        .unwrap();
    c.query_drop("INSERT INTO rw_failover VALUES (1, @who)")
        .await
        .unwrap();
    let read = server_id(&mut c).await;
    assert_ne!(read, 80, "a read on a replica");
    // A second session has a write running on the primary when it dies: the write may
    // or may not have been applied, so it is not run again; its client hears that.
    let mut writer = connect_with(opts_as(port, APP_USER, APP_PASSWORD)).await;
    let in_flight =
        writer.query_drop("UPDATE rw_failover SET who = 'x' WHERE id = 1 AND SLEEP(5) = 0");
    let kill = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        tokio::task::block_in_place(|| set.primary.kill());
    };
    let (lost, ()) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(15), in_flight),
        kill
    );
    let lost = lost.expect("the client of the lost write is answered, not left hanging");
    assert!(
        lost.is_err(),
        "a write in flight on a dead primary is an error: {lost:?}"
    );
    // The write waits (delayed_retry_timeout, 10 s) for the monitor to promote a
    // replica, then runs there, with the session's state replayed.
    let started = std::time::Instant::now();
    c.query_drop("INSERT INTO rw_failover VALUES (2, @who)")
        .await
        .expect("the write waits for the new primary instead of failing");
    let waited = started.elapsed();
    dpm.wait_for_line("server event new_primary", Duration::from_secs(1));
    c.query_drop("BEGIN").await.unwrap();
    let (rows, primary): (i64, u32) = c
        .query_first("SELECT COUNT(*), @@server_id FROM rw_failover WHERE who = 'rw'")
        .await
        .unwrap()
        .unwrap();
    c.query_drop("COMMIT").await.unwrap();
    assert_eq!(rows, 2, "both writes, the second on the new primary");
    assert!(primary == 81 || primary == 82, "the new primary: {primary}");
    assert!(waited < Duration::from_secs(10), "waited {waited:?}");
    c.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn causal_reads_see_the_sessions_own_write_or_run_on_the_primary() {
    use mysql_async::prelude::*;
    let set = ReplicaSet::start(2, 90);
    let ports = [set.primary.port, set.replicas[0].port, set.replicas[1].port];
    let (_causal, port) = rwsplit_dpm(ports, &[("DPM_CAUSAL_TIMEOUT", "3000".to_string())]);
    let (_plain, plain_port) = rwsplit_dpm(ports, &[]);
    let mut c = connect_with(opts_as(port, APP_USER, APP_PASSWORD)).await;
    let mut plain = connect_with(opts_as(plain_port, APP_USER, APP_PASSWORD)).await;
    c.query_drop("CREATE TABLE IF NOT EXISTS rw_causal (id INT PRIMARY KEY)")
        .await
        .unwrap();
    let count = |id: i32| format!("SELECT COUNT(*), @@server_id FROM rw_causal WHERE id = {id}");
    // Replicas applying: the read waits for its replica to apply the write, then runs there.
    c.query_drop("INSERT INTO rw_causal VALUES (1)")
        .await
        .unwrap();
    let (seen, by): (i64, u32) = c.query_first(count(1)).await.unwrap().unwrap();
    assert_eq!(seen, 1, "read your own write");
    assert_ne!(by, 90, "on a replica");
    let log: Vec<String> = c.query("SHOW ROUTE LOG").await.unwrap();
    assert!(log.last().unwrap().ends_with(", causal"), "{log:#?}");
    // Replicas not applying: without causal reads the write is not seen on a replica;
    // with them, the read gives up on the replica after causal_reads_timeout and runs on
    // the primary.
    for r in &set.replicas {
        r.direct_exec("STOP SLAVE SQL_THREAD");
    }
    plain
        .query_drop("INSERT INTO rw_causal VALUES (2)")
        .await
        .unwrap();
    let (seen, by): (i64, u32) = plain.query_first(count(2)).await.unwrap().unwrap();
    assert_eq!(
        (seen, by == 90),
        (0, false),
        "a plain read on a stale replica"
    );
    c.query_drop("INSERT INTO rw_causal VALUES (3)")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let (seen, by): (i64, u32) = c.query_first(count(3)).await.unwrap().unwrap();
    assert_eq!((seen, by), (1, 90), "the causal read ran on the primary");
    assert!(started.elapsed() >= Duration::from_millis(3000));
    let log: Vec<String> = c.query("SHOW ROUTE LOG").await.unwrap();
    let last = log.last().unwrap();
    assert!(
        last.starts_with("db1: read, causal: the replica had not applied"),
        "{log:#?}"
    );
    // The replicas have still not applied the write: the next read waits again (and
    // runs on the primary again) rather than read a stale replica.
    let (seen, by): (i64, u32) = c.query_first(count(3)).await.unwrap().unwrap();
    assert_eq!((seen, by), (1, 90), "the next read still sees the write");
    for r in &set.replicas {
        r.direct_exec("START SLAVE SQL_THREAD");
    }
    c.disconnect().await.unwrap();
    plain.disconnect().await.unwrap();
}

/// The Python client transcripts (PyMySQL, MariaDB Connector/Python with the binary
/// protocol, a raw protocol client with DEPRECATE_EOF on and off) through readwritesplit
/// with causal reads are those of a direct connection to the primary. Per-connection
/// server state differs: mariadb_connector.py sums the session's `Com_stmt_*` counters
/// over its backends on every server (each prepares every statement; the executes are
/// spread), and checks them itself; that line is left out of the comparison.
#[test]
fn python_clients_through_readwritesplit_behave_as_on_the_primary() {
    let r = SharedReplication::get();
    let ports = [r.primary.port, r.replica.port, r.replica2.port];
    let (_dpm, port) = rwsplit_dpm(ports, &[("DPM_CAUSAL_TIMEOUT", "10000".to_string())]);
    for (script, extra) in TRANSCRIPT_SCRIPTS {
        let run = |port, user, password, more: &[&str]| {
            let mut args = python_conn_args(port, user, password);
            args.extend(extra.iter().chain(more).map(|s| s.to_string()));
            python(script, &args, Duration::from_secs(120))
        };
        let spread = ["--status-servers", "db1,db2,db3"];
        let more: &[&str] = if script == "mariadb_connector.py" {
            &spread
        } else {
            &[]
        };
        let via = run(port, APP_USER, APP_PASSWORD, more);
        via.assert_success(&format!("{script} through readwritesplit"));
        let direct = run(r.primary.port, USER, PASSWORD, &[]);
        direct.assert_success(&format!("{script} on the primary"));
        let comparable = |out: &str| -> Vec<String> {
            out.lines()
                .filter(|l| more.is_empty() || !l.starts_with("session status:"))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(
            comparable(&via.stdout),
            comparable(&direct.stdout),
            "{script} {extra:?}: transcripts differ"
        );
    }
}

/// sysbench through readwritesplit with no filter in the chain (replies pass unseen, as
/// in production): oltp_read_write (its transactions on the primary) and
/// oltp_read_only without transactions (its reads on the replicas), 4 threads, text
/// protocol and binary prepared statements: no errors, and afterwards the table is the same on every server.
#[test]
fn sysbench_through_readwritesplit_has_no_errors_and_leaves_the_servers_consistent() {
    use crate::sysbench::{stat, sysbench_as};
    let r = SharedReplication::get();
    let ports = [r.primary.port, r.replica.port, r.replica2.port];
    let (_dpm, port) = rwsplit_dpm(ports, &[("DPM_NO_FILTER", "1".to_string())]);
    r.primary
        .direct_exec("DROP DATABASE IF EXISTS sbtest_rw; CREATE DATABASE sbtest_rw;");
    let app = (APP_USER, APP_PASSWORD);
    let bench = |args: &[&str]| sysbench_as(port, app, "sbtest_rw", args, Duration::from_secs(120));
    bench(&["oltp_read_write", "prepare"]).assert_success("sysbench prepare");
    let selects = |db: &MariaDb| -> u64 {
        let out = db.direct_exec("SHOW GLOBAL STATUS LIKE 'Com_select'");
        out.split_whitespace().last().unwrap().parse().unwrap()
    };
    let replica_selects = selects(&r.replica) + selects(&r.replica2);
    let executes = |db: &MariaDb| -> u64 {
        let out = db.direct_exec("SHOW GLOBAL STATUS LIKE 'Com_stmt_execute'");
        out.split_whitespace().last().unwrap().parse().unwrap()
    };
    let replica_executes = executes(&r.replica) + executes(&r.replica2);
    for (test, extra, ps) in [
        ("oltp_read_write", "--index_updates=0", "disable"),
        ("oltp_read_only", "--skip_trx=on", "disable"),
        // Binary prepared statements (sysbench sends the parameter types once).
        ("oltp_read_write", "--index_updates=0", "auto"),
        ("oltp_read_only", "--skip_trx=on", "auto"),
    ] {
        let ps = format!("--db-ps-mode={ps}");
        let run = bench(&[
            "--threads=4",
            "--time=4",
            &ps,
            "--non_index_updates=0",
            extra,
            test,
            "run",
        ]);
        run.assert_success(&format!("sysbench {test} {ps}"));
        let transactions = stat(&run.stdout, "transactions");
        let errors = stat(&run.stdout, "ignored errors");
        let reconnects = stat(&run.stdout, "reconnects");
        assert!(transactions > 0, "{run}");
        assert_eq!((errors, reconnects), (0, 0), "{test}: {run}");
    }
    let replica_reads = selects(&r.replica) + selects(&r.replica2) - replica_selects;
    assert!(
        replica_reads > 1000,
        "the replicas took the reads: {replica_reads}"
    );
    let replica_executes = executes(&r.replica) + executes(&r.replica2) - replica_executes;
    assert!(
        replica_executes > 1000,
        "the replicas ran prepared reads: {replica_executes}"
    );
    // Every server ends with the same table once the replicas applied everything.
    let position = r.primary.direct_exec("SELECT @@gtid_binlog_pos");
    let checksum = "CHECKSUM TABLE sbtest_rw.sbtest1";
    let on_primary = r.primary.direct_exec(checksum);
    for replica in [&r.replica, &r.replica2] {
        let waited = replica.direct_exec(&format!(
            "SELECT MASTER_GTID_WAIT('{}', 30)",
            position.trim()
        ));
        assert_eq!(waited.trim(), "0", "the replica caught up");
        assert_eq!(replica.direct_exec(checksum), on_primary);
    }
}

#[test]
fn a_session_whose_history_overflowed_stays_where_it_is_and_counts_come_back_to_zero() {
    let r = SharedReplication::get();
    let ports = [r.primary.port, r.replica.port, r.replica2.port];
    let (_dpm, port) = rwsplit_dpm(ports, &[("DPM_HISTORY", "2".to_string())]);
    let lines = session(
        port,
        "SET @a = 1;\n\
         SET @b = 2;\n\
         SET @c = 3;\n\
         SELECT @a, @b, @c, @@server_id;\n\
         SHOW ROUTE LOG;\n",
    );
    assert_eq!(lines[0], "1\t2\t3\t1", "all on the primary: {lines:#?}");
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with("db1: read, stays on the current server"),
        "{lines:#?}"
    );
    // Once sessions have closed, no server counts a backend of theirs.
    session(port, "SELECT 1;\nBEGIN;\nSELECT 1;\nCOMMIT;\n");
    let lines = session(port, "SHOW RWSPLIT;\n");
    let diagnostics: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    let by_server: Vec<(String, u64)> = diagnostics["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["sessions"].as_u64().unwrap(),
            )
        })
        .collect();
    // This session's one backend, on the primary; nothing left of the others.
    let mut by_server = by_server;
    by_server.sort();
    assert_eq!(
        by_server,
        [
            ("db1".to_string(), 1),
            ("db2".to_string(), 0),
            ("db3".to_string(), 0)
        ],
        "{diagnostics}"
    );
}

#[tokio::test]
async fn change_user_gives_a_clean_session_on_every_server_it_uses_next() {
    use mysql_async::prelude::*;
    use mysql_async::ChangeUserOpts;
    let (_dpm, port) = shared_dpm();
    let mut c = connect_with(opts_as(port, APP_USER, APP_PASSWORD)).await;
    c.query_drop("SET @marker = 42").await.unwrap();
    let (marker, read): (Option<i64>, u32) = c
        .query_first("SELECT @marker, @@server_id")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(marker, Some(42), "replayed on the replica");
    assert_ne!(read, 1);
    let opts = ChangeUserOpts::default()
        .with_user(Some(APP_USER.to_string()))
        .with_pass(Some(APP_PASSWORD.to_string()))
        .with_db_name(Some(DB.to_string()));
    c.change_user(opts).await.expect("COM_CHANGE_USER");
    for sql in [
        "SELECT @marker, @@server_id",
        "SELECT @marker, @@server_id -- dpm: route to primary",
    ] {
        let (marker, _): (Option<i64>, u32) = c.query_first(sql).await.unwrap().unwrap();
        assert_eq!(marker, None, "{sql}: the old session's state is gone");
    }
    let backends: Vec<String> = c.query("SHOW BACKENDS").await.unwrap();
    assert!(
        backends.len() <= 2,
        "the old backends were closed: {backends:?}"
    );
    c.disconnect().await.unwrap();
}

/// Pipelined commands that the session runs on different servers are answered whole
/// and in order (tests/python/pipelined_rwsplit.py).
#[test]
fn pipelined_commands_across_servers_are_answered_in_order() {
    let (_dpm, port) = shared_dpm();
    let out = python(
        "pipelined_rwsplit.py",
        &python_conn_args(port, APP_USER, APP_PASSWORD),
        Duration::from_secs(60),
    );
    out.assert_success("pipelined_rwsplit.py");
    let lines: Vec<&str> = out.stdout.lines().collect();
    let replica = lines[0].rsplit(' ').next().unwrap();
    assert!(lines[0].starts_with("1: 0 on "), "{out}");
    assert!(replica == "2" || replica == "3", "{out}");
    assert_eq!(lines[1], "2: hinted on 1", "{out}");
    assert_eq!(lines[2], "3: OK", "{out}");
    assert_eq!(lines[3], format!("4: 7 on {replica}"), "{out}");
}

/// The environment of a readwritesplit that fails over (and replays transactions).
fn failover_env(replay: bool) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("DPM_AUTO_FAILOVER", "1".to_string()),
        ("DPM_REPL_USER", REPL_USER.to_string()),
        ("DPM_REPL_PASSWORD", REPL_PASSWORD.to_string()),
    ];
    if replay {
        env.push(("DPM_REPLAY", "1".to_string()));
    }
    env
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transaction_lost_with_its_primary_is_replayed_or_ends_in_an_error() {
    use mysql_async::prelude::*;
    let set = ReplicaSet::start(2, 100);
    let ports = [set.primary.port, set.replicas[0].port, set.replicas[1].port];
    let (dpm, port) = rwsplit_dpm(ports, &failover_env(true));
    let servers = [&set.primary, &set.replicas[0], &set.replicas[1]];
    let mut c = connect_with(opts_as(port, APP_USER, APP_PASSWORD)).await;
    c.query_drop("CREATE TABLE rw_replay (id INT PRIMARY KEY, v INT)")
        .await
        .unwrap();
    c.query_drop("CREATE TABLE rw_lonely (id INT)")
        .await
        .unwrap();
    c.query_drop("INSERT INTO rw_replay VALUES (1, 10)")
        .await
        .unwrap();
    // 1. The primary dies between two statements of a transaction: the transaction is
    //    replayed on the new primary (the same answers) and the client goes on.
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("INSERT INTO rw_replay VALUES (2, 20)")
        .await
        .unwrap();
    let sum: i64 = c
        .query_first("SELECT SUM(v) FROM rw_replay")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sum, 30);
    tokio::task::block_in_place(|| set.primary.kill());
    c.query_drop("INSERT INTO rw_replay VALUES (3, 30)")
        .await
        .expect("the transaction goes on on the new primary");
    let (sum, primary): (i64, u32) = c
        .query_first("SELECT SUM(v), @@server_id FROM rw_replay")
        .await
        .unwrap()
        .unwrap();
    c.query_drop("COMMIT").await.unwrap();
    assert_eq!(sum, 60, "every statement of the transaction, once");
    assert!(
        primary == 101 || primary == 102,
        "the new primary: {primary}"
    );
    dpm.wait_for_line("transaction replayed", Duration::from_secs(1));
    let log: Vec<String> = c.query("SHOW ROUTE LOG").await.unwrap();
    assert!(
        log.iter()
            .any(|l| l.ends_with(": the transaction, lost with its server, replayed here")),
        "{log:#?}"
    );
    // 2. The new primary dies in a transaction whose answers the last server would not
    //    repeat (a row written on the primary alone, not replicated): the replay sees a
    //    different count, and the client gets an error instead of a wrong answer.
    let new_primary = servers
        .iter()
        .find(|s| s.port == ports[(primary - 100) as usize])
        .unwrap();
    new_primary.direct_exec(&format!(
        "SET sql_log_bin = 0; INSERT INTO {DB}.rw_lonely VALUES (1)"
    ));
    c.query_drop("BEGIN").await.unwrap();
    let n: i64 = c
        .query_first("SELECT COUNT(*) FROM rw_lonely")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 1);
    tokio::task::block_in_place(|| new_primary.kill());
    let err = c
        .query_drop("INSERT INTO rw_replay VALUES (4, 40)")
        .await
        .expect_err("a replay with other answers is an error");
    let text = err.to_string();
    assert!(
        text.contains("1927") && text.contains("answered differently"),
        "{text}"
    );
    let _ = c.disconnect().await;
}

/// `kill -9` of the primary during sysbench oltp_read_write (binary prepared statements,
/// sysbench's default) through readwritesplit with transaction_replay and auto_failover: the transactions in the middle are replayed on
/// the new primary and no session is lost; only a COMMIT in flight gets an error (ERR
/// 1180: whether it committed cannot be known, so it is not replayed; the session goes
/// on); afterwards the new primary and the remaining replica hold the same table, with
/// every row sysbench's DELETE+INSERT pairs keep. 20,000 rows, uniformly chosen, and
/// point selects only (`--range_selects=off`): a replayed transaction whose reads saw
/// rows another session has committed since answers differently and ends in an error,
/// by design, and sysbench's default hot-spot distribution and 100-row ranges make
/// that likely with four threads.
#[test]
fn sysbench_survives_a_killed_primary_with_transaction_replay() {
    use crate::sysbench::{stat, sysbench_as};
    let set = ReplicaSet::start(2, 110);
    let ports = [set.primary.port, set.replicas[0].port, set.replicas[1].port];
    let mut env = failover_env(true);
    env.push(("DPM_NO_FILTER", "1".to_string()));
    let (dpm, port) = rwsplit_dpm(ports, &env);
    set.primary
        .direct_exec("DROP DATABASE IF EXISTS sbtest_replay; CREATE DATABASE sbtest_replay;");
    let app = (APP_USER, APP_PASSWORD);
    let bench =
        |args: &[&str]| sysbench_as(port, app, "sbtest_replay", args, Duration::from_secs(120));
    bench(&["--table-size=20000", "oltp_read_write", "prepare"]).assert_success("sysbench prepare");
    let run = std::thread::scope(|scope| {
        let run = scope.spawn(|| {
            bench(&[
                "--threads=4",
                "--time=12",
                "--table-size=20000",
                "--range_selects=off",
                "--rand-type=uniform",
                "--db-ps-mode=auto",
                "--index_updates=0",
                "--non_index_updates=0",
                "--mysql-ignore-errors=1180",
                "oltp_read_write",
                "run",
            ])
        });
        std::thread::sleep(Duration::from_secs(4));
        set.primary.kill();
        run.join().unwrap()
    });
    run.assert_success("sysbench through the failover");
    let transactions = stat(&run.stdout, "transactions");
    let errors = stat(&run.stdout, "ignored errors");
    let reconnects = stat(&run.stdout, "reconnects");
    let output = dpm.output();
    let replayed = output.matches("transaction replayed").count();
    let failed = output.matches("could not be replayed").count();
    let commits_cut = output.matches("the server died during COMMIT").count();
    eprintln!(
        "sysbench: {transactions} transactions, {errors} errors, {reconnects} reconnects; \
         {replayed} transactions replayed, {failed} failed, {commits_cut} COMMITs cut"
    );
    assert!(transactions > 0, "{run}");
    assert!(replayed >= 1, "some transaction was replayed:\n{output}");
    assert_eq!(failed, 0, "no replay answered differently:\n{output}");
    assert_eq!(
        errors as usize, commits_cut,
        "the only errors: COMMITs cut\n{run}\n{output}"
    );
    assert_eq!(reconnects, 0, "no session was lost\n{run}");
    // The new primary and the other replica agree, and every row is there.
    let (primary, replica) = {
        let promoted = |m: &MariaDb| m.direct_exec("SELECT @@read_only").trim() == "0";
        if promoted(&set.replicas[0]) {
            (&set.replicas[0], &set.replicas[1])
        } else {
            (&set.replicas[1], &set.replicas[0])
        }
    };
    let position = primary.direct_exec("SELECT @@gtid_binlog_pos");
    let waited = replica.direct_exec(&format!(
        "SELECT MASTER_GTID_WAIT('{}', 30)",
        position.trim()
    ));
    assert_eq!(
        waited.trim(),
        "0",
        "the replica caught up with the new primary"
    );
    let checksum = "CHECKSUM TABLE sbtest_replay.sbtest1";
    assert_eq!(primary.direct_exec(checksum), replica.direct_exec(checksum));
    let rows = primary.direct_exec("SELECT COUNT(*) FROM sbtest_replay.sbtest1");
    assert_eq!(rows.trim(), "20000");
}
