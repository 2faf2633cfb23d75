//! Outside suite: MariaDB's own regression tests — mysql-test-run ("mtr") and the `main`
//! suite of Debian's `mariadb-test`, the version of the installed server — run with
//! `--extern` against MariaDB directly, through dpm in plain passthrough, and through
//! readwritesplit over a GTID primary and two replicas, with the outcomes compared test
//! by test (the shape of `suites.rs`).
//!
//! Every test of [`TESTS`] that passes directly must pass through passthrough dpm and
//! through readwritesplit, except those named in [`PASSTHROUGH_DIFFERS`] and
//! [`RWSPLIT_DIFFERS`] with the reason; a named test that passes after all fails the run
//! too, so the lists stay honest.
//!
//! The servers are this group's own, started with mtr's own server defaults where the
//! harness's differ ([`SERVER_OPTIONS`]: latin1, MyISAM, name resolution so that a login
//! over TCP from 127.0.0.1 is `root@localhost` as over mtr's socket) and prepared as mtr's
//! bootstrap prepares its servers (a latin1 `test` database, the `mtr` database with its
//! suppression and check procedures, the time zones of its tests); mtr's tests change
//! global state and the `test` database, which the other tests' servers must not see.
//! Directly and through passthrough, the tests run as `root` (no password) on a
//! standalone primary (binary log on, as on the replica set's primary); through
//! readwritesplit as the proxy-held user [`APP_USER`], whom dpm logs in to the servers as
//! `root`.
//!
//! `--extern` runs a test on the running server as it is: mtr starts no server, reads no
//! `.opt`/`.cnf` file (a test needing server options runs without them), runs no
//! combination, and passes `--database=test` to every `mariadb-test` it starts. With one
//! server and one `test` database, two mtr workers would use the same tables: each run
//! is `--parallel=1`, and the two cores are used by running the runs themselves side by
//! side on their own servers (directly then through passthrough on one server, through
//! readwritesplit on the replica set). Every run has a hard timeout
//! ([`RUN_TIMEOUT`], `timeout(1)` on the whole process group, mtr's own
//! `--testcase-timeout=1` per test).
//!
//! mtr runs from a shadow of `/usr` made of symbolic links, one per run ([`shadow_tree`]),
//! with a real `main` directory (`mariadb-test` writes a failing test's `.reject` file
//! next to its `.result` file and must not write into the package) and a `mariadb-test`
//! that runs [`PROLOGUE`] before every test: the global variables, the `test` database
//! and the accounts as they were, so that a test stopped half-way through dpm does not
//! fail the tests after it.
//!
//! Through readwritesplit, reads run on the replicas with `causal_reads = "local"` (a
//! test reads what it has just written); at the end the replicas must still be
//! replicating (a test that breaks replication makes every later read wrong, and is
//! named by the replica's error), and at least [`MIN_REPLICA_READS`] statements must
//! have been read on them. With `DPM_MTR_DEBUG_DIR=DIR`, each run's output goes to
//! `DIR/<way>.log` and mtr's var directory (with each failing test's logs) is kept.
//!
//! [`TESTS`] are quick tests of `main` (600 ms at most each, directly) that passed in
//! every direct run made of them while choosing them (one to three each), among the
//! candidates: the tests of `main` but those [`left_out_by_its_text`] and those with a
//! `.cnf` or `.opt` file of their own; with most of the
//! `ctype_*_casefold`/`_ws` variants left out to keep the group short. Left out by their
//! text, whatever they would do through dpm: tests that stop or restart the server, work
//! on its files, make it read-only (readwritesplit's monitor then takes the primary for
//! lost), log in with `connect` (as `root` or accounts of their own: none can log in
//! through readwritesplit, whose proxy-held user needs a password hash and is not
//! theirs), write what replication cannot replay on servers of the same host (`INSTALL
//! PLUGIN`, `sql_log_bin`, `DATA DIRECTORY` in the var directory) or work on replication
//! itself; and those in [`NEVER_RUN`]. `mtr_select_main_tests` (ignored by default,
//! about an hour) runs that selection again (all but the trimming of the `ctype`
//! variants): `cargo test -p dpm --test it
//! mtr_select_main_tests -- --ignored --nocapture`, paste, and run the group to update
//! the lists.

use crate::rwsplit::{rwsplit_dpm, APP_PASSWORD, APP_USER};
use crate::suites::{differences, statements_by_reason, OutsideRun};
use crate::support::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Where Debian's `mariadb-test` puts mtr and its suites.
const MTR_DIR: &str = "/usr/share/mysql/mysql-test";

/// How long one run of [`TESTS`] may take, all of it (mtr is killed then, with its
/// workers and clients).
const RUN_TIMEOUT: Duration = Duration::from_secs(200);

/// Fewer tests passing directly means the setup broke, not dpm.
const MIN_DIRECT_PASSED: usize = 120;

/// Statements of [`TESTS`] that readwritesplit must route to a replica as reads (about
/// 2,900 are).
const MIN_REPLICA_READS: u64 = 2000;

/// Server options after the harness's: mtr's own defaults for its servers
/// (`include/default_mysqld.cnf`) where the harness's differ, name resolution (a login over
/// TCP from 127.0.0.1, directly or from dpm, is then `root@localhost`, as over mtr's
/// socket), and no `secure_file_priv` (mtr sets it to its var directory, which is the
/// run's own here).
const SERVER_OPTIONS: &[&str] = &[
    "--character-set-server=latin1",
    "--collation-server=latin1_swedish_ci",
    "--skip-name-resolve=0",
    "--secure-file-priv=",
    "--log-bin-trust-function-creators=1",
    "--key-buffer-size=1M",
    "--sort-buffer-size=256K",
    "--max-heap-table-size=1M",
    "--binlog-direct-non-transactional-updates",
    "--default-storage-engine=myisam",
    "--use-stat-tables=preferably",
    "--histogram-type=json_hb",
    "--connect-timeout=60",
    "--open-files-limit=1024",
    "--plugin-maturity=unknown",
];

/// The tests run, from mtr's `main` suite (see the module's comment for how they were
/// chosen and how to choose them again).
const TESTS: &str = "
adddate_454 analyze_format_json_timings ansi assign_key_cache auto_increment
bench_count_distinct bigint binary bool bug13633383 bulk_replace case
check_constraint_show client column_compression_utf16 comments compare contributors
create-uca create_drop_function create_drop_index create_drop_procedure
create_drop_server create_drop_user create_drop_view create_replace_tmp create_user
ctype_cp850 ctype_cp866 ctype_create ctype_dec8 ctype_hebrew ctype_latin1_de
ctype_latin2 ctype_latin2_ch ctype_many ctype_mb ctype_partitions ctype_uca_partitions
ctype_ucs2_general_ci_casefold ctype_utf8mb4_general_ci_ws
ctype_utf8mb4_uca1400_ai_ci_casefold custom_aggregates_i_s datetime_456
deprecated_features events_microsec except except_all execution_constants
explain_json_format_partitions features fulltext fulltext2 fulltext3 fulltext_cache
fulltext_charsets fulltext_derived_4257 fulltext_derived_4316 fulltext_distinct
fulltext_left_join fulltext_multi fulltext_order_by fulltext_update fulltext_var
func_concat func_date_add func_encrypt_ucs2 func_extract func_if func_int func_op
func_replace func_sapdb func_set func_time_hires func_timestamp gcc296 gis-json
gis-rt-precise grant_4332 handler_read_last help ignored_index
implicit_char_to_num_conversion in_datetime_241 index_intersect
information_schema_routines information_schema_stats mysqltest_256
mysqltest_cont_on_error mysqltest_expression_evaluation mysqltest_string_functions
name_const_replacement negation_elimination odbc opt_trace_default opt_trace_ucs2
order_by-mdev-10122 order_by_optimizer order_fill_sortbuf parser_stack
partition_bug18198 partition_cache_myisam partition_charset partition_column_prune
partition_default partition_hash partition_list partition_mgm_err partition_sp
partition_truncate partition_ucs2 partition_utf8 perror precedence_bugs prepare
ps_10nestset ps_11bugs ps_ddl1 ps_max_subselect-5113 query_cache_with_views
range_notembedded replace rollback round second_frac-9175 select_found select_safe
set_statement_profiling show show_bad_definer-5553 show_profile show_row_order-9226
sighup-6580 signal_demo1 signal_demo2 signal_demo3 signal_sqlmode single_delete_update
sp-anchor-row-type-cursor sp-anchor-row-type-table sp-bugs sp-condition-handler
sp-dynamic sp-expr sp-fib sp-for-loop sp-memory-leak sp-no-code sp-prelocking sp-row
sp-vars sp_gis stack
";

/// Tests that pass directly and not through passthrough dpm, with why.
const PASSTHROUGH_DIFFERS: &[(&str, &str)] = &[];

/// Tests that pass directly and not through readwritesplit, with why.
const RWSPLIT_DIFFERS: &[(&str, &str)] = &[
    (
        "main.create_drop_server",
        "reads mysql.servers back after CREATE SERVER, which MariaDB does not write to the \
         binary log: the replica the read runs on has no such server",
    ),
    (
        "main.features",
        "reads the status counter Feature_gis on a replica, where the test's statements \
         did not run as they did on the primary (they came as replicated events)",
    ),
    (
        "main.fulltext_var",
        "sets the global ft_boolean_syntax (on the primary: global variables are not \
         replicated) and reads with it on a replica",
    ),
    (
        "main.handler_read_last",
        "FLUSH STATUS (a write: on the primary) then SHOW STATUS (a read: on a replica): \
         the replica backend's Handler_read_* counters were not reset and count what the \
         session ran there",
    ),
    (
        "main.show",
        "FLUSH STATUS (a write: on the primary) then SHOW STATUS (a read: on a replica): \
         the replica backend's Empty_queries was not reset and counts what the session \
         ran there",
    ),
    (
        "main.single_delete_update",
        "FLUSH STATUS (a write: on the primary) then SHOW STATUS (a read: on a replica): \
         the replica backend's Handler_read_* and Sort_* counters were not reset and count \
         what the session ran there",
    ),
];

/// Tests of `main` that [`mtr_select_main_tests`] does not run, with why: each leaves the
/// server (or, through readwritesplit, replication) unusable for the tests after it when
/// it runs with `--extern`.
const NEVER_RUN: &[(&str, &str)] = &[
    (
        "sql_mode_pad_char_to_full_length",
        "creates tables with the session's default_storage_engine=MEMORY, which is not \
         replicated: the replicas create them MyISAM, and a later row event fails there",
    ),
    (
        "sp-destruct",
        "drops a column of mysql.proc and, failing on a file of the data directory (outside \
         the var directory mariadb-test may touch), does not put it back",
    ),
    (
        "bad_user_table",
        "empties mysql.global_priv and, failing on the variables --extern leaves unset \
         ($MASTER_MYSOCK), does not put it back",
    ),
];

/// What a test of the selection may take directly, at most.
const SELECT_MAX_MS: u64 = 600;

/// The names in [`TESTS`], with the suite: `main.alias`.
fn tests() -> Vec<String> {
    TESTS
        .split_whitespace()
        .map(|t| format!("main.{t}"))
        .collect()
}

/// Fails the test, saying why, when Debian's `mariadb-test` (mtr, its suites, the
/// `mariadb-test` client) is not installed: the group is never skipped.
fn require_mtr() {
    let missing: Vec<String> = [
        format!("{MTR_DIR}/mariadb-test-run.pl"),
        format!("{MTR_DIR}/main/alias.test"),
        "/usr/bin/mariadb-test".to_string(),
        "/usr/share/mysql/mysql_test_data_timezone.sql".to_string(),
    ]
    .into_iter()
    .filter(|f| !Path::new(f).exists())
    .collect();
    assert!(
        missing.is_empty(),
        "the mtr group needs the package mariadb-test (scripts/install-deps.sh installs it); \
         missing: {missing:?}"
    );
}

/// Runs `mariadb` as root over `server`'s socket with `sql` on stdin, in `db`.
fn source(server: &MariaDb, db: &str, sql: &str) {
    run_bounded(
        Command::new("mariadb")
            .arg("--no-defaults")
            .arg("-uroot")
            .arg(format!("--socket={}", server.socket().display()))
            .arg("--batch")
            .arg(db),
        Some(sql.as_bytes()),
        Duration::from_secs(120),
    )
    .assert_success("sourcing SQL for mtr");
}

/// mtr's `.sql` files in the form the `mariadb` client reads: mtr's bootstrap drops the
/// lines that begin with `--` (one of them is code commented out without a space) and
/// its `delimiter ||;` is the client's `delimiter ||`.
fn client_sql(file: &str) -> String {
    let text = std::fs::read_to_string(Path::new(MTR_DIR).join(file))
        .unwrap_or_else(|e| panic!("{MTR_DIR}/{file}: {e} (is mariadb-test installed?)"));
    text.lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .map(|l| {
            if l.starts_with("delimiter ") {
                l.trim_end_matches(';').to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Prepares `server` as mtr's bootstrap prepares its own: a latin1 `test` database, the
/// `mtr` database with its warning suppressions and `check_testcase` procedure, the time
/// zones its tests know; the harness's accounts and database that no test here uses are
/// dropped (`dpm`, the monitor's, and `repl`, the replicas', stay).
fn prepare_for_mtr(server: &MariaDb) {
    require_mtr();
    server.direct_exec(&format!(
        "DROP DATABASE IF EXISTS {DB};
         DROP USER IF EXISTS '{OTHER_USER}'@'%', '{DEMO_USER}'@'%';
         CREATE DATABASE test CHARACTER SET latin1 COLLATE latin1_swedish_ci;
         CREATE DATABASE mtr CHARACTER SET latin1;"
    ));
    source(server, "mtr", &client_sql("include/mtr_warnings.sql"));
    source(server, "mtr", &client_sql("include/mtr_check.sql"));
    let zones = std::fs::read_to_string("/usr/share/mysql/mysql_test_data_timezone.sql")
        .expect("/usr/share/mysql/mysql_test_data_timezone.sql");
    source(server, "mysql", &zones);
    server.direct_exec(GLOBALS);
}

/// The server the direct and passthrough runs use: a GTID primary without replicas
/// (its binary log as the replica set's primary has), server id 1 as mtr's.
fn direct_server() -> &'static MariaDb {
    static SERVER: OnceLock<MariaDb> = OnceLock::new();
    SERVER.get_or_init(|| {
        let server = MariaDb::start_retrying_with(&Role::Primary { server_id: 1 }, SERVER_OPTIONS)
            .unwrap_or_else(|e| panic!("could not start mtr's MariaDB: {e}"));
        prepare_for_mtr(&server);
        server
    })
}

/// The primary and two replicas readwritesplit runs over, prepared on the primary and
/// caught up.
fn replica_set() -> &'static ReplicaSet {
    static SET: OnceLock<ReplicaSet> = OnceLock::new();
    SET.get_or_init(|| {
        let set = ReplicaSet::start_with_options(2, 1, SERVER_OPTIONS);
        prepare_for_mtr(&set.primary);
        wait_caught_up(&set);
        set
    })
}

/// Waits until every replica of `set` has applied all the primary has written.
fn wait_caught_up(set: &ReplicaSet) {
    let pos = set
        .primary
        .direct_exec("SELECT @@gtid_binlog_pos")
        .trim()
        .to_string();
    for replica in &set.replicas {
        let caught_up = try_wait_until(Duration::from_secs(60), || {
            replica
                .try_direct_exec(&format!("SELECT MASTER_GTID_WAIT('{pos}', 1)"))
                .ok()
                .filter(|r| r.trim() == "0")
        });
        assert!(
            caught_up.is_some(),
            "a replica did not catch up with {pos}: {}",
            replica.direct_exec("SHOW SLAVE STATUS\\G")
        );
    }
}

/// Run before every test and every check mtr makes around it (mariadb-test's
/// `--prologue`): a test starts on a server without what an earlier one left behind when
/// it stopped half-way (a failure through dpm would otherwise fail the tests after it):
/// the global variables as they were when the server was prepared ([`GLOBALS`]), the
/// session's too, nothing in the `test` database, no other database but the system ones
/// and mtr's, no account but the servers' own. Its reads are in transactions (through
/// readwritesplit a transaction runs on the primary, where the test before wrote); its
/// statements and errors are not in the test's result. (`test` itself is not dropped:
/// the session would be left without a database.)
const PROLOGUE: &str = r#"--disable_query_log
--disable_result_log
--disable_warnings
--disable_abort_on_error
let $dpm_after= ;
let $dpm_left= 100;
while ($dpm_left)
{
  START TRANSACTION;
  let $dpm_var= `SELECT g.variable_name FROM mtr.dpm_globals g JOIN information_schema.system_variables v USING (variable_name) WHERE NOT v.global_value <=> g.global_value AND g.variable_name > '$dpm_after' ORDER BY g.variable_name LIMIT 1`;
  let $dpm_set= `SELECT CONCAT('SET GLOBAL ', variable_name, ' = ', IF(variable_type IN ('INT', 'INT UNSIGNED', 'BIGINT', 'BIGINT UNSIGNED', 'DOUBLE'), global_value, QUOTE(global_value))) FROM mtr.dpm_globals WHERE variable_name = '$dpm_var'`;
  COMMIT;
  if ($dpm_var)
  {
    eval $dpm_set;
    # The session took the changed value when it began.
    eval SET SESSION $dpm_var = DEFAULT;
    let $dpm_after= $dpm_var;
    dec $dpm_left;
  }
  if (!$dpm_var)
  {
    let $dpm_left= 0;
  }
}
let $dpm_left= 200;
let $dpm_next= SELECT stmt FROM (SELECT CONCAT('DROP ', CASE table_type WHEN 'VIEW' THEN 'VIEW' WHEN 'SEQUENCE' THEN 'SEQUENCE' ELSE 'TABLE' END, ' IF EXISTS test.', CHAR(96), REPLACE(table_name, CHAR(96), REPEAT(CHAR(96), 2)), CHAR(96)) AS stmt FROM information_schema.tables WHERE table_schema = 'test' UNION ALL SELECT CONCAT('DROP ', routine_type, ' IF EXISTS test.', CHAR(96), REPLACE(routine_name, CHAR(96), REPEAT(CHAR(96), 2)), CHAR(96)) FROM information_schema.routines WHERE routine_schema = 'test' UNION ALL SELECT CONCAT('DROP EVENT IF EXISTS test.', CHAR(96), REPLACE(event_name, CHAR(96), REPEAT(CHAR(96), 2)), CHAR(96)) FROM information_schema.events WHERE event_schema = 'test' UNION ALL SELECT CONCAT('DROP DATABASE IF EXISTS ', CHAR(96), REPLACE(schema_name, CHAR(96), REPEAT(CHAR(96), 2)), CHAR(96)) FROM information_schema.schemata WHERE schema_name NOT IN ('information_schema', 'mysql', 'performance_schema', 'sys', 'mtr', 'test') UNION ALL SELECT CONCAT('DROP ', IF(is_role = 'Y', 'ROLE ', 'USER '), QUOTE(user), IF(is_role = 'Y', '', CONCAT('@', QUOTE(host)))) FROM mysql.user WHERE user NOT IN ('root', 'dpm', 'repl', 'mariadb.sys', 'PUBLIC')) AS d LIMIT 1;
START TRANSACTION;
let $dpm_drop= `$dpm_next`;
COMMIT;
while ($dpm_drop)
{
  # A drop may fail (files a test wrote into a database's directory make DROP DATABASE
  # fail after it dropped the tables): 200 drops at most.
  eval $dpm_drop;
  dec $dpm_left;
  START TRANSACTION;
  let $dpm_drop= `$dpm_next`;
  COMMIT;
  if (!$dpm_left)
  {
    let $dpm_drop= ;
  }
}
--enable_abort_on_error
--enable_warnings
--enable_result_log
--enable_query_log
"#;

/// The snapshot of the global variables [`PROLOGUE`] puts back: those that can be set
/// (but the GTID positions, which replication moves).
const GLOBALS: &str = "CREATE TABLE mtr.dpm_globals ENGINE=MyISAM \
     SELECT variable_name, global_value, variable_type FROM information_schema.system_variables \
     WHERE read_only = 'NO' AND variable_scope IN ('GLOBAL', 'SESSION') \
     AND variable_name NOT LIKE 'GTID%'";

/// A copy of `/usr` for one run of mtr, made of symbolic links but where mtr writes or
/// must be told something:
/// * `share/mysql/mysql-test/main` is a real directory of links to the suite's files:
///   `mariadb-test` writes a failing test's `.reject` file next to its `.result` file
///   whenever it may, and must not write into the package (nor two runs into one place);
/// * `bin/mariadb-test` runs `/usr/bin/mariadb-test` with [`PROLOGUE`] for every test
///   mtr starts (mtr has no option for it; in `[client]` of mtr's `my.cnf` the other
///   clients would warn about it).
///
/// mtr finds its base directory (clients, plugins, character sets) by going up from its
/// own directory to one that has `bin`: this copy. Returns mtr's directory in it.
fn shadow_tree(parent: &Path) -> PathBuf {
    let link_all = |from: &Path, to: &Path, skip: &[&str]| {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
            let entry = entry.unwrap();
            let name = entry.file_name();
            if skip.iter().any(|s| name == *s) {
                continue;
            }
            std::os::unix::fs::symlink(entry.path(), to.join(&name)).unwrap();
        }
    };
    let usr = parent.join("usr");
    let share = usr.join("share/mysql");
    let root = share.join("mysql-test");
    link_all(Path::new("/usr"), &usr, &["share", "bin"]);
    link_all(Path::new("/usr/bin"), &usr.join("bin"), &["mariadb-test"]);
    link_all(Path::new("/usr/share/mysql"), &share, &["mysql-test"]);
    link_all(Path::new(MTR_DIR), &root, &["main", "var"]);
    link_all(&Path::new(MTR_DIR).join("main"), &root.join("main"), &[]);
    let prologue = parent.join("prologue.inc");
    std::fs::write(&prologue, PROLOGUE).unwrap();
    // mtr passes --defaults-file first, where it must stay; a test, and mtr's check of the
    // server before and after it, are run with --test-file (a `$MYSQL_TEST` inside a test
    // is not, and gets no prologue).
    let wrapper = usr.join("bin/mariadb-test");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh
             case \"$*\" in
             *--test-file=*) first=$1; shift; exec /usr/bin/mariadb-test \"$first\" --prologue={} \"$@\" ;;
             esac
             exec /usr/bin/mariadb-test \"$@\"
",
            prologue.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    root
}

/// What one mtr run gave.
struct MtrRun {
    way: &'static str,
    /// Test (`main.alias`) → its outcome (`pass`, `fail`, `skipped`, …).
    outcomes: BTreeMap<String, String>,
    /// Test → what mtr printed about it (its result line, and for a failure the error,
    /// the diff and the statements before).
    reports: BTreeMap<String, String>,
    /// Test → its time in ms, as mtr gives it for a test that passed.
    times: BTreeMap<String, u64>,
    output: String,
    elapsed: Duration,
}

impl OutsideRun for MtrRun {
    fn way(&self) -> &str {
        self.way
    }

    fn passed(&self) -> BTreeSet<&str> {
        self.outcomes
            .iter()
            .filter(|(_, o)| *o == "pass")
            .map(|(t, _)| t.as_str())
            .collect()
    }

    fn counts(&self) -> String {
        let mut by: BTreeMap<&str, usize> = BTreeMap::new();
        for o in self.outcomes.values() {
            *by.entry(o.as_str()).or_default() += 1;
        }
        format!(
            "{}: {} passed, {} failed, {} skipped, {} other of {} ({:.1?}, {:.1} s in tests \
             that passed)",
            self.way,
            by.remove("pass").unwrap_or(0),
            by.remove("fail").unwrap_or(0),
            by.remove("skipped").unwrap_or(0),
            by.values().sum::<usize>(),
            self.outcomes.len(),
            self.elapsed,
            self.times.values().sum::<u64>() as f64 / 1000.0
        )
    }

    fn report_of(&self, test: &str) -> String {
        match self.reports.get(test) {
            Some(r) => truncate(r, 6000),
            None => format!("{test}: no outcome (not run?)"),
        }
    }
}

/// Runs `tests` with mtr against 127.0.0.1:`port` as `user`, within `timeout`.
fn run_mtr(
    way: &'static str,
    port: u16,
    user: &str,
    password: &str,
    tests: &[String],
    timeout: Duration,
) -> MtrRun {
    let debug_dir = std::env::var_os("DPM_MTR_DEBUG_DIR").map(PathBuf::from);
    let mut work = tempfile::Builder::new()
        .prefix("dpm-it-mtr-")
        .tempdir()
        .unwrap();
    // With DPM_MTR_DEBUG_DIR, mtr's var directory (its logs, a failing test's .reject
    // and .log) stays.
    work.disable_cleanup(debug_dir.is_some());
    let tree = shadow_tree(work.path());
    let vardir = work.path().join("var");
    // mtr's [client] socket: never used (protocol=tcp), but mtr would name /tmp's.
    let no_socket = work.path().join("no.sock");
    let mut cmd = Command::new("timeout");
    cmd.arg("--signal=TERM")
        .arg("--kill-after=10")
        .arg(timeout.as_secs().to_string())
        .args(["perl", "mariadb-test-run.pl"])
        .arg(format!("--user={user}"))
        .args(["--extern", "host=127.0.0.1"])
        .args(["--extern".to_string(), format!("port={port}")])
        .args(["--extern".to_string(), format!("user={user}")])
        .args(["--extern", "protocol=tcp"])
        .args([
            "--extern".to_string(),
            format!("socket={}", no_socket.display()),
        ]);
    if !password.is_empty() {
        cmd.args(["--extern".to_string(), format!("password={password}")]);
    }
    cmd.arg(format!("--vardir={}", vardir.display()))
        .args(["--parallel=1", "--force", "--max-test-fail=0", "--retry=1"])
        .args(["--testcase-timeout=1", "--noreorder"])
        .args(tests)
        .current_dir(&tree)
        // Tests that name the server's port or socket read them from here (mtr sets them
        // only for servers it starts).
        .env("MASTER_MYPORT", port.to_string())
        .env("MASTER_MYSOCK", &no_socket)
        .env_remove("MTR_PARALLEL")
        .env_remove("MTR_TESTCASE_TIMEOUT")
        .env_remove("MTR_SUITE_TIMEOUT")
        .env_remove("MTR_BUILD_THREAD")
        .env_remove("MTR_PORT_BASE")
        .env_remove("MYSQL_TEST_DIR");
    let started = Instant::now();
    let out = run_bounded(&mut cmd, None, timeout + Duration::from_secs(30));
    let elapsed = started.elapsed();
    let output = format!("{}\n{}", out.stdout, out.stderr);
    let mut outcomes = BTreeMap::new();
    let mut reports: BTreeMap<String, String> = BTreeMap::new();
    let mut times = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in out.stdout.lines() {
        if let Some((test, outcome, rest)) = result_line(line) {
            outcomes.insert(test.to_string(), outcome.to_string());
            if let Ok(ms) = rest.parse::<u64>() {
                times.insert(test.to_string(), ms);
            }
            reports.insert(test.to_string(), line.to_string());
            current = Some(test.to_string());
            continue;
        }
        if line.starts_with("-----") || line.starts_with("The servers were restarted") {
            current = None;
        }
        if let Some(test) = &current {
            let report = reports.get_mut(test).unwrap();
            report.push('\n');
            report.push_str(line);
        }
    }
    if let Some(dir) = &debug_dir {
        let _ = std::fs::create_dir_all(dir);
        let _ = std::fs::write(
            dir.join(format!("{}.log", way.replace(' ', "_"))),
            format!("{}\n{output}", vardir.display()),
        );
    }
    // mtr says `Completed: …` (exit 1 if a test failed) once it ran every test; anything
    // else (124: the timeout; mtr stopping on an error of its own) is no comparison.
    assert!(
        matches!(out.code(), Some(0 | 1)) && out.stdout.contains("\nCompleted: "),
        "mtr {way} did not run through ({:?} after {elapsed:.1?}): {out}",
        out.code()
    );
    let run = MtrRun {
        way,
        outcomes,
        reports,
        times,
        output,
        elapsed,
    };
    eprintln!("mtr {}", run.counts());
    run
}

/// A result line of mtr: `main.alias   [ pass ]   12`, `main.x  [ skipped ]  why`
/// (`w1 [ pass ]` with workers) → (test, outcome, what follows).
fn result_line(line: &str) -> Option<(&str, &str, &str)> {
    let test = line.split_whitespace().next()?;
    if !test.starts_with("main.") {
        return None;
    }
    let open = line.find("[ ")?;
    let close = open + line[open..].find(" ]")?;
    let outcome = &line[open + 2..close];
    if outcome.is_empty() || !outcome.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
        return None;
    }
    Some((test, outcome, line[close + 2..].trim()))
}

/// [`TESTS`] against [`direct_server`], once per test run: what the other ways are held
/// to.
fn direct_run() -> &'static MtrRun {
    static RUN: OnceLock<MtrRun> = OnceLock::new();
    RUN.get_or_init(|| {
        let server = direct_server();
        let run = run_mtr("directly", server.port, "root", "", &tests(), RUN_TIMEOUT);
        let passed = run.passed().len();
        assert!(
            passed >= MIN_DIRECT_PASSED,
            "only {passed} of mtr's tests passed directly (at least {MIN_DIRECT_PASSED} \
             expected): the setup is broken\n{}",
            truncate(&run.output, 20000)
        );
        run
    })
}

/// Asserts that every test that passed directly passed in `run`, except those in
/// `differs`, each of which must pass directly and not in `run`.
fn assert_same_as_direct(run: &MtrRun, differs: &[(&str, &str)]) {
    let direct = direct_run();
    let problems = differences(run, direct, differs);
    assert!(
        problems.is_empty(),
        "mtr {} differs from the direct run ({} | {}):\n\n{}",
        run.way,
        direct.counts(),
        run.counts(),
        problems.join("\n\n"),
    );
}

#[test]
fn mtr_main_through_passthrough_passes_what_passes_directly() {
    let server = direct_server();
    // Directly first: the two runs share the server (and its `test` database).
    direct_run();
    let port = free_port();
    let _dpm = Dpm::builder("examples/passthrough.lua")
        .env("DPM_LISTEN_PORT", port)
        .env("DPM_BACKEND_PORT", server.port)
        .spawn();
    _dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    let run = run_mtr(
        "through passthrough",
        port,
        "root",
        "",
        &tests(),
        RUN_TIMEOUT,
    );
    assert_same_as_direct(&run, PASSTHROUGH_DIFFERS);
}

#[test]
fn mtr_main_through_readwritesplit_passes_what_passes_directly() {
    let set = replica_set();
    let (_dpm, port) = rwsplit_dpm(
        [set.primary.port, set.replicas[0].port, set.replicas[1].port],
        &[
            // dpm logs in to the servers as mtr's own user.
            ("DPM_BACKEND_USER", "root".to_string()),
            ("DPM_BACKEND_PASSWORD", String::new()),
            // A session reads its own writes on the replicas.
            ("DPM_CAUSAL_TIMEOUT", "10000".to_string()),
            // A procedure's body may set what the test reads next (func_concat).
            ("DPM_STRICT_SP_CALLS", "1".to_string()),
            // Tests log in as accounts dpm does not hold: no slowing down of the others.
            ("DPM_NO_THROTTLE", "1".to_string()),
        ],
    );
    let run = run_mtr(
        "through readwritesplit",
        port,
        APP_USER,
        APP_PASSWORD,
        &tests(),
        RUN_TIMEOUT,
    );
    let reasons = statements_by_reason(port);
    eprintln!("readwritesplit routed: {reasons}");
    // A test that broke replication makes every later read on a replica wrong or slow:
    // that test, not readwritesplit, is what to look at.
    wait_caught_up(set);
    assert_same_as_direct(&run, RWSPLIT_DIFFERS);
    let reads = reasons["read"].as_u64().unwrap_or(0);
    assert!(
        reads >= MIN_REPLICA_READS,
        "only {reads} statements were read on a replica (at least {MIN_REPLICA_READS} \
         expected): {reasons}"
    );
}

/// Why a test of `main` is not a candidate, from its text: it restarts, shuts down or
/// kills the server, with a statement or through one of mtr's include files for that
/// (with `--extern` it would stop the server); it works on the files of the server's data
/// directory (mariadb-test refuses paths outside its var directory: the test stops
/// half-way, some with a system table changed); it makes the server read-only
/// (readwritesplit's monitor then takes the primary for lost); it logs in with `connect`
/// (through readwritesplit only the proxy-held user can); it writes what replication
/// cannot replay when the servers share a host (a plugin installed on the primary only,
/// statements kept out of the binary log, tables in the var directory) or works on
/// replication itself.
fn left_out_by_its_text(test_file: &str) -> Option<&'static str> {
    const MARKS: &[&str] = &[
        "INSTALL PLUGIN",
        "INSTALL SONAME",
        "sql_log_bin",
        "DATA DIRECTORY",
        "INDEX DIRECTORY",
        "MYSQLTEST_VARDIR",
        "CHANGE MASTER",
        "SHOW SLAVE",
        "restart_mysqld",
        "shutdown_mysqld",
        "kill_mysqld",
        "shutdown_server",
        "start_mysqld",
        "restart_and_reconnect",
        "kill_and_restart",
        "crash_mysqld",
        "MYSQLD_DATADIR",
        "read_only",
    ];
    let lines = || {
        test_file
            .lines()
            .map(|l| l.trim_start().to_ascii_lowercase())
    };
    if lines()
        .any(|l| l.starts_with("shutdown") || (l.starts_with("--exec") && l.contains("shutdown")))
    {
        return Some("shutdown");
    }
    if lines().any(|l| {
        let command = l.trim_start_matches('-').trim_start();
        command.starts_with("connect ") || command.starts_with("connect(")
    }) {
        return Some("connect");
    }
    MARKS.iter().copied().find(|m| test_file.contains(m))
}

/// Whether `server` can still run tests: root logs in over TCP, `test` and mtr's
/// procedures are there, and [`PROLOGUE`] runs through.
fn healthy(server: &MariaDb) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let prologue = dir.path().join("prologue.inc");
    let test = dir.path().join("healthy.test");
    std::fs::write(&prologue, PROLOGUE).unwrap();
    std::fs::write(&test, "SELECT COUNT(*) FROM mtr.test_suppressions;\n").unwrap();
    let out = run_bounded(
        Command::new("mariadb-test")
            .arg("--no-defaults")
            .args(["-uroot", "-h127.0.0.1", "--protocol=tcp"])
            .arg(format!("-P{}", server.port))
            .arg("--database=test")
            .arg(format!("--prologue={}", prologue.display()))
            .arg(format!("--test-file={}", test.display())),
        None,
        Duration::from_secs(120),
    );
    if !out.success() {
        eprintln!("the server cannot run tests: {out}");
    }
    out.success()
}

/// Chooses [`TESTS`]: runs all of `main` (but for [`NEVER_RUN`], the tests that need a
/// `.cnf` or `.opt` file of their own and those [`left_out_by_its_text`]) directly, in chunks, then the
/// tests that passed in under [`SELECT_MAX_MS`] again in one run, and prints those that
/// passed both times, in the form of [`TESTS`]. A chunk after which the server cannot
/// run tests any more stops it: one of its tests belongs in [`NEVER_RUN`].
#[test]
#[ignore = "chooses the tests of the mtr group: about an hour"]
fn mtr_select_main_tests() {
    let main = Path::new(MTR_DIR).join("main");
    let mut candidates = Vec::new();
    let mut left_out = BTreeMap::new();
    for entry in std::fs::read_dir(&main).expect("mtr's main suite") {
        let path = entry.unwrap().path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".test"))
        else {
            continue;
        };
        if NEVER_RUN.iter().any(|(t, _)| *t == name) {
            continue;
        }
        let own = [".cnf", ".opt", "-master.opt"];
        if let Some(own) = own
            .iter()
            .find(|ext| main.join(format!("{name}{ext}")).exists())
        {
            left_out.insert(name.to_string(), *own);
            continue;
        }
        if let Some(mark) =
            left_out_by_its_text(&std::fs::read_to_string(&path).unwrap_or_default())
        {
            left_out.insert(name.to_string(), mark);
            continue;
        }
        candidates.push(format!("main.{name}"));
    }
    candidates.sort();
    eprintln!("{} candidates; left out: {left_out:?}", candidates.len());
    let server = direct_server();
    let long = Duration::from_secs(3600);
    // With DPM_MTR_SELECT_STATE=FILE the first pass's outcomes are kept there (`test
    // outcome ms` a line) as it goes, and a selection run again goes on where it stopped
    // (after a test that broke the server was added to NEVER_RUN).
    let state = std::env::var_os("DPM_MTR_SELECT_STATE").map(PathBuf::from);
    let mut first: BTreeMap<String, (String, Option<u64>)> = BTreeMap::new();
    if let Some(text) = state.as_ref().and_then(|f| std::fs::read_to_string(f).ok()) {
        for line in text.lines() {
            let mut words = line.split('\t');
            if let (Some(t), Some(o), Some(ms)) = (words.next(), words.next(), words.next()) {
                first.insert(t.to_string(), (o.to_string(), ms.parse().ok()));
            }
        }
    }
    let todo: Vec<String> = candidates
        .iter()
        .filter(|t| !first.contains_key(*t))
        .cloned()
        .collect();
    for chunk in todo.chunks(100) {
        let run = run_mtr("directly, a chunk", server.port, "root", "", chunk, long);
        let mut lines = String::new();
        for test in chunk {
            let outcome = run.outcomes.get(test).cloned().unwrap_or("none".into());
            let ms = run.times.get(test).copied();
            let ms_text = ms.map(|m| m.to_string()).unwrap_or_default();
            lines.push_str(&format!("{test}\t{outcome}\t{ms_text}\n"));
            first.insert(test.clone(), (outcome, ms));
        }
        if let Some(file) = &state {
            use std::io::Write;
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(file)
                .and_then(|mut f| f.write_all(lines.as_bytes()))
                .unwrap();
        }
        assert!(
            healthy(server),
            "the server cannot run tests after this chunk: {chunk:?}"
        );
    }
    first.retain(|t, _| candidates.contains(t));
    let again: Vec<String> = first
        .iter()
        .filter(|(_, (o, ms))| o == "pass" && ms.is_some_and(|ms| ms <= SELECT_MAX_MS))
        .map(|(t, _)| t.clone())
        .collect();
    let second = run_mtr("directly, again", server.port, "root", "", &again, long);
    let chosen: Vec<&str> = second
        .passed()
        .into_iter()
        .filter(|t| second.times.get(*t).is_some_and(|ms| *ms <= SELECT_MAX_MS))
        .collect();
    let total: u64 = chosen.iter().filter_map(|t| second.times.get(*t)).sum();
    let mut by: BTreeMap<&str, usize> = BTreeMap::new();
    for (o, _) in first.values() {
        *by.entry(o.as_str()).or_default() += 1;
    }
    eprintln!(
        "first run: {by:?}; {} tests chosen ({} ms of test time), {} passed the first \
         time only",
        chosen.len(),
        total,
        again.len() - chosen.len()
    );
    for t in &again {
        if !chosen.contains(&t.as_str()) {
            eprintln!("passed the first time only: {}", second.report_of(t));
        }
    }
    let mut text = String::new();
    let mut line = String::from("   ");
    for t in &chosen {
        let name = t.trim_start_matches("main.");
        if line.len() + name.len() + 1 > 92 {
            text.push_str(&line);
            text.push('\n');
            line = String::from("   ");
        }
        line.push(' ');
        line.push_str(name);
    }
    text.push_str(&line);
    println!("const TESTS: &str = \"\n{text}\n\";");
}
