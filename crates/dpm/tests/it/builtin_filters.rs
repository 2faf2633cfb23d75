//! The built-in filters (qla, regex, firewall, tee, top) on a readconnroute service in
//! front of the real MariaDB, driven by the `mariadb` CLI and mysql_async.

use crate::support::*;
use std::time::{Duration, Instant};

/// dpm on `startfile` in front of the shared MariaDB, logs in a fresh directory
/// (`DPM_LOG_DIR`); returns dpm, its port and the directory.
fn filters_dpm(startfile: &str) -> (Dpm, u16, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (dpm, port) = dpm_on(startfile, &[("DPM_LOG_DIR", &dir.path().display())]);
    (dpm, port, dir)
}

/// dpm on `startfile` in front of the shared MariaDB (`DPM_BACKEND`), listening on a free
/// port (`DPM_LISTEN_PORT`, returned), with `env` added.
fn dpm_on(startfile: &str, env: &[(&str, &dyn std::fmt::Display)]) -> (Dpm, u16) {
    let port = free_port();
    let mut builder = Dpm::builder(startfile)
        .env("DPM_LISTEN_PORT", port)
        .env("DPM_BACKEND", format!("127.0.0.1:{}", MariaDb::get().port));
    for (key, value) in env {
        builder = builder.env(*key, value);
    }
    let dpm = builder.spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    (dpm, port)
}

/// dpm on examples/builtin-filters.lua, its tee mirroring to `spare` as `user`; logs in a
/// fresh directory (returned, kept as long as the test holds it).
fn mirrored_dpm(spare: &MariaDb, user: &str, password: &str) -> (Dpm, u16, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (dpm, port) = dpm_on(
        "examples/builtin-filters.lua",
        &[
            ("DPM_MIRROR", &format!("127.0.0.1:{}", spare.port)),
            ("DPM_MIRROR_USER", &user),
            ("DPM_MIRROR_PASSWORD", &password),
            ("DPM_LOG_DIR", &dir.path().display()),
        ],
    );
    (dpm, port, dir)
}

fn cli(port: u16) -> Cli {
    Cli::new(port).user(USER).password(Some(PASSWORD)).db(DB)
}

/// The JSON lines of `file`, waiting until there are at least `n`.
fn json_lines(file: &std::path::Path, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn qla_logs_every_statement_as_the_server_saw_it_and_top_reports_the_session() {
    let (_dpm, port, dir) = filters_dpm("examples/builtin-filters.lua");
    let db = MariaDb::get();
    db.direct_exec(&format!(
        "CREATE TABLE IF NOT EXISTS {DB}.orders (id INT PRIMARY KEY, v VARCHAR(10));
         REPLACE INTO {DB}.orders VALUES (1, 'a'), (2, 'b'), (3, 'c');"
    ));
    let out = cli(port).run_stdin(
        "SELECT SQL_NO_CACHE v FROM legacy_orders ORDER BY id;\n\
         SELECT SLEEP(0.2) AS slept;\n\
         UPDATE orders SET v = 'a' WHERE id = 1;\n\
         SELECT @@port > 0 AS excluded;\n",
    );
    out.assert_success("statements through the chain");
    assert_eq!(out.stdout, "v\na\nb\nc\nslept\n0\nexcluded\n1\n");
    let out = cli(port).run("SELECT * FROM no_such_table");
    assert!(out.stderr.contains("ERROR 1146"), "{}", out.stderr);

    let log = json_lines(&dir.path().join("dpm-queries.log"), 4);
    let find = |needle: &str| {
        log.iter()
            .find(|l| l["sql"].as_str().is_some_and(|s| s.contains(needle)))
            .unwrap_or_else(|| panic!("no line with {needle}: {log:?}"))
            .clone()
    };
    // Rewritten before the log saw it: the server's SQL, not the client's.
    let select = find("FROM orders ORDER BY id");
    assert_eq!(select["sql"], "SELECT v FROM orders ORDER BY id");
    assert_eq!(select["rows"], 3);
    assert_eq!(select["user"], USER);
    assert_eq!(select["service"], "app");
    assert_eq!(select["server"], "db");
    assert!(select["error"].is_null());
    assert!(select["client"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(select["time"].as_str().unwrap().ends_with('Z'));
    let sleep = find("SLEEP(0.2)");
    let us = sleep["duration_us"].as_u64().unwrap();
    assert!((190_000..5_000_000).contains(&us), "{us}");
    assert_eq!(find("UPDATE orders")["affected_rows"], 0);
    assert_eq!(find("no_such_table")["error"], 1146);
    // `SELECT @@...` is out of the example's scope (`exclude`), yet top counts it.
    assert!(log
        .iter()
        .all(|l| !l["sql"].as_str().unwrap_or("").contains("@@")));

    // top: one line per closed session, slowest first.
    let top = json_lines(&dir.path().join("dpm-top.log"), 2);
    let first = top
        .iter()
        .find(|l| l["statements"].as_u64() == Some(4))
        .unwrap_or_else(|| panic!("{top:?}"));
    assert_eq!(first["top"][0]["sql"], "SELECT SLEEP(0.2) AS slept");
    assert!(first["top"][0]["duration_us"].as_u64().unwrap() >= 190_000);
    assert_eq!(first["user"], USER);
    assert!(first["statement_time_us"].as_u64().unwrap() >= 190_000);
}

#[test]
fn tee_mirrors_writes_to_the_second_service_and_the_client_sees_only_the_main_result() {
    let main = MariaDb::get();
    let spare = &SharedReplication::get().primary;
    for (db, v) in [(main, "main"), (spare, "mirror")] {
        db.direct_exec(&format!(
            "CREATE TABLE IF NOT EXISTS {DB}.teed (id INT PRIMARY KEY, v VARCHAR(10));
             DELETE FROM {DB}.teed; INSERT INTO {DB}.teed VALUES (0, '{v}');"
        ));
    }
    // Its own account on the mirror, so that its connections can be told from other tests'.
    spare.direct_exec(&format!(
        "CREATE USER IF NOT EXISTS 'tee_mirror'@'%' IDENTIFIED BY 'mirrorpw';
         GRANT ALL ON {DB}.* TO 'tee_mirror'@'%';"
    ));
    let (_dpm, port, _dir) = mirrored_dpm(spare, "tee_mirror", "mirrorpw");
    let out = cli(port).run_stdin(
        "INSERT INTO teed VALUES (1, 'one'), (2, 'two');\n\
         UPDATE teed SET v = 'uno' WHERE id = 1;\n\
         SELECT v FROM teed ORDER BY id;\n",
    );
    out.assert_success("writes through the tee");
    // The client's result is the main server's.
    assert_eq!(out.stdout, "v\nmain\nuno\ntwo\n");
    let mirrored = try_wait_until(Duration::from_secs(10), || {
        let rows = spare.direct_exec(&format!("SELECT v FROM {DB}.teed ORDER BY id"));
        (rows == "mirror\nuno\ntwo\n").then_some(())
    });
    assert!(
        mirrored.is_some(),
        "the mirror got {:?}",
        spare.direct_exec(&format!("SELECT v FROM {DB}.teed ORDER BY id"))
    );
    // The session is over: its mirror connection closes with it.
    let gone = try_wait_until(Duration::from_secs(10), || {
        let n = spare.direct_exec(
            "SELECT COUNT(*) FROM information_schema.processlist WHERE user = 'tee_mirror'",
        );
        (n.trim() == "0").then_some(())
    });
    assert!(gone.is_some(), "a mirror connection outlived its session");
}

#[test]
fn a_dead_tee_target_changes_neither_results_nor_latency() {
    let main = MariaDb::get();
    let dead = free_port(); // nothing listens there
    let (port, plain_port) = (free_port(), free_port());
    let dpm = Dpm::builder("crates/dpm/tests/lua/tee_dead_mirror.lua")
        .env("DPM_LISTEN_PORT", port)
        .env("DPM_PLAIN_PORT", plain_port)
        .env("DPM_BACKEND", format!("127.0.0.1:{}", main.port))
        .env("DPM_MIRROR", format!("127.0.0.1:{dead}"))
        .spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    dpm.wait_until_listening(plain_port, LISTEN_TIMEOUT);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (teed, plain) = rt.block_on(async move {
        use mysql_async::prelude::*;
        let mut teed = mysql_async::Conn::new(opts(port)).await.unwrap();
        let mut plain = mysql_async::Conn::new(opts(plain_port)).await.unwrap();
        let (mut t, mut p) = (Vec::new(), Vec::new());
        // Interleaved, so that both paths see the same machine.
        for i in 0..400 {
            let sql = format!("SELECT {i} + 1 AS n, REPEAT('x', 100) AS pad");
            let started = Instant::now();
            let a: Vec<(i64, String)> = teed.query(&sql).await.unwrap();
            t.push(started.elapsed());
            let started = Instant::now();
            let b: Vec<(i64, String)> = plain.query(&sql).await.unwrap();
            p.push(started.elapsed());
            assert_eq!(a, b);
            assert_eq!(a[0].0, i + 1);
        }
        (t, p)
    });
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (teed, plain) = (median(teed), median(plain));
    assert!(
        teed <= plain * 3 / 2 + Duration::from_micros(200),
        "median with a dead tee target {teed:?}, without tee {plain:?}"
    );
    let log = dpm.stderr();
    assert!(
        log.contains("filter 'tee': cannot mirror to service 'mirror'"),
        "{log}"
    );
}

#[test]
fn a_query_log_that_cannot_keep_up_drops_lines_instead_of_blocking() {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("queries.fifo");
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    // A reader that never reads: once the pipe's buffer is full, the writer thread
    // blocks in write(2) for good.
    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let (dpm, port) = dpm_on(
        "crates/dpm/tests/lua/qla_small_queue.lua",
        &[("DPM_QLA_FILE", &fifo.display().to_string())],
    );
    const N: usize = 3000;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let slowest = rt.block_on(async move {
        use mysql_async::prelude::*;
        let mut conn = mysql_async::Conn::new(opts(port)).await.unwrap();
        let mut slowest = Duration::ZERO;
        for i in 0..N {
            let started = Instant::now();
            let n: Option<(i64, String)> = conn
                .query_first(format!("SELECT {i} AS n, '{}' AS pad", "p".repeat(200)))
                .await
                .unwrap();
            assert_eq!(n.map(|r| r.0), Some(i as i64));
            slowest = slowest.max(started.elapsed());
        }
        slowest
    });
    // Never waited for the log (a blocked write would stall a statement for good).
    assert!(
        slowest < Duration::from_secs(2),
        "slowest statement {slowest:?}"
    );
    let warnings = try_wait_until(Duration::from_secs(5), || {
        let log = dpm.stderr();
        let n = log.matches("filter 'log': the queue to").count();
        (n > 0).then_some((n, log))
    });
    let (n, log) = warnings.expect("a WARN about the full queue");
    assert!(log.contains("is full (20 lines): dropping lines"), "{log}");
    assert!(n < 30, "the WARN is rate-limited (once a second), got {n}");
    // What did get through is whole JSON lines, far fewer than the statements.
    std::thread::sleep(Duration::from_millis(300));
    let mut text = Vec::new();
    let _ = std::io::Read::read_to_end(&mut reader, &mut text);
    let text = String::from_utf8_lossy(&text);
    let lines = text.lines().count();
    assert!((1..N).contains(&lines), "{lines} lines");
    // The diagnostics count what was dropped.
    let out = cli(port).arg("--skip-column-names").run("QLA STATS");
    let counts: Vec<u64> = out
        .stdout
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(counts.len(), 3, "{}", out.stdout);
    assert!(counts[0] >= N as u64, "logged {counts:?}");
    assert!(
        counts[2] > 0 && counts[1] + counts[2] <= counts[0],
        "{counts:?}"
    );
    drop(dpm);
}

#[test]
fn reopen_logs_from_lua_follows_a_renamed_query_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("q.log");
    let (dpm, port) = dpm_on(
        "crates/dpm/tests/lua/qla_small_queue.lua",
        &[("DPM_QLA_FILE", &log.display().to_string())],
    );
    cli(port).run("SELECT 'one' AS n").assert_success("one");
    assert_eq!(json_lines(&log, 1).len(), 1);
    std::fs::rename(&log, dir.path().join("q.log.1")).unwrap();
    cli(port)
        .run("REOPEN LOGS")
        .assert_success("dpm.reopen_logs()");
    dpm.wait_for_line("filter 'log': reopened", Duration::from_secs(5));
    cli(port).run("SELECT 'two' AS n").assert_success("two");
    let lines = json_lines(&log, 1);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["sql"], "SELECT 'two' AS n");
}

#[test]
fn sighup_reopens_the_query_log_after_logrotate_renamed_it() {
    let (dpm, port, dir) = filters_dpm("examples/builtin-filters.lua");
    let log = dir.path().join("dpm-queries.log");
    cli(port)
        .run("SELECT 'before' AS rotation")
        .assert_success("before");
    assert_eq!(json_lines(&log, 1).len(), 1);
    std::fs::rename(&log, dir.path().join("dpm-queries.log.1")).unwrap();
    dpm.signal(libc::SIGHUP);
    dpm.wait_for_line("filter 'log': reopened", Duration::from_secs(5));
    cli(port)
        .run("SELECT 'after' AS rotation")
        .assert_success("after");
    let new = json_lines(&log, 1);
    assert_eq!(new.len(), 1);
    assert_eq!(new[0]["sql"], "SELECT 'after' AS rotation");
    let old = json_lines(&dir.path().join("dpm-queries.log.1"), 1);
    assert_eq!(old[0]["sql"], "SELECT 'before' AS rotation");
    assert!(dpm.try_status().is_none(), "SIGHUP does not stop dpm");
}

#[test]
fn a_denied_delete_never_reaches_the_server_and_the_log_says_why() {
    let (_dpm, port, dir) = filters_dpm("examples/builtin-filters.lua");
    let db = MariaDb::get();
    db.direct_exec(&format!(
        "CREATE TABLE IF NOT EXISTS {DB}.guarded (id INT PRIMARY KEY);
         REPLACE INTO {DB}.guarded VALUES (1), (2), (3);"
    ));
    let denied = [
        ("DELETE FROM guarded", "no_mass_write"),
        ("UPDATE guarded SET id = id + 10", "no_mass_write"),
        ("  drop table guarded", "no_drop"),
        ("SELECT * FROM secret.keys", "no_secrets"),
        ("SELECT SLEEP(5)", "no_sleep_long"),
    ];
    for (sql, rule) in denied {
        let out = cli(port).run(sql);
        assert!(!out.status.success(), "{sql} was let through");
        let expected = format!(
            "ERROR 1141 (42000) at line 1: Access denied by firewall rule '{rule}' for '{USER}'@'127.0.0.1'"
        );
        assert!(out.stderr.contains(&expected), "{sql}: {}", out.stderr);
    }
    // Checked on the server: nothing was deleted or changed.
    assert_eq!(
        db.direct_exec(&format!(
            "SELECT GROUP_CONCAT(id ORDER BY id) FROM {DB}.guarded"
        )),
        "1,2,3\n"
    );
    // The same statements with a WHERE pass.
    let out = cli(port).run("DELETE FROM guarded WHERE id = 3; SELECT COUNT(*) AS n FROM guarded");
    out.assert_success("a DELETE with WHERE");
    assert_eq!(out.stdout, "n\n2\n");
    // The query log (before the firewall in the chain) records the denial.
    let log = json_lines(&dir.path().join("dpm-queries.log"), denied.len() + 2);
    let line = log
        .iter()
        .find(|l| l["sql"] == "DELETE FROM guarded")
        .unwrap_or_else(|| panic!("{log:?}"));
    assert_eq!(line["error"], 1141);
    assert!(line["server"].is_null(), "answered by dpm, not a server");
}

#[test]
fn firewall_rules_reload_and_a_broken_file_keeps_the_old_rules() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("fw.rules");
    std::fs::write(&rules, "rule no_delete match type delete\n").unwrap();
    let (dpm, port) = dpm_on(
        "crates/dpm/tests/lua/firewall_admin.lua",
        &[("DPM_RULES", &rules.display().to_string())],
    );
    MariaDb::get().direct_exec(&format!(
        "CREATE TABLE IF NOT EXISTS {DB}.reloaded (id INT PRIMARY KEY)"
    ));
    let denied = |sql: &str| {
        let out = cli(port).run(sql);
        (!out.status.success()).then_some(out.stderr)
    };
    assert!(denied("DELETE FROM reloaded WHERE id = 1").is_some());
    // A filter before the firewall saw the denial as the statement's reply — and not its
    // own answers (asked twice, the same).
    let out = cli(port).run_stdin("LAST REPLY;\nLAST REPLY;\n");
    let rows: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| !l.starts_with("server"))
        .collect();
    assert_eq!(rows.len(), 2, "{}", out.stdout);
    assert_eq!(rows[0], rows[1], "the admin filter saw its own answer");
    let out = cli(port).run("LAST REPLY");
    assert_eq!(
        out.stdout
            .lines()
            .nth(1)
            .map(|l| l.split('\t').take(2).collect::<Vec<_>>()),
        Some(vec!["NULL", "1141"]),
        "{}",
        out.stdout
    );
    assert!(denied("INSERT IGNORE INTO reloaded VALUES (1)").is_none());
    let out = cli(port).run("LAST REPLY");
    let line: Vec<String> = out
        .stdout
        .lines()
        .nth(1)
        .unwrap()
        .split('\t')
        .map(String::from)
        .collect();
    assert_eq!(
        (line[0].as_str(), line[1].as_str()),
        ("db", "NULL"),
        "{}",
        out.stdout
    );
    assert!(line[2].parse::<u64>().unwrap() > 0);

    // A new rule file, reloaded from Lua.
    std::fs::write(&rules, "rule no_insert match type insert\n").unwrap();
    let out = cli(port).run("RELOAD FIREWALL");
    assert_eq!(out.stdout, "ok\terror\ntrue\tNULL\n");
    assert!(denied("DELETE FROM reloaded WHERE id = 1").is_none());
    let err = denied("INSERT IGNORE INTO reloaded VALUES (1)").expect("insert denied after reload");
    assert!(err.contains("firewall rule 'no_insert'"), "{err}");

    // A broken file: the error names file and line, the old rules stay.
    std::fs::write(&rules, "# fine\nrule broken match regex '(unclosed'\n").unwrap();
    let out = cli(port).run("RELOAD FIREWALL");
    let expected = format!("false\t{}:2: ", rules.display());
    assert!(out.stdout.contains(&expected), "{}", out.stdout);
    assert!(denied("INSERT IGNORE INTO reloaded VALUES (1)").is_some());
    dpm.wait_for_line(
        &format!("ERROR: {}:2: ", rules.display()),
        Duration::from_secs(5),
    );

    // SIGHUP rereads it too.
    std::fs::write(&rules, "rule no_update match type update\n").unwrap();
    dpm.signal(libc::SIGHUP);
    dpm.wait_for_line("filter 'fw': rules reloaded", Duration::from_secs(5));
    assert!(denied("INSERT IGNORE INTO reloaded VALUES (1)").is_none());
    assert!(denied("UPDATE reloaded SET id = 1 WHERE id = 1").is_some());
    let out = cli(port).run("FIREWALL STATS");
    assert_eq!(
        out.stdout.lines().nth(1).unwrap().split('\t').nth(3),
        Some("2"),
        "{}",
        out.stdout
    );
}

#[test]
fn an_allow_list_lets_through_only_what_its_rules_match() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("fw.rules");
    std::fs::write(&rules, "rule ping_table match table reloaded\n").unwrap();
    let (_dpm, port) = dpm_on(
        "crates/dpm/tests/lua/firewall_admin.lua",
        &[
            ("DPM_RULES", &rules.display().to_string()),
            ("DPM_FW_ACTION", &"allow"),
        ],
    );
    MariaDb::get().direct_exec(&format!(
        "CREATE TABLE IF NOT EXISTS {DB}.reloaded (id INT PRIMARY KEY)"
    ));
    // A SELECT (the Lua rule) and anything on the table `reloaded` (the file's) pass.
    cli(port).run("SELECT 1").assert_success("select");
    cli(port)
        .run("INSERT IGNORE INTO reloaded VALUES (7)")
        .assert_success("insert into the allowed table");
    let out = cli(port).run("CREATE TABLE IF NOT EXISTS other (id INT)");
    assert!(
        out.stderr
            .contains("no firewall rule allows this statement"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_tee_mirror_whose_connection_dies_reconnects_by_itself() {
    let main = MariaDb::get();
    let spare = &SharedReplication::get().primary;
    for db in [main, spare] {
        db.direct_exec(&format!(
            "CREATE TABLE IF NOT EXISTS {DB}.reteed (id INT PRIMARY KEY); DELETE FROM {DB}.reteed;"
        ));
    }
    // Its own account on the mirror: the test kills that account's connections only.
    spare.direct_exec(&format!(
        "CREATE USER IF NOT EXISTS 'tee_killed'@'%' IDENTIFIED BY 'killedpw';
         GRANT ALL ON {DB}.* TO 'tee_killed'@'%';"
    ));
    let (dpm, port, _dir) = mirrored_dpm(spare, "tee_killed", "killedpw");
    let mirrored = |id: u32| {
        try_wait_until(Duration::from_secs(10), || {
            let n = spare.direct_exec(&format!("SELECT COUNT(*) FROM {DB}.reteed WHERE id = {id}"));
            (n.trim() == "1").then_some(())
        })
        .is_some()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use mysql_async::prelude::*;
        // One session throughout: its mirror connection is the one that dies.
        let mut conn = mysql_async::Conn::new(opts(port)).await.unwrap();
        conn.query_drop("INSERT INTO reteed VALUES (1)")
            .await
            .unwrap();
        assert!(mirrored(1), "the first insert reached the mirror");
        let ids = spare
            .direct_exec("SELECT id FROM information_schema.processlist WHERE user = 'tee_killed'");
        assert!(!ids.trim().is_empty(), "the mirror connection is there");
        for id in ids.split_whitespace() {
            spare.direct_exec(&format!("KILL CONNECTION {id}"));
        }
        // The statement that finds the mirror dead may be lost (counted); the mirror
        // reconnects and the ones after it arrive.
        for id in 2..=20 {
            conn.query_drop(format!("INSERT INTO reteed VALUES ({id})"))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(mirrored(20), "inserts after the kill reached the mirror");
        let rows: Vec<u32> = conn
            .query("SELECT id FROM reteed ORDER BY id")
            .await
            .unwrap();
        assert_eq!(
            rows,
            (1..=20).collect::<Vec<_>>(),
            "the main path lost nothing"
        );
    });
    assert!(dpm.try_status().is_none());
}

#[test]
fn qla_logs_digests_and_samples_one_statement_in_n() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("q.log");
    let (_dpm, port) = dpm_on(
        "crates/dpm/tests/lua/qla_small_queue.lua",
        &[
            ("DPM_QLA_FILE", &log.display().to_string()),
            ("DPM_QLA_LOG", &"digest"),
            ("DPM_QLA_SAMPLE", &"2"),
        ],
    );
    let statements: String = (0..10)
        .map(|i| format!("SELECT {i} AS n, 'secret{i}' AS s;\n"))
        .collect();
    cli(port)
        .run_stdin(&statements)
        .assert_success("ten statements");
    std::thread::sleep(Duration::from_millis(300));
    let lines = json_lines(&log, 5);
    assert_eq!(lines.len(), 5, "one in two of ten statements: {lines:?}");
    for line in &lines {
        assert_eq!(line["digest"], "SELECT ? AS n, ? AS s", "{line}");
        assert!(line["digest_hash"].as_u64().is_some());
        assert!(
            line.get("sql").is_none(),
            "no SQL text with log = digest: {line}"
        );
    }
}

#[test]
fn pipelined_statements_a_log_partly_wants_are_paired_with_their_own_replies() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("q.log");
    let (dpm, port) = dpm_on(
        "crates/dpm/tests/lua/qla_small_queue.lua",
        &[
            ("DPM_QLA_FILE", &log.display().to_string()),
            ("DPM_QLA_MATCH", &"logged"),
        ],
    );
    let target = Target::proxy(dpm, port);
    for eof in ["on", "off"] {
        let out = target.python("pipelined_qla.py", &["--deprecate-eof", eof]);
        out.assert_success(&format!("pipelined_qla.py --deprecate-eof {eof}"));
    }
    let lines = json_lines(&log, 4);
    let got: Vec<(String, u64)> = lines
        .iter()
        .map(|l| {
            (
                l["sql"].as_str().unwrap().to_string(),
                l["rows"].as_u64().unwrap(),
            )
        })
        .collect();
    let once = [
        ("SELECT 'logged-1' AS l".to_string(), 1),
        ("SELECT 'logged-2' AS l UNION SELECT 'x'".to_string(), 2),
    ];
    assert_eq!(got, [once.clone(), once].concat());
}
