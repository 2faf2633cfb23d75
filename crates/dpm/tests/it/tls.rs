//! TLS harness baseline: real clients against the MariaDB that offers TLS
//! ([`MariaDb::tls`]), directly, no dpm. These prove the test certificates, the
//! server and each client helper before any test relies on them through dpm.

use crate::support::*;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Asserts `v` names a TLS 1.x version (`TLSv1.2`, `TLSv1.3`).
fn assert_tls_version(v: &str, what: &str) {
    assert!(
        v.starts_with("TLSv1."),
        "{what}: Ssl_version is {v:?}, not TLSv1.x"
    );
}

// ---- the certificates themselves (OpenSSL through Python's ssl module) ----

fn cert_check(
    cert: &std::path::Path,
    key: &std::path::Path,
    ca: &std::path::Path,
    host: &str,
) -> String {
    let args: Vec<String> = [
        "--cert",
        &path_str(cert),
        "--key",
        &path_str(key),
        "--ca",
        &path_str(ca),
        "--host",
        host,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = python("tls_cert_check.py", &args, Duration::from_secs(30));
    out.assert_success("tls_cert_check.py");
    out.stdout.trim().to_string()
}

#[test]
fn test_certificates_verify_against_their_own_ca_only() {
    let f = tls_files();
    for (name, cert, key) in [
        ("server", &f.server_cert, &f.server_key),
        ("dpm", &f.dpm_cert, &f.dpm_key),
    ] {
        for host in CERT_NAMES {
            let got = cert_check(cert, key, &f.ca, host);
            assert!(
                got.starts_with("verified TLSv1."),
                "{name} cert for {host}: {got}"
            );
        }
        let got = cert_check(cert, key, &f.other_ca, "127.0.0.1");
        assert_eq!(
            got, "rejected: unable to get local issuer certificate",
            "{name} cert against the other CA"
        );
        let got = cert_check(cert, key, &f.ca, "db.example.com");
        assert!(
            got.starts_with("rejected: Hostname mismatch"),
            "{name} cert for another host: {got}"
        );
    }
    for host in CERT_NAMES {
        let got = cert_check(&f.other_cert, &f.other_key, &f.other_ca, host);
        assert!(
            got.starts_with("verified TLSv1."),
            "other cert for {host}: {got}"
        );
    }
    let got = cert_check(&f.other_cert, &f.other_key, &f.ca, "127.0.0.1");
    assert_eq!(
        got, "rejected: unable to get local issuer certificate",
        "other cert against the test CA"
    );
}

// ---- the mariadb CLI ----

#[test]
fn cli_tls_verified_against_test_ca_shows_tls_version() {
    let db = MariaDb::tls();
    let out = Cli::new(db.port)
        .tls(&tls_files().ca)
        .arg("--skip-column-names")
        .run("SHOW STATUS LIKE 'Ssl_version'; SELECT CURRENT_USER()");
    out.assert_success("CLI over TLS, verifying the server");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let version = lines[0]
        .strip_prefix("Ssl_version\t")
        .expect("an Ssl_version row");
    assert_tls_version(version, "CLI --ssl-verify-server-cert");
    assert_eq!(lines[1], "dpm@%");
}

#[test]
fn cli_tls_verify_with_wrong_ca_fails() {
    let db = MariaDb::tls();
    let out = Cli::new(db.port).tls(&tls_files().other_ca).run("SELECT 1");
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(
        out.stderr.starts_with("ERROR 2026 (HY000): TLS/SSL error:"),
        "expected a TLS error: {out}"
    );
    assert!(
        out.stderr.contains("certificate"),
        "expected a certificate error: {out}"
    );
    assert!(out.stdout.is_empty(), "{out}");
}

#[test]
fn cli_tls_verifies_the_name_localhost_too() {
    let db = MariaDb::tls();
    // `localhost` is in the certificate too.
    let out = Cli::new(db.port)
        .host("localhost")
        .tls(&tls_files().ca)
        .arg("--skip-column-names")
        .run("SHOW STATUS LIKE 'Ssl_version'");
    out.assert_success("CLI over TLS to localhost");
    assert_tls_version(
        out.stdout.trim().trim_start_matches("Ssl_version\t"),
        "CLI to localhost",
    );
}

/// The 10.11 client has `ssl` on by default: with no TLS option, and with `--ssl`
/// alone, it uses TLS when the server offers it (without verifying anything) and
/// silently stays plain when it does not. Only `--ssl-verify-server-cert` makes TLS
/// a must (error 2026).
#[test]
fn cli_default_and_ssl_flag_use_tls_when_offered_and_fall_back_when_not() {
    let tls = MariaDb::tls().port;
    let plain = MariaDb::get().port;
    let ssl_version = |cli: Cli| {
        let out = cli
            .arg("--skip-column-names")
            .run("SHOW STATUS LIKE 'Ssl_version'");
        out.assert_success("SHOW STATUS LIKE 'Ssl_version'");
        out.stdout
            .trim_end_matches('\n')
            .strip_prefix("Ssl_version\t")
            .unwrap_or_else(|| panic!("no Ssl_version row: {out}"))
            .to_string()
    };
    assert_tls_version(
        &ssl_version(Cli::new(tls).tls_client_default()),
        "no TLS option",
    );
    assert_tls_version(&ssl_version(Cli::new(tls).tls_no_verify()), "--ssl");
    assert_eq!(ssl_version(Cli::new(plain).tls_client_default()), "");
    assert_eq!(ssl_version(Cli::new(plain).tls_no_verify()), "");

    let out = Cli::new(plain).tls(&tls_files().ca).run("SELECT 1");
    assert_eq!(out.code(), Some(1), "{out}");
    assert_eq!(
        out.stderr.trim_end(),
        "ERROR 2026 (HY000): TLS/SSL error: SSL is required, but the server does not support it"
    );
}

#[test]
fn cli_skip_ssl_on_tls_server_is_plain() {
    let db = MariaDb::tls();
    let out = Cli::new(db.port)
        .arg("--skip-column-names")
        .run("SHOW STATUS LIKE 'Ssl_version'");
    out.assert_success("CLI with --skip-ssl");
    assert_eq!(out.stdout, "Ssl_version\t\n", "{out}");
}

#[test]
fn ssl_user_cli_logs_in_over_tls_and_is_refused_over_plain() {
    let db = MariaDb::tls();
    let cli = Cli::new(db.port)
        .user(SSL_USER)
        .password(Some(SSL_PASSWORD));
    let out = cli
        .clone()
        .tls(&tls_files().ca)
        .arg("--skip-column-names")
        .run("SELECT CURRENT_USER()");
    out.assert_success("ssluser over TLS");
    assert_eq!(out.stdout, "ssluser@%\n");

    let out = cli.run("SELECT 1");
    assert_eq!(out.code(), Some(1), "{out}");
    assert!(
        out.stderr
            .starts_with("ERROR 1045 (28000): Access denied for user 'ssluser'@'127.0.0.1'"),
        "{out}"
    );
}

#[test]
fn ed25519_cli_logs_in_over_tls() {
    let db = MariaDb::tls();
    assert!(db.ed25519, "auth_ed25519 must be loaded on the TLS MariaDB");
    let out = Cli::new(db.port)
        .user(ED_USER)
        .password(Some(ED_PASSWORD))
        .tls(&tls_files().ca)
        .arg("--skip-column-names")
        .run("SELECT CURRENT_USER(); SHOW STATUS LIKE 'Ssl_version'");
    out.assert_success("ed25519 login over TLS (CLI)");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0], "ed@%", "{out}");
    assert_tls_version(lines[1].trim_start_matches("Ssl_version\t"), "ed over TLS");
}

// ---- mysql_async (rustls) ----

async fn ssl_version(c: &mut Conn) -> String {
    let row: Option<(String, String)> = c
        .query_first("SHOW STATUS LIKE 'Ssl_version'")
        .await
        .expect("SHOW STATUS");
    row.expect("an Ssl_version row").1
}

async fn current_user(c: &mut Conn) -> String {
    let u: Option<String> = c
        .query_first("SELECT CURRENT_USER()")
        .await
        .expect("CURRENT_USER()");
    u.expect("a row")
}

async fn try_connect(opts: OptsBuilder) -> Result<Conn, mysql_async::Error> {
    bounded("mysql_async connect", CONNECT_TIMEOUT, Conn::new(opts)).await
}

#[tokio::test]
async fn mysql_async_tls_verified_against_test_ca() {
    let db = MariaDb::tls();
    let mut c = try_connect(opts_tls(db.port, USER, PASSWORD, &tls_files().ca))
        .await
        .expect("mysql_async over TLS");
    assert_tls_version(&ssl_version(&mut c).await, "mysql_async");
    assert_eq!(current_user(&mut c).await, "dpm@%");
    c.disconnect().await.unwrap();
}

#[tokio::test]
async fn mysql_async_tls_with_wrong_ca_fails() {
    let db = MariaDb::tls();
    let err = match try_connect(opts_tls(db.port, USER, PASSWORD, &tls_files().other_ca)).await {
        Err(e) => e,
        Ok(_) => panic!("verification against the wrong CA must fail"),
    };
    let text = err.to_string();
    assert!(
        matches!(err, mysql_async::Error::Io(_)) && text.contains("UnknownIssuer"),
        "expected an UnknownIssuer TLS error, got {err:?}"
    );
}

/// With TLS options, mysql_async requires TLS: a server without it is an error.
#[tokio::test]
async fn mysql_async_tls_against_plain_server_fails() {
    let port = MariaDb::get().port;
    match try_connect(opts_tls(port, USER, PASSWORD, &tls_files().ca)).await {
        Err(mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer)) => {}
        Err(e) => panic!("expected NoClientSslFlagFromServer, got {e:?}"),
        Ok(_) => panic!("mysql_async with TLS options connected to a server without TLS"),
    }
}

#[tokio::test]
async fn ssl_user_mysql_async_logs_in_over_tls_and_is_refused_over_plain() {
    let db = MariaDb::tls();
    let mut c = try_connect(opts_tls(db.port, SSL_USER, SSL_PASSWORD, &tls_files().ca))
        .await
        .expect("ssluser over TLS");
    assert_eq!(current_user(&mut c).await, "ssluser@%");
    assert_tls_version(&ssl_version(&mut c).await, "ssluser");
    c.disconnect().await.unwrap();

    match try_connect(opts_as(db.port, SSL_USER, SSL_PASSWORD)).await {
        Err(mysql_async::Error::Server(e)) => {
            assert_eq!((e.code, e.state.as_str()), (1045, "28000"), "{e:?}");
            assert!(
                e.message
                    .starts_with("Access denied for user 'ssluser'@'127.0.0.1'"),
                "{e:?}"
            );
        }
        Err(e) => panic!("expected access denied, got {e:?}"),
        Ok(_) => panic!("ssluser logged in without TLS"),
    }
}

#[tokio::test]
async fn ed25519_mysql_async_logs_in_over_tls() {
    let db = MariaDb::tls();
    assert!(db.ed25519, "auth_ed25519 must be loaded on the TLS MariaDB");
    let mut c = try_connect(opts_tls(db.port, ED_USER, ED_PASSWORD, &tls_files().ca))
        .await
        .expect("ed25519 login over TLS (mysql_async, feature client_ed25519)");
    assert_eq!(current_user(&mut c).await, "ed@%");
    assert_tls_version(&ssl_version(&mut c).await, "ed over TLS");
    c.disconnect().await.unwrap();
}

// ---- PyMySQL and MariaDB Connector/Python (tests/python/tls_login.py) ----

/// Runs tls_login.py against the TLS MariaDB as `user` with `extra` arguments.
fn py_login(user: &str, password: &str, extra: &[String]) -> ProcOutput {
    let mut args = python_conn_args(MariaDb::tls().port, user, password);
    args.extend(extra.iter().cloned());
    python("tls_login.py", &args, Duration::from_secs(60))
}

/// The `ssl_version:` line of a successful tls_login.py run.
fn py_ssl_version(out: &ProcOutput) -> &str {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix("ssl_version: "))
        .unwrap_or_else(|| panic!("no ssl_version line: {out}"))
}

#[test]
fn pymysql_tls_verified_against_test_ca() {
    let out = py_login(USER, PASSWORD, &python_tls_args(&tls_files().ca));
    out.assert_success("PyMySQL over TLS");
    assert!(out.stdout.starts_with("user: dpm@%\n"), "{out}");
    assert_tls_version(py_ssl_version(&out), "PyMySQL");
}

#[test]
fn pymysql_tls_with_wrong_ca_fails() {
    let out = py_login(USER, PASSWORD, &python_tls_args(&tls_files().other_ca));
    assert_eq!(out.code(), Some(3), "{out}");
    assert!(
        out.stdout.starts_with("error: OperationalError 2003 ")
            && out.stdout.contains("CERTIFICATE_VERIFY_FAILED"),
        "{out}"
    );
}

#[test]
fn ssl_user_pymysql_logs_in_over_tls_and_is_refused_over_plain() {
    let out = py_login(SSL_USER, SSL_PASSWORD, &python_tls_args(&tls_files().ca));
    out.assert_success("ssluser over TLS (PyMySQL)");
    assert!(out.stdout.starts_with("user: ssluser@%\n"), "{out}");
    assert_tls_version(py_ssl_version(&out), "ssluser (PyMySQL)");

    let out = py_login(SSL_USER, SSL_PASSWORD, &python_no_tls_args());
    assert_eq!(out.code(), Some(3), "{out}");
    assert!(
        out.stdout.starts_with(
            "error: OperationalError 1045 Access denied for user 'ssluser'@'127.0.0.1'"
        ),
        "{out}"
    );
}

#[test]
fn ed25519_pymysql_logs_in_over_tls() {
    assert!(
        MariaDb::tls().ed25519,
        "auth_ed25519 must be loaded on the TLS MariaDB"
    );
    let out = py_login(ED_USER, ED_PASSWORD, &python_tls_args(&tls_files().ca));
    out.assert_success("ed25519 login over TLS (PyMySQL + PyNaCl)");
    assert!(out.stdout.starts_with("user: ed@%\n"), "{out}");
    assert_tls_version(py_ssl_version(&out), "ed over TLS (PyMySQL)");
}

#[test]
fn ed25519_mariadb_connector_python_logs_in_over_tls() {
    assert!(
        MariaDb::tls().ed25519,
        "auth_ed25519 must be loaded on the TLS MariaDB"
    );
    let mut extra = python_tls_args(&tls_files().ca);
    extra.extend(["--driver".to_string(), "mariadb".to_string()]);
    let out = py_login(ED_USER, ED_PASSWORD, &extra);
    out.assert_success("ed25519 login over TLS (Connector/Python)");
    assert!(out.stdout.starts_with("user: ed@%\n"), "{out}");
    assert_tls_version(py_ssl_version(&out), "ed over TLS (Connector/Python)");
}

/// Runs tls_login.py against the shared plain MariaDB (no TLS offered).
fn py_login_plain_server(extra: &[String]) -> ProcOutput {
    let mut args = python_conn_args(MariaDb::get().port, USER, PASSWORD);
    args.extend(extra.iter().cloned());
    python("tls_login.py", &args, Duration::from_secs(60))
}

/// The `driver:` line's version as (major, minor).
fn py_driver_version(out: &ProcOutput) -> (u32, u32) {
    let v = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("driver: "))
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or_else(|| panic!("no driver line: {out}"));
    let mut n = v.split('.').map(|x| x.parse::<u32>().unwrap_or(0));
    (n.next().unwrap_or(0), n.next().unwrap_or(0))
}

/// PyMySQL 1.2 made TLS its default whenever the server offers it (unverified);
/// 1.1 never asked for it unless told. Either way it stays plain against a server
/// without TLS, and `--ssl-mode required` then fails instead.
#[test]
fn pymysql_default_uses_tls_when_offered_since_1_2() {
    let out = py_login(USER, PASSWORD, &[]);
    out.assert_success("PyMySQL with its defaults");
    let version = py_ssl_version(&out);
    if py_driver_version(&out) >= (1, 2) {
        assert_tls_version(version, "PyMySQL >= 1.2 by default");
    } else {
        assert_eq!(version, "", "PyMySQL < 1.2 by default: {out}");
    }
    let out = py_login(USER, PASSWORD, &python_no_tls_args());
    out.assert_success("PyMySQL with ssl_disabled");
    assert_eq!(py_ssl_version(&out), "", "{out}");

    let out = py_login_plain_server(&[]);
    out.assert_success("PyMySQL defaults against a plain server");
    assert_eq!(py_ssl_version(&out), "", "{out}");
    let out = py_login_plain_server(&python_tls_no_verify_args());
    assert_eq!(out.code(), Some(3), "{out}");
    assert_eq!(
        out.stdout.trim_end(),
        "error: OperationalError 2026 SSL is required but the server doesn't support it"
    );
}

/// Connector/Python 1.1 (libmariadb 3.3): no TLS unless asked; `ssl=True` without
/// verification falls back to plain against a server without TLS; verification
/// against the wrong CA fails with 2026.
#[test]
fn mariadb_connector_python_tls_modes() {
    let connector = |mut extra: Vec<String>| {
        extra.extend(["--driver".to_string(), "mariadb".to_string()]);
        extra
    };
    let out = py_login(USER, PASSWORD, &connector(vec![]));
    out.assert_success("Connector/Python with its defaults");
    assert_eq!(py_ssl_version(&out), "", "{out}");

    let out = py_login(USER, PASSWORD, &connector(python_tls_args(&tls_files().ca)));
    out.assert_success("Connector/Python verifying the server");
    assert_tls_version(py_ssl_version(&out), "Connector/Python");

    let out = py_login(
        USER,
        PASSWORD,
        &connector(python_tls_args(&tls_files().other_ca)),
    );
    assert_eq!(out.code(), Some(3), "{out}");
    assert!(
        out.stdout
            .starts_with("error: OperationalError 2026 TLS/SSL error:"),
        "{out}"
    );

    let out = py_login_plain_server(&connector(python_tls_no_verify_args()));
    out.assert_success("Connector/Python ssl=True against a plain server");
    assert_eq!(py_ssl_version(&out), "", "falls back to plain: {out}");
    let out = py_login_plain_server(&connector(python_tls_args(&tls_files().ca)));
    assert_eq!(out.code(), Some(3), "{out}");
    assert_eq!(
        out.stdout.trim_end(),
        "error: OperationalError 2026 TLS/SSL error: SSL is required, but the server does not support it"
    );
}
