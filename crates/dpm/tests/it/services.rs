//! Services: a Lua filter in front of a readconnroute service (examples/lua-filter.lua)
//! against the real MariaDB, driven by the `mariadb` CLI and mysql_async.

use crate::support::*;
use std::time::{Duration, Instant};

/// dpm on `startfile` in front of the shared MariaDB (`DPM_BACKEND`), listening on a
/// free port (`DPM_LISTEN_PORT`, returned); `customize` adds arguments or env.
fn service_dpm(startfile: &str, customize: impl FnOnce(DpmBuilder) -> DpmBuilder) -> (Dpm, u16) {
    let port = free_port();
    let builder = Dpm::builder(startfile)
        .env("DPM_LISTEN_PORT", port)
        .env("DPM_BACKEND", format!("127.0.0.1:{}", MariaDb::get().port));
    let dpm = customize(builder).spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    (dpm, port)
}

fn lua_filter() -> (Dpm, u16) {
    service_dpm("examples/lua-filter.lua", |b| b)
}

fn cli(port: u16) -> Cli {
    Cli::new(port).user(USER).password(Some(PASSWORD)).db(DB)
}

#[test]
fn lua_filter_passes_blocks_answers_and_rewrites() {
    let (_dpm, port) = lua_filter();
    let db = MariaDb::get();
    db.direct_exec(&format!(
        "CREATE TABLE IF NOT EXISTS {DB}.modern_table (id INT PRIMARY KEY, v VARCHAR(10));
         REPLACE INTO {DB}.modern_table VALUES (1, 'new'), (2, 'newer');"
    ));
    // Passed on: the server answers.
    let out = cli(port).run("SELECT 40 + 2 AS answer");
    out.assert_success("a plain query");
    assert_eq!(out.stdout, "answer\n42\n");
    // Blocked with the filter's own error.
    let out = cli(port).run("DROP TABLE modern_table");
    assert!(!out.status.success());
    assert!(
        out.stderr
            .contains("ERROR 1142 (42000) at line 1: DROP is not allowed through this service"),
        "{}",
        out.stderr
    );
    assert_eq!(
        db.direct_exec(&format!("SELECT COUNT(*) FROM {DB}.modern_table"))
            .trim(),
        "2",
        "the DROP never reached the server"
    );
    // Rewritten: the old table name is served by the new table.
    let out = cli(port).run("SELECT v FROM legacy_table ORDER BY id");
    out.assert_success("rewritten query");
    assert_eq!(out.stdout, "v\nnew\nnewer\n");
    // Answered by the filter, with this session's counts (rows counted from replies).
    // (DO RELEASE_LOCK counts as a write: locks must stay on one server.)
    let out = cli(port)
        .run_stdin("SELECT v FROM modern_table;\nDO RELEASE_LOCK('l');\nSHOW FILTER STATS;\n");
    out.assert_success("answered from Lua");
    assert!(
        out.stdout
            .ends_with("statements\twrites\trows\tserver\n3\t1\t2\tdb\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_sleeping_filter_holds_up_only_its_own_session() {
    // One worker: the sleeping session and the others share its thread.
    let (_dpm, port) = service_dpm("examples/lua-filter.lua", |b| b.arg("--threads").arg("1"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        use mysql_async::prelude::*;
        let mut slow = mysql_async::Conn::new(opts(port)).await.unwrap();
        let mut fast = mysql_async::Conn::new(opts(port)).await.unwrap();
        let started = Instant::now();
        let slow_query = tokio::spawn(async move {
            let v: Option<i64> = slow.query_first("SELECT /* slow-down */ 1").await.unwrap();
            (v, started.elapsed())
        });
        // While the filter sleeps 200 ms for the slow session, the other is served.
        tokio::time::sleep(Duration::from_millis(20)).await;
        for i in 0..5 {
            let v: Option<i64> = fast.query_first(format!("SELECT {i}")).await.unwrap();
            assert_eq!(v, Some(i));
        }
        let fast_done = started.elapsed();
        let (v, slow_done) = slow_query.await.unwrap();
        assert_eq!(v, Some(1));
        assert!(slow_done >= Duration::from_millis(200), "the filter slept: {slow_done:?}");
        assert!(
            fast_done < Duration::from_millis(180),
            "5 queries of another session took until {fast_done:?} (the slow one ended at {slow_done:?})"
        );
    });
}

#[test]
fn prepared_statements_pass_through_a_lua_filter() {
    let (_dpm, port) = lua_filter();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        use mysql_async::prelude::*;
        let mut conn = mysql_async::Conn::new(opts(port).db_name(Some(DB)))
            .await
            .unwrap();
        let stmt = conn.prep("SELECT ? + ? AS s").await.unwrap();
        let v: Vec<i64> = conn.exec(&stmt, (20, 22)).await.unwrap();
        assert_eq!(v, vec![42]);
        let err = conn
            .query_drop("DROP TABLE nothing_here")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("DROP is not allowed"), "{err}");
        // The session goes on after a blocked statement.
        let v: Vec<i64> = conn.query("SELECT 7").await.unwrap();
        assert_eq!(v, vec![7]);
        conn.disconnect().await.unwrap();
    });
}

fn readconnroute(route_to: &str, primary: u16, replica: u16) -> (Dpm, u16) {
    let port = free_port();
    let dpm = Dpm::builder("examples/readconnroute.lua")
        .env("DPM_LISTEN_PORT", port)
        .env("DPM_PRIMARY", format!("127.0.0.1:{primary}"))
        .env("DPM_REPLICA", format!("127.0.0.1:{replica}"))
        .env("DPM_ROUTE_TO", route_to)
        .spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    (dpm, port)
}

/// `@@server_id` as seen through dpm: 1 is the primary, 2 the replica.
fn server_id(port: u16) -> String {
    let out = Cli::new(port)
        .user(USER)
        .password(Some(PASSWORD))
        .arg("--skip-column-names")
        .run("SELECT @@server_id");
    out.assert_success("SELECT @@server_id");
    out.stdout.trim().to_string()
}

#[test]
fn readconnroute_sends_each_session_to_a_server_of_the_role() {
    let pair = SharedReplication::get();
    let (_dpm, to_replica) = readconnroute("replica", pair.primary.port, pair.replica.port);
    let (_dpm2, to_primary) = readconnroute("primary", pair.primary.port, pair.replica.port);
    for _ in 0..3 {
        assert_eq!(server_id(to_replica), "2");
        assert_eq!(server_id(to_primary), "1");
    }
    // A write through the primary service is read back through the replica one.
    Cli::new(to_primary)
        .user(USER)
        .password(Some(PASSWORD))
        .run(&format!(
            "CREATE TABLE IF NOT EXISTS {DB}.routed (id INT PRIMARY KEY); REPLACE INTO {DB}.routed VALUES (7)"
        ))
        .assert_success("write through the primary service");
    wait_until(
        "the replica to apply the write",
        Duration::from_secs(30),
        || {
            let out = Cli::new(to_replica)
                .user(USER)
                .password(Some(PASSWORD))
                .arg("--skip-column-names")
                .run(&format!("SELECT id FROM {DB}.routed"));
            (out.status.success() && out.stdout.trim() == "7").then_some(())
        },
    );
}

#[test]
fn readconnroute_balances_by_least_connections_and_skips_a_dead_server() {
    let pair = SharedReplication::get();
    let dead = 1; // nothing listens on 127.0.0.1:1
    let (dpm, port) = readconnroute("running", dead, pair.replica.port);
    // Every session lands on the live server; the dead one is skipped with a log line.
    for _ in 0..3 {
        assert_eq!(server_id(port), "2");
    }
    dpm.wait_for_line("cannot connect to server", Duration::from_secs(5));
    // Two servers up: concurrent sessions are spread over both.
    let (_dpm, port) = readconnroute("running", pair.primary.port, pair.replica.port);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ids = rt.block_on(async move {
        use mysql_async::prelude::*;
        let mut conns = Vec::new();
        let mut ids = Vec::new();
        for _ in 0..4 {
            let mut c = mysql_async::Conn::new(opts(port)).await.unwrap();
            let id: Vec<u32> = c.query("SELECT @@server_id").await.unwrap();
            ids.push(id[0]);
            conns.push(c);
        }
        for c in conns {
            c.disconnect().await.unwrap();
        }
        ids
    });
    assert_eq!(ids.iter().filter(|&&i| i == 1).count(), 2, "{ids:?}");
    assert_eq!(ids.iter().filter(|&&i| i == 2).count(), 2, "{ids:?}");
}

#[test]
fn a_service_whose_servers_are_all_down_answers_an_error_at_once() {
    // Nothing listens on these (a free_port() could be reused by dpm's own listener).
    let (dead1, dead2) = (1, 9);
    let (_dpm, port) = readconnroute("running", dead1, dead2);
    let started = Instant::now();
    // dpm's listening probe was the first client: depending on how fast it hung up, it
    // found one or both servers refusing, so this client either tries what is left or
    // finds every server down; either way both are named.
    let out = Cli::new(port)
        .user(USER)
        .password(Some(PASSWORD))
        .run("SELECT 1");
    assert!(!out.status.success());
    let err = &out.stderr;
    assert!(
        err.contains("ERROR 1429 (HY000): ")
            && err.contains("ervice 'app'")
            && err.contains("db1")
            && err.contains("db2")
            && err.contains("Connection refused"),
        "{err}"
    );
    // Both are marked down now: the next client is refused without a connect attempt.
    let out = Cli::new(port)
        .user(USER)
        .password(Some(PASSWORD))
        .run("SELECT 1");
    assert!(
        out.stderr.contains("Service 'app' has no server available: db1 is down (111 \"Connection refused\"), db2 is down"),
        "{}",
        out.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn service_diagnostics_count_sessions_statements_and_filter_actions() {
    let (_dpm, port) = service_dpm("crates/dpm/tests/lua/service_diagnostics.lua", |b| b);
    let out = cli(port).run_stdin("SELECT 1;\nSELECT 2;\nDIAGNOSTICS;\n");
    out.assert_success("diagnostics");
    let json = out.stdout.lines().last().unwrap_or_default().to_string();
    for needle in [
        r#""name":"diag""#,
        r#""router":"readconnroute""#,
        r#""routed_statements":2"#,
        r#""sessions":1"#,
        r#""passed":2"#,
        r#""requests":3"#,
        r#""answered":0"#, // DIAGNOSTICS is counted once the filter returned
    ] {
        assert!(json.contains(needle), "{needle} in {json}");
    }
}

#[test]
fn filter_errors_and_invalid_actions_answer_the_client_with_an_error() {
    let (dpm, port) = service_dpm("crates/dpm/tests/lua/filter_errors.lua", |b| b);
    let out = cli(port).run("SELECT 'boom'");
    assert!(
        out.stderr
            .contains("ERROR 1105 (HY000) at line 1: filter 'faulty' failed: ")
            && out.stderr.contains("filter_errors.lua:"),
        "{}",
        out.stderr
    );
    dpm.wait_for_line("filter_errors.lua:", Duration::from_secs(5));
    let out = cli(port).run("SELECT 'number'");
    assert!(
        out.stderr.contains(
            "filter 'faulty' returned integer where nil or an action table was expected (an invalid action)"
        ),
        "{}",
        out.stderr
    );
    let out = cli(port).run("SELECT 'sleepy'");
    assert!(
        out.stderr.contains("filter 'sync' failed: ")
            && out
                .stderr
                .contains("attempt to yield from outside a coroutine"),
        "{}",
        out.stderr
    );
    let out = cli(port).run("SELECT 'fine'");
    out.assert_success("other statements still pass");
}

#[test]
fn bad_service_definitions_stop_the_start_with_file_and_line() {
    let cases = [
        ("dpm.service{ name = 'x', router = 'nosuchrouter', servers = { s } }", "unknown router module 'nosuchrouter' (known: readconnroute, readwritesplit)"),
        ("dpm.service{ name = 'x', router = 'readconnroute', servers = { s }, options = { router_options = 'leader' } }", "option 'router_options' must be one of primary, replica, running, master, slave, not 'leader'"),
        ("dpm.service{ name = 'x', router = 'readconnroute', servers = { s }, options = { max_lag = 5 } }", "has no option 'max_lag'"),
        ("dpm.service{ name = 'x', router = 'readconnroute', servers = { s }, options = { router_options = 5 } }", "must be one of primary, replica, running, master, slave, not integer"),
        ("dpm.service{ name = 'x', router = 'readconnroute', servers = { s }, colour = 'red' }", "dpm.service: unknown field 'colour'"),
        ("dpm.server{ name = 'y', address = 'nowhere' }", "address 'nowhere' is not host:port or a socket path"),
        ("dpm.filter{ name = 'q', module = 'qlafilter' }", "dpm.filter 'q': unknown filter module 'qlafilter' (known: firewall, qla, regex, tee, top)"),
        ("dpm.filter{ name = 'q', module = 'qla', options = { file = '/tmp/q.log', sample = 'all' } }", "dpm.filter 'q': filter 'qla': option 'sample' must be integer, not 'all'"),
        ("dpm.filter{ name = 'q', module = 'qla', options = { log = 'sql' } }", "filter 'qla': option 'file' is required"),
        ("dpm.filter{ name = 'q', module = 'qla', options = { file = '/nonexistent-dir/q.log' } }", "cannot open /nonexistent-dir/q.log for appending"),
        ("dpm.filter{ name = 'q', module = 'regex', options = { match = '(', replace = 'x' } }", "filter 'regex': rule 1 ('('): regex parse error:"),
        ("dpm.filter{ name = 'q', module = 'top', options = { file = '/tmp/t.log', colour = 1 } }", "filter 'top' has no option 'colour' (its options: file, count, match, exclude, user, source, match_on)"),
        ("dpm.filter('qla', {})", "dpm.filter: expects a table"),
        ("dpm.filter{ name = 'f', module = 'firewall', options = { rules = { { name = 'x', regex = '(' } } } }", "dpm.filter 'f': rule 'x': "),
        ("dpm.filter{ name = 'f', module = 'firewall', options = { rules_file = '/nonexistent.rules' } }", "cannot read rule file /nonexistent.rules"),
        ("dpm.filter{ name = 'f', module = 'firewall', options = { rules = { { name = 'x', colour = 'red' } } } }", "filter 'firewall': rules[1]: unknown field 'colour'"),
        ("dpm.filter{ name = 't', module = 'tee', options = { mirror_user = 'm' } }", "filter 'tee': option 'target' is required"),
        ("dpm.filter{ name = 'q', module = 'qla', options = { file = '/tmp/dpm-a.log' } } dpm.filter{ name = 'q', module = 'top', options = { file = '/tmp/dpm-a.log' } }", "filter 'q' is already defined with another module or other options (module qla"),
    ];
    for (line, expected) in cases {
        assert_start_fails_at_line_2(line, expected);
    }
}

#[test]
fn list_modules_prints_every_module_as_a_table_and_as_json() {
    let dpm = Dpm::builder("examples/passthrough.lua")
        .arg("--list-modules")
        .spawn();
    assert!(dpm.wait_exit(Duration::from_secs(10)).success());
    let table = dpm.stdout_after_exit();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("TYPE"), "{table}");
    for (kind, name) in [
        ("router", "readconnroute"),
        ("filter", "lua"),
        ("filter", "qla"),
        ("filter", "regex"),
        ("filter", "firewall"),
        ("filter", "tee"),
        ("filter", "top"),
        ("monitor", "mariadbmon"),
        ("query classifier", ""),
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(kind) && l.contains(name)),
            "{kind} {name} in\n{table}"
        );
    }
    let dpm = Dpm::builder("examples/passthrough.lua")
        .arg("--list-modules")
        .arg("--format")
        .arg("json")
        .spawn();
    assert!(dpm.wait_exit(Duration::from_secs(10)).success());
    let json = dpm.stdout_after_exit();
    assert!(
        json.contains(r#""name": "readconnroute""#)
            && json.contains(r#""maturity": "beta""#)
            && json.contains(r#""name": "router_options""#)
            && json.contains(r#""name": "rules_file""#)
            && json.contains(r#""name": "mirror_user""#),
        "{json}"
    );
}

#[test]
fn a_filter_sessions_classification_table_is_refilled_for_each_statement() {
    let (_dpm, port) = service_dpm("crates/dpm/tests/lua/classify.lua", |b| b);
    let out = cli(port)
        .arg("--skip-column-names")
        .arg("--comments")
        .run_stdin(
            "/*q*/ BEGIN;\n\
         /*q*/ SELECT * FROM t1, t2 WHERE a = 1;\n\
         /*q*/ SELECT * FROM t1, t2 WHERE a = 2;\n\
         /*q*/ UPDATE t3 SET b = 1;\n",
        );
    out.assert_success("four classifications in one session");
    let rows: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        rows,
        [
            "begin\tbegin\t\tBEGIN",
            "select\tNULL\tt1,t2\tSELECT * FROM t1, t2 WHERE a = ?",
            "select\tNULL\tt1,t2\tSELECT * FROM t1, t2 WHERE a = ?",
            "update\tNULL\tt3\tUPDATE t3 SET b = ?",
        ],
        "{}",
        out.stdout
    );
}

#[test]
fn filters_classify_statements_from_lua() {
    let (_dpm, port) = service_dpm("crates/dpm/tests/lua/classify.lua", |b| b);
    let out = cli(port).arg("--skip-column-names").run(
        "CLASSIFY select * FROM t1 JOIN db2.t2 ON t1.id = t2.id WHERE x IN (1, 2, 3) FOR UPDATE",
    );
    out.assert_success("CLASSIFY");
    let row: Vec<&str> = out.stdout.trim_end().split('\t').collect();
    assert_eq!(row[0], "select");
    assert_eq!(row[1], "true", "FOR UPDATE writes");
    assert_eq!(row[3], "t1,db2.t2");
    assert!(
        row[4].contains("IN (...)") && row[4].starts_with("SELECT"),
        "{}",
        row[4]
    );
    assert_eq!(row[5], "true");
    let out = cli(port)
        .arg("--skip-column-names")
        .run("CLASSIFY START TRANSACTION READ ONLY");
    assert_eq!(
        out.stdout.split('\t').nth(2),
        Some("begin"),
        "{}",
        out.stdout
    );
    let out = cli(port).arg("--skip-column-names").run_stdin(
        "SELECT 1;\nSET @x := 5;\nSELECT GET_LOCK('l', 0);\nDO RELEASE_LOCK('l');\nWRITES;\n",
    );
    out.assert_success("classified session");
    assert!(
        out.stdout.trim_end().ends_with('2') || out.stdout.trim_end().ends_with('3'),
        "{}",
        out.stdout
    );
}

/// The Python client transcripts (PyMySQL, MariaDB Connector/Python, a raw protocol
/// client with DEPRECATE_EOF on and off) through a service whose Lua filter sees every
/// statement and reply are those of a direct connection.
#[test]
fn python_clients_through_a_watching_service_behave_as_directly() {
    let (builder, port) = Dpm::in_front_of_mariadb("crates/dpm/tests/lua/service_passthrough.lua");
    let service = Target::proxy(builder.spawn(), port);
    for (script, extra) in TRANSCRIPT_SCRIPTS {
        let via = service.python(script, extra);
        via.assert_success(&format!("{script} through the service"));
        let direct = Target::direct().python(script, extra);
        direct.assert_success(&format!("{script} directly"));
        assert_eq!(
            via.stdout, direct.stdout,
            "{script} {extra:?}: transcripts differ"
        );
    }
}

/// Pipelined commands, one of them answered by the filter: every response arrives whole
/// and in order (the filter's answer waits for the slow result before it).
#[test]
fn a_filter_answer_waits_for_earlier_pipelined_responses() {
    let (dpm, port) = lua_filter();
    let target = Target::proxy(dpm, port);
    for eof in ["on", "off"] {
        let out = target.python("pipelined_filter.py", &["--deprecate-eof", eof]);
        out.assert_success(&format!("pipelined_filter.py --deprecate-eof {eof}"));
        assert!(
            out.stdout.starts_with("pipelined: cols=2"),
            "{}",
            out.stdout
        );
    }
}

#[test]
fn client_reply_sees_what_each_reply_said() {
    let (_dpm, port) = service_dpm("crates/dpm/tests/lua/service_diagnostics.lua", |b| b);
    let out = cli(port).arg("--skip-column-names").run_stdin(
        "CREATE OR REPLACE TABLE replies (id INT AUTO_INCREMENT PRIMARY KEY, v INT);
         BEGIN;
         INSERT INTO replies (v) VALUES (1), (2), (3);
         LAST REPLY;
         SELECT v FROM replies;
         LAST REPLY;
         COMMIT;
         LAST REPLY;
         SELECT * FROM no_such_table;
         ",
    );
    let lines: Vec<&str> = out.stdout.lines().collect();
    // error_code and error_message are nil (NULL) unless the reply is an error.
    assert_eq!(
        lines[0], "ok\t0\t3\t1\tNULL\tNULL\tdb\ttrue",
        "{}",
        out.stdout
    );
    assert_eq!(&lines[1..4], ["1", "2", "3"]);
    assert_eq!(
        lines[4], "resultset\t3\t0\t0\tNULL\tNULL\tdb\ttrue",
        "{}",
        out.stdout
    );
    assert_eq!(
        lines[5], "ok\t0\t0\t0\tNULL\tNULL\tdb\tfalse",
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("ERROR 1146 (42S02)"), "{}", out.stderr);
    let out = cli(port)
        .arg("--skip-column-names")
        .arg("--force")
        .run_stdin("SELECT * FROM no_such_table;\nLAST REPLY;\n");
    assert_eq!(
        out.stdout,
        "error\t0\t0\t0\t1146\tTable 'dpmtest.no_such_table' doesn't exist\tdb\tfalse\n"
    );
}

#[test]
fn a_filter_ok_keeps_the_session_transaction_status() {
    let (dpm, port) = service_dpm("crates/dpm/tests/lua/service_diagnostics.lua", |b| b);
    let target = Target::proxy(dpm, port);
    for eof in ["on", "off"] {
        let out = target.python("filter_ok_status.py", &["--deprecate-eof", eof]);
        out.assert_success("filter_ok_status.py");
        assert_eq!(
            out.stdout,
            "outside: (7, 9, False)\ninside: (7, 9, True)\nafter: (7, 9, False)\n"
        );
    }
}
