//! TLS × authentication through dpm, with real clients (the `mariadb` CLI, mysql_async,
//! PyMySQL): the matrix {plain, TLS} client × {plain, TLS} server link × {pass-through,
//! proxy-held} × {mysql_native_password, caching_sha2_password, client_ed25519}, then
//! what is specific to proxy-held users, to TLS, and to secrets (docs/tls.md, "What the
//! matrix covers"; docs/authentication.md).
//!
//! Every test starts dpm on `crates/dpm/tests/lua/authmatrix.lua` (two services, `pass`
//! and `held`, each behind a plain and a TLS listener) in front of the MariaDB that
//! offers TLS ([`MariaDb::tls`]), unless it says otherwise.

use crate::support::*;
use mysql_async::prelude::Queryable;
use mysql_async::{ChangeUserOpts, Conn, OptsBuilder};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const STARTFILE: &str = "crates/dpm/tests/lua/authmatrix.lua";

// ---- the proxy-held users (authmatrix.lua) and their secrets ----

/// Passwords of the proxy-held users; each is distinctive, so that finding it in dpm's
/// output means it leaked.
const NATIVE_PW: &str = "Native-Secret-4711";
const SHA2_PW: &str = "Sha2-Secret-4712";
const ED_PW: &str = "Ed25519-Secret-4713";
/// What a client guesses wrong.
const WRONG_PW: &str = "Wrong-Guess-4714";
/// The backend password of user `app_badbackend` (the server refuses it).
const BAD_BACKEND_PW: &str = "Bad-Backend-Secret-4715";

/// The password_hash of each proxy-held user, printed by `dpm hash-password`.
struct Hashes {
    native: String,
    sha2: String,
    ed: String,
}

fn hashes() -> &'static Hashes {
    static HASHES: OnceLock<Hashes> = OnceLock::new();
    HASHES.get_or_init(|| Hashes {
        native: hash_password("mysql_native_password", NATIVE_PW),
        sha2: hash_password("caching_sha2_password", SHA2_PW),
        ed: hash_password("client_ed25519", ED_PW),
    })
}

/// An RSA key pair made with `openssl genrsa` for `rsa_private_key`, and the base64 body
/// of its public key (what a client that asks for it must receive).
struct RsaKey {
    private: PathBuf,
    public_body: String,
}

fn rsa_key() -> &'static RsaKey {
    static KEY: OnceLock<RsaKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("dpm-it-rsa-")
            .tempdir()
            .unwrap()
            .keep();
        remove_at_exit(&dir);
        let private = dir.join("rsa.pem");
        run_bounded(
            Command::new("openssl")
                .args(["genrsa", "-out"])
                .arg(&private)
                .arg("2048"),
            None,
            Duration::from_secs(60),
        )
        .assert_success("openssl genrsa");
        let public = run_bounded(
            Command::new("openssl")
                .args(["rsa", "-pubout", "-in"])
                .arg(&private),
            None,
            Duration::from_secs(30),
        );
        public.assert_success("openssl rsa -pubout");
        RsaKey {
            private,
            public_body: pem_body(&public.stdout),
        }
    })
}

/// A PEM's base64 lines joined, without the BEGIN/END lines.
fn pem_body(pem: &str) -> String {
    pem.lines()
        .filter(|l| !l.is_empty() && !l.starts_with("-----"))
        .collect()
}

// ---- the dimensions of the matrix ----

/// How a client logs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Auth {
    /// Service `pass`: the server checks the login.
    PassThrough,
    /// Service `held`: dpm checks it and logs in with the user's mapped account.
    ProxyHeld,
}

/// The client's link to dpm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    /// A listener without TLS settings; the client asks for no TLS.
    Plain,
    /// A listener with dpm's certificate; the client requires TLS and verifies it
    /// against the test CA.
    Tls,
}

/// dpm's link to the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ServerLink {
    /// No TLS settings on `dpm.server` (the TLS MariaDB).
    Plain,
    /// `tls = { ca = <the test CA> }` (the TLS MariaDB).
    Tls,
    /// `tls = { ca = <another CA> }`: the server's certificate does not verify.
    TlsWrongCa,
    /// `tls = { ca = <the test CA> }` to the shared MariaDB, which has no TLS.
    TlsToPlainServer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Plugin {
    Native,
    CachingSha2,
    Ed25519,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Client {
    /// The `mariadb` CLI 10.11.
    Cli,
    /// mysql_async (rustls).
    MysqlAsync,
    /// PyMySQL (`tests/python/tls_login.py`).
    PyMySql,
}

/// Each client with the plugins it supports (docs/tls.md, "Which client covers which
/// cell"): every one of them supports all three.
const CLIENTS: [(Client, &[Plugin]); 3] = [
    (
        Client::Cli,
        &[Plugin::Native, Plugin::CachingSha2, Plugin::Ed25519],
    ),
    (
        Client::MysqlAsync,
        &[Plugin::Native, Plugin::CachingSha2, Plugin::Ed25519],
    ),
    (
        Client::PyMySql,
        &[Plugin::Native, Plugin::CachingSha2, Plugin::Ed25519],
    ),
];

/// Who logs in for a cell: the user, its password, and the account the server sees.
struct Account {
    user: &'static str,
    password: &'static str,
    /// `SELECT CURRENT_USER()` on the server.
    server_account: &'static str,
}

fn account(auth: Auth, plugin: Plugin) -> Option<Account> {
    let (user, password, server_account) = match (auth, plugin) {
        (Auth::PassThrough, Plugin::Native) => (USER, PASSWORD, "dpm@%"),
        (Auth::PassThrough, Plugin::Ed25519) => (ED_USER, ED_PASSWORD, "ed@%"),
        // MariaDB 10.11 has no server side for caching_sha2_password: a pass-through
        // login with it cannot exist, so there is no such cell (not faked).
        (Auth::PassThrough, Plugin::CachingSha2) => return None,
        // Proxy-held: the server sees the account dpm maps the user to.
        (Auth::ProxyHeld, Plugin::Native) => ("app_native", NATIVE_PW, "happy@%"),
        (Auth::ProxyHeld, Plugin::CachingSha2) => ("app_sha2", SHA2_PW, "other@%"),
        (Auth::ProxyHeld, Plugin::Ed25519) => ("app_ed", ED_PW, "ed@%"),
    };
    Some(Account {
        user,
        password,
        server_account,
    })
}

// ---- dpm ----

/// dpm on authmatrix.lua: services `pass` and `held`, each on a plain and a TLS port.
struct Proxy {
    dpm: Dpm,
    pass_plain: u16,
    pass_tls: u16,
    held_plain: u16,
    held_tls: u16,
}

impl Proxy {
    fn port(&self, auth: Auth, link: Link) -> u16 {
        match (auth, link) {
            (Auth::PassThrough, Link::Plain) => self.pass_plain,
            (Auth::PassThrough, Link::Tls) => self.pass_tls,
            (Auth::ProxyHeld, Link::Plain) => self.held_plain,
            (Auth::ProxyHeld, Link::Tls) => self.held_tls,
        }
    }
}

/// Starts dpm on authmatrix.lua with `server` as its link to the server; `customize` adds
/// environment or arguments. Returns once every listener listens.
fn start_proxy(server: ServerLink, customize: impl FnOnce(DpmBuilder) -> DpmBuilder) -> Proxy {
    let f = tls_files();
    let h = hashes();
    let backend = match server {
        ServerLink::TlsToPlainServer => MariaDb::get().port,
        _ => MariaDb::tls().port,
    };
    let [pass_plain, pass_tls, held_plain, held_tls] = [(); 4].map(|_| free_port());
    let mut b = Dpm::builder(STARTFILE)
        .env("DPM_BACKEND", format!("127.0.0.1:{backend}"))
        .env("DPM_BACKEND_USER", DEMO_USER)
        .env("DPM_BACKEND_PASSWORD", DEMO_PASSWORD)
        .env("DPM_SHA2_BACKEND_USER", OTHER_USER)
        .env("DPM_SHA2_BACKEND_PASSWORD", OTHER_PASSWORD)
        .env("DPM_ED_BACKEND_USER", ED_USER)
        .env("DPM_ED_BACKEND_PASSWORD", ED_PASSWORD)
        .env("DPM_BAD_BACKEND_PASSWORD", BAD_BACKEND_PW)
        .env("DPM_NATIVE_HASH", &h.native)
        .env("DPM_SHA2_HASH", &h.sha2)
        .env("DPM_ED_HASH", &h.ed)
        .env("DPM_TLS_CERT", path_str(&f.dpm_cert))
        .env("DPM_TLS_KEY", path_str(&f.dpm_key))
        .env("DPM_PASS_PLAIN_PORT", pass_plain)
        .env("DPM_PASS_TLS_PORT", pass_tls)
        .env("DPM_HELD_PLAIN_PORT", held_plain)
        .env("DPM_HELD_TLS_PORT", held_tls);
    match server {
        ServerLink::Plain => {}
        ServerLink::Tls | ServerLink::TlsToPlainServer => {
            b = b.env("DPM_BACKEND_CA", path_str(&f.ca));
        }
        ServerLink::TlsWrongCa => b = b.env("DPM_BACKEND_CA", path_str(&f.other_ca)),
    }
    let dpm = customize(b).spawn();
    for port in [pass_plain, pass_tls, held_plain, held_tls] {
        dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    }
    Proxy {
        dpm,
        pass_plain,
        pass_tls,
        held_plain,
        held_tls,
    }
}

// ---- logging in with each client ----

/// What a logged-in client saw.
#[derive(Debug)]
struct Seen {
    /// `SELECT CURRENT_USER()`.
    current_user: String,
    /// `SHOW STATUS LIKE 'Ssl_version'`: the server's view of its link to dpm.
    server_ssl_version: String,
    /// The client's own view of its link to dpm: the CLI's `status` ("SSL: Cipher in use
    /// is …" or "Not in use"), PyMySQL's socket (`SSLSocket.version()`). mysql_async
    /// exposes nothing: with TLS options it fails unless TLS was negotiated and verified,
    /// without them it never asks, so its view is the options it was given.
    client_tls: bool,
    /// PyMySQL: the RSA public key it asked dpm for (caching_sha2_password's full
    /// authentication without TLS); `None` when it asked for none, or another client.
    public_key: Option<String>,
}

/// A refused login as the client reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Refused {
    /// The server error number; 0 for a client-side failure (TLS, I/O).
    code: u16,
    /// The SQLSTATE where the client shows it (not PyMySQL).
    state: Option<String>,
    message: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.state {
            Some(s) => write!(f, "ERROR {} ({s}): {}", self.code, self.message),
            None => write!(f, "ERROR {}: {}", self.code, self.message),
        }
    }
}

impl Refused {
    /// Whether this is `code`/`state` with exactly `message`.
    fn is(&self, code: u16, state: &str, message: &str) -> bool {
        self.code == code
            && self.state.as_deref().is_none_or(|s| s == state)
            && self.message == message
    }
}

fn async_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// mysql_async's error as a [`Refused`].
fn refused_async(e: &mysql_async::Error) -> Refused {
    match e {
        mysql_async::Error::Server(s) => Refused {
            code: s.code,
            state: Some(s.state.clone()),
            message: s.message.clone(),
        },
        other => Refused {
            code: 0,
            state: None,
            message: format!("{other:?}"),
        },
    }
}

/// The CLI's `ERROR 1045 (28000): …` line as a [`Refused`].
fn refused_cli(out: &ProcOutput) -> Refused {
    let line = out.stderr.trim_end();
    let parsed = line.strip_prefix("ERROR ").and_then(|rest| {
        let (code, rest) = rest.split_once(" (")?;
        let (state, message) = rest.split_once("): ")?;
        Some(Refused {
            code: code.parse().ok()?,
            state: Some(state.to_string()),
            message: message.to_string(),
        })
    });
    parsed.unwrap_or_else(|| Refused {
        code: 0,
        state: None,
        message: line.to_string(),
    })
}

/// The CLI for `user` on `port` over `link`, database dpmtest.
fn cli(port: u16, link: Link, user: &str, password: Option<&str>) -> Cli {
    let c = Cli::new(port).user(user).password(password).db(DB);
    match link {
        Link::Plain => c.no_tls(),
        Link::Tls => c.tls(&tls_files().ca),
    }
}

fn cli_login(port: u16, link: Link, user: &str, password: Option<&str>) -> Result<Seen, Refused> {
    let out = cli(port, link, user, password)
        .arg("--skip-column-names")
        .run("status; SELECT CURRENT_USER(); SHOW STATUS LIKE 'Ssl_version'");
    if !out.success() {
        return Err(refused_cli(&out));
    }
    let bad = |what: &str| Refused {
        code: 0,
        state: None,
        message: format!("unexpected CLI output ({what}): {out}"),
    };
    let ssl = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("SSL:"))
        .ok_or_else(|| bad("no SSL: line in status"))?
        .trim();
    let client_tls = match ssl {
        "Not in use" => false,
        s if s.starts_with("Cipher in use is ") => true,
        _ => return Err(bad("SSL: line")),
    };
    let rows: Vec<&str> = out.stdout.lines().filter(|l| !l.is_empty()).collect();
    let [.., user_row, ssl_row] = rows[..] else {
        return Err(bad("rows"));
    };
    let version = ssl_row
        .strip_prefix("Ssl_version\t")
        .ok_or_else(|| bad("Ssl_version row"))?;
    Ok(Seen {
        current_user: user_row.to_string(),
        server_ssl_version: version.to_string(),
        client_tls,
        public_key: None,
    })
}

/// mysql_async options for `user` on `port` over `link`, database dpmtest.
fn async_opts(port: u16, link: Link, user: &str, password: Option<&str>) -> OptsBuilder {
    let opts = match link {
        Link::Plain => opts_as(port, user, ""),
        Link::Tls => opts_tls(port, user, "", &tls_files().ca),
    };
    opts.pass(password)
}

async fn try_connect(opts: OptsBuilder) -> Result<Conn, Refused> {
    bounded(
        "mysql_async connect",
        Duration::from_secs(30),
        Conn::new(opts),
    )
    .await
    .map_err(|e| refused_async(&e))
}

/// `SELECT CURRENT_USER()` and `Ssl_version` on `c`.
async fn who_and_tls(c: &mut Conn) -> Result<(String, String), Refused> {
    let user: Option<String> = c
        .query_first("SELECT CURRENT_USER()")
        .await
        .map_err(|e| refused_async(&e))?;
    let ssl: Option<(String, String)> = c
        .query_first("SHOW STATUS LIKE 'Ssl_version'")
        .await
        .map_err(|e| refused_async(&e))?;
    Ok((user.unwrap_or_default(), ssl.unwrap_or_default().1))
}

fn async_login(port: u16, link: Link, user: &str, password: Option<&str>) -> Result<Seen, Refused> {
    async_runtime().block_on(async {
        let mut c = try_connect(async_opts(port, link, user, password)).await?;
        let (current_user, server_ssl_version) = who_and_tls(&mut c).await?;
        c.disconnect().await.map_err(|e| refused_async(&e))?;
        Ok(Seen {
            current_user,
            server_ssl_version,
            client_tls: link == Link::Tls,
            public_key: None,
        })
    })
}

/// PyMySQL through tests/python/tls_login.py (no password: an empty one).
fn pymysql_login(
    port: u16,
    link: Link,
    user: &str,
    password: Option<&str>,
) -> Result<Seen, Refused> {
    let mut args = python_conn_args(port, user, password.unwrap_or(""));
    args.extend(match link {
        Link::Plain => python_no_tls_args(),
        Link::Tls => python_tls_args(&tls_files().ca),
    });
    let out = python("tls_login.py", &args, Duration::from_secs(60));
    let field = |name: &str| {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
            .map(str::to_string)
    };
    if out.code() == Some(3) {
        // error: <class> <errno> <message>
        let e = field("error").unwrap_or_default();
        let mut parts = e.splitn(3, ' ');
        let (_class, code, message) = (parts.next(), parts.next(), parts.next());
        return Err(Refused {
            code: code.and_then(|c| c.parse().ok()).unwrap_or(0),
            state: None,
            message: message.unwrap_or(&e).to_string(),
        });
    }
    let missing = |what: &str| Refused {
        code: 0,
        state: None,
        message: format!("tls_login.py printed no {what}: {out}"),
    };
    if !out.success() {
        return Err(missing("result"));
    }
    let key = field("server_public_key").ok_or_else(|| missing("server_public_key"))?;
    Ok(Seen {
        current_user: field("user").ok_or_else(|| missing("user"))?,
        server_ssl_version: field("ssl_version").ok_or_else(|| missing("ssl_version"))?,
        client_tls: !field("client_tls")
            .ok_or_else(|| missing("client_tls"))?
            .is_empty(),
        public_key: (key != "none").then_some(key),
    })
}

/// Logs in with `client` and reports what it saw (or its error).
fn login(
    client: Client,
    port: u16,
    link: Link,
    user: &str,
    password: Option<&str>,
) -> Result<Seen, Refused> {
    match client {
        Client::Cli => cli_login(port, link, user, password),
        Client::MysqlAsync => async_login(port, link, user, password),
        Client::PyMySql => pymysql_login(port, link, user, password),
    }
}

fn is_tls_version(v: &str) -> bool {
    v.starts_with("TLSv1.")
}

// ---- 1. the matrix ----

/// Every cell for one server link: 2 services × 2 client links × the clients' plugins,
/// minus pass-through caching_sha2_password. One dpm serves them all.
fn run_matrix(server: ServerLink) {
    let proxy = start_proxy(server, |b| b);
    let server_tls = server == ServerLink::Tls;
    let mut failures = Vec::new();
    let mut cells = 0;
    for auth in [Auth::PassThrough, Auth::ProxyHeld] {
        for link in [Link::Plain, Link::Tls] {
            let port = proxy.port(auth, link);
            // docs/tls.md, "What is negotiated where": the greeting offers TLS when dpm
            // does, or in pass-through when the server does and dpm has no TLS settings
            // on either side (the TLS MariaDB offers it).
            let offers_tls = link == Link::Tls || (auth == Auth::PassThrough && !server_tls);
            let greeting = read_greeting(port);
            if (greeting.capabilities & CLIENT_SSL != 0) != offers_tls {
                failures.push(format!(
                    "{auth:?}, {link:?} client link: the greeting's CLIENT_SSL should be {offers_tls}"
                ));
            }
            for (client, plugins) in CLIENTS {
                for &plugin in plugins {
                    let Some(a) = account(auth, plugin) else {
                        continue;
                    };
                    cells += 1;
                    let cell = format!(
                        "{client:?}, {link:?} client link, {server:?} server link, {auth:?}, {plugin:?} ({})",
                        a.user
                    );
                    match login(client, port, link, a.user, Some(a.password)) {
                        Err(e) => failures.push(format!("{cell}: refused: {e}")),
                        Ok(seen) => {
                            if seen.current_user != a.server_account
                                || is_tls_version(&seen.server_ssl_version) != server_tls
                                || (!server_tls && !seen.server_ssl_version.is_empty())
                                || seen.client_tls != (link == Link::Tls)
                            {
                                failures.push(format!(
                                    "{cell}: saw {seen:?}; expected CURRENT_USER() {}, server TLS {server_tls}, client TLS {}",
                                    a.server_account,
                                    link == Link::Tls
                                ));
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cells} cells failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // 2 services × 2 client links × 3 clients × 3 plugins, less pass-through caching_sha2.
    assert_eq!(cells, 2 * 2 * 9 - 2 * 3);
}

#[test]
fn matrix_with_a_plain_server_link() {
    run_matrix(ServerLink::Plain);
}

#[test]
fn matrix_with_a_tls_server_link() {
    run_matrix(ServerLink::Tls);
}

// ---- 2. proxy-held users ----

/// `login`, expecting a refusal.
fn refused(r: Result<Seen, Refused>, what: &str) -> Refused {
    match r {
        Ok(seen) => panic!("{what}: logged in ({seen:?})"),
        Err(e) => e,
    }
}

/// MariaDB's wording for a refused login from this machine.
fn access_denied(user: &str, using_password: bool) -> String {
    format!(
        "Access denied for user '{user}'@'localhost' (using password: {})",
        if using_password { "YES" } else { "NO" }
    )
}

/// Whether MariaDB itself says "using password: YES" when `client` logs in as `user`
/// without a password (directly, over plain).
fn mariadb_says_using_password(client: Client, user: &str) -> bool {
    let e = refused(
        login(client, MariaDb::tls().port, Link::Plain, user, None),
        "MariaDB itself, no password",
    );
    assert_eq!(e.code, 1045, "MariaDB itself: {e}");
    // Its host part is 127.0.0.1 (it runs with --skip-name-resolve).
    match e.message.rsplit_once("(using password: ") {
        Some((_, "YES)")) => true,
        Some((_, "NO)")) => false,
        _ => panic!("MariaDB itself: {e}"),
    }
}

/// A wrong password, no password, and an unknown user, for each plugin and client: ERR
/// 1045 (28000) worded as MariaDB words it. For a login without a password, "using
/// password" is what MariaDB itself says to the same client for an account of the same
/// plugin: NO for mysql_native_password and an unknown user; YES for client_ed25519
/// whatever the client sent (the CLI signs the empty password, mysql_async sends an
/// empty answer; MariaDB's ed25519 plugin says YES to both). caching_sha2_password, which
/// MariaDB lacks: NO for the empty scramble, as MySQL says.
#[test]
fn proxy_held_refusals_get_1045_in_the_servers_wording() {
    let proxy = start_proxy(ServerLink::Plain, |b| b);
    let mut failures = Vec::new();
    for (client, _) in CLIENTS {
        // (user, password, "using password")
        let cases = [
            ("app_native", Some(WRONG_PW), true),
            (
                "app_native",
                None,
                mariadb_says_using_password(client, USER),
            ),
            ("app_sha2", Some(WRONG_PW), true),
            ("app_sha2", None, false),
            ("app_ed", Some(WRONG_PW), true),
            ("app_ed", None, mariadb_says_using_password(client, ED_USER)),
            ("nobody", Some(WRONG_PW), true),
            (
                "nobody",
                None,
                mariadb_says_using_password(client, "nobody"),
            ),
        ];
        for link in [Link::Plain, Link::Tls] {
            if link == Link::Tls && client != Client::Cli {
                continue; // the TLS link once, with the CLI
            }
            for (user, password, using) in cases {
                let what = format!("{client:?} over {link:?} as {user} with {password:?}");
                match login(
                    client,
                    proxy.port(Auth::ProxyHeld, link),
                    link,
                    user,
                    password,
                ) {
                    Ok(seen) => failures.push(format!("{what}: logged in ({seen:?})")),
                    Err(e) if e.is(1045, "28000", &access_denied(user, using)) => {}
                    Err(e) => failures.push(format!("{what}: {e}")),
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // dpm goes on serving.
    let seen = cli_login(proxy.held_plain, Link::Plain, "app_native", Some(NATIVE_PW))
        .expect("a right password after the wrong ones");
    assert_eq!(seen.current_user, "happy@%");
}

/// A schema the server does not know: the client gets the server's own error, as in
/// pass-through and directly (`ERROR 1049 (42000): Unknown database 'no_such_db'`).
#[test]
fn proxy_held_unknown_schema_gets_the_servers_error() {
    let proxy = start_proxy(ServerLink::Plain, |b| b);
    let run = |port: u16, user: &str, password: &str| {
        Cli::new(port)
            .user(user)
            .password(Some(password))
            .db("no_such_db")
            .run("SELECT 1")
    };
    let direct = run(MariaDb::tls().port, USER, PASSWORD);
    assert_eq!(
        direct.stderr.trim_end(),
        "ERROR 1049 (42000): Unknown database 'no_such_db'"
    );
    let pass = run(proxy.pass_plain, USER, PASSWORD);
    assert_eq!(pass.stderr, direct.stderr, "pass-through: {pass}");
    let held = run(proxy.held_plain, "app_native", NATIVE_PW);
    assert_eq!(held.code(), Some(1), "{held}");
    assert_eq!(held.stderr, direct.stderr, "proxy-held: {held}");
}

/// The base64 body of the RSA public key PyMySQL received logging in as app_sha2 on
/// `port` (plain), or None (it asked for none: no full authentication without TLS).
fn sha2_public_key_asked(port: u16) -> Option<String> {
    pymysql_login(port, Link::Plain, "app_sha2", Some(SHA2_PW))
        .expect("PyMySQL as app_sha2")
        .public_key
}

/// caching_sha2_password, first login after dpm starts: full authentication. Without TLS
/// the client asks for dpm's RSA public key (the key of `rsa_private_key`) and sends the
/// password encrypted with it; the next login takes the fast path. dpm logs nothing that
/// tells the paths apart; PyMySQL does: it asks for the public key in each full
/// authentication without TLS and never in the fast path. So each client logs in first
/// on a fresh dpm, then PyMySQL shows that the cache was filled.
#[test]
fn caching_sha2_full_authentication_with_rsa_then_the_fast_path() {
    let key = rsa_key();
    for (first, _) in CLIENTS {
        let proxy = start_proxy(ServerLink::Plain, |b| {
            b.env("DPM_RSA_KEY", path_str(&key.private))
        });
        let seen = login(
            first,
            proxy.held_plain,
            Link::Plain,
            "app_sha2",
            Some(SHA2_PW),
        )
        .unwrap_or_else(|e| panic!("{first:?}: first (full) login: {e}"));
        assert_eq!(seen.current_user, "other@%", "{first:?}");
        if first == Client::PyMySql {
            assert_eq!(
                seen.public_key.as_deref(),
                Some(key.public_body.as_str()),
                "the full authentication sends the public key of rsa_private_key"
            );
        }
        assert_eq!(
            sha2_public_key_asked(proxy.held_plain),
            None,
            "after {first:?}'s full authentication, the fast path"
        );
        // The fast path checks the password too.
        let e = refused(
            login(
                first,
                proxy.held_plain,
                Link::Plain,
                "app_sha2",
                Some(WRONG_PW),
            ),
            "a wrong password on the fast path",
        );
        assert!(
            e.is(1045, "28000", &access_denied("app_sha2", true)),
            "{first:?}: {e}"
        );
    }
    // Without rsa_private_key dpm makes a key pair at the first need, and says so.
    let proxy = start_proxy(ServerLink::Plain, |b| b);
    let made = sha2_public_key_asked(proxy.held_plain).expect("a full authentication");
    assert_ne!(made, key.public_body);
    proxy
        .dpm
        .wait_for_line("generating an RSA key pair", Duration::from_secs(5));
    assert_eq!(sha2_public_key_asked(proxy.held_plain), None);
}

/// Over TLS the full authentication takes the password in clear (inside TLS): no RSA
/// key is needed, so dpm, given none, never makes one, and the cache it fills serves the
/// next login without TLS by the fast path (a full one would need the key).
#[test]
fn caching_sha2_full_authentication_over_tls_is_cleartext_and_fills_the_cache() {
    for (first, _) in CLIENTS {
        let proxy = start_proxy(ServerLink::Plain, |b| b);
        let seen = login(first, proxy.held_tls, Link::Tls, "app_sha2", Some(SHA2_PW))
            .unwrap_or_else(|e| panic!("{first:?}: first login over TLS: {e}"));
        assert_eq!(
            (seen.current_user.as_str(), seen.client_tls),
            ("other@%", true)
        );
        assert_eq!(seen.public_key, None, "{first:?}");
        assert_eq!(sha2_public_key_asked(proxy.held_plain), None, "{first:?}");
        let out = proxy.dpm.output();
        assert!(
            !out.contains("generating an RSA key pair"),
            "{first:?}: RSA was used:\n{out}"
        );
    }
}

/// A client that starts with another plugin than its user's gets an auth switch: the CLI
/// told `--default-auth=P` answers the greeting with P.
#[test]
fn a_client_starting_with_another_plugin_is_switched_to_the_users() {
    let proxy = start_proxy(ServerLink::Plain, |b| b);
    let plugins = [
        "mysql_native_password",
        "caching_sha2_password",
        "client_ed25519",
    ];
    let mut failures = Vec::new();
    for (plugin, user, password, account) in [
        ("mysql_native_password", "app_native", NATIVE_PW, "happy@%"),
        ("caching_sha2_password", "app_sha2", SHA2_PW, "other@%"),
        ("client_ed25519", "app_ed", ED_PW, "ed@%"),
    ] {
        for default_auth in plugins.into_iter().filter(|p| *p != plugin) {
            for link in [Link::Plain, Link::Tls] {
                let port = proxy.port(Auth::ProxyHeld, link);
                let what = format!("{user} over {link:?} with --default-auth={default_auth}");
                let out = cli(port, link, user, Some(password))
                    .arg(format!("--default-auth={default_auth}"))
                    .arg("--skip-column-names")
                    .run("SELECT CURRENT_USER()");
                if !out.success() || out.stdout.trim_end() != account {
                    failures.push(format!("{what}: {out}"));
                }
                let out = cli(port, link, user, Some(WRONG_PW))
                    .arg(format!("--default-auth={default_auth}"))
                    .run("SELECT 1");
                let e = refused_cli(&out);
                if !e.is(1045, "28000", &access_denied(user, true)) {
                    failures.push(format!("{what}, wrong password: {e}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Retries a mysql_async login while it is refused with `code` (a slot being freed after
/// a close), for at most 10 s.
async fn connect_when_freed(opts: OptsBuilder, code: u16) -> Conn {
    let start = Instant::now();
    loop {
        match try_connect(opts.clone()).await {
            Ok(c) => return c,
            Err(e) if e.code == code && start.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("no slot freed after a close: {e}"),
        }
    }
}

/// `max_connections` of a user: the session beyond it gets ERR 1203, other users are not
/// affected, and a closed session frees its place.
#[test]
fn per_user_max_connections_refuses_the_extra_session_with_1203() {
    let proxy = start_proxy(ServerLink::Plain, |b| b.env("DPM_LIMITED_MAX", 2));
    let port = proxy.held_plain;
    let message =
        "User app_limited already has more than 'max_user_connections' active connections";
    async_runtime().block_on(async {
        let opts = async_opts(port, Link::Plain, "app_limited", Some(NATIVE_PW));
        let first = try_connect(opts.clone()).await.expect("first session");
        let mut second = try_connect(opts.clone()).await.expect("second session");
        let e = try_connect(opts.clone())
            .await
            .expect_err("a third session");
        assert!(e.is(1203, "42000", message), "mysql_async: {e}");
        let out = cli(port, Link::Plain, "app_limited", Some(NATIVE_PW)).run("SELECT 1");
        assert!(refused_cli(&out).is(1203, "42000", message), "CLI: {out}");
        // Another user logs in meanwhile.
        cli_login(port, Link::Plain, "app_native", Some(NATIVE_PW)).expect("app_native");

        first.disconnect().await.unwrap();
        let third = connect_when_freed(opts.clone(), 1203).await;
        let (user, _) = who_and_tls(&mut second).await.expect("the second session");
        assert_eq!(user, "happy@%");
        third.disconnect().await.unwrap();
        second.disconnect().await.unwrap();
    });
}

/// `max_connections` of a listener: the client beyond it gets ERR 1040 "Too many
/// connections" in place of a greeting; another listener is not affected; a closed
/// client frees its place. An ERR before the handshake carries no SQLSTATE (no
/// capabilities are agreed yet, so a client that follows the protocol, like mysql_async,
/// would read a `#08004` marker as part of the message): the SQLSTATE is not checked.
#[test]
fn listener_max_connections_refuses_the_extra_client_with_1040() {
    let proxy = start_proxy(ServerLink::Plain, |b| b.env("DPM_LISTEN_MAX", 2));
    let port = proxy.held_plain;
    async_runtime().block_on(async {
        let opts = async_opts(port, Link::Plain, "app_native", Some(NATIVE_PW));
        let first = try_connect(opts.clone()).await.expect("first client");
        let mut second = try_connect(opts.clone()).await.expect("second client");
        // What each client reports (checked at the end, after the rest).
        let mut wrong = Vec::new();
        let mut check = |client: Client, e: Refused| {
            assert_eq!(e.code, 1040, "{client:?}: {e}");
            if e.message != "Too many connections" {
                wrong.push(format!("{client:?}: {e}"));
            }
        };
        let e = try_connect(opts.clone()).await.expect_err("a third client");
        check(Client::MysqlAsync, e);
        let out = cli(port, Link::Plain, "app_native", Some(NATIVE_PW)).run("SELECT 1");
        check(Client::Cli, refused_cli(&out));
        let e = refused(
            pymysql_login(port, Link::Plain, "app_native", Some(NATIVE_PW)),
            "a third client (PyMySQL)",
        );
        check(Client::PyMySql, e);
        cli_login(proxy.held_tls, Link::Tls, "app_native", Some(NATIVE_PW))
            .expect("the other listener has no limit");

        first.disconnect().await.unwrap();
        let third = connect_when_freed(opts, 1040).await;
        who_and_tls(&mut second).await.expect("the second client");
        third.disconnect().await.unwrap();
        second.disconnect().await.unwrap();
        assert!(
            wrong.is_empty(),
            "the refusal as clients report it:\n{}",
            wrong.join("\n")
        );
    });
}

/// One value of a one-row query.
async fn value(c: &mut Conn, sql: &str) -> Result<Option<String>, Refused> {
    let v: Option<Option<String>> = c.query_first(sql).await.map_err(|e| refused_async(&e))?;
    Ok(v.flatten())
}

/// COM_CHANGE_USER (mysql_async `change_user`) to other proxy-held users, each with
/// another plugin: the session gets a fresh server connection with the new user's mapped
/// account, its schema, and no session state; the old server connection is closed. A
/// wrong password gets 1045 and the connection is closed.
#[test]
fn change_user_to_other_proxy_held_users_and_with_a_wrong_password() {
    let proxy = start_proxy(ServerLink::Plain, |b| {
        b.env("DPM_RSA_KEY", path_str(&rsa_key().private))
    });
    let change = |user: &str, password: &str| {
        ChangeUserOpts::default()
            .with_user(Some(user.to_string()))
            .with_pass(Some(password.to_string()))
            .with_db_name(Some(DB.to_string()))
    };
    for link in [Link::Plain, Link::Tls] {
        async_runtime().block_on(async {
            let port = proxy.port(Auth::ProxyHeld, link);
            let opts =
                async_opts(port, link, "app_native", Some(NATIVE_PW)).db_name(None::<String>);
            let mut c = try_connect(opts).await.expect("app_native");
            c.query_drop("SET @marker = 42").await.unwrap();
            let mut id = value(&mut c, "SELECT CONNECTION_ID()").await.unwrap();
            assert_eq!(value(&mut c, "SELECT DATABASE()").await.unwrap(), None);
            for (user, password, account) in [
                ("app_sha2", SHA2_PW, "other@%"),
                ("app_ed", ED_PW, "ed@%"),
                ("app_native", NATIVE_PW, "happy@%"),
            ] {
                let what = format!("{link:?}: change_user to {user}");
                c.change_user(change(user, password))
                    .await
                    .unwrap_or_else(|e| panic!("{what}: {e:?}"));
                let row: Option<(String, Option<String>, Option<i64>, u64)> = c
                    .query_first("SELECT CURRENT_USER(), DATABASE(), @marker, CONNECTION_ID()")
                    .await
                    .unwrap_or_else(|e| panic!("{what}: {e:?}"));
                let (current, db, marker, new_id) = row.unwrap();
                assert_eq!(
                    (current.as_str(), db.as_deref(), marker),
                    (account, Some(DB), None),
                    "{what}"
                );
                let old: u64 = id.unwrap().parse().unwrap();
                assert_ne!(new_id, old, "{what}: a fresh server connection");
                MariaDb::tls().wait_connection_gone(old, Duration::from_secs(10));
                id = Some(new_id.to_string());
                c.query_drop("SET @marker = 42").await.unwrap();
            }
            let e = match c.change_user(change("app_ed", WRONG_PW)).await {
                Ok(()) => panic!("{link:?}: change_user with a wrong password succeeded"),
                Err(e) => refused_async(&e),
            };
            assert!(
                e.is(1045, "28000", &access_denied("app_ed", true)),
                "{link:?}: {e}"
            );
            let after = c.query_drop("SELECT 1").await;
            assert!(after.is_err(), "{link:?}: the connection stays open");
        });
    }
}

/// `dpm.login_throttle{ failures = 2, window = 60, delay = 1 }`: the third wrong login
/// from 127.0.0.1 is answered after 1 s with a WARN naming the address; a right one
/// forgets the failures.
#[test]
fn login_throttle_delays_refusals_after_the_allowed_failures() {
    let proxy = start_proxy(ServerLink::Plain, |b| b.env("DPM_THROTTLE", "2,60,1"));
    let wrong = || {
        let start = Instant::now();
        let r = cli_login(proxy.held_plain, Link::Plain, "app_native", Some(WRONG_PW));
        let e = refused(r, "a wrong password");
        assert!(
            e.is(1045, "28000", &access_denied("app_native", true)),
            "{e}"
        );
        start.elapsed()
    };
    let second = Duration::from_secs(1);
    for i in 1..=2 {
        let took = wrong();
        assert!(took < second, "failure {i} took {took:?}");
    }
    let before = proxy.dpm.line_count();
    let took = wrong();
    assert!(took >= second, "the third failure took only {took:?}");
    let line = proxy.dpm.wait_for_line_after(
        before,
        "repeated failed logins from 127.0.0.1:",
        Duration::from_secs(5),
    );
    assert!(line.contains("WARN"), "{line}");

    cli_login(proxy.held_plain, Link::Plain, "app_native", Some(NATIVE_PW))
        .expect("a right password");
    let took = wrong();
    assert!(took < second, "after a success, a failure took {took:?}");
}

/// The server refuses the account dpm logs in with for a user: the client gets 1045
/// naming the server, not the account; dpm's log has the server's refusal.
#[test]
fn a_server_refusing_dpms_account_gets_the_client_1045_naming_the_server() {
    let proxy = start_proxy(ServerLink::Plain, |b| b);
    let message = "Access denied: dpm could not log in to server 'db' (see dpm's log)";
    for client in [Client::Cli, Client::MysqlAsync, Client::PyMySql] {
        let e = refused(
            login(
                client,
                proxy.held_plain,
                Link::Plain,
                "app_badbackend",
                Some(NATIVE_PW),
            ),
            "app_badbackend",
        );
        assert!(e.is(1045, "28000", message), "{client:?}: {e}");
    }
    let line = proxy
        .dpm
        .wait_for_line("dpm's login to the server failed", Duration::from_secs(5));
    assert!(
        line.contains("ERROR")
            && line.contains(&format!("Access denied for user '{DEMO_USER}'@"))
            && line.contains("server=db"),
        "{line}"
    );
    assert!(!proxy.dpm.output().contains(BAD_BACKEND_PW));
}

/// A `password` field is refused at startup (`bad.lua:2: …`) without echoing it.
#[test]
fn a_password_field_in_dpm_users_is_a_startup_error() {
    let secret = "Plain-Secret-4716";
    let dpm = start_fails_at_line_2(&format!(
        "dpm.users{{ {{ user = 'u', password = '{secret}', service = 's' }} }}"
    ));
    let err = dpm.stderr_after_exit();
    assert!(
        err.contains("bad.lua:2: dpm.users: give password_hash (`dpm hash-password` prints one), never a plain password"),
        "{err}"
    );
    assert!(!dpm.output().contains(secret), "{}", dpm.output());
}

/// A malformed password_hash is refused at startup naming the plugin and the form
/// expected, never the text given.
#[test]
fn a_malformed_password_hash_is_a_startup_error_that_does_not_echo_it() {
    let cases = [
        (
            "mysql_native_password",
            "*0123456789ABCDEF0123456789ABCDEF0123456Z",
            "0123456789ABCDEF",
            "password_hash for mysql_native_password must be '*' followed by 40 hex digits",
        ),
        (
            "caching_sha2_password",
            "$A$005$SaltSaltSaltSaltSalt0123456789abcdefghijklmnopqrstuvwxyzABCDEF!",
            "SaltSaltSalt",
            "password_hash for caching_sha2_password must be MySQL's authentication_string ('$A$005$', a 20-character salt and a 43-character digest): the digest must be 43 characters of ./0-9A-Za-z",
        ),
        (
            "client_ed25519",
            "HashHashHashHashHashHashHashHashHashHash!!!",
            "HashHashHash",
            "password_hash for client_ed25519 must be MariaDB's authentication_string (43 characters of base64, no padding): not base64",
        ),
    ];
    for (plugin, hash, part, expected) in cases {
        let dpm = start_fails_at_line_2(&format!(
            "dpm.users{{ {{ user = 'u', plugin = '{plugin}', password_hash = '{hash}', service = 's' }} }}"
        ));
        let err = dpm.stderr_after_exit();
        assert!(
            err.contains(&format!("bad.lua:2: dpm.users: user 'u': {expected}")),
            "{plugin}: {err}"
        );
        assert!(!dpm.output().contains(part), "{plugin}: {}", dpm.output());
    }
}

/// A user naming a service that does not exist (a typo) stops the start: otherwise the
/// real service would silently stay pass-through.
#[test]
fn a_user_of_an_unknown_service_is_a_startup_error() {
    assert_start_fails_at_line_2(
        "dpm.users{ { user = 'u', password_hash = '*0123456789ABCDEF0123456789ABCDEF01234567', service = 'aap' } }",
        "dpm.users: user 'u': no service 'aap' is defined (define a service before its users)",
    );
}

/// Compression negotiated by the client and the server stays end to end when dpm
/// terminates TLS on either side or both (pass-through): the compressed stream passes
/// inside dpm's TLS.
#[test]
fn compression_passes_through_when_dpm_terminates_tls() {
    let mut failures = Vec::new();
    for server_link in [ServerLink::Plain, ServerLink::Tls] {
        let proxy = start_proxy(server_link, |b| b);
        for link in [Link::Plain, Link::Tls] {
            let port = proxy.port(Auth::PassThrough, link);
            let out = cli(port, link, DEMO_USER, Some(DEMO_PASSWORD))
                .arg("--compress")
                .arg("--skip-column-names")
                .run("SHOW STATUS LIKE 'Compression'; SELECT LENGTH(REPEAT('x', 200000))");
            let lines: Vec<&str> = out.stdout.lines().collect();
            if !out.success() || lines != ["Compression\tON", "200000"] {
                failures.push(format!("{server_link:?} server, {link:?} client: {out}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---- 3. TLS ----

/// `require = true` (here on the services, so every listener of theirs offers TLS): a
/// plain client gets ERR 3159 and is closed, a TLS client is served, in both modes.
#[test]
fn tls_require_refuses_plain_clients_with_3159_and_serves_tls_ones() {
    let proxy = start_proxy(ServerLink::Plain, |b| {
        b.env("DPM_SERVICE_TLS", "1").env("DPM_TLS_REQUIRE", "1")
    });
    let message =
        "Connections using insecure transport are prohibited while --require_secure_transport=ON.";
    let mut failures = Vec::new();
    for auth in [Auth::PassThrough, Auth::ProxyHeld] {
        // The listener without TLS settings of its own: the service's apply.
        let port = proxy.port(auth, Link::Plain);
        let a = account(auth, Plugin::Native).unwrap();
        for client in [Client::Cli, Client::MysqlAsync] {
            let what = format!("{auth:?}, {client:?}");
            match login(client, port, Link::Plain, a.user, Some(a.password)) {
                Err(e) if e.is(3159, "HY000", message) => {}
                other => failures.push(format!("{what}, plain: {other:?}")),
            }
            match login(client, port, Link::Tls, a.user, Some(a.password)) {
                Ok(seen) if seen.current_user == a.server_account && seen.client_tls => {}
                other => failures.push(format!("{what}, TLS: {other:?}")),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The CLI verifying dpm against `ca`: Ok, or the refusal.
fn cli_verifying(port: u16, ca: &Path) -> Result<(), Refused> {
    let out = Cli::new(port)
        .user("app_native")
        .password(Some(NATIVE_PW))
        .tls(ca)
        .run("SELECT 1");
    if out.success() {
        Ok(())
    } else {
        Err(refused_cli(&out))
    }
}

/// Certificates reread at run time (SIGHUP): new clients get the new certificate,
/// sessions already running keep theirs and go on; a certificate file that does not load
/// keeps the one before, and the log says so.
#[test]
fn certificate_reload_on_sighup_keeps_sessions_and_survives_a_bad_file() {
    let f = tls_files();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::copy(&f.dpm_cert, &cert).unwrap();
    std::fs::copy(&f.dpm_key, &key).unwrap();
    let proxy = start_proxy(ServerLink::Plain, |b| {
        b.env("DPM_TLS_CERT", path_str(&cert))
            .env("DPM_TLS_KEY", path_str(&key))
    });
    let port = proxy.held_tls;
    cli_verifying(port, &f.ca).expect("the first certificate, signed by the test CA");
    assert!(cli_verifying(port, &f.other_ca).is_err());

    let rt = async_runtime();
    let mut old = rt.block_on(async {
        let opts = async_opts(port, Link::Tls, "app_native", Some(NATIVE_PW));
        try_connect(opts)
            .await
            .expect("a session before the reload")
    });

    std::fs::copy(&f.other_cert, &cert).unwrap();
    std::fs::copy(&f.other_key, &key).unwrap();
    let before = proxy.dpm.line_count();
    proxy.dpm.signal(libc::SIGHUP);
    proxy.dpm.wait_for_line_after(
        before,
        &format!("TLS certificate {} reloaded", cert.display()),
        Duration::from_secs(10),
    );
    cli_verifying(port, &f.other_ca).expect("the new certificate, signed by the other CA");
    let e = cli_verifying(port, &f.ca).expect_err("the old certificate is gone");
    assert!(
        e.code == 2026 && e.message.starts_with("TLS/SSL error:"),
        "{e}"
    );
    let (user, _) = rt
        .block_on(who_and_tls(&mut old))
        .expect("the session from before the reload");
    assert_eq!(user, "happy@%");

    std::fs::write(&cert, "not a certificate\n").unwrap();
    let before = proxy.dpm.line_count();
    proxy.dpm.signal(libc::SIGHUP);
    let line = proxy.dpm.wait_for_line_after(
        before,
        "TLS certificate not reloaded (the old one stays)",
        Duration::from_secs(10),
    );
    assert!(
        line.contains("ERROR") && line.contains(&cert.display().to_string()),
        "{line}"
    );
    cli_verifying(port, &f.other_ca).expect("the certificate loaded before the bad file");
    rt.block_on(who_and_tls(&mut old))
        .expect("the session from before both reloads");
    rt.block_on(old.disconnect()).unwrap();
}

/// Logs in with the CLI over plain on each service of `proxy`: (auth, refusal).
fn refusals_per_mode(proxy: &Proxy) -> Vec<(Auth, Refused)> {
    [Auth::PassThrough, Auth::ProxyHeld]
        .into_iter()
        .map(|auth| {
            let a = account(auth, Plugin::Native).unwrap();
            let port = proxy.port(auth, Link::Plain);
            let e = refused(
                cli_login(port, Link::Plain, a.user, Some(a.password)),
                &format!("{auth:?}"),
            );
            (auth, e)
        })
        .collect()
}

/// TLS to a server whose certificate does not verify (another CA): the client gets ERR
/// 1429 naming the server and the reason, in both modes (docs/tls.md), and the log says
/// the same.
#[test]
fn server_tls_with_the_wrong_ca_gets_1429_with_the_reason() {
    let proxy = start_proxy(ServerLink::TlsWrongCa, |b| b);
    let expected = format!(
        "TLS to server 127.0.0.1:{} failed: invalid peer certificate: UnknownIssuer",
        MariaDb::tls().port
    );
    let failures: Vec<String> = refusals_per_mode(&proxy)
        .into_iter()
        .filter(|(_, e)| !e.is(1429, "HY000", &expected))
        .map(|(auth, e)| format!("{auth:?}: {e}"))
        .collect();
    proxy.dpm.wait_for_line(&expected, Duration::from_secs(5));
    assert!(
        failures.is_empty(),
        "expected ERROR 1429 (HY000): {expected}; got\n{}",
        failures.join("\n")
    );
}

/// TLS settings towards a server that offers no TLS (the shared MariaDB): the client gets
/// ERR 1429 saying the server does not offer TLS, in both modes.
#[test]
fn server_tls_to_a_server_without_tls_tells_the_client() {
    let proxy = start_proxy(ServerLink::TlsToPlainServer, |b| b);
    let failures: Vec<String> = refusals_per_mode(&proxy)
        .into_iter()
        .filter(|(_, e)| {
            !(e.code == 1429
                && e.state.as_deref() == Some("HY000")
                && e.message.contains("does not offer"))
        })
        .map(|(auth, e)| format!("{auth:?}: {e}"))
        .collect();
    assert!(
        failures.is_empty(),
        "expected ERROR 1429 (HY000) saying the server does not offer TLS; got\n{}",
        failures.join("\n")
    );
}

/// `conn:tls()` in Lua: version and cipher where dpm terminates TLS (a TLS client, a
/// backend with TLS settings), nil otherwise (tests/lua/conn_tls.lua prints them at each
/// query).
#[test]
fn conn_tls_gives_version_and_cipher_or_nil() {
    let f = tls_files();
    let port = free_port();
    let dpm = Dpm::builder("crates/dpm/tests/lua/conn_tls.lua")
        .env("DPM_LISTEN_PORT", port)
        .env("DPM_BACKEND_PORT", MariaDb::tls().port)
        .env("DPM_BACKEND_CA", path_str(&f.ca))
        .env("DPM_TLS_CERT", path_str(&f.dpm_cert))
        .env("DPM_TLS_KEY", path_str(&f.dpm_key))
        .spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    for (link, sql) in [
        (Link::Tls, "SELECT 'tls client'"),
        (Link::Plain, "SELECT 'plain client'"),
    ] {
        let out = cli(port, link, USER, Some(PASSWORD))
            .arg("--skip-column-names")
            .run(&format!("{sql}; SHOW STATUS LIKE 'Ssl_version'"));
        out.assert_success(sql);
        assert!(
            is_tls_version(
                out.stdout
                    .lines()
                    .last()
                    .unwrap()
                    .trim_start_matches("Ssl_version\t")
            ),
            "{out}"
        );
        let line = dpm.wait_for_line(&format!("conn_tls {sql} "), Duration::from_secs(5));
        let fields: Vec<&str> = line.split(' ').collect();
        let [.., client_version, client_cipher, backend_version, backend_cipher] = fields[..]
        else {
            panic!("{line}");
        };
        let tls = |version: &str, cipher: &str| {
            let version = version.split_once('=').map_or(version, |(_, v)| v);
            is_tls_version(version) && cipher.starts_with("TLS") && cipher.len() > 8
        };
        if link == Link::Tls {
            assert!(tls(client_version, client_cipher), "{line}");
        } else {
            assert_eq!(
                (client_version, client_cipher),
                ("client=nil", "nil"),
                "{line}"
            );
        }
        assert!(tls(backend_version, backend_cipher), "{line}");
    }
}

/// Without TLS settings on either side, a client's TLS goes through dpm to the server as
/// an opaque tunnel (the client verifies MariaDB's own certificate, and an account that
/// requires TLS logs in): examples/passthrough.lua, and a pass-through service.
#[test]
fn without_tls_settings_client_tls_is_an_opaque_tunnel_to_the_server() {
    let db = MariaDb::tls();
    let raw = passthrough_with(|b| b.env("DPM_BACKEND_PORT", db.port));
    let service = start_proxy(ServerLink::Plain, |b| b);
    for (what, port) in [
        ("examples/passthrough.lua", raw.port),
        ("service pass", service.pass_plain),
    ] {
        for (user, password) in [(USER, PASSWORD), (SSL_USER, SSL_PASSWORD)] {
            let seen = cli_login(port, Link::Tls, user, Some(password))
                .unwrap_or_else(|e| panic!("{what}, {user}: {e}"));
            assert!(
                seen.client_tls && is_tls_version(&seen.server_ssl_version),
                "{what}, {user}: {seen:?}"
            );
            assert_eq!(seen.current_user, format!("{user}@%"), "{what}");
        }
    }
}

// ---- 4. secrets ----

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64, padding optional.
fn base64_decode(text: &str) -> Vec<u8> {
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = BASE64.iter().position(|&x| x == c).expect("base64") as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// The forms a byte string could be printed in: hex (both cases), base64, and the start
/// of Rust's `Debug` of a byte slice (`[12, 34, 56, 78`).
fn byte_forms(what: &str, bytes: &[u8]) -> Vec<(String, String)> {
    let debug = format!("{:?}", &bytes[..6]);
    vec![
        (format!("{what} (hex)"), hex(bytes)),
        (format!("{what} (HEX)"), hex(bytes).to_uppercase()),
        (format!("{what} (base64)"), base64_encode(bytes)),
        (
            format!("{what} (Debug)"),
            debug.trim_end_matches(']').to_string(),
        ),
    ]
}

/// Everything secret in the startup file and the logins of the test below: passwords
/// (the users', the guesses, the backend accounts'), and every password_hash as text,
/// its parts, and its bytes in every form.
fn secrets() -> Vec<(String, String)> {
    let h = hashes();
    let mut s: Vec<(String, String)> = [
        ("app_native's password", NATIVE_PW),
        ("app_sha2's password", SHA2_PW),
        ("app_ed's password", ED_PW),
        ("the wrong password", WRONG_PW),
        ("app_badbackend's backend password", BAD_BACKEND_PW),
        ("the server's backend password (happy)", DEMO_PASSWORD),
        ("app_sha2's backend password (other)", OTHER_PASSWORD),
        ("app_ed's backend password (ed)", ED_PASSWORD),
        ("the pass-through password (dpm)", PASSWORD),
        ("the native password_hash", h.native.as_str()),
        ("the caching_sha2 password_hash", h.sha2.as_str()),
        ("the ed25519 password_hash", h.ed.as_str()),
    ]
    .into_iter()
    .map(|(w, t)| (w.to_string(), t.to_string()))
    .collect();
    // mysql_native_password: "*" + 40 hex digits of SHA1(SHA1(password)).
    let native = &h.native[1..];
    s.push(("the native hash's hex".into(), native.to_string()));
    s.push(("the native hash's hex".into(), native.to_lowercase()));
    s.extend(byte_forms("the native hash", &unhex(native)));
    // caching_sha2_password: "$A$005$" + 20-character salt + 43-character digest; the
    // 0x form is the hex of the whole text.
    s.push(("the caching_sha2 salt".into(), h.sha2[7..27].to_string()));
    s.push(("the caching_sha2 digest".into(), h.sha2[27..].to_string()));
    s.extend(byte_forms("the caching_sha2 hash text", h.sha2.as_bytes()));
    // client_ed25519: the base64 of the 32-byte public key.
    s.push(("the ed25519 hash, padded".into(), format!("{}=", h.ed)));
    s.extend(byte_forms("the ed25519 key", &base64_decode(&h.ed)));
    s
}

#[test]
fn base64_helpers_round_trip() {
    let h = hashes();
    let key = base64_decode(&h.ed);
    assert_eq!(key.len(), 32);
    assert_eq!(base64_encode(&key), format!("{}=", h.ed));
    assert_eq!(base64_encode(b"ab"), "YWI=");
}

/// dpm at `-v 3` (trace) through logins of every kind — each plugin right and wrong,
/// plain and TLS, pass-through, caching_sha2's RSA and cleartext paths, COM_CHANGE_USER,
/// a server refusing dpm's account — then the services' diagnostics and dpm.servers():
/// no password and no form of any password_hash appears anywhere.
#[test]
fn no_password_or_hash_appears_in_trace_output_or_diagnostics() {
    let proxy = start_proxy(ServerLink::Tls, |b| {
        b.verbose(Some(3))
            .env("DPM_RSA_KEY", path_str(&rsa_key().private))
    });
    // caching_sha2 first over plain (RSA), then over TLS (fast path), then the rest.
    for link in [Link::Plain, Link::Tls] {
        for plugin in [Plugin::CachingSha2, Plugin::Native, Plugin::Ed25519] {
            for auth in [Auth::PassThrough, Auth::ProxyHeld] {
                let Some(a) = account(auth, plugin) else {
                    continue;
                };
                let port = proxy.port(auth, link);
                let client = if plugin == Plugin::CachingSha2 {
                    Client::PyMySql
                } else {
                    Client::Cli
                };
                login(client, port, link, a.user, Some(a.password))
                    .unwrap_or_else(|e| panic!("{auth:?} {plugin:?} over {link:?}: {e}"));
                refused(
                    login(client, port, link, a.user, Some(WRONG_PW)),
                    "a wrong password",
                );
            }
        }
    }
    refused(
        cli_login(
            proxy.held_plain,
            Link::Plain,
            "app_badbackend",
            Some(NATIVE_PW),
        ),
        "app_badbackend",
    );
    let diagnostics = async_runtime().block_on(async {
        let opts = async_opts(proxy.held_plain, Link::Plain, "app_native", Some(NATIVE_PW));
        let mut c = try_connect(opts).await.expect("app_native");
        for (user, password) in [("app_sha2", SHA2_PW), ("app_ed", ED_PW)] {
            let change = ChangeUserOpts::default()
                .with_user(Some(user.to_string()))
                .with_pass(Some(password.to_string()));
            c.change_user(change).await.expect("change_user");
        }
        let diagnostics = value(&mut c, "DPM DIAGNOSTICS")
            .await
            .expect("DPM DIAGNOSTICS")
            .expect("a row");
        let wrong = ChangeUserOpts::default()
            .with_user(Some("app_native".to_string()))
            .with_pass(Some(WRONG_PW.to_string()));
        assert!(c.change_user(wrong).await.is_err());
        diagnostics
    });
    assert!(
        diagnostics.contains("\"held\"") && diagnostics.contains("\"servers\""),
        "{diagnostics}"
    );
    // The trace really covered the logins.
    proxy
        .dpm
        .wait_for_line("COM_CHANGE_USER done by dpm", Duration::from_secs(5));
    proxy
        .dpm
        .wait_for_line("dpm's login to the server failed", Duration::from_secs(5));
    let output = proxy.dpm.output();
    assert!(output.contains("logged in by dpm"), "not at trace level?");

    let mut leaks = Vec::new();
    for (what, secret) in secrets() {
        for (place, text) in [("dpm's output", &output), ("the diagnostics", &diagnostics)] {
            if let Some(at) = text.find(&secret) {
                let line = text[..at].lines().count();
                leaks.push(format!("{what} ({secret}) in {place}, line {line}"));
            }
        }
    }
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
}

/// A client whose first plugin already is its user's (`--default-auth`): it sends no
/// proof with its login and waits for the server's data, which dpm sends as an auth
/// switch (found by review: dpm used to check the empty answer).
#[test]
fn a_client_starting_with_its_users_plugin_gets_the_plugins_data() {
    let proxy = start_proxy(ServerLink::Plain, |b| b);
    let mut failures = Vec::new();
    for (plugin, user, password, account) in [
        ("caching_sha2_password", "app_sha2", SHA2_PW, "other@%"),
        ("client_ed25519", "app_ed", ED_PW, "ed@%"),
    ] {
        for link in [Link::Plain, Link::Tls] {
            let port = proxy.port(Auth::ProxyHeld, link);
            let out = cli(port, link, user, Some(password))
                .arg(format!("--default-auth={plugin}"))
                .arg("--skip-column-names")
                .run("SELECT CURRENT_USER()");
            if !out.success() || out.stdout.trim_end() != account {
                failures.push(format!("{user} {link:?} --default-auth={plugin}: {out}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// mysql_async keeps the nonce of an auth switch for COM_CHANGE_USER: dpm's switches
/// for the password plugins carry the greeting's nonce, as the servers' do, and
/// ed25519 is switched again (found by review).
#[test]
fn change_user_after_a_login_through_an_auth_switch() {
    let proxy = start_proxy(ServerLink::Plain, |b| b);
    let mut failures = Vec::new();
    for (user, password, account) in [("app_sha2", SHA2_PW, "other@%"), ("app_ed", ED_PW, "ed@%")] {
        async_runtime().block_on(async {
            let port = proxy.port(Auth::ProxyHeld, Link::Tls);
            let opts = async_opts(port, Link::Tls, user, Some(password));
            let mut c = try_connect(opts).await.expect("login");
            let changed = c
                .change_user(
                    ChangeUserOpts::default()
                        .with_user(Some(user.to_string()))
                        .with_pass(Some(password.to_string())),
                )
                .await;
            match changed {
                Err(e) => failures.push(format!("{user}: change_user to itself: {e:?}")),
                Ok(()) => {
                    let who: Option<String> = c.query_first("SELECT CURRENT_USER()").await.unwrap();
                    if who.as_deref() != Some(account) {
                        failures.push(format!(
                            "{user}: after change_user CURRENT_USER() = {who:?}"
                        ));
                    }
                }
            }
        });
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A 15 MiB statement over a TLS client link costs about what it costs in plain: a
/// read over TLS fills only what one read can return (found by review: the whole
/// reserved frame was zeroed on every read, quadratic in the frame's size).
#[test]
fn a_large_statement_over_tls_is_not_much_slower_than_plain() {
    let proxy = start_proxy(ServerLink::Plain, |b| b);
    let mut took = Vec::new();
    for link in [Link::Plain, Link::Tls] {
        async_runtime().block_on(async {
            let port = proxy.port(Auth::PassThrough, link);
            let opts = async_opts(port, link, DEMO_USER, Some(DEMO_PASSWORD));
            let mut c = try_connect(opts).await.expect("login");
            let q = format!("SELECT LENGTH('{}')", "x".repeat(15 << 20));
            let t = Instant::now();
            let n: Option<u64> = c.query_first(q).await.unwrap();
            assert_eq!(n, Some(15 << 20));
            took.push(t.elapsed());
        });
    }
    // Generous: TLS adds encryption on both hops of the client link, not a multiple.
    assert!(
        took[1] < took[0] * 3 + Duration::from_millis(300),
        "plain {:?}, TLS {:?}",
        took[0],
        took[1]
    );
}
