//! The admin REST API (docs/admin.md), driven with `curl` against dpm on
//! examples/admin.lua in front of the shared MariaDB: credentials, servers, services,
//! modules, sessions with the statement they run, killing one, maintenance and drain,
//! the log level, JSON errors; and the refusal of an open API on a non-loopback address.

use crate::support::*;
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

const ADMIN_PASSWORD: &str = "admin-secret";
const TOKEN: &str = "a-token-of-24-characters";

/// dpm on examples/admin.lua with an admin user and a token: (dpm, SQL port, admin port).
fn admin_dpm() -> (Dpm, u16, u16) {
    let (port, admin_port) = (free_port(), free_port());
    let dpm = Dpm::builder("examples/admin.lua")
        .env("DPM_LISTEN_PORT", port)
        .env("DPM_ADMIN_PORT", admin_port)
        .env("DPM_BACKEND", format!("127.0.0.1:{}", MariaDb::get().port))
        .env(
            "DPM_ADMIN_HASH",
            hash_password("caching_sha2_password", ADMIN_PASSWORD),
        )
        .env("DPM_ADMIN_TOKEN", TOKEN)
        .verbose(Some(0))
        .spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    dpm.wait_until_listening(admin_port, LISTEN_TIMEOUT);
    (dpm, port, admin_port)
}

/// How a request authenticates.
#[derive(Clone, Copy)]
enum As {
    Nobody,
    Admin,
    WrongPassword,
    Token,
}

/// `curl -X method` on the admin API as `who`: (HTTP status, body as JSON).
fn http(admin_port: u16, who: As, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let credentials = match who {
        As::Nobody => vec![],
        As::Admin => vec!["-u".to_string(), format!("admin:{ADMIN_PASSWORD}")],
        As::WrongPassword => vec!["-u".to_string(), "admin:guess".to_string()],
        As::Token => vec!["-H".to_string(), format!("Authorization: Bearer {TOKEN}")],
    };
    admin_request(admin_port, &credentials, method, path, body)
}

fn get(admin_port: u16, path: &str) -> Value {
    let (status, body) = http(admin_port, As::Admin, "GET", path, None);
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

fn cli(port: u16) -> Cli {
    Cli::new(port).user(USER).password(Some(PASSWORD)).db(DB)
}

/// The sessions whose running statement is `sql`.
fn running(admin_port: u16, sql: &str) -> Vec<Value> {
    get(admin_port, "/v1/sessions")["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["statement"] == sql)
        .cloned()
        .collect()
}

#[test]
fn admin_api_needs_credentials_and_answers_json() {
    let (_dpm, _port, admin_port) = admin_dpm();
    for who in [As::Nobody, As::WrongPassword] {
        let (status, body) = http(admin_port, who, "GET", "/v1/servers", None);
        assert_eq!(status, 401, "{body}");
        assert!(
            body["error"].as_str().unwrap().contains("credentials")
                || body["error"] == "wrong user or password",
            "{body}"
        );
    }
    for who in [As::Admin, As::Token] {
        let (status, body) = http(admin_port, who, "GET", "/v1/servers", None);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["servers"][0]["name"], "db1");
        assert_eq!(body["servers"][0]["state"], "up");
        assert_eq!(body["servers"][0]["admin_state"], "active");
    }
    let (status, body) = http(admin_port, As::Admin, "GET", "/v1/nothing-here", None);
    assert_eq!(status, 404);
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("GET /v1 lists them"));
    let (status, body) = http(admin_port, As::Admin, "GET", "/v1/servers/db9", None);
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("no server named 'db9'"))
    );
    let (status, body) = http(
        admin_port,
        As::Admin,
        "PUT",
        "/v1/servers/db1/state",
        Some("{\"state\": \"asleep\"}"),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("unknown state 'asleep'"));
    let (status, body) = http(
        admin_port,
        As::Admin,
        "PUT",
        "/v1/servers/db1/state",
        Some("not json"),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("not JSON"));
    let (status, _) = http(admin_port, As::Admin, "DELETE", "/v1/servers", None);
    assert_eq!(status, 405);

    let index = get(admin_port, "/v1");
    assert!(index["endpoints"].as_array().unwrap().len() >= 10);
    let modules = get(admin_port, "/v1/modules");
    let names: Vec<&str> = modules["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"readconnroute") && names.contains(&"readwritesplit"),
        "{names:?}"
    );
    assert_eq!(modules["instances"]["routers"][0]["service"], "app");
    assert_eq!(
        modules["instances"]["routers"][0]["module"],
        "readconnroute"
    );
    let service = get(admin_port, "/v1/services/app");
    assert_eq!(service["router"], "readconnroute");
    let workers = get(admin_port, "/v1/workers");
    assert_eq!(workers["workers"][0]["worker"], 0, "{workers}");

    // The log level, changed while dpm runs.
    assert_eq!(get(admin_port, "/v1/log-level")["level"], "warn");
    let (status, body) = http(
        admin_port,
        As::Admin,
        "PUT",
        "/v1/log-level",
        Some("{\"level\": \"loud\"}"),
    );
    assert_eq!(status, 400);
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("unknown log level 'loud'"));
    cli(_port).run("SELECT 1").assert_success("a query");
    let (status, body) = http(
        admin_port,
        As::Admin,
        "PUT",
        "/v1/log-level",
        Some("{\"level\": \"debug\"}"),
    );
    assert_eq!((status, body["level"].as_str()), (200, Some("debug")));
    _dpm.wait_for_line(
        "log level changed from warn to debug",
        Duration::from_secs(5),
    );
    // Now at debug, a session's accept is logged (at warn it was not).
    assert!(!_dpm.output().contains("accepted"), "{}", _dpm.output());
    cli(_port).run("SELECT 1").assert_success("a query");
    _dpm.wait_for_line("accepted", Duration::from_secs(5));
}

#[test]
fn admin_api_shows_a_running_statement_and_kills_its_session() {
    let (_dpm, port, admin_port) = admin_dpm();
    let sql = "SELECT SLEEP(20) AS admin_kill_me";
    let slow = std::thread::spawn(move || cli(port).timeout(Duration::from_secs(30)).run(sql));
    let session = wait_until(
        "the sleeping session to show",
        Duration::from_secs(10),
        || running(admin_port, sql).into_iter().next(),
    );
    assert_eq!(session["user"], USER);
    assert_eq!(session["schema"], DB);
    assert_eq!(session["service"], "app");
    assert_eq!(session["servers"][0], "db1");
    assert_eq!(session["state"], "busy");
    assert_eq!(session["command"], "COM_QUERY");
    assert!(session["client"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    let id = session["id"].as_u64().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let again = get(admin_port, &format!("/v1/sessions/{id}"));
    assert!(again["running_ms"].as_u64().unwrap() >= 300, "{again}");

    let (status, body) = http(
        admin_port,
        As::Admin,
        "DELETE",
        &format!("/v1/sessions/{id}"),
        None,
    );
    assert_eq!((status, body["killed"].as_u64()), (200, Some(id)), "{body}");
    let out = slow.join().unwrap();
    assert!(
        out.stderr.contains("ERROR 1927 (70100)") && out.stderr.contains("Connection was killed"),
        "the client hears it was killed: {}",
        out.stderr
    );
    assert!(running(admin_port, sql).is_empty());
    let (status, _) = http(
        admin_port,
        As::Admin,
        "DELETE",
        &format!("/v1/sessions/{id}"),
        None,
    );
    assert_eq!(status, 404, "a session is killed once");
}

#[test]
fn admin_api_puts_a_server_into_maintenance_and_drain() {
    let (_dpm, port, admin_port) = admin_dpm();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        use mysql_async::prelude::*;
        let mut idle = mysql_async::Conn::new(opts(port)).await.unwrap();
        let one: Option<i64> = idle.query_first("SELECT 1").await.unwrap();
        assert_eq!(one, Some(1));

        // Drain: the open session goes on, no new one starts.
        let (status, body) = http(
            admin_port,
            As::Admin,
            "PUT",
            "/v1/servers/db1/state",
            Some("{\"state\": \"drain\"}"),
        );
        assert_eq!(
            (status, body["was"].as_str()),
            (200, Some("active")),
            "{body}"
        );
        let two: Option<i64> = idle.query_first("SELECT 2").await.unwrap();
        assert_eq!(two, Some(2));
        let refused = cli(port).run("SELECT 1");
        assert!(
            refused.stderr.contains("db1 is being drained"),
            "{}",
            refused.stderr
        );
        assert_eq!(get(admin_port, "/v1/servers/db1")["admin_state"], "drain");

        // Maintenance: the session on it is killed, new ones are refused.
        let (status, body) = http(
            admin_port,
            As::Admin,
            "PUT",
            "/v1/servers/db1/state",
            Some("{\"state\": \"maintenance\"}"),
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["sessions_killed"], 1, "{body}");
        let err = idle.query_drop("SELECT 3").await.unwrap_err();
        assert!(
            err.to_string().contains("1927") || err.to_string().contains("killed"),
            "{err}"
        );
        let refused = cli(port).run("SELECT 1");
        assert!(
            refused.stderr.contains("db1 is in maintenance"),
            "{}",
            refused.stderr
        );
        assert_eq!(get(admin_port, "/v1/servers/db1")["state"], "down");

        // Active again.
        let (status, _) = http(
            admin_port,
            As::Token,
            "PUT",
            "/v1/servers/db1/state",
            Some("{\"state\": \"active\"}"),
        );
        assert_eq!(status, 200);
        cli(port).run("SELECT 1").assert_success("back in service");
    });
}

/// examples/admin.lua reloaded through the API (docs/admin.md, `POST /v1/reload`): only
/// with credentials, and the sessions the file serves go on through it.
#[test]
fn admin_api_reloads_the_startup_file() {
    let (_dpm, port, admin_port) = admin_dpm();
    let (status, _) = http(admin_port, As::Nobody, "POST", "/v1/reload", None);
    assert_eq!(status, 401);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        use mysql_async::prelude::*;
        let mut open = mysql_async::Conn::new(opts(port)).await.unwrap();
        let (status, body) = http(admin_port, As::Admin, "POST", "/v1/reload", None);
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            (&body["reloaded"], &body["generation"]),
            (&Value::Bool(true), &Value::from(2))
        );
        let one: Option<i64> = open.query_first("SELECT 1").await.unwrap();
        assert_eq!(one, Some(1));
        let out = cli(port).run("SELECT 2 AS two");
        assert!(out.stdout.contains("two\n2"), "{out}");
        let (status, body) = http(admin_port, As::Token, "POST", "/v1/reload", None);
        assert_eq!((status, &body["generation"]), (200, &Value::from(3)));
        let index = get(admin_port, "/v1").to_string();
        assert!(index.contains("POST /v1/reload"), "{index}");
    });
}

#[test]
fn an_admin_api_open_to_the_network_is_refused() {
    assert_start_fails_at_line_2(
        "dpm.admin{ listen = '0.0.0.0:18989' }",
        "dpm.admin: refusing to listen on 0.0.0.0:18989 (not a loopback address) without users or tokens",
    );
    assert_start_fails_at_line_2(
        "dpm.admin{ listen = '127.0.0.1:18989', users = { admin = 'secret' } }",
        "is not a caching_sha2_password hash",
    );
    assert_start_fails_at_line_2(
        "dpm.admin{ listen = 'localhost:8989' }",
        "is not an IP address and port",
    );
    assert_start_fails_at_line_2(
        "dpm.admin{ listen = '127.0.0.1:18989', tokens = { 'short' } }",
        "a token must have at least 16 characters",
    );
}

#[test]
fn the_startup_file_changes_the_log_level_and_logs_can_be_json() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("levels.lua");
    std::fs::write(
        &file,
        "print('before: ' .. dpm.log_level())\n\
         dpm.set_log_level('debug')\n\
         print('after: ' .. dpm.log_level())\n\
         local ok, err = pcall(dpm.set_log_level, 'chatty')\n\
         print('refused: ' .. tostring(err))\n\
         print('still: ' .. dpm.log_level())\n\
         listener = dpm.listener('127.0.0.1', tonumber(os.getenv('PORT')))\n",
    )
    .unwrap();
    let port = free_port();
    let dpm = Dpm::builder(&file)
        .env("PORT", port)
        .verbose(Some(0))
        .arg("--log-format")
        .arg("json")
        .spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    dpm.wait_for_line("still: debug", Duration::from_secs(5));
    let out = dpm.stdout();
    assert!(out.contains("before: warn\nafter: debug\n"), "{out}");
    assert!(
        out.contains("refused: ") && out.contains("dpm.set_log_level: unknown log level 'chatty'"),
        "{out}"
    );
    // A debug line, as JSON, once a client connects.
    let _ = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let line = dpm.wait_for_line("accepted", Duration::from_secs(5));
    let json: Value = serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(json["level"], "DEBUG", "{json}");
    assert_eq!(json["fields"]["message"], "accepted", "{json}");
    let changed = dpm.stderr();
    assert!(
        changed.contains("\"log level changed from warn to debug\""),
        "{changed}"
    );
}

#[test]
fn admin_api_shows_why_readwritesplit_pinned_a_session() {
    let r = SharedReplication::get();
    let admin_port = free_port();
    let (_dpm, port) = crate::rwsplit::rwsplit_dpm(
        [r.primary.port, r.replica.port, r.replica2.port],
        &[("DPM_ADMIN_PORT", admin_port.to_string())],
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        use mysql_async::prelude::*;
        let opts = opts_as(port, crate::rwsplit::APP_USER, crate::rwsplit::APP_PASSWORD);
        let mut conn = mysql_async::Conn::new(opts).await.unwrap();
        conn.query_drop("SELECT 1").await.unwrap();
        conn.query_drop("CREATE TEMPORARY TABLE tt (a INT)")
            .await
            .unwrap();
        // No credentials declared: open, on loopback.
        let (status, body) = http(admin_port, As::Nobody, "GET", "/v1/sessions", None);
        assert_eq!(status, 200, "{body}");
        let session = &body["sessions"][0];
        assert_eq!(session["service"], "app", "{body}");
        assert_eq!(session["user"], crate::rwsplit::APP_USER, "{body}");
        assert_eq!(
            session["pin_reason"],
            "pinned to db1 since `CREATE TEMPORARY TABLE tt (a INT)` (temporary table)",
            "{body}"
        );
        assert_eq!(session["state"], "idle", "{body}");
        conn.disconnect().await.unwrap();
    });
}

/// `GET /metrics` as the admin: (content type, text).
fn metrics_text(admin_port: u16) -> (String, String) {
    admin_metrics(
        admin_port,
        &["-u".to_string(), format!("admin:{ADMIN_PASSWORD}")],
    )
}

#[test]
fn metrics_count_statements_errors_bytes_and_latency_per_server() {
    let (_dpm, port, admin_port) = admin_dpm();
    let (status, _) = http(admin_port, As::Nobody, "GET", "/metrics", None);
    assert_eq!(status, 401, "metrics need credentials too");
    let mut script = String::new();
    for i in 0..20 {
        script.push_str(&format!("SELECT {i};\n"));
    }
    cli(port).run_stdin(&script).assert_success("20 queries");
    let bad = cli(port).run("SELEKT 1");
    assert!(bad.stderr.contains("ERROR 1064"), "{}", bad.stderr);
    let (content_type, text) = metrics_text(admin_port);
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
    let queries = metrics_sample(
        &text,
        "dpm_statements_total{service=\"app\",command=\"COM_QUERY\"}",
    );
    assert!(queries >= 21.0, "{queries}\n{text}");
    // By kind: the 20 SELECTs (and those of the CLI's login), the misspelt one.
    let selects = metrics_sample(&text, "dpm_queries_total{service=\"app\",kind=\"select\"}");
    assert!(selects >= 20.0, "{selects}\n{text}");
    assert!(metrics_sample(&text, "dpm_queries_total{service=\"app\",kind=\"other\"}") >= 1.0);
    assert_eq!(
        metrics_sample(&text, "dpm_server_errors_total{code=\"1064\"}"),
        1.0
    );
    assert!(metrics_sample(&text, "dpm_clients_accepted_total") >= 2.0);
    assert!(metrics_sample(&text, "dpm_bytes_read_total{from=\"clients\"}") > 0.0);
    assert!(metrics_sample(&text, "dpm_bytes_read_total{from=\"servers\"}") > 0.0);
    assert_eq!(metrics_sample(&text, "dpm_server_up{server=\"db1\"}"), 1.0);
    assert_eq!(
        metrics_sample(&text, "dpm_server_role{server=\"db1\",role=\"unknown\"}"),
        1.0
    );
    assert!(metrics_sample(&text, "dpm_service_sessions_started_total{service=\"app\"}") >= 2.0);
    assert!(metrics_sample(&text, "dpm_worker_cpu_seconds_total{worker=\"0\"}") > 0.0);
    // Every statement that reached the server was timed (the login's commands too).
    let series = "{service=\"app\",server=\"db1\"";
    let count = metrics_sample(
        &text,
        &format!("dpm_statement_duration_seconds_count{series}}}"),
    );
    assert!(count >= queries, "{count} < {queries}");
    let inf = metrics_sample(
        &text,
        "dpm_statement_duration_seconds_bucket{le=\"+Inf\",service=\"app\",server=\"db1\"}",
    );
    assert_eq!(inf, count, "buckets are cumulative");
    let sum = metrics_sample(
        &text,
        &format!("dpm_statement_duration_seconds_sum{series}}}"),
    );
    assert!(
        sum > 0.0 && sum < count,
        "{sum} s for {count} quick statements"
    );

    // A refusal is counted with its reason.
    http(
        admin_port,
        As::Admin,
        "PUT",
        "/v1/servers/db1/state",
        Some("{\"state\": \"maintenance\"}"),
    );
    let _ = cli(port).run("SELECT 1");
    let (_, text) = metrics_text(admin_port);
    assert_eq!(
        metrics_sample(&text, "dpm_clients_refused_total{reason=\"no_server\"}"),
        1.0
    );
    assert_eq!(metrics_sample(&text, "dpm_server_up{server=\"db1\"}"), 0.0);
    assert_eq!(
        metrics_sample(
            &text,
            "dpm_server_admin_state{server=\"db1\",state=\"maintenance\"}"
        ),
        1.0
    );
}

#[test]
fn digests_count_statements_per_digest_and_stay_within_their_capacity() {
    let (port, admin_port) = (free_port(), free_port());
    let db = MariaDb::get();
    db.direct_exec(&format!(
        "CREATE OR REPLACE TABLE {DB}.digest_t (id INT PRIMARY KEY, v INT);
         INSERT INTO {DB}.digest_t VALUES (1, 10), (2, 20), (3, 30);"
    ));
    let dpm = Dpm::builder("examples/admin.lua")
        .env("DPM_LISTEN_PORT", port)
        .env("DPM_ADMIN_PORT", admin_port)
        .env("DPM_BACKEND", format!("127.0.0.1:{}", db.port))
        .env("DPM_DIGEST_CAPACITY", 50)
        .spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    let mut script = String::new();
    for i in 0..30 {
        script.push_str(&format!(
            "SELECT v FROM digest_t WHERE id = {};\n",
            i % 3 + 1
        ));
    }
    for _ in 0..4 {
        script.push_str("SELECT nope FROM digest_t;\n");
    }
    let out = cli(port).arg("--force").run_stdin(&script);
    assert!(
        out.stderr.contains("Unknown column 'nope'"),
        "{}",
        out.stderr
    );
    let (status, body) = http(admin_port, As::Nobody, "GET", "/v1/digests", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["enabled"], true);
    let top = &body["digests"][0];
    assert_eq!(
        top["digest"], "SELECT v FROM digest_t WHERE id = ?",
        "{body}"
    );
    assert_eq!(
        (top["count"].as_u64(), top["rows"].as_u64()),
        (Some(30), Some(30)),
        "{top}"
    );
    assert_eq!(top["errors"], 0);
    assert_eq!(top["user"], USER);
    assert_eq!(top["service"], "app");
    assert!(top["sample"]
        .as_str()
        .unwrap()
        .starts_with("SELECT v FROM digest_t WHERE id = "));
    assert!(
        top["p50_ms"].as_f64().unwrap() > 0.0 && top["max_ms"].as_f64().unwrap() > 0.0,
        "{top}"
    );
    let (_, by_errors) = http(
        admin_port,
        As::Nobody,
        "GET",
        "/v1/digests?order=errors&limit=1",
        None,
    );
    let failing = &by_errors["digests"][0];
    assert_eq!(
        failing["digest"], "SELECT nope FROM digest_t",
        "{by_errors}"
    );
    assert_eq!(
        (failing["count"].as_u64(), failing["errors"].as_u64()),
        (Some(4), Some(4))
    );
    assert_eq!(by_errors["digests"].as_array().unwrap().len(), 1);
    let (status, bad) = http(
        admin_port,
        As::Nobody,
        "GET",
        "/v1/digests?order=loudest",
        None,
    );
    assert_eq!(status, 400, "{bad}");

    // 200 more distinct digests: 50 are kept; the frequent one stays, counted exactly.
    let mut many = String::new();
    for i in 0..200 {
        many.push_str(&format!("SELECT {i} AS c{i};\n"));
        if i % 10 == 0 {
            many.push_str("SELECT v FROM digest_t WHERE id = 2;\n");
        }
    }
    cli(port)
        .run_stdin(&many)
        .assert_success("200 distinct statements");
    let body = get_open(admin_port, "/v1/digests?limit=1000");
    assert_eq!(body["kept"], 50, "{}", body["kept"]);
    let top = &body["digests"][0];
    assert_eq!(top["digest"], "SELECT v FROM digest_t WHERE id = ?");
    assert_eq!(
        (top["count"].as_u64(), top["count_may_be_over_by"].as_u64()),
        (Some(50), Some(0))
    );
    let (_, text) = metrics_text(admin_port);
    let series = format!(
        "dpm_digest_statements{{digest=\"SELECT v FROM digest_t WHERE id = ?\",user=\"{USER}\",service=\"app\"}}"
    );
    assert_eq!(metrics_sample(&text, &series), 50.0);

    // A digest with a quote and a newline (an optimizer hint is kept as written): escaped
    // in its label, every other line of the exposition intact.
    for _ in 0..60 {
        cli(port)
            .arg("--comments") // the client strips comments otherwise
            .run_stdin("SELECT /*+ hint(\"a\nc\") */ 1;\n")
            .assert_success("a statement with a hint");
    }
    let (_, text) = metrics_text(admin_port);
    assert!(
        text.contains("digest=\"SELECT /*+ hint(\\\"a\\nc\\\") */ ?\""),
        "{text}"
    );
    assert!(
        text.lines()
            .all(|l| l.starts_with('#') || l.starts_with("dpm_")),
        "{text}"
    );
    // Without credentials the API answers loopback hosts only (no DNS rebinding), and no
    // change comes from a page of another origin.
    let foreign = |args: &[&str], method: &str| {
        let out = run_bounded(
            Command::new("curl")
                .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", method])
                .args(args)
                .arg(format!("http://127.0.0.1:{admin_port}/v1/digests")),
            None,
            Duration::from_secs(20),
        );
        out.stdout.trim().to_string()
    };
    assert_eq!(foreign(&["-H", "Host: rebound.example"], "GET"), "403");
    assert_eq!(
        foreign(&["-H", "Origin: http://evil.example"], "DELETE"),
        "403"
    );
    assert_eq!(foreign(&["-H", "Host: localhost"], "GET"), "200");
    let (status, _) = http(admin_port, As::Nobody, "DELETE", "/v1/digests", None);
    assert_eq!(status, 200);
    assert_eq!(get_open(admin_port, "/v1/digests")["kept"], 0);
}

/// `GET` on an admin API without credentials.
fn get_open(admin_port: u16, path: &str) -> Value {
    let (status, body) = http(admin_port, As::Nobody, "GET", path, None);
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// Debian's Chromium, headless, as a person's browser: `args` then `url`; its output.
fn chromium(args: &[String], url: &str) -> ProcOutput {
    let profile = tempfile::tempdir().unwrap();
    run_bounded(
        Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--virtual-time-budget=4000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(args)
            .arg(url),
        None,
        Duration::from_secs(60),
    )
}

#[test]
fn the_status_page_shows_servers_sessions_and_digests_in_a_browser() {
    let (port, admin_port) = (free_port(), free_port());
    let dpm = Dpm::builder("examples/admin.lua")
        .env("DPM_LISTEN_PORT", port)
        .env("DPM_ADMIN_PORT", admin_port)
        .env("DPM_BACKEND", format!("127.0.0.1:{}", MariaDb::get().port))
        .spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    cli(port)
        .run_stdin("SELECT 1 AS status_page_digest;\nSELECT 2 AS status_page_digest;\n")
        .assert_success("two queries");
    let sql = "SELECT SLEEP(15) AS status_page_sleeper";
    let slow = std::thread::spawn(move || cli(port).timeout(Duration::from_secs(30)).run(sql));
    wait_until("the sleeping session", Duration::from_secs(10), || {
        running(admin_port, sql).into_iter().next()
    });
    let url = format!("http://127.0.0.1:{admin_port}/status");
    let page = chromium(&["--dump-dom".to_string()], &url);
    page.assert_success("chromium --dump-dom");
    let dom = page.stdout;
    // What a person sees once the script ran: each table filled from the admin API.
    assert!(dom.contains("<td>db1</td>"), "{dom}");
    assert!(dom.contains("<td class=\"up\">up</td>"), "{dom}");
    assert!(dom.contains("<td>readconnroute</td>"), "{dom}");
    assert!(
        dom.contains(&format!("<td class=\"sql\">{sql}</td>")),
        "{dom}"
    );
    assert!(
        dom.contains("<td class=\"sql\">SELECT ? AS status_page_digest</td>"),
        "{dom}"
    );
    assert!(dom.contains("refreshes every 2 s"), "{dom}");
    assert!(!dom.contains("cannot reach dpm"), "{dom}");
    // A screenshot, kept as a test artifact.
    let dir = workspace_root().join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join("status-page.png");
    let _ = std::fs::remove_file(&png);
    chromium(
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1400,1000".to_string(),
        ],
        &url,
    )
    .assert_success("chromium --screenshot");
    let shot = std::fs::read(&png).expect("the screenshot");
    assert!(
        shot.starts_with(b"\x89PNG") && shot.len() > 10_000,
        "{} bytes",
        shot.len()
    );
    for s in running(admin_port, sql) {
        http(
            admin_port,
            As::Nobody,
            "DELETE",
            &format!("/v1/sessions/{}", s["id"]),
            None,
        );
    }
    let _ = slow.join();
}

#[test]
fn on_two_workers_sessions_and_metrics_cover_both() {
    let (port, admin_port) = (free_port(), free_port());
    let dpm = Dpm::builder("examples/admin.lua")
        .env("DPM_LISTEN_PORT", port)
        .env("DPM_ADMIN_PORT", admin_port)
        .env("DPM_BACKEND", format!("127.0.0.1:{}", MariaDb::get().port))
        .arg("--threads")
        .arg("2")
        .spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    // Enough sleeping sessions that the kernel gives both workers some (all 12 on one: 1 in 2,048).
    let sql = "SELECT SLEEP(8) AS two_workers";
    let sleepers: Vec<_> = (0..12)
        .map(|_| std::thread::spawn(move || cli(port).timeout(Duration::from_secs(30)).run(sql)))
        .collect();
    let sessions = wait_until("12 sleeping sessions", Duration::from_secs(15), || {
        let s = running(admin_port, sql);
        (s.len() == 12).then_some(s)
    });
    let workers: std::collections::BTreeSet<u64> = sessions
        .iter()
        .map(|s| s["worker"].as_u64().unwrap())
        .collect();
    assert_eq!(workers.len(), 2, "sessions on both workers: {sessions:?}");
    let (_, text) = metrics_text(admin_port);
    assert_eq!(
        metrics_sample(&text, "dpm_clients_connected"),
        12.0,
        "summed over both workers"
    );
    assert!(
        text.contains("dpm_worker_cpu_seconds_total{worker=\"1\"}"),
        "{text}"
    );
    // Killing works whichever worker has the session.
    for s in &sessions {
        let (status, _) = http(
            admin_port,
            As::Admin,
            "DELETE",
            &format!("/v1/sessions/{}", s["id"]),
            None,
        );
        assert_eq!(status, 200);
    }
    for t in sleepers {
        let out = t.join().unwrap();
        assert!(out.stderr.contains("ERROR 1927"), "{}", out.stderr);
    }
}

#[test]
fn filter_rules_reload_through_the_api_and_a_broken_file_is_a_422() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("fw.rules");
    std::fs::write(&rules, "rule no_delete match type delete\n").unwrap();
    let (port, admin_port) = (free_port(), free_port());
    let dpm = Dpm::builder("crates/dpm/tests/lua/firewall_admin.lua")
        .env("DPM_LISTEN_PORT", port)
        .env("DPM_ADMIN_PORT", admin_port)
        .env("DPM_BACKEND", format!("127.0.0.1:{}", MariaDb::get().port))
        .env("DPM_RULES", rules.display())
        .spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    MariaDb::get().direct_exec(&format!(
        "CREATE TABLE IF NOT EXISTS {DB}.api_reloaded (id INT PRIMARY KEY)"
    ));
    let update = || cli(port).run("UPDATE api_reloaded SET id = 2 WHERE id = 1");
    update().assert_success("no rule against UPDATE yet");
    // A broken file: 422 with its FILE:LINE, and the rules loaded before stay.
    std::fs::write(
        &rules,
        "rule no_update match type update\nrule ??? nonsense\n",
    )
    .unwrap();
    let body = Some("{\"filters\": [\"fw\"]}");
    let (status, answer) = http(admin_port, As::Nobody, "POST", "/v1/filters/reload", body);
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("fw.rules:2:"),
        "{answer}"
    );
    update().assert_success("the old rules stay");
    // Fixed: the new rule holds.
    std::fs::write(&rules, "rule no_update match type update\n").unwrap();
    let (status, answer) = http(admin_port, As::Nobody, "POST", "/v1/filters/reload", body);
    assert_eq!(
        (status, answer["reloaded"].as_bool()),
        (200, Some(true)),
        "{answer}"
    );
    let denied = update();
    assert!(!denied.success(), "{}", denied.stdout);
    // A name that is no built-in filter: 404 naming the ones there are.
    let (status, answer) = http(
        admin_port,
        As::Nobody,
        "POST",
        "/v1/filters/reload",
        Some("{\"filters\": [\"nope\"]}"),
    );
    assert_eq!(status, 404, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("(there are: fw)"),
        "{answer}"
    );
}

#[test]
fn a_user_name_with_a_newline_cannot_forge_a_text_log_line() {
    let db = MariaDb::get();
    // MariaDB takes any characters in a quoted user name.
    db.direct_exec(&format!(
        "CREATE USER IF NOT EXISTS 'evil\\nFORGED line'@'%' IDENTIFIED BY 'x';
         GRANT ALL ON {DB}.* TO 'evil\\nFORGED line'@'%';"
    ));
    let port = free_port();
    let dpm = Dpm::builder("crates/dpm/tests/lua/filter_errors.lua")
        .env("DPM_LISTEN_PORT", port)
        .env("DPM_BACKEND", format!("127.0.0.1:{}", db.port))
        .spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    let out = Cli::new(port)
        .user("evil\nFORGED line")
        .password(Some("x"))
        .run("SELECT 'boom'");
    assert!(out.stderr.contains("boom requested"), "{}", out.stderr);
    let line = dpm.wait_for_line("boom requested", Duration::from_secs(5));
    assert!(line.contains("user=\"evil\\nFORGED line\""), "{line}");
    let output = dpm.output();
    assert!(
        !output.lines().any(|l| l.starts_with("FORGED")),
        "a line of the log starts with the client's text:\n{output}"
    );
}

#[test]
fn a_statement_a_filter_answered_is_counted_but_never_timed_and_lends_its_digest_to_no_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("filter-digests.lua");
    let example = workspace_root().join("examples/lua-filter.lua");
    std::fs::write(
        &file,
        format!(
            "dpm.digests{{}}\n\
             dpm.admin{{ listen = '127.0.0.1:' .. os.getenv('DPM_ADMIN_PORT') }}\n\
             dofile('{}')\n",
            example.display()
        ),
    )
    .unwrap();
    let (port, admin_port) = (free_port(), free_port());
    let dpm = Dpm::builder(&file)
        .env("DPM_LISTEN_PORT", port)
        .env("DPM_ADMIN_PORT", admin_port)
        .env("DPM_BACKEND", format!("127.0.0.1:{}", MariaDb::get().port))
        .spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        use mysql_async::prelude::*;
        let mut conn = mysql_async::Conn::new(opts(port)).await.unwrap();
        // Answered by the Lua filter, never sent to the server.
        let err = conn
            .query_drop("DROP TABLE digest_never_sent")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("1142"), "{err}");
        // The next command is no COM_QUERY: its time must not go to the DROP's digest.
        conn.ping().await.unwrap();
        conn.disconnect().await.unwrap();
    });
    let body = get_open(admin_port, "/v1/digests");
    let drop = body["digests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["digest"] == "DROP TABLE digest_never_sent")
        .unwrap_or_else(|| panic!("{body}"))
        .clone();
    assert_eq!(drop["count"], 1, "{drop}");
    assert!(
        drop["p50_ms"].is_null() && drop["total_ms"] == 0.0,
        "never timed: {drop}"
    );
}
