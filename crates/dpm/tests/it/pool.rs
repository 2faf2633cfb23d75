//! A server's connection pool (`persistpoolmax`, `persistmaxtime`): the server connection
//! of a session whose users dpm holds is reset and kept for the next session. Real
//! MariaDB, real `mariadb` CLI sessions (each connects, runs its statements, sends
//! COM_QUIT); what a session sees of the one before it is asked of the server itself.

use crate::support::*;
use std::time::Duration;

const STARTFILE: &str = "crates/dpm/tests/lua/pool.lua";
const APP_PASSWORD: &str = "app-pool-pw";

struct Pool {
    dpm: Dpm,
    port: u16,
}

/// dpm on one worker (one pool) in front of `backend_port`, keeping `max` connections
/// for `max_time` seconds.
fn start(max: usize, max_time: f64, customize: impl FnOnce(DpmBuilder) -> DpmBuilder) -> Pool {
    let port = free_port();
    let b = Dpm::builder(STARTFILE)
        .arg("--threads")
        .arg("1")
        .env("DPM_BACKEND", format!("127.0.0.1:{}", MariaDb::get().port))
        .env("DPM_BACKEND_USER", DEMO_USER)
        .env("DPM_BACKEND_PASSWORD", DEMO_PASSWORD)
        .env(
            "DPM_NATIVE_HASH",
            hash_password("mysql_native_password", APP_PASSWORD),
        )
        .env("DPM_POOL_MAX", max)
        .env("DPM_POOL_TIME", max_time)
        .env("DPM_PORT", port);
    let dpm = customize(b).spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    Pool { dpm, port }
}

impl Pool {
    /// One session of user app: `sql`'s rows, tab-separated, without column names.
    fn session(&self, db: Option<&str>, sql: &str) -> Result<String, String> {
        let mut cli = Cli::new(self.port)
            .user("app")
            .password(Some(APP_PASSWORD))
            .arg("-N");
        if let Some(db) = db {
            cli = cli.db(db);
        }
        let out = cli.run(sql);
        if out.success() {
            Ok(out.stdout.trim_end().to_string())
        } else {
            Err(out.stderr)
        }
    }

    fn ok(&self, db: Option<&str>, sql: &str) -> String {
        self.session(db, sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}\n{}", self.dpm.output()))
    }

    /// The server connection's id as the session sees it.
    fn connection_id(&self, db: Option<&str>) -> u64 {
        self.ok(db, "SELECT CONNECTION_ID()").parse().unwrap()
    }

    /// (idle, reused) of the server's pool. Asked in a session of its own schema
    /// (`mysql`): it takes (and leaves) a kept connection of its own, never one a test
    /// counts.
    fn pool(&self) -> (u64, u64) {
        let row = self.ok(Some("mysql"), "DPM POOL");
        let mut f = row.split('\t').map(|v| v.parse::<u64>().unwrap());
        (f.next().unwrap(), f.next().unwrap())
    }

    /// Waits until the pool holds `n` connections (a session's end is seen by dpm a
    /// moment after the client process exits).
    fn wait_idle(&self, n: u64) {
        wait_until(
            &format!("{n} kept connection(s)"),
            Duration::from_secs(10),
            || (self.pool().0 == n).then_some(()),
        );
    }
}

/// The next session gets the connection the last one left — reset: its transaction
/// rolled back, its user variables, temporary tables and session variables gone, the
/// login's schema current again.
#[test]
fn the_next_session_gets_the_last_ones_server_connection_reset() {
    let db = MariaDb::get();
    let table = unique_name("pool_t");
    db.direct_exec(&format!("CREATE TABLE {DB}.{table} (i INT) ENGINE=InnoDB"));
    let pool = start(2, 300.0, |b| b);
    let first = pool.ok(
        Some(DB),
        &format!(
            "SET @x = 42; SET SESSION sql_mode = 'ANSI_QUOTES'; \
             CREATE TEMPORARY TABLE pool_tmp (i INT); \
             BEGIN; INSERT INTO {table} VALUES (1); USE mysql; SELECT CONNECTION_ID();"
        ),
    );
    let first: u64 = first.parse().unwrap();
    pool.wait_idle(1);
    let seen = pool.ok(
        Some(DB),
        &format!(
            "SELECT CONNECTION_ID(), @x IS NULL, (SELECT COUNT(*) FROM {table}), DATABASE(), \
             @@SESSION.sql_mode = @@GLOBAL.sql_mode"
        ),
    );
    assert_eq!(
        seen,
        format!("{first}\t1\t0\t{DB}\t1"),
        "{}",
        pool.dpm.output()
    );
    let e = pool
        .session(Some(DB), "SELECT * FROM pool_tmp")
        .unwrap_err();
    assert!(e.contains("ERROR 1146") && e.contains("pool_tmp"), "{e}");
    assert_eq!(pool.connection_id(Some(DB)), first);
    // Three sessions after the first, each on the connection the last one left.
    wait_until("the reuses counted", Duration::from_secs(10), || {
        let (idle, reused) = pool.pool();
        (idle == 1 && reused >= 3).then_some(())
    });
    db.direct_exec(&format!("DROP TABLE {DB}.{table}"));
}

/// A kept connection serves only a login that matches it: another schema (or none)
/// gets a connection of its own, and each is kept in turn (up to persistpoolmax: 3 here,
/// for these two and the probe's).
#[test]
fn a_kept_connection_serves_only_a_login_with_its_schema() {
    let pool = start(3, 300.0, |b| b);
    let with_db = pool.connection_id(Some(DB));
    pool.wait_idle(1);
    let without = pool.ok(None, "SELECT CONNECTION_ID(), DATABASE() IS NULL");
    let (id, no_db) = without.split_once('\t').unwrap();
    assert_ne!(id.parse::<u64>().unwrap(), with_db);
    assert_eq!(no_db, "1", "a session without a schema sees none");
    pool.wait_idle(2);
    assert_eq!(pool.connection_id(Some(DB)), with_db);
    assert_eq!(pool.connection_id(None), id.parse::<u64>().unwrap());
}

/// A connection waits at most persistmaxtime, then dpm closes it (the server sees it
/// go); one the server closes meanwhile is dropped from the pool and the next session
/// gets a new one, without an error.
#[test]
fn kept_connections_expire_and_one_the_server_closed_is_not_handed_out() {
    let db = MariaDb::get();
    let pool = start(4, 1.0, |b| b);
    let first = pool.connection_id(Some(DB));
    pool.wait_idle(1);
    db.wait_connection_gone(first, Duration::from_secs(10));
    pool.wait_idle(0);
    let second = pool.connection_id(Some(DB));
    assert_ne!(second, first);
    pool.wait_idle(1);
    db.direct_exec(&format!("KILL {second}"));
    db.wait_connection_gone(second, Duration::from_secs(10));
    // dpm sees the kill only when the server's close reaches it: give it that moment.
    wait_until(
        "the killed connection dropped",
        Duration::from_secs(10),
        || (pool.pool().0 == 0).then_some(()),
    );
    let third = pool.connection_id(Some(DB));
    assert_ne!(third, second);
}

/// With persistpoolmax = 0 (the default) every session has its own server connection,
/// closed with it.
#[test]
fn without_a_pool_each_session_has_its_own_connection() {
    let db = MariaDb::get();
    let pool = start(0, 300.0, |b| b);
    let first = pool.connection_id(Some(DB));
    db.wait_connection_gone(first, Duration::from_secs(10));
    assert_ne!(pool.connection_id(Some(DB)), first);
    assert_eq!(pool.pool(), (0, 0));
}

/// Many sessions one after the other, over TLS to the server: all served, by the
/// connections the pool keeps.
#[test]
fn sessions_over_tls_to_the_server_reuse_the_kept_connections() {
    let tls_db = MariaDb::tls();
    let pool = start(2, 300.0, |b| {
        b.env("DPM_BACKEND", format!("127.0.0.1:{}", tls_db.port))
            .env("DPM_BACKEND_CA", tls_files().ca.to_str().unwrap())
    });
    let mut ids = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let row = pool.ok(
            Some(DB),
            "SELECT CONNECTION_ID(), VARIABLE_VALUE <> '' FROM information_schema.SESSION_STATUS \
             WHERE VARIABLE_NAME = 'Ssl_cipher'",
        );
        let (id, tls) = row.split_once('\t').unwrap();
        assert_eq!(tls, "1", "the kept connection is the TLS one");
        ids.insert(id.to_string());
    }
    assert!(ids.len() <= 2, "20 sessions used {} connections", ids.len());
    assert!(pool.pool().1 >= 18, "{:?}", pool.pool());
}

/// Bad pool settings stop the start with `FILE:LINE: message`.
#[test]
fn bad_pool_settings_are_startup_errors() {
    assert_start_fails_at_line_2(
        "dpm.server{ name = 'x', address = '127.0.0.1:1', persistpoolmax = -1 }",
        "dpm.server 'x': field 'persistpoolmax' must be an integer from 0 to 100000, not -1",
    );
    assert_start_fails_at_line_2(
        "dpm.server{ name = 'x', address = '127.0.0.1:1', persistmaxtime = 'long' }",
        "dpm.server 'x': field 'persistmaxtime' must be a number of seconds > 0, not string",
    );
}
