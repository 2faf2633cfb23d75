//! Client helpers: the `mariadb` CLI, `mariadb-admin`, mysql_async, Python.

use super::{bounded, run_bounded, workspace_root, ProcOutput, Target, DB, PASSWORD, USER};
use mysql_async::{Conn, OptsBuilder};
use std::io::Read;
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

/// Default bound for one client program run.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// The `mariadb` command-line client in batch mode against 127.0.0.1:port
/// over TCP, without TLS, as `dpm`/`dpmpass` unless changed.
///
/// `Cli::new(port).db("dpmtest").arg("--force").run("SELECT 1")`
#[derive(Clone)]
pub struct Cli {
    port: u16,
    user: String,
    password: Option<String>,
    db: Option<String>,
    args: Vec<String>,
    timeout: Duration,
}

impl Cli {
    pub fn new(port: u16) -> Cli {
        Cli {
            port,
            user: USER.into(),
            password: Some(PASSWORD.into()),
            db: None,
            args: Vec::new(),
            timeout: CLIENT_TIMEOUT,
        }
    }
    pub fn user(mut self, user: &str) -> Self {
        self.user = user.into();
        self
    }
    /// `None`: no password at all.
    pub fn password(mut self, password: Option<&str>) -> Self {
        self.password = password.map(Into::into);
        self
    }
    pub fn db(mut self, db: &str) -> Self {
        self.db = Some(db.into());
        self
    }
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// The argument list after the program name (also used for tmux).
    pub fn argv(&self) -> Vec<String> {
        let mut v = vec![
            "--no-defaults".to_string(),
            "--protocol=TCP".into(),
            "-h127.0.0.1".into(),
            format!("-P{}", self.port),
            format!("-u{}", self.user),
            "--skip-ssl".into(),
            "--default-character-set=utf8mb4".into(),
        ];
        if let Some(p) = &self.password {
            v.push(format!("--password={p}"));
        }
        if let Some(d) = &self.db {
            v.push(format!("--database={d}"));
        }
        v.extend(self.args.iter().cloned());
        v
    }

    /// A ready `Command` in batch mode (for callers that stream output).
    pub fn command(&self) -> Command {
        let mut c = Command::new("mariadb");
        c.args(self.argv()).arg("--batch");
        c
    }

    /// `mariadb --batch … -e sql`.
    pub fn run(&self, sql: &str) -> ProcOutput {
        run_bounded(self.command().arg("-e").arg(sql), None, self.timeout)
    }

    /// `mariadb --batch …` reading the script from stdin.
    pub fn run_stdin(&self, script: &str) -> ProcOutput {
        run_bounded(&mut self.command(), Some(script.as_bytes()), self.timeout)
    }
}

/// `mariadb-admin` against 127.0.0.1:port as dpm/dpmpass with `args`.
pub fn admin(port: u16, args: &[&str]) -> ProcOutput {
    admin_as(port, USER, PASSWORD, args)
}

/// `mariadb-admin` as `user`/`password` against 127.0.0.1:`port`.
pub fn admin_as(port: u16, user: &str, password: &str, args: &[&str]) -> ProcOutput {
    run_bounded(
        Command::new("mariadb-admin")
            .arg("--no-defaults")
            .arg("--protocol=TCP")
            .arg("-h127.0.0.1")
            .arg(format!("-P{port}"))
            .arg(format!("-u{user}"))
            .arg(format!("--password={password}"))
            .arg("--skip-ssl")
            .args(args),
        None,
        CLIENT_TIMEOUT,
    )
}

/// mysql_async options for 127.0.0.1:port as `user`, database dpmtest, TCP
/// only (`prefer_socket(false)`, or mysql_async would switch to MariaDB's
/// unix socket and bypass the proxy).
pub fn opts_as(port: u16, user: &str, password: &str) -> OptsBuilder {
    OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(user))
        .pass(Some(password))
        .db_name(Some(DB))
        .prefer_socket(false)
}

/// [`opts_as`] for the dpm user.
pub fn opts(port: u16) -> OptsBuilder {
    opts_as(port, USER, PASSWORD)
}

/// Connects with `opts` (bounded), panicking on error.
pub async fn connect_with(opts: OptsBuilder) -> Conn {
    bounded(
        "mysql_async connect",
        Duration::from_secs(30),
        Conn::new(opts),
    )
    .await
    .expect("mysql_async connect")
}

/// Connects to `port` as dpm.
pub async fn connect(port: u16) -> Conn {
    connect_with(opts(port)).await
}

/// Runs `python3 tests/python/<script> <args…>` from the workspace root.
pub fn python(script: &str, args: &[String], timeout: Duration) -> ProcOutput {
    let path = workspace_root().join("tests/python").join(script);
    run_bounded(
        Command::new("python3")
            .arg(path)
            .args(args)
            .current_dir(workspace_root())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONUNBUFFERED", "1"),
        None,
        timeout,
    )
}

/// Standard connection arguments for the Python scripts.
pub fn python_conn_args(port: u16, user: &str, password: &str) -> Vec<String> {
    vec![
        "--port".into(),
        port.to_string(),
        "--user".into(),
        user.into(),
        "--password".into(),
        password.into(),
        "--db".into(),
        DB.into(),
    ]
}

impl Target {
    /// The `mariadb` CLI aimed at this target.
    pub fn cli(&self) -> Cli {
        Cli::new(self.port)
    }
    /// mysql_async options for this target (dpm user, db dpmtest).
    pub fn opts(&self) -> OptsBuilder {
        opts(self.port)
    }
    /// A mysql_async connection to this target as dpm.
    pub async fn conn(&self) -> Conn {
        connect(self.port).await
    }
    /// Runs a tests/python script with `--port/--user/--password/--db` for
    /// this target (as dpm) followed by `extra`.
    pub fn python(&self, script: &str, extra: &[&str]) -> ProcOutput {
        let mut args = python_conn_args(self.port, USER, PASSWORD);
        args.extend(extra.iter().map(|s| s.to_string()));
        python(script, &args, Duration::from_secs(120))
    }
}

/// The fields of a server greeting (Initial Handshake v10) that tests need.
#[derive(Debug, Clone)]
pub struct Greeting {
    pub protocol: u8,
    pub server_version: String,
    /// Lower 32 capability bits.
    pub capabilities: u32,
}

pub const CLIENT_DEPRECATE_EOF: u32 = 1 << 24;
pub const CLIENT_MULTI_STATEMENTS: u32 = 1 << 16;
pub const CLIENT_PLUGIN_AUTH: u32 = 1 << 19;

/// Opens a TCP connection, reads the first packet (the greeting) and
/// closes the connection.
pub fn read_greeting(port: u16) -> Greeting {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect for greeting");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut hdr = [0u8; 4];
    s.read_exact(&mut hdr).expect("greeting header");
    let len = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], 0]) as usize;
    let mut p = vec![0u8; len];
    s.read_exact(&mut p).expect("greeting payload");
    assert_eq!(p[0], 10, "not a v10 handshake: {p:?}");
    let nul = p[1..].iter().position(|&b| b == 0).expect("version NUL") + 1;
    let server_version = String::from_utf8_lossy(&p[1..nul]).into_owned();
    let mut i = nul + 1 + 4 + 8 + 1; // NUL, conn id, auth data 1, filler
    let lo = u16::from_le_bytes([p[i], p[i + 1]]) as u32;
    i += 2 + 1 + 2; // caps low, charset, status
    let hi = u16::from_le_bytes([p[i], p[i + 1]]) as u32;
    Greeting {
        protocol: p[0],
        server_version,
        capabilities: lo | (hi << 16),
    }
}
