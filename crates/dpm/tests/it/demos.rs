//! The demo scripts of `lua/` (reference §10) and the `dpml` library (§9), against the
//! real MariaDB with the `mariadb` CLI: every acceptance test of §10.1–§10.4, plus the
//! limitations of the original demos that dpm's versions fix, and dpml's fixed bugs
//! (§14.1, §14.5, §14.8).
//!
//! Each test starts its own dpm on a free port (`DPM_LISTEN_PORT`) in front of the
//! shared test MariaDB (`DPM_BACKEND_HOST`/`DPM_BACKEND_PORT`).

use crate::support::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long a line of dpm output may take to appear.
const LINE: Duration = Duration::from_secs(10);
/// How long the shared backend of startup.lua may take to log in.
const READY: Duration = Duration::from_secs(15);

/// dpm running `lua/<script>` on a free port in front of the test MariaDB, once it
/// listens.
fn demo_with(script: &str, customize: impl FnOnce(DpmBuilder) -> DpmBuilder) -> (Dpm, u16) {
    let db = MariaDb::get();
    let port = free_port();
    let builder = Dpm::builder(format!("lua/{script}"))
        .env("DPM_LISTEN_PORT", port)
        .env("DPM_BACKEND_HOST", "127.0.0.1")
        .env("DPM_BACKEND_PORT", db.port);
    let dpm = customize(builder).spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    (dpm, port)
}

fn demo(script: &str) -> (Dpm, u16) {
    demo_with(script, |b| b)
}

/// startup.lua, once its shared backend is ready.
fn startup_with(customize: impl FnOnce(DpmBuilder) -> DpmBuilder) -> (Dpm, u16) {
    let (dpm, port) = demo_with("startup.lua", customize);
    dpm.wait_for_line("Backend ready!", READY);
    (dpm, port)
}

fn startup() -> (Dpm, u16) {
    startup_with(|b| b)
}

/// The CLI logged in to startup.lua's own user table.
fn whee(port: u16) -> Cli {
    Cli::new(port).user("whee").password(Some("toast"))
}

/// Position (in [`Dpm::output`] lines) of the first line at or after `from` containing
/// `needle`.
fn position(dpm: &Dpm, from: usize, needle: &str) -> Option<usize> {
    dpm.output()
        .lines()
        .enumerate()
        .skip(from)
        .find(|(_, l)| l.contains(needle))
        .map(|(i, _)| i)
}

/// Waits for `needle` at or after line `from`; returns its position.
fn wait_position(dpm: &Dpm, from: usize, needle: &str, timeout: Duration) -> usize {
    dpm.wait_for_line_after(from, needle, timeout);
    position(dpm, from, needle).expect("line just seen")
}

/// Asserts that `lines` appear in dpm's output in this order (not necessarily adjacent).
fn assert_in_order(dpm: &Dpm, lines: &[&str]) {
    let mut at = 0;
    for needle in lines {
        at = wait_position(dpm, at, needle, LINE) + 1;
    }
}

/// The single value printed by a `-N` (no column names) batch query.
fn scalar(out: &ProcOutput) -> String {
    out.assert_success("query");
    out.stdout.trim().to_string()
}

/// A `mariadb` batch session fed one statement at a time through a pipe, for tests that
/// act between two statements of one session.
struct LiveCli {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: Option<thread::JoinHandle<String>>,
}

impl LiveCli {
    fn start(cli: &Cli) -> LiveCli {
        let mut child = Command::new("mariadb")
            .args(cli.argv())
            .args(["--batch", "--skip-column-names", "--unbuffered"])
            .arg("--skip-reconnect")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mariadb");
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
            s
        });
        LiveCli {
            stdin: child.stdin.take(),
            child,
            lines: rx,
            stderr: Some(stderr),
        }
    }

    fn send(&mut self, sql: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{sql}").expect("write to mariadb");
        stdin.flush().unwrap();
    }

    /// The next line of output.
    fn line(&self) -> String {
        self.lines
            .recv_timeout(LINE)
            .expect("mariadb printed nothing in time")
    }

    /// Closes stdin, waits (bounded) for the exit; returns (success, stderr).
    fn finish(mut self) -> (bool, String) {
        drop(self.stdin.take());
        let deadline = Instant::now() + CLIENT_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("mariadb did not exit");
            }
            thread::sleep(Duration::from_millis(20));
        };
        let stderr = self.stderr.take().unwrap().join().unwrap_or_default();
        (status.success(), stderr)
    }
}

impl Drop for LiveCli {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------
// §10.1 lua/startup.lua
// ---------------------------------------------------------------------------------

/// §10.1.1: the shared backend is created and logged in at start.
#[test]
fn startup_creates_the_backend_at_start() {
    let (dpm, _port) = demo("startup.lua");
    assert_in_order(&dpm, &["Creating new backend...", "Backend ready!"]);
}

/// §10.1.2: whee/toast can log in and query; the proxy logs the login and the command.
#[test]
fn startup_select_1_as_whee() {
    let (dpm, port) = startup();
    let out = whee(port).run("SELECT 1");
    out.assert_success("SELECT 1 as whee");
    assert_eq!(out.stdout, "1\n1\n");
    assert_in_order(
        &dpm,
        &[
            "It's a new client! id: ",
            "Passwords matched!",
            "Client ready! id: ",
            "Client IP: 127.0.0.1",
            "Proxying command: SELECT 1 : 3",
            "Backend completed command in ",
        ],
    );
    let line = dpm.wait_for_line("It's a new client! id: ", LINE);
    assert!(line.ends_with(" from listener id: 1"), "{line}");
    let line = dpm.wait_for_line("Backend completed command in ", LINE);
    assert!(line.ends_with("ms"), "{line}");
}

/// §10.1.3: a wrong password or an unknown user gets 1045 with the proxy's message.
#[test]
fn startup_refuses_wrong_password_and_unknown_user() {
    let (dpm, port) = startup();
    let out = whee(port).password(Some("toastx")).run("SELECT 1");
    assert!(!out.success());
    assert!(
        out.stderr
            .contains("ERROR 1045 (28000): Access denied for user 'whee'@'whatever'"),
        "{out}"
    );
    let out = whee(port).user("bob").run("SELECT 1");
    assert!(!out.success());
    assert!(
        out.stderr
            .contains("ERROR 1045 (28000): Access denied for user 'bob'@'whatever'"),
        "{out}"
    );
    dpm.wait_for_line("Passwords did NOT match!", LINE);
    assert!(position(&dpm, 0, "Passwords matched!").is_none());
}

/// §10.1.4: HELLO is rewritten to SELECT 1 + 1.
#[test]
fn startup_rewrites_hello() {
    let (dpm, port) = startup();
    let out = whee(port).run("HELLO");
    out.assert_success("HELLO");
    assert_eq!(out.stdout, "1 + 1\n2\n");
    dpm.wait_for_line("Proxying command: HELLO : 3", LINE);
}

/// §10.1.5: queries go to the real backend, but the handshake (interactive banner) is
/// the proxy's own, version 5.0.37.
#[test]
fn startup_version_comes_from_backend_banner_from_proxy() {
    let db = MariaDb::get();
    let (_dpm, port) = startup();
    let out = whee(port).arg("-N").run("SELECT VERSION()");
    assert_eq!(scalar(&out), db.version);

    let args = whee(port).arg("-A").argv();
    let tmux = Tmux::start("mariadb", &args);
    tmux.wait_for("Server version: 5.0.37", LINE);
    tmux.send_line("SELECT VERSION() AS backend_version;");
    tmux.wait_for(&db.version, LINE);
    tmux.send_line("quit");
    tmux.wait_for("Bye", LINE);
}

/// §10.1.6: clients one after the other share the backend connection.
#[test]
fn startup_reuses_the_backend_for_consecutive_clients() {
    let (_dpm, port) = startup();
    let first = scalar(&whee(port).arg("-N").run("SELECT CONNECTION_ID()"));
    let second = scalar(&whee(port).arg("-N").run("SELECT CONNECTION_ID()"));
    assert_eq!(first, second);
}

/// §10.1.7: a client quitting does not close the shared backend (QUIT is swallowed).
#[test]
fn startup_backend_survives_client_quit() {
    let db = MariaDb::get();
    let (dpm, port) = startup();
    let id: u64 = scalar(&whee(port).arg("-N").run("SELECT CONNECTION_ID()"))
        .parse()
        .unwrap();
    dpm.wait_for_line("Proxying command:  : 1", LINE);
    dpm.wait_for_line("Client died", LINE);
    thread::sleep(Duration::from_millis(200));
    assert!(db.has_connection(id), "the shared backend {id} was closed");
    let again = scalar(&whee(port).arg("-N").run("SELECT CONNECTION_ID()"));
    assert_eq!(again, id.to_string());
}

/// §10.1.8: the backend killed on the server is recreated, and clients can query again.
#[test]
fn startup_recreates_a_killed_backend() {
    let db = MariaDb::get();
    let (dpm, port) = startup();
    let id = scalar(&whee(port).arg("-N").run("SELECT CONNECTION_ID()"));
    let from = dpm.line_count();
    db.direct_exec(&format!("KILL {id}"));
    let died = wait_position(&dpm, from, "Creating new backend...", LINE);
    let died = wait_position(
        &dpm,
        died,
        "Backend died! Could not authenticate or connect!",
        LINE,
    );
    wait_position(&dpm, died, "Backend ready!", READY);
    let out = whee(port).arg("-N").run("SELECT CONNECTION_ID()");
    let new_id = scalar(&out);
    assert_ne!(new_id, id, "still the killed backend?");
    let out = whee(port).run("HELLO");
    assert_eq!(out.stdout, "1 + 1\n2\n", "{out}");
}

/// §10.1.9: the status timer (45 s by default; 1 s here).
#[test]
fn startup_prints_status_updates() {
    let (dpm, port) = startup_with(|b| b.env("DPM_STATUS_INTERVAL", "1"));
    dpm.wait_for_line(
        "STATUS UPDATE: I have ran 0 queries.",
        Duration::from_secs(5),
    );
    whee(port).run("SELECT 1").assert_success("SELECT 1");
    // SELECT 1 and QUIT.
    dpm.wait_for_line(
        "STATUS UPDATE: I have ran 2 queries.",
        Duration::from_secs(5),
    );
}

/// Fixed limitation: a client whose command arrives before the backend is ready gets an
/// error instead of hanging. The "backend" here accepts but never greets.
#[test]
fn startup_answers_an_error_while_the_backend_is_not_ready() {
    let mute = TcpListener::bind("127.0.0.1:0").unwrap();
    let mute_port = mute.local_addr().unwrap().port();
    let (dpm, port) = demo_with("startup.lua", |b| b.env("DPM_BACKEND_PORT", mute_port));
    dpm.wait_for_line("Creating new backend...", LINE);
    let out = whee(port).timeout(Duration::from_secs(20)).run("SELECT 1");
    assert!(!out.success(), "{out}");
    assert!(out.stderr.contains("ERROR 1105 (HY000)"), "{out}");
    assert!(out.stderr.contains("backend is not ready"), "{out}");
    assert!(position(&dpm, 0, "Backend ready!").is_none());
    drop(mute);
}

/// At start, a backend that cannot be logged in to ends the proxy with the reason.
#[test]
fn startup_exits_when_the_first_backend_fails() {
    // Not waiting for the listener: the proxy may be gone before a probe connects.
    let dpm = Dpm::builder("lua/startup.lua")
        .env("DPM_LISTEN_PORT", free_port())
        .env("DPM_BACKEND_PORT", MariaDb::get().port)
        .env("DPM_BACKEND_PASSWORD", "nope")
        .spawn();
    let line = dpm.wait_for_line("Error creating backend: ", LINE);
    assert!(line.contains("Access denied for user 'happy'"), "{line}");
    let status = dpm.wait_exit(LINE);
    assert!(!status.success());
    assert!(position(&dpm, 0, "Backend ready!").is_none());
}

/// Fixed limitation: commands of two clients at the same time take turns on the shared
/// backend instead of stealing it from each other mid-result.
#[test]
fn startup_serialises_overlapping_commands() {
    let (dpm, port) = startup();
    let slow = thread::spawn(move || {
        whee(port)
            .arg("-N")
            .run("SELECT SLEEP(0.7), 'slow', CONNECTION_ID()")
    });
    thread::sleep(Duration::from_millis(150));
    let fast = whee(port)
        .arg("-N")
        .run("SELECT 0, 'fast', CONNECTION_ID()");
    let slow = slow.join().unwrap();
    slow.assert_success("slow");
    fast.assert_success("fast");
    let slow: Vec<&str> = slow.stdout.trim().split('\t').collect();
    let fast: Vec<&str> = fast.stdout.trim().split('\t').collect();
    assert_eq!(slow[..2], ["0", "slow"]);
    assert_eq!(fast[..2], ["0", "fast"]);
    assert_eq!(slow[2], fast[2], "one shared backend");
    // The commands did overlap: the fast one arrived while the slow one ran.
    let slow_at = position(&dpm, 0, "Proxying command: SELECT SLEEP(0.7)").unwrap();
    let fast_at = position(&dpm, 0, "Proxying command: SELECT 0, 'fast'").unwrap();
    let done_at = position(&dpm, slow_at, "Backend completed command in ").unwrap();
    assert!(fast_at < done_at, "{}", dpm.output());
}

/// With several workers, startup.lua still has one shared backend and one counter: only
/// the first worker runs it.
#[test]
fn startup_one_shared_backend_with_several_workers() {
    let (dpm, port) = startup_with(|b| b.env("DPM_THREADS", "3").env("DPM_STATUS_INTERVAL", "0.5"));
    let ids: Vec<String> = (0..6)
        .map(|_| scalar(&whee(port).arg("-N").run("SELECT CONNECTION_ID()")))
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    // 6 x (SELECT + QUIT), all counted by the one timer.
    dpm.wait_for_line("STATUS UPDATE: I have ran 12 queries.", LINE);
    assert_eq!(dpm.output().matches("Creating new backend...").count(), 1);
}

/// Prepared statements through the shared backend: COM_STMT_CLOSE has no response, so
/// it must not keep the backend lent (the next command would wait for it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_prepared_statements_and_stmt_close() {
    use mysql_async::prelude::Queryable;
    let (dpm, port) = tokio::task::spawn_blocking(startup).await.unwrap();
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some("whee"))
        .pass(Some("toast"))
        .prefer_socket(false)
        .stmt_cache_size(0);
    let mut conn = connect_with(opts).await;
    let t = Duration::from_secs(10);
    for i in 0..3i64 {
        let stmt = bounded("prepare", t, conn.prep("SELECT ? + 1"))
            .await
            .unwrap();
        let v: Option<i64> = bounded("execute", t, conn.exec_first(&stmt, (i,)))
            .await
            .unwrap();
        assert_eq!(v, Some(i + 1));
        bounded("close", t, conn.close(stmt)).await.unwrap();
        // The backend is free at once for another client's command (no 30 s wait).
        let other = tokio::task::spawn_blocking(move || {
            whee(port)
                .arg("-N")
                .timeout(Duration::from_secs(10))
                .run("SELECT 7")
        })
        .await
        .unwrap();
        assert_eq!(scalar(&other), "7");
    }
    bounded("disconnect", t, conn.disconnect()).await.unwrap();
    // COM_STMT_PREPARE (22), COM_STMT_EXECUTE (23), COM_STMT_CLOSE (25).
    dpm.wait_for_line(" : 25", LINE);
}

// ---------------------------------------------------------------------------------
// §10.2 lua/demo-direct.lua and §10.3.3 the same tests on lua/demo-lib.lua
// ---------------------------------------------------------------------------------

/// §10.2.1 / §10.3.3: a real account logs in through the proxy.
fn passes_select_1(script: &str) {
    let (dpm, port) = demo(script);
    let out = Cli::new(port).run("SELECT 1");
    out.assert_success("SELECT 1");
    assert_eq!(out.stdout, "1\n1\n");
    assert_in_order(
        &dpm,
        &["New client connecting: ", "Proxying command: SELECT 1 : 3"],
    );
}

/// §10.2.2 / §10.3.3: the server's own error for a wrong password, verbatim.
fn forwards_the_servers_access_denied(script: &str) {
    let db = MariaDb::get();
    let (_dpm, port) = demo(script);
    let out = Cli::new(port).password(Some("wrong")).run("SELECT 1");
    assert!(!out.success());
    let direct = Cli::new(db.port).password(Some("wrong")).run("SELECT 1");
    assert!(
        out.stderr
            .contains("Access denied for user 'dpm'@'127.0.0.1' (using password: YES)"),
        "{out}"
    );
    assert_eq!(out.stderr, direct.stderr);
}

/// §10.2.4 / §10.3.3: concurrent sessions have their own backend and session state.
fn isolates_concurrent_sessions(script: &str) {
    let (_dpm, port) = demo(script);
    let session = |tag: &'static str| {
        thread::spawn(move || {
            Cli::new(port).arg("-N").run_stdin(&format!(
                "SET @tag = '{tag}';\nSELECT SLEEP(0.5);\nSELECT @tag, CONNECTION_ID();\n"
            ))
        })
    };
    let (a, b) = (session("a"), session("b"));
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    a.assert_success("session a");
    b.assert_success("session b");
    let last = |o: &ProcOutput| -> Vec<String> {
        let line = o.stdout.trim().lines().last().unwrap_or_default();
        line.split('\t').map(str::to_string).collect()
    };
    let (a, b) = (last(&a), last(&b));
    assert_eq!(a[0], "a");
    assert_eq!(b[0], "b");
    assert_ne!(a[1], b[1], "the two sessions share a backend");
}

/// §10.2.5 / §10.3.3: a client quitting takes its backend connection with it.
fn closes_the_backend_of_a_quitting_client(script: &str) {
    let db = MariaDb::get();
    let (dpm, port) = demo(script);
    let id: u64 = scalar(&Cli::new(port).arg("-N").run("SELECT CONNECTION_ID()"))
        .parse()
        .unwrap();
    db.wait_connection_gone(id, LINE);
    dpm.wait_for_line("Client died", LINE);
    dpm.wait_for_line("Backend died", LINE);
}

/// §10.2.6 / §10.3.3: a backend killed on the server closes its client; the client's
/// next statement fails.
fn closes_the_client_of_a_killed_backend(script: &str) {
    let db = MariaDb::get();
    let (dpm, port) = demo(script);
    let mut cli = LiveCli::start(&Cli::new(port));
    cli.send("SELECT CONNECTION_ID();");
    let id = cli.line();
    db.direct_exec(&format!("KILL {id}"));
    assert_in_order(
        &dpm,
        &["Backend died", "Successfully closed backend's client"],
    );
    dpm.wait_for_line("Client died", LINE);
    cli.send("SELECT 'after the kill';");
    let (ok, stderr) = cli.finish();
    assert!(!ok);
    assert!(
        stderr.contains("Lost connection") || stderr.contains("gone away"),
        "{stderr}"
    );
}

#[test]
fn direct_select_1() {
    passes_select_1("demo-direct.lua");
}

#[test]
fn direct_wrong_password_gets_the_servers_error() {
    forwards_the_servers_access_denied("demo-direct.lua");
}

/// §10.2.3: HELLO is rewritten to SELECT 1 + 1 on the way to the server.
#[test]
fn direct_rewrites_hello() {
    let (dpm, port) = demo("demo-direct.lua");
    let out = Cli::new(port).run("HELLO");
    out.assert_success("HELLO");
    assert_eq!(out.stdout, "1 + 1\n2\n");
    assert_in_order(
        &dpm,
        &[
            "Proxying command: HELLO : 3",
            "Rewriting packet to SELECT 1 + 1",
        ],
    );
}

#[test]
fn direct_isolates_concurrent_sessions() {
    isolates_concurrent_sessions("demo-direct.lua");
}

#[test]
fn direct_closes_the_backend_of_a_quitting_client() {
    closes_the_backend_of_a_quitting_client("demo-direct.lua");
}

#[test]
fn direct_closes_the_client_of_a_killed_backend() {
    closes_the_client_of_a_killed_backend("demo-direct.lua");
}

/// §10.2.7: USE db (COM_INIT_DB) and \s (COM_STATISTICS among others) work.
#[test]
fn direct_use_db_and_status() {
    let (dpm, port) = demo("demo-direct.lua");
    let out = Cli::new(port).run_stdin(&format!("USE {DB};\nSELECT DATABASE();\n\\s\n"));
    out.assert_success("USE and \\s");
    assert!(out.stdout.contains(&format!("DATABASE()\n{DB}\n")), "{out}");
    assert!(out.stdout.contains("Current database:\tdpmtest"), "{out}");
    // The line mysql_stat() (COM_STATISTICS) returns.
    assert!(out.stdout.contains("Uptime:"), "{out}");
    assert!(out.stdout.contains("Threads: "), "{out}");
    dpm.wait_for_line(&format!("Proxying command: {DB} : 2"), LINE);
    dpm.wait_for_line("Proxying command:  : 9", LINE);
}

// ---------------------------------------------------------------------------------
// §10.3 lua/demo-lib.lua
// ---------------------------------------------------------------------------------

/// §10.3.1: HELLO is answered by the proxy.
#[test]
fn lib_answers_hello_itself() {
    let (dpm, port) = demo("demo-lib.lua");
    let out = Cli::new(port).run("HELLO");
    out.assert_success("HELLO");
    assert_eq!(
        out.stdout,
        "salutations\tnumber\nhi\t1\nhello\t2\nkonnichiwa\t3\n"
    );
    dpm.wait_for_line("Proxying command: HELLO : 3", LINE);
    assert!(position(&dpm, 0, "Rewriting").is_none());
}

/// §10.3.2: after HELLO the session is in sync: real queries still work.
#[test]
fn lib_session_stays_in_sync_after_hello() {
    let (_dpm, port) = demo("demo-lib.lua");
    let out = Cli::new(port)
        .arg("-N")
        .run_stdin("HELLO;\nSELECT 40 + 2;\nHELLO;\nSELECT 'still', 'fine';\n");
    out.assert_success("HELLO and real queries");
    assert_eq!(
        out.stdout,
        "hi\t1\nhello\t2\nkonnichiwa\t3\n42\nhi\t1\nhello\t2\nkonnichiwa\t3\nstill\tfine\n"
    );
}

#[test]
fn lib_select_1() {
    passes_select_1("demo-lib.lua");
}

#[test]
fn lib_wrong_password_gets_the_servers_error() {
    forwards_the_servers_access_denied("demo-lib.lua");
}

#[test]
fn lib_isolates_concurrent_sessions() {
    isolates_concurrent_sessions("demo-lib.lua");
}

#[test]
fn lib_closes_the_backend_of_a_quitting_client() {
    closes_the_backend_of_a_quitting_client("demo-lib.lua");
}

#[test]
fn lib_closes_the_client_of_a_killed_backend() {
    closes_the_client_of_a_killed_backend("demo-lib.lua");
}

// ---------------------------------------------------------------------------------
// §10.4 lua/demo-autoexplain.lua
// ---------------------------------------------------------------------------------

/// A small table of the test database for the autoexplain tests.
fn explain_table() -> &'static str {
    static TABLE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        MariaDb::get().direct_exec(&format!(
            "CREATE TABLE IF NOT EXISTS {DB}.demo_explain (id INT PRIMARY KEY, v VARCHAR(10));
             REPLACE INTO {DB}.demo_explain VALUES (1, 'one'), (2, NULL), (3, 'three');"
        ));
    });
    "demo_explain"
}

/// §10.4.1: the client gets exactly the direct result; the EXPLAIN is printed.
#[test]
fn autoexplain_logs_explain_of_a_select() {
    let db = MariaDb::get();
    let table = explain_table();
    let (dpm, port) = demo("demo-autoexplain.lua");
    let sql = format!("SELECT * FROM {table} ORDER BY id");
    let out = Cli::new(port).db(DB).run(&sql);
    out.assert_success("SELECT through autoexplain");
    let direct = Cli::new(db.port).db(DB).run(&sql);
    assert_eq!(out.stdout, direct.stdout);
    assert_eq!(out.stdout, "id\tv\n1\tone\n2\tNULL\n3\tthree\n");
    let at = wait_position(&dpm, 0, &format!("Proxying command: {sql} : 3"), LINE);
    let at = wait_position(&dpm, at, "EXPLAIN:", LINE);
    for line in [
        " select_type: SIMPLE",
        &format!(" table: {table}"),
        " id: 1",
    ] {
        wait_position(&dpm, at, line, LINE);
    }
}

/// §10.4.2: statements other than SELECT are not explained.
#[test]
fn autoexplain_leaves_show_tables_alone() {
    explain_table();
    let (dpm, port) = demo("demo-autoexplain.lua");
    let out = Cli::new(port).db(DB).run("SHOW TABLES");
    out.assert_success("SHOW TABLES");
    assert!(
        out.stdout.starts_with(&format!("Tables_in_{DB}\n")),
        "{out}"
    );
    assert!(out.stdout.contains("demo_explain\n"), "{out}");
    dpm.wait_for_line("Proxying command: SHOW TABLES : 3", LINE);
    assert!(position(&dpm, 0, "EXPLAIN").is_none(), "{}", dpm.output());
}

/// §10.4.3: lower-case select is explained too.
#[test]
fn autoexplain_lower_case_select() {
    let (dpm, port) = demo("demo-autoexplain.lua");
    let out = Cli::new(port).run("select 1");
    out.assert_success("select 1");
    assert_eq!(out.stdout, "1\n1\n");
    let at = wait_position(&dpm, 0, "EXPLAIN:", LINE);
    wait_position(&dpm, at, " Extra: No tables used", LINE);
}

/// Fixed failure mode: an EXPLAIN that fails takes its overlay off, the original query
/// still runs (the client gets its own error), and the session goes on in sync.
#[test]
fn autoexplain_survives_a_failing_explain() {
    explain_table();
    let (dpm, port) = demo("demo-autoexplain.lua");
    let out = Cli::new(port)
        .db(DB)
        .arg("-N")
        .arg("--force")
        .run_stdin("SELECT * FROM no_such_table;\nSHOW TABLES LIKE 'demo_expl%';\nSELECT 7;\n");
    assert!(out.stderr.contains("ERROR 1146 (42S02) at line 1"), "{out}");
    assert_eq!(out.stdout, "demo_explain\n7\n", "{out}");
    dpm.wait_for_line("EXPLAIN failed: 1146", LINE);
}

/// Fixed failure mode: the held-back SELECT is kept per client, so two clients'
/// SELECTs at the same time each get their own result.
#[test]
fn autoexplain_concurrent_clients_keep_their_own_query() {
    let (_dpm, port) = demo("demo-autoexplain.lua");
    let clients: Vec<_> = (0..4)
        .map(|i| {
            thread::spawn(move || {
                Cli::new(port)
                    .arg("-N")
                    .run(&format!("SELECT SLEEP(0.3), 'client {i}'"))
            })
        })
        .collect();
    for (i, c) in clients.into_iter().enumerate() {
        let out = c.join().unwrap();
        out.assert_success("concurrent SELECT");
        assert_eq!(out.stdout, format!("0\tclient {i}\n"));
    }
}

// ---------------------------------------------------------------------------------
// §9 lua/dpml.lua
// ---------------------------------------------------------------------------------

/// A startfile (in a fresh temp dir) exercising dpml: a pass-through whose clients can
/// ask for side queries (`SIDE <sql>`), a result with NULLs (`NULLS`), a side query on
/// a shared server that dies (`SHARED_SLEEP`), and a debug dump (`DUMP`).
const DPML_SCRIPT: &str = r#"
local dpml_module = require "dpml"
print("required: " .. tostring(dpml_module == dpml) .. " " .. type(dpml.execute_query_buffered))
local port = tonumber(os.getenv("DPM_LISTEN_PORT"))
local bport = tonumber(os.getenv("DPM_BACKEND_PORT"))
conns = {}

-- connect_mysql_server returns the conn (and hands the same one to the callback).
local shared
shared = dpml.connect_mysql_server{ host = "127.0.0.1", port = bport, user = "happy",
    pass = "wheefun", callback = function(server, err)
        print("shared ready: " .. tostring(server ~= nil and server == shared) .. " " .. tostring(err))
        dpml.execute_query_buffered(server, "SELECT CONNECTION_ID()", function(id, cmd, res, err)
            print("shared backend id: " .. res.rows[1][1] .. " conn " .. tostring(id == server:id()))
        end)
    end }
conns.shared = shared

-- The same with a MY_CLOSING of its own, which hides the package's from dpml.
conns.shared2 = dpml.connect_mysql_server{ host = "127.0.0.1", port = bport, user = "happy",
    pass = "wheefun", callback = function(server, err)
        server:register(dpm.MY_CLOSING, function(id) print("shared2 closed") end)
        dpml.execute_query_buffered(server, "SELECT CONNECTION_ID()", function(id, cmd, res, err)
            print("shared2 backend id: " .. res.rows[1][1])
        end)
    end }

-- A failed login calls back once with the server's message and raises nothing after.
conns.bad = dpml.connect_mysql_server{ host = "127.0.0.1", port = bport, user = "happy",
    pass = "wrong", callback = function(server, err)
        print("bad login: " .. tostring(server) .. " " .. err)
    end }

-- A server that cannot be reached.
conns.dead = dpml.connect_mysql_server{ host = "127.0.0.1", port = tonumber(os.getenv("DEAD_PORT")),
    user = "happy", callback = function(server, err)
        print("dead server: " .. tostring(server) .. " " .. err)
    end }

print("bad query type: " .. select(2, pcall(dpml.execute_query_buffered, shared, 42, print)))

local function on_command(cmd, cid)
    local client = conns[cid]
    local arg = cmd:argument()
    local sql = arg:match("^SIDE (.*)")
    if sql then
        local backend = conns[client:remote_id()]
        dpml.execute_query_buffered(backend, sql, function(id, q, res, err)
            if err then
                dpml.send_error(client, err:sqlstate(), err:errnum(), "side: " .. err:message())
            elseif #res.fields == 0 then
                dpml.send_resultset(client, { fields = { { name = "affected_rows" } },
                    rows = { { res.affected_rows } } })
            else
                dpml.send_resultset(client, res)
            end
        end)
        return dpm.DPM_NOPROXY
    elseif arg == "NULLS" then
        dpml.send_resultset(client, {
            fields = { { name = "a" }, { name = "b", type = dpm.MYSQL_TYPE_VAR_STRING }, { name = "c" } },
            rows = { { "x", nil, "z" }, { nil, nil, nil }, [4] = { 1, 2, 3 } },
        })
        return dpm.DPM_NOPROXY
    elseif arg == "SHARED_SLEEP" or arg == "SHARED2_SLEEP" then
        local which = arg == "SHARED_SLEEP" and "shared" or "shared2"
        dpml.execute_query_buffered(conns[which], "SELECT SLEEP(30)", function(id, q, res, err)
            print(which .. " side query ended: " .. (err and err:errnum() or "no error"))
        end)
        dpml.send_resultset(client, { fields = { { name = "started" } }, rows = { { "yes" } } })
        return dpm.DPM_NOPROXY
    elseif arg == "DUMP" then
        dpml.dump_table({ top = "level", nested = { inner = 7 } })
        dpml.send_error(client, "HY000", 1105, "dumped")
        return dpm.DPM_NOPROXY
    end
end

local function on_closing(id)
    local conn = conns[id]
    conns[id] = nil
    local partner = conn and conns[conn:remote_id()]
    if partner then dpm.close(partner) end
end

conns.listener = assert(dpm.listener("127.0.0.1", port))
conns.listener:register(dpm.MYC_CONNECT, function(client)
    local backend = dpm.connect("127.0.0.1", bport)
    conns[client:id()], conns[backend:id()] = client, backend
    dpml.register_callbacks(client, { [dpm.MYC_SENT_CMD] = on_command, [dpm.MY_CLOSING] = on_closing })
    backend:register(dpm.MY_CLOSING, on_closing)
    dpm.proxy_connect(client, backend)
end)
print("dpml test listening")
"#;

/// Writes [`DPML_SCRIPT`] to a fresh temp dir and runs dpm there (working dir = that
/// dir, so `require "dpml"` cannot find `lua/` relative to it).
fn dpml_script(customize: impl FnOnce(DpmBuilder) -> DpmBuilder) -> (Dpm, u16) {
    let db = MariaDb::get();
    let dir = std::env::temp_dir().join(unique_name("dpm-dpml"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("dpml_test.lua");
    std::fs::write(&path, DPML_SCRIPT).unwrap();
    let port = free_port();
    let builder = Dpm::builder(&path)
        .current_dir(&dir)
        .env("DPM_LISTEN_PORT", port)
        .env("DPM_BACKEND_PORT", db.port)
        .env("DEAD_PORT", free_port());
    let dpm = customize(builder).spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    (dpm, port)
}

#[test]
fn dpml_connect_mysql_server_returns_the_conn_and_reports_failures_once() {
    let (dpm, _port) = dpml_script(|b| b);
    dpm.wait_for_line("required: true function", LINE);
    dpm.wait_for_line("shared ready: true nil", LINE);
    dpm.wait_for_line("shared backend id: ", LINE);
    let line = dpm.wait_for_line("bad login: nil ", LINE);
    assert!(line.contains("Access denied for user 'happy'"), "{line}");
    dpm.wait_for_line("dead server: nil DPML: ", LINE);
    dpm.wait_for_line(
        "bad query type: DPML: Query must be string or cmd packet",
        LINE,
    );
    // The failed login's connection closing later raises nothing (§14.1).
    thread::sleep(Duration::from_millis(300));
    assert!(
        !dpm.output().contains("ERROR: running callback"),
        "{}",
        dpm.output()
    );
    assert_eq!(dpm.output().matches("bad login: ").count(), 1);
}

/// `require "dpml"` from a directory with no `lua/` and with DPM_LUA_DIR pointing
/// nowhere: the copy embedded in dpm answers.
#[test]
fn dpml_requires_from_anywhere() {
    let (dpm, _port) = dpml_script(|b| b.env("DPM_LUA_DIR", "/nonexistent/dpm-lua"));
    dpm.wait_for_line("required: true function", LINE);
    dpm.wait_for_line("shared ready: true nil", LINE);
}

/// Side queries on a client's linked backend: nothing of them reaches the client (§14.5),
/// errors remove the overlay, and the session stays in sync.
#[test]
fn dpml_execute_query_buffered_behind_a_linked_client() {
    let (_dpm, port) = dpml_script(|b| b);
    let out = Cli::new(port).db(DB).arg("--force").run_stdin(
        "SIDE SELECT 1 AS one, NULL AS nothing, 'x' AS ex;\n\
         SELECT 'direct';\n\
         SIDE SELECT * FROM no_such_table;\n\
         SELECT 'after error';\n\
         SIDE DO 1;\n\
         SIDE SELECT 1 UNION SELECT 2;\n\
         SELECT 'end';\n",
    );
    assert_eq!(
        out.stdout,
        "one\tnothing\tex\n1\tNULL\tx\ndirect\ndirect\n\
         after error\nafter error\naffected_rows\n0\n1\n1\n2\nend\nend\n",
        "{out}"
    );
    assert!(
        out.stderr.contains(
            "ERROR 1146 (42S02) at line 3: side: Table 'dpmtest.no_such_table' doesn't exist"
        ),
        "{out}"
    );
}

/// send_resultset turns nil values into SQL NULL (and a missing row is skipped).
#[test]
fn dpml_send_resultset_with_nulls() {
    let (_dpm, port) = dpml_script(|b| b);
    let out = Cli::new(port).run("NULLS");
    out.assert_success("NULLS");
    assert_eq!(
        out.stdout,
        "a\tb\tc\nx\tNULL\tz\nNULL\tNULL\tNULL\n1\t2\t3\n"
    );
}

/// A side query whose server is killed reports it to its callback (whether or not the
/// server conn has a MY_CLOSING callback of its own).
fn side_query_on_a_dying_server(which: &str) {
    let db = MariaDb::get();
    let (dpm, port) = dpml_script(|b| b);
    let line = dpm.wait_for_line(&format!("{which} backend id: "), LINE);
    let id: u64 = line
        .split("backend id: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no id in {line:?}"));
    let out = Cli::new(port).run(&format!("{}_SLEEP", which.to_uppercase()));
    assert_eq!(out.stdout, "started\nyes\n", "{out}");
    thread::sleep(Duration::from_millis(200));
    db.direct_exec(&format!("KILL {id}"));
    let line = dpm.wait_for_line(&format!("{which} side query ended: "), LINE);
    // MariaDB may say why (1927 "Connection was killed") before closing; else 2013.
    assert!(
        line.ends_with(" 2013") || line.ends_with(" 1927"),
        "expected a lost connection or killed error: {line}"
    );
}

#[test]
fn dpml_side_query_on_a_dying_server_reports_it() {
    side_query_on_a_dying_server("shared");
}

#[test]
fn dpml_side_query_on_a_dying_server_with_its_own_closing_callback_reports_it() {
    side_query_on_a_dying_server("shared2");
}

#[test]
fn dpml_dump_table() {
    let (dpm, port) = dpml_script(|b| b);
    let out = Cli::new(port).run("DUMP");
    assert!(out.stderr.contains("ERROR 1105 (HY000)"), "{out}");
    dpm.wait_for_line("string top: level", LINE);
    dpm.wait_for_line("table nested", LINE);
    dpm.wait_for_line("\tnumber inner: 7", LINE);
}
