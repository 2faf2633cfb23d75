//! Outside suites: a client library's own upstream tests, run against MariaDB directly,
//! through dpm in plain passthrough, and through readwritesplit over the shared GTID
//! primary and two replicas, with the outcomes compared test by test.
//!
//! PyMySQL's suite (`pymysql/tests`) is the one run here. Its tests are only on PyPI in
//! PyMySQL's sdists up to 0.10.1 (later sdists and wheels leave them out), so the suite
//! is that sdist's, run with the PyMySQL of the same sdist (the tests import private
//! modules of their own version); nothing of it is kept in this repository: the sdist is
//! downloaded with pip into a cache directory (`scripts/install-deps.sh` fetches it
//! ahead, this file does when it is missing) and its SHA-256 checked.
//!
//! Every test that passes directly must pass through passthrough dpm and through
//! readwritesplit, except those named below with the reason; a listed test that passes
//! after all fails the run too, so the lists stay honest.
//!
//! The suite's own settings leave PyMySQL's default, `autocommit` off: through
//! readwritesplit every statement is then in a transaction and runs on the primary. So
//! readwritesplit gets a second run with `autocommit: true` in both connections'
//! settings and `causal_reads = "local"`, where reads run on the replicas; its baseline
//! is a direct run with the same settings.

use crate::rwsplit::{rwsplit_dpm, shared_dpm, APP_PASSWORD, APP_USER};
use crate::support::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The newest PyMySQL whose sdist carries `pymysql/tests`.
const PYMYSQL: &str = "0.10.1";
const PYMYSQL_SDIST_SHA256: &str =
    "263040d2779a3b84930f7ac9da5132be0fefcd6f453a885756656103f8ee1fdd";

/// How long one run of the suite may take (pytest is interrupted then, and says where).
const SUITE_TIMEOUT: Duration = Duration::from_secs(100);

/// Fewer tests passing directly means the download or the setup broke, not dpm (152 of
/// 167 pass with the suite's settings, 142 of the 160 run with autocommit on).
const MIN_DIRECT_PASSED: usize = 130;

/// Tests that pass directly and not through passthrough dpm, with why.
const PASSTHROUGH_DIFFERS: &[(&str, &str)] = &[];

/// Tests that pass directly and not through readwritesplit (the suite's settings: every
/// statement on the primary), with why.
const RWSPLIT_DIFFERS: &[(&str, &str)] = &[];

/// Tests that pass directly and not through readwritesplit with autocommit on (reads on
/// the replicas), with why.
const RWSPLIT_AUTOCOMMIT_DIFFERS: &[(&str, &str)] = &[(
    "pymysql/tests/test_connection.py::TestConnection::test_connection_gone_away",
    "expects the connection lost once `SET wait_timeout=1` has run out, but only the \
     backend's connection is lost: the read that follows runs on a replica, on a backend \
     opened then with the session's history replayed, and succeeds",
)];

/// Tests (or classes) not run with autocommit on, directly either, with why: their
/// outcome through readwritesplit would depend on timing or chance, which the lists
/// above cannot hold.
const AUTOCOMMIT_DESELECTED: &[(&str, &str)] = &[
    (
        "pymysql/tests/test_issues.py::TestNewIssues::test_issue_36",
        "finds its own connection in `SHOW PROCESSLIST` and compares its id with the one \
         the greeting gave (the primary backend's); `SHOW PROCESSLIST` is a read, run on a \
         replica, where the id is another server's and equal only by chance",
    ),
    (
        "pymysql/tests/test_basic.py::TestBulkInserts",
        "checks its inserts with a second connection right after the first committed them; \
         that read runs on a replica, which may not have applied them yet \
         (`causal_reads = \"local\"` waits for the session's own writes, not another's)",
    ),
    (
        "pymysql/tests/test_cursor.py::CursorTest::test_cleanup_rows_unbuffered",
        "reads, with a second connection, the table its first connection has just created \
         and filled: on a replica that may not have applied them yet (as above)",
    ),
    (
        "pymysql/tests/test_cursor.py::CursorTest::test_cleanup_rows_buffered",
        "the same",
    ),
];

/// The connection settings the suite runs with.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Settings {
    /// The suite's own: PyMySQL's defaults (`autocommit` off).
    Suite,
    /// `autocommit: true` for both connections, [`AUTOCOMMIT_DESELECTED`] not run.
    Autocommit,
}

/// Where the extracted sdist is kept between runs: `DPM_SUITES_CACHE`, else
/// `$XDG_CACHE_HOME/dpm-suites`, else `~/.cache/dpm-suites` (as scripts/install-deps.sh).
fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("DPM_SUITES_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache")
        });
    base.join("dpm-suites")
}

/// The extracted PyMySQL sdist (downloaded with pip on first use, its hash checked).
fn pymysql_source() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let cache = cache_dir();
        let dir = cache.join(format!("PyMySQL-{PYMYSQL}"));
        if dir.join("pymysql/tests/base.py").is_file() {
            return dir;
        }
        std::fs::create_dir_all(&cache)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", cache.display()));
        let tmp = tempfile::Builder::new()
            .prefix(".download-")
            .tempdir_in(&cache)
            .unwrap();
        let download = run_bounded(
            Command::new("python3")
                .args([
                    "-m",
                    "pip",
                    "download",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .args(["--no-binary", ":all:", "--no-deps", "-d"])
                .arg(tmp.path())
                .arg(format!("PyMySQL=={PYMYSQL}")),
            None,
            Duration::from_secs(120),
        );
        download.assert_success("pip download of PyMySQL's sdist");
        let sdist = tmp.path().join(format!("PyMySQL-{PYMYSQL}.tar.gz"));
        let sum = run_bounded(Command::new("sha256sum").arg(&sdist), None, CLIENT_TIMEOUT);
        sum.assert_success("sha256sum");
        assert!(
            sum.stdout.starts_with(PYMYSQL_SDIST_SHA256),
            "{} is not the sdist this test knows: {}",
            sdist.display(),
            sum.stdout
        );
        run_bounded(
            Command::new("tar")
                .arg("xzf")
                .arg(&sdist)
                .arg("-C")
                .arg(tmp.path()),
            None,
            CLIENT_TIMEOUT,
        )
        .assert_success("tar xzf of PyMySQL's sdist");
        // Another test process may have put it there meanwhile: then keep that one.
        if std::fs::rename(tmp.path().join(format!("PyMySQL-{PYMYSQL}")), &dir).is_err() {
            assert!(dir.join("pymysql/tests/base.py").is_file());
        }
        dir
    })
}

/// What one run of the suite gave.
struct SuiteRun {
    way: &'static str,
    /// Test id (`pymysql/tests/test_x.py::Class::test`) → its summary line(s) from `-rA`.
    outcomes: BTreeMap<String, Vec<String>>,
    /// pytest's closing line (`12 passed, 3 skipped in 4.5s`).
    summary: String,
    output: String,
    elapsed: Duration,
}

impl SuiteRun {
    /// The count pytest's closing line gives for `word` (`passed`, `failed`, `skipped`…).
    fn count(&self, word: &str) -> usize {
        let words: Vec<&str> = self
            .summary
            .split([' ', ','])
            .filter(|w| !w.is_empty())
            .collect();
        words
            .windows(2)
            .find(|w| w[1].trim_end_matches('s') == word.trim_end_matches('s'))
            .and_then(|w| w[0].parse().ok())
            .unwrap_or(0)
    }
}

impl OutsideRun for SuiteRun {
    fn way(&self) -> &str {
        self.way
    }

    fn passed(&self) -> BTreeSet<&str> {
        self.outcomes
            .iter()
            .filter(|(_, lines)| lines.iter().all(|l| l.starts_with("PASSED")))
            .map(|(id, _)| id.as_str())
            .collect()
    }

    fn counts(&self) -> String {
        format!(
            "{}: {} passed, {} failed, {} errors, {} skipped, {} xfailed ({:.1?})",
            self.way,
            self.count("passed"),
            self.count("failed"),
            self.count("error"),
            self.count("skipped"),
            self.count("xfailed"),
            self.elapsed
        )
    }

    /// pytest's report of `test` (its failure section) and its summary lines.
    fn report_of(&self, test: &str) -> String {
        let lines = self.outcomes.get(test).cloned().unwrap_or_default();
        // A failure section is headed `____ Class.test ____`.
        let parts: Vec<&str> = test.split("::").skip(1).collect();
        let heading = format!(" {} ", parts.join("."));
        let mut section = Vec::new();
        let mut inside = false;
        for line in self.output.lines() {
            let is_heading = line.starts_with("___") || line.starts_with("===");
            if is_heading {
                inside = line.starts_with("___") && line.contains(&heading);
            }
            if inside {
                section.push(line);
            }
        }
        format!(
            "{test}: {}\n{}",
            if lines.is_empty() {
                "no outcome (not run?)".to_string()
            } else {
                lines.join(" | ")
            },
            truncate(&section.join("\n"), 4000)
        )
    }
}

/// Runs PyMySQL's suite with `settings` against 127.0.0.1:`port` as `user`, in the
/// databases `{db_prefix}1` and `{db_prefix}2` (which must exist), in a copy of the sdist
/// of its own.
fn run_suite(
    way: &'static str,
    settings: Settings,
    port: u16,
    user: &str,
    password: &str,
    db_prefix: &str,
) -> SuiteRun {
    let work = tempfile::Builder::new()
        .prefix("dpm-it-pymysql-suite-")
        .tempdir()
        .unwrap();
    let tree = work.path().join("PyMySQL");
    run_bounded(
        Command::new("cp")
            .arg("-R")
            .arg(pymysql_source())
            .arg(&tree),
        None,
        CLIENT_TIMEOUT,
    )
    .assert_success("copying PyMySQL's sdist");
    let tests = tree.join("pymysql/tests");
    // The suite's settings (base.py reads them from here): the first connection loads
    // local files, the second uses the second database.
    let mut databases = serde_json::json!([
        { "host": "127.0.0.1", "port": port, "user": user, "passwd": password,
          "db": format!("{db_prefix}1"), "use_unicode": true, "local_infile": true },
        { "host": "127.0.0.1", "port": port, "user": user, "passwd": password,
          "db": format!("{db_prefix}2") },
    ]);
    let mut deselect = Vec::new();
    if settings == Settings::Autocommit {
        for connection in databases.as_array_mut().unwrap() {
            connection["autocommit"] = true.into();
        }
        for (test, _) in AUTOCOMMIT_DESELECTED {
            deselect.push(format!("--deselect={test}"));
        }
    }
    std::fs::write(tests.join("databases.json"), databases.to_string()).unwrap();
    // test_load_local reads data/load_local_data.txt (22749 rows of two integers), which
    // the sdist leaves out: made here.
    std::fs::create_dir_all(tests.join("data")).unwrap();
    let rows: String = (0..22749).map(|i| format!("{i},{}\n", i * 2)).collect();
    std::fs::write(tests.join("data/load_local_data.txt"), rows).unwrap();

    let started = Instant::now();
    let out = run_bounded(
        Command::new("timeout")
            .arg("--signal=INT")
            .arg("--kill-after=10")
            .arg(SUITE_TIMEOUT.as_secs().to_string())
            .args(["python3", "-m", "pytest", "-p", "no:cacheprovider"])
            .args(["-rA", "--tb=short", "-o", "console_output_style=classic"])
            .args(&deselect)
            .arg("pymysql/tests")
            .current_dir(&tree)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONUNBUFFERED", "1")
            // The PAM tests read these: keep them skipped.
            .env_remove("PASSWORD")
            .env_remove("PAMSERVICE"),
        None,
        SUITE_TIMEOUT + Duration::from_secs(30),
    );
    let elapsed = started.elapsed();
    let output = format!("{}\n{}", out.stdout, out.stderr);
    // 0: all passed; 1: some failed. Anything else (2 interrupted, 124 timed out, …)
    // means the suite did not run through.
    assert!(
        matches!(out.code(), Some(0 | 1)),
        "PyMySQL's suite {way} did not run through ({:?} after {elapsed:.1?}): {out}",
        out.code()
    );
    let mut outcomes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut summary = String::new();
    let mut in_summary = false;
    for line in out.stdout.lines() {
        if line.starts_with("=") && line.contains("short test summary info") {
            in_summary = true;
            continue;
        }
        if line.starts_with("=") {
            in_summary = false;
            summary = line.trim_matches(|c| c == '=' || c == ' ').to_string();
            continue;
        }
        if !in_summary {
            continue;
        }
        // `PASSED id`, `FAILED id - message`, `ERROR id - message`, `XFAIL id - …`;
        // `SKIPPED [n] file:line: reason` names no test.
        let mut words = line.splitn(2, ' ');
        let (Some(kind), Some(rest)) = (words.next(), words.next()) else {
            continue;
        };
        if !matches!(kind, "PASSED" | "FAILED" | "ERROR" | "XFAIL" | "XPASS") {
            continue;
        }
        let id = rest.split(" - ").next().unwrap_or(rest).trim().to_string();
        outcomes.entry(id).or_default().push(truncate(line, 300));
    }
    let run = SuiteRun {
        way,
        outcomes,
        summary,
        output,
        elapsed,
    };
    eprintln!("PyMySQL {PYMYSQL} suite {}", run.counts());
    run
}

/// Drops and creates `{prefix}1` and `{prefix}2` on `server`.
fn create_databases(server: &MariaDb, prefix: &str) {
    server.direct_exec(&format!(
        "DROP DATABASE IF EXISTS {prefix}1; CREATE DATABASE {prefix}1;
         DROP DATABASE IF EXISTS {prefix}2; CREATE DATABASE {prefix}2;"
    ));
}

/// The suite with `settings` against the shared MariaDB itself, once per test run: what
/// the other ways are held to.
fn direct_run(settings: Settings) -> &'static SuiteRun {
    static SUITE: OnceLock<SuiteRun> = OnceLock::new();
    static AUTOCOMMIT: OnceLock<SuiteRun> = OnceLock::new();
    let (once, way, prefix) = match settings {
        Settings::Suite => (&SUITE, "directly", "pymysql_direct"),
        Settings::Autocommit => (&AUTOCOMMIT, "directly, autocommit on", "pymysql_direct_ac"),
    };
    once.get_or_init(|| {
        let db = MariaDb::get();
        create_databases(db, prefix);
        let run = run_suite(way, settings, db.port, USER, PASSWORD, prefix);
        assert!(
            run.count("passed") >= MIN_DIRECT_PASSED,
            "only {} tests of PyMySQL's suite passed directly (at least {MIN_DIRECT_PASSED} \
             expected): the download or the setup is broken\n{}",
            run.count("passed"),
            truncate(&run.output, 20000)
        );
        run
    })
}

/// One run of an outside suite (this file's, `mtr.rs`'s), as the comparison with the
/// direct run sees it.
pub(crate) trait OutsideRun {
    /// How the suite was run: `through passthrough`.
    fn way(&self) -> &str;
    /// The tests that passed.
    fn passed(&self) -> BTreeSet<&str>;
    /// What the run printed about `test`.
    fn report_of(&self, test: &str) -> String;
    /// The outcomes, counted, and the time taken.
    fn counts(&self) -> String;
}

/// Where `run` differs from `direct`: a test that passed directly and not in `run`
/// unless `differs` names it (with why), and a test `differs` names that did not pass
/// directly or passed in `run` after all. Tests that passed in `run` only are printed.
pub(crate) fn differences(
    run: &impl OutsideRun,
    direct: &impl OutsideRun,
    differs: &[(&str, &str)],
) -> Vec<String> {
    let listed: BTreeMap<&str, &str> = differs.iter().copied().collect();
    assert_eq!(listed.len(), differs.len(), "a test is listed twice");
    let way = run.way();
    let passed = run.passed();
    let direct_passed = direct.passed();
    let mut problems = Vec::new();
    for &test in &direct_passed {
        if !passed.contains(test) && !listed.contains_key(test) {
            problems.push(format!(
                "passes directly, not {way}:\n{}",
                run.report_of(test)
            ));
        }
    }
    for (test, why) in &listed {
        if !direct_passed.contains(test) {
            problems.push(format!(
                "{test} is listed as differing {way} ({why}), but does not pass \
                 directly:\n{}",
                direct.report_of(test)
            ));
        } else if passed.contains(test) {
            problems.push(format!(
                "{test} is listed as differing {way} ({why}), but passes: take it off \
                 the list"
            ));
        }
    }
    let gained: Vec<&&str> = passed.difference(&direct_passed).collect();
    if !gained.is_empty() {
        eprintln!("passing {way} but not directly (not an error): {gained:?}");
    }
    problems
}

/// Asserts that every test that passed directly (with `settings`) passed in `run`, except
/// those in `differs`, each of which must not have.
fn assert_same_as_direct(run: &SuiteRun, settings: Settings, differs: &[(&str, &str)]) {
    let direct = direct_run(settings);
    let problems = differences(run, direct, differs);
    assert!(
        problems.is_empty(),
        "PyMySQL's suite {} differs from the direct run ({} | {}):\n\n{}\n\n\
         --- pytest's output {} ---\n{}",
        run.way,
        direct.counts(),
        run.counts(),
        problems.join("\n\n"),
        run.way,
        truncate(&run.output, 20000)
    );
}

/// readwritesplit's diagnostics (`SHOW RWSPLIT`, answered by tests/lua/rwsplit.lua's
/// filter): how many statements were routed for each reason.
pub(crate) fn statements_by_reason(port: u16) -> serde_json::Value {
    let out = Cli::new(port)
        .user(APP_USER)
        .password(Some(APP_PASSWORD))
        .arg("--skip-column-names")
        .run("SHOW RWSPLIT");
    out.assert_success("SHOW RWSPLIT");
    let diagnostics: serde_json::Value = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("SHOW RWSPLIT: {e}: {}", out.stdout));
    diagnostics["router_diagnostics"]["statements_by_reason"].clone()
}

/// Creates the suite's databases on the shared primary and waits until both replicas
/// have them (a backend on a replica is opened in the session's database).
fn create_databases_on_replication(prefix: &str) {
    let r = SharedReplication::get();
    create_databases(&r.primary, prefix);
    for replica in [&r.replica, &r.replica2] {
        wait_until(
            "the suite's databases on the replicas",
            Duration::from_secs(30),
            || {
                replica
                    .try_direct_exec(&format!(
                        "SELECT COUNT(*) FROM information_schema.SCHEMATA \
                         WHERE SCHEMA_NAME IN ('{prefix}1', '{prefix}2')"
                    ))
                    .ok()
                    .filter(|n| n.trim() == "2")
            },
        );
    }
}

#[test]
fn pymysql_suite_through_passthrough_passes_what_passes_directly() {
    direct_run(Settings::Suite);
    // Through dpm even with DPM_TEST_DIRECT=1: the direct run is the comparison's other side.
    let t = passthrough_with(|b| b);
    create_databases(MariaDb::get(), "pymysql_pass");
    let run = run_suite(
        "through passthrough",
        Settings::Suite,
        t.port,
        USER,
        PASSWORD,
        "pymysql_pass",
    );
    assert_same_as_direct(&run, Settings::Suite, PASSTHROUGH_DIFFERS);
}

#[test]
fn pymysql_suite_through_readwritesplit_passes_what_passes_directly() {
    direct_run(Settings::Suite);
    create_databases_on_replication("pymysql_rw");
    let (_dpm, port) = shared_dpm();
    let run = run_suite(
        "through readwritesplit",
        Settings::Suite,
        port,
        APP_USER,
        APP_PASSWORD,
        "pymysql_rw",
    );
    let reasons = statements_by_reason(port);
    eprintln!("readwritesplit routed: {reasons}");
    assert_same_as_direct(&run, Settings::Suite, RWSPLIT_DIFFERS);
}

#[test]
fn pymysql_suite_with_autocommit_through_readwritesplit_reading_on_replicas() {
    direct_run(Settings::Autocommit);
    create_databases_on_replication("pymysql_rwac");
    let r = SharedReplication::get();
    let (_dpm, port) = rwsplit_dpm(
        [r.primary.port, r.replica.port, r.replica2.port],
        &[("DPM_CAUSAL_TIMEOUT", "10000".to_string())],
    );
    let run = run_suite(
        "through readwritesplit, autocommit on",
        Settings::Autocommit,
        port,
        APP_USER,
        APP_PASSWORD,
        "pymysql_rwac",
    );
    let reasons = statements_by_reason(port);
    eprintln!("readwritesplit routed: {reasons}");
    assert_same_as_direct(&run, Settings::Autocommit, RWSPLIT_AUTOCOMMIT_DIFFERS);
    let reads = reasons["read"].as_u64().unwrap_or(0);
    assert!(
        reads >= 100,
        "only {reads} statements were read on a replica: {reasons}"
    );
}
