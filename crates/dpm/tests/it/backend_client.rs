//! The engine's own MySQL client (`dpm_engine::client::BackendClient`) against the real
//! MariaDB: login, result sets, multi-results, errors, timeouts. No dpm process: the
//! client runs here, on a current-thread runtime under a `LocalSet`, as on a worker.

use crate::support::*;
use dpm_engine::client::{BackendClient, ClientError, ClientOptions, Response, ResponseSummary};
use dpm_engine::service::ServerAddress;
use std::future::Future;
use std::time::{Duration, Instant};

/// Runs `f` to completion the way a worker runs it.
fn run_local<T>(f: impl Future<Output = T>) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&runtime, f)
}

fn options(user: &str, password: &str, schema: Option<&str>) -> ClientOptions {
    ClientOptions {
        address: ServerAddress::Tcp("127.0.0.1".into(), MariaDb::get().port),
        user: user.into(),
        password: password.into(),
        schema: schema.map(Into::into),
        connect_timeout: Duration::from_secs(10),
    }
}

async fn connect(schema: Option<&str>) -> BackendClient {
    BackendClient::connect(&options(USER, PASSWORD, schema))
        .await
        .unwrap_or_else(|e| panic!("login failed: {e}"))
}

/// The rows of a single-result-set response, as text (`None` for NULL).
fn rows(response: Response) -> Vec<Vec<Option<String>>> {
    let Response::Rows(sets) = response else {
        panic!("rows expected, got {response:?}");
    };
    assert_eq!(sets.len(), 1, "{sets:?}");
    sets[0]
        .rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|v| {
                    v.as_deref()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                })
                .collect()
        })
        .collect()
}

fn text(s: &str) -> Option<String> {
    Some(s.to_string())
}

#[test]
fn backend_client_logs_in_with_schema_and_reads_rows() {
    run_local(async {
        let mut c = connect(Some(DB)).await;
        assert!(
            c.server_version().contains("MariaDB"),
            "{}",
            c.server_version()
        );

        let Response::Rows(sets) = c.query("SELECT 1, NULL, 'x'").await.unwrap() else {
            panic!("rows expected");
        };
        assert_eq!(sets.len(), 1);
        assert_eq!(sets[0].columns, ["1", "NULL", "x"]);
        assert_eq!(sets[0].rows.len(), 1);
        let row = &sets[0].rows[0];
        assert_eq!(row[0].as_deref(), Some(&b"1"[..]));
        assert_eq!(row[1], None);
        assert_eq!(row[2].as_deref(), Some(&b"x"[..]));

        // The schema was selected at login, and the handshake's id is the session's.
        let r = c.query("SELECT DATABASE(), CONNECTION_ID()").await.unwrap();
        assert_eq!(rows(r), [[text(DB), text(&c.connection_id().to_string())]]);

        // OK packets, COM_INIT_DB and COM_PING.
        let table = unique_name("bc");
        let r = c
            .query(&format!(
                "CREATE TABLE {table} (id INT AUTO_INCREMENT PRIMARY KEY, v INT)"
            ))
            .await
            .unwrap();
        assert!(matches!(r, Response::Ok { .. }), "{r:?}");
        let r = c
            .query(&format!("INSERT INTO {table} (v) VALUES (1), (2), (3)"))
            .await
            .unwrap();
        let Response::Ok {
            affected_rows,
            last_insert_id,
            info,
            ..
        } = r
        else {
            panic!("OK expected: {r:?}");
        };
        assert_eq!((affected_rows, last_insert_id), (3, 1));
        assert!(
            String::from_utf8_lossy(&info).contains("Records: 3"),
            "{info:?}"
        );
        assert!(matches!(
            c.command(b"\x02mysql").await.unwrap(),
            Response::Ok { .. }
        ));
        assert_eq!(
            rows(c.query("SELECT DATABASE()").await.unwrap()),
            [[text("mysql")]]
        );
        assert!(matches!(
            c.command(b"\x0e").await.unwrap(),
            Response::Ok { .. }
        ));

        // The discarding variant counts what it does not keep.
        let s = c
            .command_discard(format!("\x03SELECT v FROM {DB}.{table}").as_bytes())
            .await
            .unwrap();
        assert_eq!(
            s,
            ResponseSummary::Rows {
                result_sets: 1,
                rows: 3
            }
        );
        let s = c
            .command_discard(format!("\x03DELETE FROM {DB}.{table} WHERE v > 1").as_bytes())
            .await
            .unwrap();
        assert_eq!(
            s,
            ResponseSummary::Ok {
                affected_rows: 2,
                warnings: 0
            }
        );
        c.query(&format!("DROP TABLE {DB}.{table}")).await.unwrap();
    });
}

#[test]
fn backend_client_reads_multi_results_and_big_rows() {
    run_local(async {
        let mut c = connect(Some(DB)).await;
        let proc = unique_name("bc_two_sets");
        let r = c
            .query(&format!(
                "CREATE PROCEDURE {proc}() BEGIN SELECT 1 AS a; SELECT 2 AS b, 'two' AS c UNION ALL SELECT 3, NULL; END"
            ))
            .await
            .unwrap();
        assert!(matches!(r, Response::Ok { .. }), "{r:?}");
        let Response::Rows(sets) = c.query(&format!("CALL {proc}()")).await.unwrap() else {
            panic!("rows expected");
        };
        assert_eq!(sets.len(), 2, "{sets:?}");
        assert_eq!(sets[0].columns, ["a"]);
        assert_eq!(sets[1].columns, ["b", "c"]);
        assert_eq!(sets[1].rows.len(), 2);
        assert_eq!(sets[1].rows[1][1], None);
        // More results followed each set (the last, the CALL's own OK).
        assert!(sets.iter().all(|s| s.status & 8 != 0));
        let s = c
            .command_discard(format!("\x03CALL {proc}()").as_bytes())
            .await
            .unwrap();
        assert_eq!(
            s,
            ResponseSummary::Rows {
                result_sets: 2,
                rows: 3
            }
        );

        // Multi-statements, switched on with COM_SET_OPTION (answered with a bare EOF).
        assert!(matches!(
            c.command(b"\x1b\x00\x00").await.unwrap(),
            Response::Ok { .. }
        ));
        let Response::Rows(sets) = c.query("DO 1; SELECT 1; SELECT 2, 3").await.unwrap() else {
            panic!("rows expected");
        };
        assert_eq!(
            sets.iter().map(|s| s.columns.len()).collect::<Vec<_>>(),
            [1, 2]
        );
        assert!(matches!(
            c.command(b"\x1b\x01\x00").await.unwrap(),
            Response::Ok { .. }
        ));
        let r = c.query("SELECT 1; SELECT 2").await.unwrap();
        assert!(matches!(r, Response::Err { code: 1064, .. }), "{r:?}");

        // A row larger than one 16 MiB frame arrives whole.
        let len = 17_000_000;
        let r = c
            .query(&format!("SELECT REPEAT('a', {len}), 'end'"))
            .await
            .unwrap();
        let Response::Rows(sets) = r else {
            panic!("rows expected");
        };
        let big = sets[0].rows[0][0].as_deref().unwrap();
        assert_eq!(big.len(), len);
        assert!(big.iter().all(|&b| b == b'a'));
        assert_eq!(sets[0].rows[0][1].as_deref(), Some(&b"end"[..]));
        let s = c
            .command_discard(format!("\x03SELECT REPEAT('a', {len})").as_bytes())
            .await
            .unwrap();
        assert_eq!(
            s,
            ResponseSummary::Rows {
                result_sets: 1,
                rows: 1
            }
        );

        c.query(&format!("DROP PROCEDURE {proc}")).await.unwrap();
    });
}

#[test]
fn backend_client_errors_leave_the_connection_usable() {
    run_local(async {
        let mut c = connect(None).await;
        let r = c.query("SELEKT 1").await.unwrap();
        let Response::Err {
            code,
            sqlstate,
            message,
        } = r
        else {
            panic!("ERR expected: {r:?}");
        };
        assert_eq!((code, &sqlstate), (1064, b"42000"));
        assert!(message.contains("SELEKT"), "{message}");
        assert_eq!(rows(c.query("SELECT 2").await.unwrap()), [[text("2")]]);

        let r = c
            .query("SELECT * FROM no_such_db.no_such_table")
            .await
            .unwrap();
        assert!(matches!(r, Response::Err { code: 1146, .. }), "{r:?}");
        let s = c
            .command_discard(b"\x03SELECT * FROM nope.nope")
            .await
            .unwrap();
        assert!(
            matches!(s, ResponseSummary::Err { code: 1146, .. }),
            "{s:?}"
        );

        // We never announce CLIENT_LOCAL_FILES: the server refuses LOAD DATA LOCAL itself.
        let r = c
            .query(&format!(
                "LOAD DATA LOCAL INFILE '/etc/hostname' INTO TABLE {DB}.no_such_table"
            ))
            .await
            .unwrap();
        assert!(matches!(r, Response::Err { .. }), "{r:?}");

        // Commands whose responses the client does not read are refused before sending.
        let e = c.command(b"\x16SELECT 1").await.unwrap_err();
        assert!(matches!(e, ClientError::Protocol(_)), "{e}");
        assert_eq!(rows(c.query("SELECT 3").await.unwrap()), [[text("3")]]);
    });
}

#[test]
fn backend_client_login_failures_are_auth_errors() {
    let db = MariaDb::get();
    run_local(async {
        let e = BackendClient::connect(&options(USER, "wrong", Some(DB)))
            .await
            .err()
            .unwrap();
        let ClientError::Auth { code, message, .. } = &e else {
            panic!("Auth expected: {e:?}");
        };
        assert_eq!(*code, 1045, "{message}");
        assert!(message.contains("Access denied"), "{message}");
        assert!(e.to_string().contains("1045"), "{e}");

        let e = BackendClient::connect(&options(USER, PASSWORD, Some("no_such_schema")))
            .await
            .err()
            .unwrap();
        assert!(matches!(e, ClientError::Auth { code: 1049, .. }), "{e:?}");

        if db.ed25519 {
            // An ed25519 account: the server switches dpm's client to client_ed25519.
            let e = BackendClient::connect(&options(ED_USER, "wrong", None))
                .await
                .err()
                .unwrap();
            assert!(matches!(e, ClientError::Auth { code: 1045, .. }), "{e:?}");
        }
    });
}

#[test]
fn backend_client_logs_in_to_an_ed25519_account() {
    let db = MariaDb::get();
    assert!(db.ed25519, "the test server has the ed25519 plugin");
    run_local(async {
        let mut c = BackendClient::connect(&options(ED_USER, ED_PASSWORD, None))
            .await
            .unwrap();
        assert_eq!(
            rows(c.query("SELECT CURRENT_USER()").await.unwrap()),
            [[text(&format!("{ED_USER}@%"))]]
        );
    });
}

#[test]
fn backend_client_over_unix_socket() {
    let db = MariaDb::get();
    run_local(async {
        let mut opts = options(USER, PASSWORD, None);
        opts.address = ServerAddress::Unix(db.socket().to_string_lossy().into_owned());
        let mut c = BackendClient::connect(&opts).await.unwrap();
        assert_eq!(
            rows(c.query("SELECT 'unix'").await.unwrap()),
            [[text("unix")]]
        );
    });
}

#[test]
fn backend_client_closed_port_fails_fast_with_io() {
    run_local(async {
        let mut opts = options(USER, PASSWORD, None);
        opts.address = ServerAddress::Tcp("127.0.0.1".into(), free_port());
        let started = Instant::now();
        let e = BackendClient::connect(&opts).await.err().unwrap();
        assert!(matches!(e, ClientError::Io(_)), "{e:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    });
}

#[test]
fn backend_client_times_out_on_a_silent_server() {
    // Accepted by the kernel (backlog) but never answered: no greeting ever comes.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    run_local(async {
        let mut opts = options(USER, PASSWORD, None);
        opts.address = ServerAddress::Tcp("127.0.0.1".into(), port);
        opts.connect_timeout = Duration::from_millis(300);
        let started = Instant::now();
        let e = BackendClient::connect(&opts).await.err().unwrap();
        let took = started.elapsed();
        assert!(matches!(e, ClientError::Timeout), "{e:?}");
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(2),
            "{took:?}"
        );
    });
    drop(silent);
}
