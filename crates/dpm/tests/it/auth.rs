//! Authentication through the proxy: failures must be the server's own.

use crate::support::*;
use mysql_async::Conn;
use std::time::Duration;

#[test]
fn wrong_password_cli_gets_server_error_1045() {
    MariaDb::get();
    let t = passthrough();
    let via = t.cli().password(Some("wrong")).run("SELECT 1");
    assert_eq!(via.code(), Some(1), "{via}");
    assert!(
        via.stderr
            .starts_with("ERROR 1045 (28000): Access denied for user 'dpm'@"),
        "{via}"
    );
    assert!(via.stderr.contains("(using password: YES)"), "{via}");
    let direct = Target::direct()
        .cli()
        .password(Some("wrong"))
        .run("SELECT 1");
    assert_eq!(via.stderr, direct.stderr);

    // No password at all.
    let via = t.cli().password(None).run("SELECT 1");
    let direct = Target::direct().cli().password(None).run("SELECT 1");
    assert!(via.stderr.contains("(using password: NO)"), "{via}");
    assert_eq!(via.stderr, direct.stderr);
}

async fn connect_error(port: u16, user: &str, password: &str) -> mysql_async::ServerError {
    let r = bounded(
        "connect with a wrong password",
        Duration::from_secs(30),
        Conn::new(opts_as(port, user, password)),
    )
    .await;
    match r {
        Err(mysql_async::Error::Server(e)) => e,
        Err(e) => panic!("expected a server error, got {e:?}"),
        Ok(_) => panic!("login with a wrong password succeeded"),
    }
}

#[tokio::test]
async fn wrong_password_mysql_async_gets_server_error_1045() {
    let t = passthrough();
    let via = connect_error(t.port, USER, "wrong").await;
    assert_eq!((via.code, via.state.as_str()), (1045, "28000"), "{via:?}");
    assert!(
        via.message.starts_with("Access denied for user 'dpm'@"),
        "{via:?}"
    );
    let direct = connect_error(MariaDb::get().port, USER, "wrong").await;
    assert_eq!(via.message, direct.message);

    // The proxy keeps serving after failed logins.
    let mut c = t.conn().await;
    use mysql_async::prelude::Queryable;
    let v: Option<i64> = c.query_first("SELECT 7").await.unwrap();
    assert_eq!(v, Some(7));
    c.disconnect().await.unwrap();
}

#[test]
fn unknown_database_at_login_gets_error_1049() {
    MariaDb::get();
    let t = passthrough();
    let via = t.cli().db("no_such_db").run("SELECT 1");
    assert_eq!(via.code(), Some(1));
    assert_eq!(
        via.stderr.trim_end(),
        "ERROR 1049 (42000): Unknown database 'no_such_db'"
    );
    let direct = Target::direct().cli().db("no_such_db").run("SELECT 1");
    assert_eq!(via.stderr, direct.stderr);
}

/// The `ed` account uses client_ed25519: the server answers the client's
/// mysql_native_password attempt with an AuthSwitchRequest.
#[test]
fn ed25519_login_via_auth_switch_cli() {
    let db = MariaDb::get();
    if !db.ed25519 {
        eprintln!("SKIPPED: auth_ed25519 is not available on this MariaDB");
        return;
    }
    let t = passthrough();
    let out = t
        .cli()
        .user(ED_USER)
        .password(Some(ED_PASSWORD))
        .db(DB)
        .run("SELECT CURRENT_USER() AS who, DATABASE() AS db");
    out.assert_success("ed25519 login through the target");
    assert_eq!(out.stdout, "who\tdb\ned@%\tdpmtest\n");

    let via = t
        .cli()
        .user(ED_USER)
        .password(Some("wrong"))
        .run("SELECT 1");
    assert!(
        via.stderr
            .starts_with("ERROR 1045 (28000): Access denied for user 'ed'@"),
        "{via}"
    );
    let direct = Target::direct()
        .cli()
        .user(ED_USER)
        .password(Some("wrong"))
        .run("SELECT 1");
    assert_eq!(via.stderr, direct.stderr);
}
