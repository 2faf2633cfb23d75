//! Client helpers: the `mariadb` CLI, `mariadb-admin`, mysql_async, Python.

use super::{bounded, run_bounded, workspace_root, ProcOutput, Target, DB, PASSWORD, USER};
use mysql_async::{ClientIdentity, Conn, OptsBuilder, SslOpts};
use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Default bound for one client program run.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// The `mariadb` command-line client in batch mode against 127.0.0.1:port
/// over TCP, without TLS (`--skip-ssl`) unless [`Cli::tls`] or
/// [`Cli::tls_no_verify`], as `dpm`/`dpmpass` unless changed.
///
/// `Cli::new(port).db("dpmtest").arg("--force").run("SELECT 1")`
#[derive(Clone)]
pub struct Cli {
    port: u16,
    host: String,
    tls: CliTls,
    user: String,
    password: Option<String>,
    db: Option<String>,
    args: Vec<String>,
    timeout: Duration,
}

/// What the CLI is told about TLS.
#[derive(Clone, Debug)]
enum CliTls {
    /// `--skip-ssl`.
    Off,
    /// No TLS option at all: what the client does by default (the 10.11 client has
    /// `ssl` on by default, so the same as `--ssl`).
    ClientDefault,
    /// `--ssl`: TLS when the server offers it, the certificate not verified; the 10.11
    /// client silently stays plain when the server does not offer TLS.
    NoVerify,
    /// `--ssl --ssl-ca=CA --ssl-verify-server-cert`: TLS or fail (error 2026), the
    /// certificate verified against CA and the host name.
    Verify(PathBuf),
}

impl Cli {
    pub fn new(port: u16) -> Cli {
        Cli {
            port,
            host: "127.0.0.1".into(),
            tls: CliTls::Off,
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
    /// Connects to `host` instead of 127.0.0.1 (still over TCP): the name a
    /// verifying client compares with the certificate.
    pub fn host(mut self, host: &str) -> Self {
        self.host = host.into();
        self
    }
    /// TLS, the server certificate verified against `ca` and the host name
    /// (`--ssl --ssl-ca=CA --ssl-verify-server-cert`).
    pub fn tls(mut self, ca: &Path) -> Self {
        self.tls = CliTls::Verify(ca.to_path_buf());
        self
    }
    /// TLS when offered, without verifying the certificate (`--ssl`). Not "TLS or
    /// fail": the 10.11 client falls back to plain when the server does not offer TLS.
    pub fn tls_no_verify(mut self) -> Self {
        self.tls = CliTls::NoVerify;
        self
    }
    /// No TLS (`--skip-ssl`, the default of this helper).
    pub fn no_tls(mut self) -> Self {
        self.tls = CliTls::Off;
        self
    }
    /// No TLS option on the command line: what a user who types none gets (the 10.11
    /// client: TLS when the server offers it, unverified; plain otherwise).
    pub fn tls_client_default(mut self) -> Self {
        self.tls = CliTls::ClientDefault;
        self
    }

    /// The argument list after the program name (also used for tmux).
    pub fn argv(&self) -> Vec<String> {
        let mut v = vec![
            "--no-defaults".to_string(),
            "--protocol=TCP".into(),
            format!("-h{}", self.host),
            format!("-P{}", self.port),
            format!("-u{}", self.user),
        ];
        match &self.tls {
            CliTls::Off => v.push("--skip-ssl".into()),
            CliTls::ClientDefault => {}
            CliTls::NoVerify => v.push("--ssl".into()),
            CliTls::Verify(ca) => v.extend([
                "--ssl".into(),
                format!("--ssl-ca={}", ca.display()),
                "--ssl-verify-server-cert".into(),
            ]),
        }
        v.push("--default-character-set=utf8mb4".into());
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

/// mysql_async's TLS options: trust only `ca` (not the built-in web roots); the
/// certificate is verified, and so is the host name (127.0.0.1, an IP SAN).
pub fn ssl_opts(ca: &Path) -> SslOpts {
    SslOpts::default()
        .with_root_certs(vec![ca.to_path_buf().into()])
        .with_disable_built_in_roots(true)
}

/// [`opts_as`] over TLS (rustls), verifying the server against `ca` ([`ssl_opts`]).
pub fn opts_tls(port: u16, user: &str, password: &str, ca: &Path) -> OptsBuilder {
    opts_as(port, user, password).ssl_opts(ssl_opts(ca))
}

/// [`opts_tls`] that also presents a client certificate (`cert`, `key`: PEM files).
pub fn opts_tls_client_cert(
    port: u16,
    user: &str,
    password: &str,
    ca: &Path,
    cert: &Path,
    key: &Path,
) -> OptsBuilder {
    opts_as(port, user, password).ssl_opts(ssl_opts(ca).with_client_identity(Some(
        ClientIdentity::new(cert.to_path_buf().into(), key.to_path_buf().into()),
    )))
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

/// The Python client scripts whose transcripts must be the same through dpm as directly
/// (PyMySQL, MariaDB Connector/Python with the binary protocol, a raw protocol client
/// with DEPRECATE_EOF off and on), with their extra arguments.
pub const TRANSCRIPT_SCRIPTS: [(&str, &[&str]); 6] = [
    ("pymysql_basic.py", &[]),
    ("pymysql_multi.py", &[]),
    ("pymysql_sql_prepare.py", &[]),
    ("mariadb_connector.py", &[]),
    ("raw_protocol.py", &["--deprecate-eof", "off"]),
    ("raw_protocol.py", &["--deprecate-eof", "on"]),
];

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

/// Extra arguments for a tests/python script (see `tests/python/common.py`): PyMySQL
/// over TLS, verifying the certificate against `ca` and the host name.
pub fn python_tls_args(ca: &Path) -> Vec<String> {
    vec![
        "--ssl-mode".into(),
        "verify".into(),
        "--ssl-ca".into(),
        ca.display().to_string(),
    ]
}

/// Extra arguments for a tests/python script: PyMySQL over TLS without verifying the
/// certificate, TLS or fail (error 2026). (Connector/Python in `tls_login.py` asks
/// for TLS but falls back to plain when the server does not offer it.)
pub fn python_tls_no_verify_args() -> Vec<String> {
    vec!["--ssl-mode".into(), "required".into()]
}

/// Extra arguments for a tests/python script: PyMySQL without TLS even where the
/// server offers it (PyMySQL 1.2 and later otherwise use TLS whenever offered).
pub fn python_no_tls_args() -> Vec<String> {
    vec!["--ssl-mode".into(), "disabled".into()]
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
    /// mysql_async options for this target over TLS, verified against `ca` (dpm user).
    pub fn opts_tls(&self, ca: &Path) -> OptsBuilder {
        opts_tls(self.port, USER, PASSWORD, ca)
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
pub const CLIENT_SSL: u32 = 1 << 11;

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

/// `curl -X method` on dpm's admin API on `admin_port`, with `credentials` (curl
/// arguments: `-u user:password`, a bearer header, or none): (HTTP status, body as JSON).
pub fn admin_request(
    admin_port: u16,
    credentials: &[String],
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-sS", "-X", method, "-w", "\n%{http_code}"])
        .arg(format!("http://127.0.0.1:{admin_port}{path}"))
        .args(credentials);
    if let Some(body) = body {
        cmd.args(["-H", "Content-Type: application/json", "--data", body]);
    }
    let out = run_bounded(&mut cmd, None, Duration::from_secs(60));
    out.assert_success("curl");
    let (json, status) = out.stdout.rsplit_once('\n').expect("curl's status line");
    let value = serde_json::from_str(json)
        .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {json}"));
    (status.trim().parse().unwrap(), value)
}

/// `GET /metrics` on dpm's admin API with `credentials` (as [`admin_request`]):
/// (content type, body).
pub fn admin_metrics(admin_port: u16, credentials: &[String]) -> (String, String) {
    let out = run_bounded(
        Command::new("curl")
            .args(["-sS", "-D", "-"])
            .args(credentials)
            .arg(format!("http://127.0.0.1:{admin_port}/metrics")),
        None,
        Duration::from_secs(20),
    );
    out.assert_success("curl /metrics");
    let (headers, body) = out.stdout.split_once("\r\n\r\n").expect("headers");
    let content_type = headers
        .lines()
        .find_map(|l| l.strip_prefix("content-type: "))
        .unwrap_or_default()
        .to_string();
    (content_type, body.to_string())
}

/// The value of the sample `name{labels}` (exactly as written) in a metrics text.
pub fn metrics_sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}
