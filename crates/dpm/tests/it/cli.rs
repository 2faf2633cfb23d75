//! The `mariadb` command-line client, batch (`-e`) and interactive (tmux), and dpm's own
//! command-line tool `dpm hash-password`.

use crate::support::*;
use std::process::Command;
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

/// `dpm hash-password [--plugin P]` with `stdin`.
fn hash_password(plugin: Option<&str>, stdin: &str) -> ProcOutput {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dpm"));
    cmd.arg("hash-password");
    if let Some(plugin) = plugin {
        cmd.args(["--plugin", plugin]);
    }
    run_bounded(&mut cmd, Some(stdin.as_bytes()), T)
}

/// The hashes match what MariaDB 10.11 itself stores for the password "secret"
/// (`PASSWORD('secret')`, `IDENTIFIED VIA ed25519 USING PASSWORD('secret')`), and a
/// caching_sha2_password hash is MySQL's `$A$005$` form and checks the password.
#[test]
fn hash_password_prints_mariadb_hashes() {
    for (plugin, expected) in [
        (None, "*14E65567ABDB5135D0CFD9A70B3032C179A49EE7"),
        (
            Some("mysql_native_password"),
            "*14E65567ABDB5135D0CFD9A70B3032C179A49EE7",
        ),
        (
            Some("client_ed25519"),
            "ZIgUREUg5PVgQ6LskhXmO+eZLS0nC8be6HPjYWR4YJY",
        ),
    ] {
        for stdin in ["secret\n", "secret", "secret\r\n"] {
            let out = hash_password(plugin, stdin);
            out.assert_success("dpm hash-password");
            assert_eq!(out.stdout, format!("{expected}\n"), "{plugin:?} {stdin:?}");
            assert_eq!(out.stderr, "");
        }
    }

    let out = hash_password(Some("caching_sha2_password"), "secret\n");
    out.assert_success("dpm hash-password --plugin caching_sha2_password");
    let text = out.stdout.strip_suffix('\n').expect("one line");
    assert!(text.starts_with("$A$005$") && text.len() == 70, "{text}");
    let hash = dpm_auth::CachingSha2Hash::parse(text).unwrap();
    assert!(hash.verify_password(b"secret"));
    assert!(!hash.verify_password(b"secret\n"));
    // A fresh salt every time.
    assert_ne!(
        hash_password(Some("caching_sha2_password"), "secret\n").stdout,
        out.stdout
    );
}

/// The printed hashes work on a real MariaDB: accounts created with them (`IDENTIFIED VIA
/// … USING '<hash>'`) log in with the password, and not with another.
#[test]
fn hash_password_output_logs_in_to_mariadb() {
    let db = MariaDb::get();
    let password = "hash-pw ✓ with spaces";
    let mut plugins = vec![(
        "hp_native",
        "mysql_native_password",
        "mysql_native_password",
    )];
    if db.ed25519 {
        plugins.push(("hp_ed25519", "client_ed25519", "ed25519"));
    } else {
        eprintln!("SKIPPED the ed25519 part: auth_ed25519 is not available on this MariaDB");
    }
    for (user, plugin, server_plugin) in plugins {
        let out = hash_password(Some(plugin), &format!("{password}\n"));
        out.assert_success("dpm hash-password");
        let hash = out.stdout.trim_end();
        db.direct_exec(&format!(
            "CREATE OR REPLACE USER '{user}'@'%' IDENTIFIED VIA {server_plugin} USING '{hash}'"
        ));
        let ok = Target::direct()
            .cli()
            .user(user)
            .password(Some(password))
            .run("SELECT CURRENT_USER()");
        ok.assert_success(&format!("{plugin} login with the hashed password"));
        assert_eq!(ok.stdout, format!("CURRENT_USER()\n{user}@%\n"));
        let bad = Target::direct()
            .cli()
            .user(user)
            .password(Some("hash-pw"))
            .run("SELECT 1");
        assert_eq!(bad.code(), Some(1), "{bad}");
        assert!(bad.stderr.contains("Access denied"), "{bad}");
        db.direct_exec(&format!("DROP USER '{user}'@'%'"));
    }
}

#[test]
fn hash_password_refuses_unknown_plugins_and_empty_passwords() {
    let out = hash_password(Some("sha256_password"), "secret\n");
    assert_eq!(out.code(), Some(2), "{out}");
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "dpm hash-password: unknown authentication plugin 'sha256_password' (expected mysql_native_password, caching_sha2_password or client_ed25519)\n"
    );
    for stdin in ["", "\n"] {
        let out = hash_password(None, stdin);
        assert_eq!(out.code(), Some(2), "{out}");
        assert_eq!(out.stdout, "");
        assert_eq!(
            out.stderr,
            "dpm hash-password: the password is empty: an account without a password has no password_hash\n"
        );
    }
    let out = hash_password(Some("caching_sha2_password"), &"x".repeat(300));
    assert_eq!(out.code(), Some(2), "{out}");
    assert_eq!(
        out.stderr,
        "dpm hash-password: the password is longer than 256 bytes, the most caching_sha2_password accepts\n"
    );
    // The proxy's own flags still work beside the subcommand.
    let help = Command::new(env!("CARGO_BIN_EXE_dpm"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("hash-password") && help.contains("--startfile"),
        "{help}"
    );
}

/// On a terminal the password is prompted for on stderr and not echoed.
#[test]
fn hash_password_prompts_without_echo_on_a_terminal() {
    let tm = Tmux::start(env!("CARGO_BIN_EXE_dpm"), &["hash-password".to_string()]);
    tm.wait_for("Password:", T);
    tm.send_line("secret");
    let pane = tm.wait_for("*14E65567ABDB5135D0CFD9A70B3032C179A49EE7", T);
    assert!(!pane.contains("secret"), "the password was echoed:\n{pane}");
    tm.wait_exit(T);
}
