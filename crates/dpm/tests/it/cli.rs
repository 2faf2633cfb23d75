//! The `mariadb` command-line client, batch (`-e`) and interactive (tmux).

use crate::support::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

/// Whether some line is `prefix`, blanks, then starts with `value`.
fn has_line(text: &str, prefix: &str, value: &str) -> bool {
    text.lines().any(|l| {
        l.strip_prefix(prefix)
            .is_some_and(|rest| rest.trim_start().starts_with(value))
    })
}

#[test]
fn cli_batch_select_rows_with_nulls_matches_direct() {
    let db = MariaDb::get();
    db.direct_exec(
        "CREATE OR REPLACE TABLE dpmtest.cli_rows (
             id INT PRIMARY KEY, name VARCHAR(20), score DECIMAL(5,2), note TEXT);
         INSERT INTO dpmtest.cli_rows VALUES
             (1, 'alice', 9.5, NULL), (2, NULL, NULL, 'two'),
             (3, 'carol', -1.25, ''), (4, 'dåve ✓', 0, 'tab\there\nnewline');",
    );
    let t = passthrough();
    let sql = "SELECT id, name, score, note FROM cli_rows ORDER BY id";
    let via = t.cli().db(DB).run(sql);
    via.assert_success("SELECT through the target");
    assert_eq!(
        via.stdout,
        "id\tname\tscore\tnote\n\
         1\talice\t9.50\tNULL\n\
         2\tNULL\tNULL\ttwo\n\
         3\tcarol\t-1.25\t\n\
         4\tdåve ✓\t0.00\ttab\\there\\nnewline\n"
    );
    let direct = Target::direct().cli().db(DB).run(sql);
    assert_eq!(via.stdout, direct.stdout);

    // Many rows and columns (several network packets), NULLs every third row.
    let sql = "SELECT seq, seq * 1.5 AS f, CONCAT('row-', seq) AS s,
                      IF(seq % 3 = 0, NULL, seq) AS maybe, NULL AS always_null
               FROM seq_1_to_5000";
    let via = t.cli().db(DB).run(sql);
    via.assert_success("SELECT 5000 rows through the target");
    let direct = Target::direct().cli().db(DB).run(sql);
    assert_eq!(via.stdout.lines().count(), 5001);
    assert!(via.stdout.contains("\n3\t4.5\trow-3\tNULL\tNULL\n"));
    assert_eq!(via.stdout, direct.stdout);
}

#[test]
fn cli_batch_unknown_table_error_matches_direct() {
    MariaDb::get();
    let t = passthrough();
    let sql = "SELECT * FROM no_such_table";
    let via = t.cli().db(DB).run(sql);
    assert_eq!(via.code(), Some(1), "{via}");
    // (In batch mode the CLI echoes the failing statement before the error.)
    assert!(
        via.stderr.trim_end().ends_with(
            "\nERROR 1146 (42S02) at line 1: Table 'dpmtest.no_such_table' doesn't exist"
        ),
        "{via}"
    );
    let direct = Target::direct().cli().db(DB).run(sql);
    assert_eq!(via.stderr, direct.stderr);
    assert_eq!(via.stdout, "");

    // A syntax error, then (with --force) the same connection goes on.
    let script = "SELEKT 1;\nSELECT 'after' AS still_here;\n";
    let via = t.cli().arg("--force").run_stdin(script);
    let direct = Target::direct().cli().arg("--force").run_stdin(script);
    assert!(
        via.stderr
            .contains("ERROR 1064 (42000) at line 1: You have an error in your SQL syntax"),
        "{via}"
    );
    assert_eq!(via.stderr, direct.stderr);
    assert_eq!(via.stdout, "still_here\nafter\n");
}

#[test]
fn cli_interactive_session_under_tmux() {
    let db = MariaDb::get();
    let t = passthrough();
    let tm = Tmux::start("mariadb", &t.cli().arg("--skip-reconnect").argv());
    let pane = tm.wait_for("MariaDB [(none)]>", T);
    assert!(
        pane.contains(&format!("Server version: {}", db.version)),
        "banner lacks the real server version {}:\n{pane}",
        db.version
    );

    tm.send_line("SELECT 6*7 AS answer, NULL AS nothing;");
    let pane = tm.wait_for("1 row in set", T);
    assert!(pane.contains("| answer | nothing |"), "{pane}");
    assert!(pane.contains("|     42 |    NULL |"), "{pane}");

    // COM_INIT_DB (the CLI then also lists the tables for completion).
    tm.send_line("USE dpmtest");
    let pane = tm.wait_for("MariaDB [dpmtest]>", T);
    assert!(pane.contains("Database changed"), "{pane}");

    tm.send_line("SELECT * FROM no_such_table;");
    tm.wait_for(
        "ERROR 1146 (42S02): Table 'dpmtest.no_such_table' doesn't exist",
        T,
    );

    // \s ends with the COM_STATISTICS line.
    tm.send_line("\\s");
    let pane = tm.wait_for("Queries per second avg:", T);
    assert!(has_line(&pane, "Uptime:", ""), "{pane}");
    assert!(
        has_line(&pane, "Threads:", "") && pane.contains("Questions:"),
        "{pane}"
    );
    assert!(has_line(&pane, "Current user:", "dpm@"), "{pane}");
    // (tmux renders the tabs of `\s` as spaces.)
    assert!(has_line(&pane, "Current database:", "dpmtest"), "{pane}");
    assert!(has_line(&pane, "Server version:", &db.version), "{pane}");

    tm.send_line("quit");
    tm.wait_for("Bye", T);
    tm.wait_exit(T);
}
