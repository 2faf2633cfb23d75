//! Real MariaDB servers: the shared plain one of most tests ([`MariaDb::get`]), one
//! that offers TLS ([`MariaDb::tls`]), replication pairs and sets.

use super::{free_port, run_bounded, wait_until, ProcOutput};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The ordinary test account (mysql_native_password, ALL on *.*).
pub const USER: &str = "dpm";
pub const PASSWORD: &str = "dpmpass";
/// A second mysql_native_password account (ALL on dpmtest.*), for COM_CHANGE_USER.
pub const OTHER_USER: &str = "other";
pub const OTHER_PASSWORD: &str = "otherpass";
/// An ed25519 account (ALL on dpmtest.*), present when [`MariaDb::ed25519`] is true.
pub const ED_USER: &str = "ed";
pub const ED_PASSWORD: &str = "edpass";
/// An account that must use TLS (`REQUIRE SSL`; mysql_native_password, ALL on
/// dpmtest.*), only on [`MariaDb::tls`].
pub const SSL_USER: &str = "ssluser";
pub const SSL_PASSWORD: &str = "sslpass";
/// The backend account of the demo `lua/startup.lua` (mysql_native_password, ALL on *.*).
pub const DEMO_USER: &str = "happy";
pub const DEMO_PASSWORD: &str = "wheefun";
/// The database every test may use.
pub const DB: &str = "dpmtest";

const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The replication account of a primary/replica pair.
pub const REPL_USER: &str = "repl";
pub const REPL_PASSWORD: &str = "replpass";

/// What a started server is.
pub(crate) enum Role {
    /// The shared server of most tests: no binary log.
    Standalone,
    /// Like `Standalone`, offering TLS with the test certificates ([`super::tls_files`]),
    /// auth_ed25519 loaded at startup, and the [`SSL_USER`] account.
    Tls,
    /// A GTID primary.
    Primary { server_id: u32 },
    /// A replica of the primary on `primary_port`.
    Replica { server_id: u32, primary_port: u16 },
}

impl Role {
    fn server_args(&self) -> Vec<String> {
        match self {
            Role::Standalone => vec!["--skip-log-bin".into()],
            Role::Tls => {
                let f = super::tls_files();
                vec![
                    "--skip-log-bin".into(),
                    format!("--ssl-ca={}", f.ca.display()),
                    format!("--ssl-cert={}", f.server_cert.display()),
                    format!("--ssl-key={}", f.server_key.display()),
                    "--plugin-load-add=auth_ed25519".into(),
                ]
            }
            Role::Primary { server_id } => vec![
                format!("--server-id={server_id}"),
                "--log-bin=mariadb-bin".into(),
                "--binlog-format=ROW".into(),
            ],
            Role::Replica { server_id, .. } => vec![
                format!("--server-id={server_id}"),
                "--log-bin=mariadb-bin".into(),
                "--log-slave-updates".into(),
                "--read-only=1".into(),
            ],
        }
    }
}

/// A GTID primary and two replicas, started together on first use and shared by the
/// routing tests that do not stop or reconfigure servers (those start a [`ReplicaSet`]).
pub struct SharedReplication {
    pub primary: MariaDb,
    pub replica: MariaDb,
    pub replica2: MariaDb,
}

impl SharedReplication {
    /// The pair, started on first use; the replica has caught up with the primary's
    /// accounts and test database.
    pub fn get() -> &'static SharedReplication {
        static PAIR: OnceLock<Result<SharedReplication, String>> = OnceLock::new();
        let pair = PAIR.get_or_init(|| {
            let primary = MariaDb::start_retrying(&Role::Primary { server_id: 1 })?;
            let replica = MariaDb::start_retrying(&Role::Replica {
                server_id: 2,
                primary_port: primary.port,
            })?;
            let replica2 = MariaDb::start_retrying(&Role::Replica {
                server_id: 3,
                primary_port: primary.port,
            })?;
            for r in [&replica, &replica2] {
                let caught_up = super::try_wait_until(Duration::from_secs(60), || {
                    r.try_direct_exec(&format!(
                        "SELECT COUNT(*) FROM mysql.user WHERE user = '{USER}'"
                    ))
                    .ok()
                    .filter(|n| n.trim() == "1")
                });
                if caught_up.is_none() {
                    return Err(format!(
                        "a replica did not catch up: {}",
                        r.direct_exec("SHOW SLAVE STATUS\\G")
                    ));
                }
            }
            Ok(SharedReplication {
                primary,
                replica,
                replica2,
            })
        });
        match pair {
            Ok(p) => p,
            Err(e) => panic!("could not start the primary/replica pair: {e}"),
        }
    }
}

/// A GTID primary and `n` replicas of its own, for a test that kills or reconfigures
/// servers (the shared [`SharedReplication`] must stay as it is). Its servers stop when it is
/// dropped.
pub struct ReplicaSet {
    pub primary: MariaDb,
    pub replicas: Vec<MariaDb>,
}

impl ReplicaSet {
    /// Starts the set; the replicas have caught up with the primary's accounts and test
    /// database. Server ids start at `first_id` (unique per test, for readable logs).
    pub fn start(replicas: usize, first_id: u32) -> ReplicaSet {
        ReplicaSet::start_with_options(replicas, first_id, &[])
    }

    /// [`ReplicaSet::start`] with more server options, given to every server after the
    /// usual ones (so they win over them: `--character-set-server=latin1`).
    pub fn start_with_options(replicas: usize, first_id: u32, options: &[&str]) -> ReplicaSet {
        let primary = MariaDb::start_retrying_with(
            &Role::Primary {
                server_id: first_id,
            },
            options,
        )
        .unwrap_or_else(|e| panic!("primary: {e}"));
        let replicas: Vec<MariaDb> = (1..=replicas as u32)
            .map(|i| {
                MariaDb::start_retrying_with(
                    &Role::Replica {
                        server_id: first_id + i,
                        primary_port: primary.port,
                    },
                    options,
                )
                .unwrap_or_else(|e| panic!("replica {i}: {e}"))
            })
            .collect();
        for r in &replicas {
            let caught_up = super::try_wait_until(Duration::from_secs(60), || {
                r.try_direct_exec(&format!(
                    "SELECT COUNT(*) FROM mysql.user WHERE user = '{USER}'"
                ))
                .ok()
                .filter(|n| n.trim() == "1")
            });
            assert!(caught_up.is_some(), "a replica did not catch up");
        }
        ReplicaSet { primary, replicas }
    }
}

/// The shared MariaDB server. Get it with [`MariaDb::get`].
pub struct MariaDb {
    /// TCP port on 127.0.0.1.
    pub port: u16,
    /// Unix socket (root can log in over it without a password).
    pub socket: PathBuf,
    /// Temp dir holding datadir, socket and error log; removed at exit.
    pub dir: PathBuf,
    /// Whether the `ed` account (auth_ed25519) could be created.
    pub ed25519: bool,
    /// `SELECT VERSION()`.
    pub version: String,
    /// Write end of the watchdog's stdin: when this process exits, the
    /// watchdog reads EOF, kills mariadbd and removes `dir`. Never used,
    /// only kept open.
    _watchdog: Mutex<ChildStdin>,
}

// The watchdog: started in its own process group (so a Ctrl-C to the test
// does not kill it first), it starts mariadbd, then blocks reading its stdin,
// a pipe whose only write end is held by the test process (std opens pipes
// with O_CLOEXEC, so no other child inherits it). When the test process is
// gone, however it died, `read` returns, and mariadbd is killed and the temp
// dir removed.
const WATCHDOG: &str = r#"
dir="$1"; shift
"$@" </dev/null >/dev/null 2>&1 &
m=$!
echo "$m" > "$dir/mariadbd.watch-pid"
while read -r _line; do :; done
kill -9 "$m" 2>/dev/null
wait "$m" 2>/dev/null
rm -rf "$dir"
"#;

impl MariaDb {
    /// The server, started on first use.
    pub fn get() -> &'static MariaDb {
        // A failure is kept too, so that the other tests fail at once.
        static SERVER: OnceLock<Result<MariaDb, String>> = OnceLock::new();
        match SERVER.get_or_init(|| Self::start_retrying(&Role::Standalone)) {
            Ok(s) => s,
            Err(e) => panic!("could not start MariaDB: {e}"),
        }
    }

    /// A second standalone server, started on first use, that offers TLS: `--ssl-ca`,
    /// `--ssl-cert`, `--ssl-key` from [`super::tls_files`] (the test CA and the MariaDB
    /// server certificate, valid for `localhost` and `127.0.0.1`). It has the accounts
    /// of the shared server ([`USER`], [`OTHER_USER`], [`DEMO_USER`], [`ED_USER`] with
    /// auth_ed25519 loaded by `--plugin-load-add`) plus [`SSL_USER`], which must use TLS.
    /// TLS is offered, not required: the other accounts can log in without it.
    pub fn tls() -> &'static MariaDb {
        static SERVER: OnceLock<Result<MariaDb, String>> = OnceLock::new();
        match SERVER.get_or_init(|| Self::start_retrying(&Role::Tls)) {
            Ok(s) => s,
            Err(e) => panic!("could not start the TLS MariaDB: {e}"),
        }
    }

    /// [`MariaDb::start_with`], tried up to three times: with a dozen servers starting at
    /// once on a small machine, a start can fail for reasons of the moment (the port
    /// chosen taken by an outgoing connection before the server bound it, a bootstrap
    /// that ran out of something). Each failure is printed.
    pub(crate) fn start_retrying(role: &Role) -> Result<MariaDb, String> {
        MariaDb::start_retrying_with(role, &[])
    }

    /// [`MariaDb::start_retrying`] with more server options, after the usual ones.
    pub(crate) fn start_retrying_with(role: &Role, options: &[&str]) -> Result<MariaDb, String> {
        let mut last = String::new();
        for attempt in 1..=3 {
            match MariaDb::start_with(role, options) {
                Ok(server) => return Ok(server),
                Err(e) => {
                    eprintln!("starting a MariaDB failed (attempt {attempt} of 3): {e}");
                    last = e;
                }
            }
        }
        Err(last)
    }

    /// Starts a server: standalone (no binary log), a GTID primary (binary log,
    /// `server_id`) or a replica (no accounts of its own: it gets the primary's, and
    /// everything else, by replicating from `primary_port`), with `options` after the
    /// usual server options.
    pub(crate) fn start_with(role: &Role, options: &[&str]) -> Result<MariaDb, String> {
        let started = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("dpm-it-mariadb-")
            .tempdir()
            .map_err(|e| e.to_string())?
            .keep();
        let datadir = dir.join("data");
        let socket = dir.join("mariadb.sock");
        let errlog = dir.join("error.log");
        let install = run_bounded(
            Command::new("mariadb-install-db")
                .arg("--no-defaults")
                .arg("--user=root")
                .arg(format!("--datadir={}", datadir.display()))
                .arg("--auth-root-authentication-method=normal")
                .arg("--skip-test-db"),
            None,
            Duration::from_secs(120),
        );
        if !install.success() {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(format!("mariadb-install-db failed: {install}"));
        }
        let port = free_port();
        let mut watchdog = Command::new("sh");
        watchdog
            .arg("-c")
            .arg(WATCHDOG)
            .arg("sh")
            .arg(&dir)
            .arg("mariadbd")
            .arg("--no-defaults")
            .arg("--user=root")
            .arg(format!("--datadir={}", datadir.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--pid-file={}", dir.join("mariadbd.pid").display()))
            .arg(format!("--log-error={}", errlog.display()))
            .arg(format!("--tmpdir={}", dir.display()))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg("--character-set-server=utf8mb4")
            .arg("--collation-server=utf8mb4_general_ci")
            .arg("--skip-name-resolve")
            .arg("--max-allowed-packet=256M")
            .arg("--local-infile=1")
            .arg("--innodb-buffer-pool-size=64M")
            .arg("--innodb-flush-log-at-trx-commit=2")
            .args(role.server_args())
            .arg("--max-connections=1600")
            .args(options)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut watchdog, 0);
        let mut child = watchdog
            .spawn()
            .map_err(|e| format!("cannot spawn mariadbd watchdog: {e}"))?;
        let stdin = child.stdin.take().unwrap();
        // The watchdog is reaped by init once we exit; never wait for it.
        std::mem::forget(child);

        let mut server = MariaDb {
            port,
            socket,
            dir,
            ed25519: false,
            version: String::new(),
            _watchdog: Mutex::new(stdin),
        };
        // Wait until it accepts connections over the socket.
        let deadline = started + STARTUP_TIMEOUT;
        loop {
            if server.try_direct_exec("SELECT 1").is_ok() {
                break;
            }
            let log = server.error_log();
            if log.contains("Aborting") || Instant::now() > deadline {
                // Dropping `server` closes the pipe: the watchdog cleans up.
                return Err(format!(
                    "mariadbd on port {port} did not become ready within {STARTUP_TIMEOUT:?}; error log:\n{log}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Role::Replica { primary_port, .. } = role {
            server.direct_exec(&format!(
                "CHANGE MASTER TO master_host='127.0.0.1', master_port={primary_port},
                   master_user='{REPL_USER}', master_password='{REPL_PASSWORD}',
                   master_use_gtid=slave_pos;
                 START SLAVE;"
            ));
            server.version = server.direct_exec("SELECT VERSION()").trim().to_string();
            return Ok(server);
        }
        if let Role::Primary { .. } = role {
            server.direct_exec(&format!(
                "CREATE USER '{REPL_USER}'@'%' IDENTIFIED BY '{REPL_PASSWORD}';
                 GRANT REPLICATION SLAVE ON *.* TO '{REPL_USER}'@'%';"
            ));
        }
        server.direct_exec(&format!(
            "CREATE DATABASE {DB};
             CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}';
             GRANT ALL ON *.* TO '{USER}'@'%';
             CREATE USER '{OTHER_USER}'@'%' IDENTIFIED BY '{OTHER_PASSWORD}';
             GRANT ALL ON {DB}.* TO '{OTHER_USER}'@'%';
             CREATE USER '{DEMO_USER}'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('{DEMO_PASSWORD}');
             GRANT ALL ON *.* TO '{DEMO_USER}'@'%';"
        ));
        // A plugin installed on a primary would have to exist on its replicas too.
        // `IF NOT EXISTS`: the TLS server loads it at startup (`--plugin-load-add`).
        server.ed25519 = matches!(role, Role::Standalone | Role::Tls)
            && server
                .try_direct_exec(&format!(
                    "INSTALL PLUGIN IF NOT EXISTS ed25519 SONAME 'auth_ed25519';
                 CREATE USER '{ED_USER}'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('{ED_PASSWORD}');
                 GRANT ALL ON {DB}.* TO '{ED_USER}'@'%';"
                ))
                .map_err(|e| eprintln!("ed25519 is not available: {e}"))
                .is_ok();
        if let Role::Tls = role {
            // A certificate or key the server could not load leaves it up without TLS.
            let have_ssl = server.direct_exec("SELECT @@have_ssl");
            if have_ssl.trim() != "YES" {
                return Err(format!(
                    "mariadbd on port {port} has have_ssl = {}; error log:\n{}",
                    have_ssl.trim(),
                    server.error_log()
                ));
            }
            server.direct_exec(&format!(
                "CREATE USER '{SSL_USER}'@'%' IDENTIFIED BY '{SSL_PASSWORD}' REQUIRE SSL;
                 GRANT ALL ON {DB}.* TO '{SSL_USER}'@'%';"
            ));
        }
        server.version = server.direct_exec("SELECT VERSION()").trim().to_string();
        eprintln!(
            "MariaDB {}{} ready on 127.0.0.1:{} in {:?} (datadir {})",
            server.version,
            if let Role::Tls = role { " (TLS)" } else { "" },
            port,
            started.elapsed(),
            server.dir.display()
        );
        Ok(server)
    }

    /// Runs `sql` as root over the socket with the `mariadb` CLI in batch
    /// mode without column names; returns stdout. Panics on any error.
    pub fn direct_exec(&self, sql: &str) -> String {
        self.try_direct_exec(sql)
            .unwrap_or_else(|e| panic!("direct SQL failed: {sql}\n{e}"))
    }

    /// Like [`MariaDb::direct_exec`], returning the CLI's output on failure.
    pub fn try_direct_exec(&self, sql: &str) -> Result<String, String> {
        let out = self.direct_cli(sql);
        if out.success() {
            Ok(out.stdout)
        } else {
            Err(out.to_string())
        }
    }

    fn direct_cli(&self, sql: &str) -> ProcOutput {
        run_bounded(
            Command::new("mariadb")
                .arg("--no-defaults")
                .arg("-uroot")
                .arg(format!("--socket={}", self.socket.display()))
                .arg("--default-character-set=utf8mb4")
                .arg("--batch")
                .arg("--skip-column-names")
                .arg("-e")
                .arg(sql),
            None,
            Duration::from_secs(60),
        )
    }

    /// The server's error log so far.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// Whether the processlist has a connection with this id.
    pub fn has_connection(&self, id: u64) -> bool {
        let n = self.direct_exec(&format!(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = {id}"
        ));
        n.trim() != "0"
    }

    /// Waits (bounded) until connection `id` is gone from the processlist.
    pub fn wait_connection_gone(&self, id: u64, timeout: Duration) {
        wait_until(
            &format!("backend connection {id} to leave the processlist"),
            timeout,
            || (!self.has_connection(id)).then_some(()),
        );
    }

    /// The socket path as a `&Path`.
    /// Kills the server at once (SIGKILL), as a crash would; returns once its port
    /// refuses connections (the kill took effect).
    pub fn kill(&self) {
        let pid = std::fs::read_to_string(self.dir.join("mariadbd.pid")).unwrap_or_default();
        let pid: i32 = pid.trim().parse().expect("mariadbd's pid file");
        // SAFETY: kill(2) of the test's own mariadbd.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let gone = super::try_wait_until(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", self.port))
                .is_err()
                .then_some(())
        });
        assert!(
            gone.is_some(),
            "mariadbd on port {} still answers after SIGKILL",
            self.port
        );
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }
}
