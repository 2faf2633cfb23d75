//! Tests: rule-file parsing and its errors (with line numbers), structured specs, each rule
//! kind, time windows, on_queries, users patterns, match modes, block and allow mode, the
//! example rule file, and 10,000 regex rules.

use super::*;
use crate::classifier::classify;

const NOON: u32 = 12 * 3600;

fn parse(text: &str) -> RuleSet {
    match RuleSet::parse("t.rules", text) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    }
}

fn err(text: &str) -> String {
    RuleSet::parse("t.rules", text)
        .expect_err("should not parse")
        .message
}

/// The verdict on `sql` for `user`@`host` at `now`, classified.
fn verdict_at(rs: &RuleSet, mode: Mode, sql: &str, user: &str, host: &str, now: u32) -> String {
    let c = classify(sql.as_bytes());
    let st = Statement {
        sql: sql.as_bytes(),
        classification: Some(&c),
        user,
        host,
        database: None,
        now_seconds_of_day: now,
    };
    describe(rs.check(mode, &st))
}

fn describe(v: Verdict) -> String {
    match v {
        Verdict::Allow => "allow".to_string(),
        Verdict::Deny {
            rule: Some(r),
            message,
        } => {
            assert!(message.contains(r), "{message}");
            format!("deny {r}")
        }
        Verdict::Deny {
            rule: None,
            message,
        } => {
            assert!(message.contains("no firewall rule allows"), "{message}");
            "deny".to_string()
        }
    }
}

/// Block mode, user `u`@`127.0.0.1`, at noon.
fn block(rs: &RuleSet, sql: &str) -> String {
    verdict_at(rs, Mode::Block, sql, "u", "127.0.0.1", NOON)
}

fn hms(h: u32, m: u32, s: u32) -> u32 {
    h * 3600 + m * 60 + s
}

// ---------------------------------------------------------------- parsing

#[test]
fn comments_blank_lines_quotes_and_case() {
    let rs = parse(
        "# a comment\n\
         \n   \t\n\
         RULE a MATCH REGEX 'x#y' # comment after a quoted # \n\
         rule b deny regex \"it\\\"s\"\n\
         rule c match regex 'it\\'s'\n\
         rule d match regex '\\bword\\b'\n\
         rule e match regex unquoted\\d+\n",
    );
    assert_eq!(rs.rule_count(), 5);
    assert_eq!(block(&rs, "SELECT 'x#y'"), "deny a");
    assert_eq!(block(&rs, "SELECT 'it\"s'"), "deny b");
    assert_eq!(block(&rs, "SELECT \"it's\""), "deny c");
    assert_eq!(block(&rs, "SELECT word FROM t"), "deny d");
    assert_eq!(block(&rs, "SELECT words FROM t"), "allow");
    assert_eq!(block(&rs, "SELECT unquoted42"), "deny e");
    assert!(!rs.needs_classification());
    assert!(!rs.needs_time());
}

#[test]
fn empty_file_has_no_rules() {
    for text in ["", "# only a comment\n\n", "\n\n\n"] {
        let rs = parse(text);
        assert_eq!(rs.rule_count(), 0);
        assert_eq!(block(&rs, "DROP TABLE t"), "allow");
        assert_eq!(
            verdict_at(&rs, Mode::Allow, "SELECT 1", "u", "h", NOON),
            "deny"
        );
    }
}

#[test]
fn errors_name_file_and_line() {
    let cases: &[(&str, &str)] = &[
        ("\n\nfoo bar", "t.rules:3: unknown keyword 'foo' (expected rule or users)"),
        ("rule a match wildcard", "t.rules:1: unknown rule type 'wildcard' (expected regex, no_where_clause, type or table)"),
        ("# c\nrule a match regex 'x('", "t.rules:2: bad regex 'x(': unclosed group (at offset 1)"),
        ("rule a match regex '[z-a]'", "t.rules:1: bad regex '[z-a]': invalid character class range, the start must be <= the end (at offset 1)"),
        ("rule a match regex", "t.rules:1: regex without a pattern"),
        ("rule a match type selec", "t.rules:1: unknown statement type 'selec' (known: select, insert, update, delete, replace, ddl, set, use, begin, commit, rollback, savepoint, xa, call, show, lock, unlock, prepare, execute, deallocate, load, do, grant, explain, handler, flush, kill, other, unknown)"),
        ("rule a match type select||update", "t.rules:1: empty statement type in 'select||update'"),
        ("rule a match regex 'x' on_queries sel", "t.rules:1: unknown statement type 'sel'"),
        ("\nrule a match regex 'x' at_times 25:00-26:00", "t.rules:2: bad time range '25:00-26:00': expected HH:MM[:SS]-HH:MM[:SS]"),
        ("rule a match regex 'x' at_times 9-17", "t.rules:1: bad time range '9-17'"),
        ("rule a match regex 'x' at_times 10:00:61-11:00", "t.rules:1: bad time range '10:00:61-11:00'"),
        ("rule a match regex 'x' at_times 10:00-10:00", "t.rules:1: bad time range '10:00-10:00': empty range"),
        ("rule a match regex 'x' at_times 24:00-01:00", "t.rules:1: bad time range '24:00-01:00': 24:00 can only end a range"),
        ("rule a match regex 'x' at_times", "t.rules:1: at_times without a value"),
        ("rule a match regex 'x' at_times 10:00-11:00 at_times 12:00-13:00", "t.rules:1: at_times given twice"),
        ("rule a match no_where_clause at_time 10:00-11:00", "t.rules:1: unknown keyword 'at_time' (expected at_times or on_queries)"),
        ("rule a match regex 'x'\nusers % match any rules a b", "t.rules:2: users line names unknown rule 'b'"),
        ("rule a match regex 'x'\n\nrule a match type ddl", "t.rules:3: duplicate rule name 'a' (first defined at t.rules:1)"),
        ("rule a match regex 'abc", "t.rules:1: missing closing quote ' in 'abc"),
        ("rule a match regex \"abc\\\"", "t.rules:1: missing closing quote \""),
        ("rule a match regex 'abc'def", "t.rules:1: unexpected text after the closing quote of 'abc'"),
        ("rule", "t.rules:1: rule without a name"),
        ("rule a", "t.rules:1: rule 'a' without 'match TYPE'"),
        ("rule a allow regex 'x'", "t.rules:1: expected 'match' after rule name 'a', found 'allow'"),
        ("rule a match", "t.rules:1: rule 'a' without a type after 'match'"),
        ("rule a match table x.", "t.rules:1: bad table 'x.' (expected db.table, table or db.*)"),
        ("rule a match table *.t", "t.rules:1: bad table '*.t'"),
        ("rule a match type ddl\nusers % rules a", "t.rules:2: users line without 'match any|all|strict_all rules …'"),
        ("rule a match type ddl\nusers match any rules a", "t.rules:2: users line without a user pattern"),
        ("rule a match type ddl\nusers % match some rules a", "t.rules:2: unknown match mode 'some' (expected any, all or strict_all)"),
        ("rule a match type ddl\nusers % match any a", "t.rules:2: expected 'rules' after the match mode, found 'a'"),
        ("rule a match type ddl\nusers % match any rules", "t.rules:2: users line names no rules"),
        ("rule a match type ddl\nusers @host match any rules a", "t.rules:2: bad user pattern '@host'"),
    ];
    for (text, want) in cases {
        let got = err(text);
        assert!(got.starts_with(want), "{text:?}\n got: {got}\nwant: {want}");
        assert!(!got.contains('\n'), "{got}");
    }
}

#[test]
fn users_lines_may_name_rules_defined_later() {
    let rs = parse("users % match any rules late\nrule late match type ddl");
    assert_eq!(block(&rs, "DROP TABLE t"), "deny late");
}

#[test]
fn list_values_may_span_tokens() {
    let rs = parse("rule t match table a, b ,c on_queries select | delete");
    for sql in ["SELECT * FROM a", "SELECT * FROM b", "DELETE FROM c"] {
        assert_eq!(block(&rs, sql), "deny t", "{sql}");
    }
    assert_eq!(block(&rs, "UPDATE a SET x = 1"), "allow");
}

// ---------------------------------------------------------------- rule kinds

#[test]
fn regex_rules() {
    let rs = parse("rule r match regex '(?i)^\\s*drop\\s'\nrule cs match regex 'Secret'");
    assert_eq!(block(&rs, "DROP TABLE t"), "deny r");
    assert_eq!(block(&rs, "  drop table t"), "deny r");
    assert_eq!(block(&rs, "SELECT 'drop table'"), "allow");
    assert_eq!(block(&rs, "SELECT Secret"), "deny cs");
    assert_eq!(block(&rs, "SELECT secret"), "allow");
    // Non-UTF-8 SQL is searched as bytes.
    let st = Statement {
        sql: b"SELECT '\xff' FROM Secret",
        classification: None,
        user: "u",
        host: "h",
        database: None,
        now_seconds_of_day: 0,
    };
    assert_eq!(describe(rs.check(Mode::Block, &st)), "deny cs");
}

#[test]
fn no_where_clause_rules() {
    let rs = parse("rule nw match no_where_clause");
    assert!(rs.needs_classification());
    assert_eq!(block(&rs, "DELETE FROM t"), "deny nw");
    assert_eq!(block(&rs, "UPDATE t SET a = 1 LIMIT 5"), "deny nw");
    assert_eq!(block(&rs, "DELETE FROM t WHERE 1"), "allow");
    assert_eq!(
        block(&rs, "UPDATE t SET a = (SELECT 1 FROM u WHERE x)"),
        "deny nw"
    );
    assert_eq!(block(&rs, "SELECT * FROM t"), "allow");
}

#[test]
fn type_rules() {
    let rs = parse("rule ty match type DDL|grant");
    assert_eq!(block(&rs, "CREATE TABLE t (a INT)"), "deny ty");
    assert_eq!(block(&rs, "GRANT ALL ON *.* TO x"), "deny ty");
    assert_eq!(block(&rs, "SELECT 1"), "allow");
    // Without a classification the rule cannot match.
    let st = Statement {
        sql: b"DROP TABLE t",
        classification: None,
        user: "u",
        host: "h",
        database: None,
        now_seconds_of_day: 0,
    };
    assert_eq!(rs.check(Mode::Block, &st), Verdict::Allow);
}

#[test]
fn table_rules() {
    let rs = parse("rule t match table secret.*,hr.Salaries,passwords");
    assert_eq!(block(&rs, "SELECT * FROM secret.keys"), "deny t");
    assert_eq!(block(&rs, "SELECT * FROM `SECRET`.`x`"), "deny t");
    assert_eq!(block(&rs, "SELECT * FROM hr.salaries"), "deny t");
    assert_eq!(block(&rs, "SELECT * FROM hr.people"), "allow");
    assert_eq!(block(&rs, "SELECT * FROM passwords"), "deny t");
    assert_eq!(block(&rs, "SELECT * FROM app.PASSWORDS"), "deny t");
    assert_eq!(block(&rs, "SELECT * FROM a JOIN secret.k ON 1"), "deny t");
    assert_eq!(block(&rs, "SELECT * FROM secrets.x"), "allow");
    // Unqualified names: in the default database when known.
    assert_eq!(block(&rs, "SELECT * FROM salaries"), "allow");
    for (db, want) in [
        (Some("hr"), "deny t"),
        (Some("HR"), "deny t"),
        (Some("app"), "allow"),
    ] {
        let sql = "SELECT * FROM salaries";
        let c = classify(sql.as_bytes());
        let st = Statement {
            sql: sql.as_bytes(),
            classification: Some(&c),
            user: "u",
            host: "h",
            database: db,
            now_seconds_of_day: 0,
        };
        assert_eq!(describe(rs.check(Mode::Block, &st)), want, "{db:?}");
    }
}

// ---------------------------------------------------------------- conditions

#[test]
fn at_times_windows() {
    let rs = parse("rule day match type ddl at_times 09:00-17:00\nrule night match type delete at_times 22:00-06:00:30");
    assert!(rs.needs_time());
    let at = |sql: &str, t: u32| verdict_at(&rs, Mode::Block, sql, "u", "h", t);
    assert_eq!(at("DROP TABLE t", hms(8, 59, 59)), "allow");
    assert_eq!(at("DROP TABLE t", hms(9, 0, 0)), "deny day");
    assert_eq!(at("DROP TABLE t", hms(16, 59, 59)), "deny day");
    assert_eq!(at("DROP TABLE t", hms(17, 0, 0)), "allow");
    // Wrapping midnight.
    let del = "DELETE FROM t WHERE a = 1";
    assert_eq!(at(del, hms(21, 59, 59)), "allow");
    assert_eq!(at(del, hms(22, 0, 0)), "deny night");
    assert_eq!(at(del, hms(23, 59, 59)), "deny night");
    assert_eq!(at(del, 0), "deny night");
    assert_eq!(at(del, hms(6, 0, 29)), "deny night");
    assert_eq!(at(del, hms(6, 0, 30)), "allow");
    assert_eq!(at(del, NOON), "allow");
    // Several windows; 24:00 as an end.
    let rs = parse("rule w match regex 'x' at_times 01:00-02:00,18:00-24:00");
    let at = |t: u32| verdict_at(&rs, Mode::Block, "x", "u", "h", t);
    assert_eq!(at(hms(1, 30, 0)), "deny w");
    assert_eq!(at(hms(23, 59, 59)), "deny w");
    assert_eq!(at(0), "allow");
    assert_eq!(at(NOON), "allow");
    assert!(local_seconds_of_day() < 86400);
}

#[test]
fn on_queries_restricts_rules() {
    let rs = parse("rule star match regex '\\*' on_queries select|delete");
    assert!(rs.needs_classification());
    assert_eq!(block(&rs, "SELECT * FROM t"), "deny star");
    assert_eq!(block(&rs, "DELETE FROM t WHERE a = 2 * 3"), "deny star");
    assert_eq!(block(&rs, "UPDATE t SET a = 2 * 3 WHERE 1"), "allow");
    assert_eq!(block(&rs, "SELECT 1"), "allow");
}

// ---------------------------------------------------------------- users

#[test]
fn user_patterns() {
    let rs = parse(
        "rule d match type ddl\n\
         users app@10.% match any rules d\n\
         users rep_@% match any rules d\n\
         users admin@LOCALHOST match any rules d",
    );
    let who =
        |user: &str, host: &str| verdict_at(&rs, Mode::Block, "DROP TABLE t", user, host, NOON);
    assert_eq!(who("app", "10.1.2.3"), "deny d");
    assert_eq!(who("app", "10."), "deny d");
    assert_eq!(who("app", "192.168.0.10"), "allow");
    assert_eq!(who("apps", "10.1.2.3"), "allow");
    assert_eq!(
        who("App", "10.1.2.3"),
        "allow",
        "user names are case-sensitive"
    );
    assert_eq!(who("rep1", "1.2.3.4"), "deny d");
    assert_eq!(who("repé", "1.2.3.4"), "deny d", "_ is one character");
    assert_eq!(who("rep", "1.2.3.4"), "allow");
    assert_eq!(who("rep12", "1.2.3.4"), "allow");
    assert_eq!(
        who("admin", "localhost"),
        "deny d",
        "hosts are case-insensitive"
    );
    assert_eq!(who("nobody", "10.0.0.1"), "allow", "covered by no line");

    let rs = parse("rule d match type ddl\nusers % match any rules d");
    for (user, host) in [("a", "1.1.1.1"), ("", ""), ("x@y", "::1")] {
        let v = verdict_at(&rs, Mode::Block, "DROP TABLE t", user, host, NOON);
        assert_eq!(v, "deny d", "{user}@{host}");
    }
    let rs = parse(
        "rule d match type ddl\nusers %@% match any rules d\nusers a\\_b@% match any rules d",
    );
    assert_eq!(
        verdict_at(&rs, Mode::Block, "DROP TABLE t", "z", "h", NOON),
        "deny d"
    );
}

#[test]
fn a_user_gets_every_matching_line() {
    let rs = parse(
        "rule d match type ddl\n\
         rule w match no_where_clause\n\
         users % match any rules d\n\
         users app@% match any rules w",
    );
    let v = |user: &str, sql: &str| verdict_at(&rs, Mode::Block, sql, user, "h", NOON);
    assert_eq!(v("app", "DROP TABLE t"), "deny d");
    assert_eq!(v("app", "DELETE FROM t"), "deny w");
    assert_eq!(v("other", "DELETE FROM t"), "allow");
}

#[test]
fn any_all_and_strict_all() {
    let text = "rule s match type select\n\
                rule t match table secret.*\n\
                rule r match regex 'password'\n\
                users any@% match any rules s t r\n\
                users all@% match all rules s t r\n\
                users strict@% match strict_all rules s t r";
    let rs = parse(text);
    let v = |user: &str, sql: &str| verdict_at(&rs, Mode::Block, sql, user, "h", NOON);
    assert_eq!(v("any", "SELECT 1"), "deny s");
    assert_eq!(v("any", "DELETE FROM secret.k WHERE 1"), "deny t");
    assert_eq!(v("any", "UPDATE u SET password = 1 WHERE 1"), "deny r");
    assert_eq!(v("any", "UPDATE u SET a = 1 WHERE 1"), "allow");
    for user in ["all", "strict"] {
        assert_eq!(v(user, "SELECT 1"), "allow");
        assert_eq!(v(user, "SELECT password FROM u"), "allow");
        assert_eq!(v(user, "SELECT password FROM secret.u"), "deny s");
        assert_eq!(v(user, "UPDATE secret.u SET password = 1 WHERE 1"), "allow");
    }
    // The message of an all-line names its rules.
    let c = classify(b"SELECT password FROM secret.u");
    let st = Statement {
        sql: b"SELECT password FROM secret.u",
        classification: Some(&c),
        user: "all",
        host: "h",
        database: None,
        now_seconds_of_day: NOON,
    };
    match rs.check(Mode::Block, &st) {
        Verdict::Deny { rule, message } => {
            assert_eq!(rule, Some("s"));
            assert_eq!(
                message,
                "Access denied by firewall rules 's', 't', 'r' (all matched)"
            );
        }
        v => panic!("{v:?}"),
    }
}

#[test]
fn any_names_the_first_matching_rule_in_listing_order() {
    let rs = parse(
        "rule a match regex 'zzz'\n\
         rule b match type select\n\
         rule c match regex 'FROM'\n\
         users % match any rules a c b",
    );
    // b is the only non-regex rule, but c is listed before it and matches too.
    assert_eq!(block(&rs, "SELECT 1 FROM t"), "deny c");
    assert_eq!(block(&rs, "SELECT 1"), "deny b");
    assert_eq!(block(&rs, "SELECT zzz FROM t"), "deny a");
}

// ---------------------------------------------------------------- modes

#[test]
fn block_and_allow_modes() {
    let rs = parse(
        "rule reads match type select|show\n\
         rule ping match regex '^/\\* ping \\*/'\n\
         users app@% match any rules reads ping",
    );
    let v = |mode: Mode, user: &str, sql: &str| verdict_at(&rs, mode, sql, user, "h", NOON);
    assert_eq!(v(Mode::Allow, "app", "SELECT 1"), "allow");
    assert_eq!(v(Mode::Allow, "app", "/* ping */ DO 1"), "allow");
    assert_eq!(v(Mode::Allow, "app", "DELETE FROM t WHERE 1"), "deny");
    assert_eq!(
        v(Mode::Allow, "stranger", "SELECT 1"),
        "deny",
        "not covered: denied"
    );
    assert_eq!(v(Mode::Block, "app", "SELECT 1"), "deny reads");
    assert_eq!(v(Mode::Block, "app", "DELETE FROM t WHERE 1"), "allow");
    assert_eq!(
        v(Mode::Block, "stranger", "SELECT 1"),
        "allow",
        "not covered: allowed"
    );
    assert_eq!(Mode::parse("BLOCK"), Some(Mode::Block));
    assert_eq!(Mode::parse("allow"), Some(Mode::Allow));
    assert_eq!(Mode::parse("deny"), None);
    // The messages.
    let c = classify(b"DELETE FROM t");
    let st = Statement {
        sql: b"DELETE FROM t",
        classification: Some(&c),
        user: "app",
        host: "h",
        database: None,
        now_seconds_of_day: NOON,
    };
    assert_eq!(
        rs.check(Mode::Allow, &st),
        Verdict::Deny {
            rule: None,
            message: "Access denied: no firewall rule allows this statement".to_string()
        }
    );
    let st = Statement {
        sql: b"SHOW TABLES",
        ..st
    };
    let c = classify(st.sql);
    let st = Statement {
        classification: Some(&c),
        ..st
    };
    assert_eq!(
        rs.check(Mode::Block, &st),
        Verdict::Deny {
            rule: Some("reads"),
            message: "Access denied by firewall rule 'reads'".to_string()
        }
    );
}

#[test]
fn without_users_lines_every_rule_applies_to_everyone() {
    let rs = parse("rule a match regex 'x'\nrule b match type ddl");
    for user in ["root", "app", ""] {
        let v = |sql: &str| verdict_at(&rs, Mode::Block, sql, user, "10.0.0.1", NOON);
        assert_eq!(v("SELECT x"), "deny a");
        assert_eq!(v("DROP TABLE t"), "deny b");
        assert_eq!(v("SELECT 1"), "allow");
    }
}

// ---------------------------------------------------------------- specs

fn spec(name: &str) -> RuleSpec {
    RuleSpec {
        name: name.to_string(),
        ..RuleSpec::default()
    }
}

#[test]
fn specs_build_the_same_rules() {
    let rules = vec![
        RuleSpec {
            regex: Some("^drop".to_string()),
            at_times: Some("09:00-17:00".to_string()),
            on_queries: Some("select|update|ddl".to_string()),
            ..spec("no_drop")
        },
        RuleSpec {
            no_where_clause: true,
            ..spec("nw")
        },
        RuleSpec {
            tables: Some("secret.*".to_string()),
            ..spec("t")
        },
        RuleSpec {
            types: Some("grant".to_string()),
            ..spec("ty")
        },
    ];
    let users = vec![UsersSpec {
        patterns: vec!["%@%".to_string()],
        mode: "any".to_string(),
        rules: vec!["no_drop".into(), "nw".into(), "t".into(), "ty".into()],
    }];
    let from_specs = RuleSet::from_specs(&rules, &users).unwrap();
    let from_file = parse(
        "rule no_drop match regex '^drop' at_times 09:00-17:00 on_queries select|update|ddl\n\
         rule nw match no_where_clause\n\
         rule t match table secret.*\n\
         rule ty match type grant\n\
         users %@% match any rules no_drop nw t ty",
    );
    assert_eq!(from_specs.rule_count(), 4);
    for sql in [
        "drop table x",
        "DROP TABLE x",
        "DELETE FROM t",
        "SELECT * FROM secret.k",
        "GRANT ALL ON *.* TO u",
        "SELECT 1",
    ] {
        for now in [NOON, hms(20, 0, 0)] {
            let a = verdict_at(&from_specs, Mode::Block, sql, "u", "h", now);
            let b = verdict_at(&from_file, Mode::Block, sql, "u", "h", now);
            assert_eq!(a, b, "{sql} at {now}");
        }
    }
    assert_eq!(
        verdict_at(&from_specs, Mode::Block, "drop table x", "u", "h", NOON),
        "deny no_drop"
    );
    assert_eq!(
        verdict_at(
            &from_specs,
            Mode::Block,
            "drop table x",
            "u",
            "h",
            hms(20, 0, 0)
        ),
        "allow"
    );
}

#[test]
fn spec_errors_name_the_rule_or_users_line() {
    let e = |rules: &[RuleSpec], users: &[UsersSpec]| {
        RuleSet::from_specs(rules, users)
            .expect_err("should fail")
            .message
    };
    let re = |r: &str| RuleSpec {
        regex: Some(r.to_string()),
        ..spec("r")
    };
    assert_eq!(
        e(&[spec("r")], &[]),
        "rule 'r': give exactly one of regex, no_where_clause = true, type, table"
    );
    let two = RuleSpec {
        no_where_clause: true,
        ..re("x")
    };
    assert!(e(&[two], &[]).starts_with("rule 'r': give exactly one"));
    assert_eq!(
        e(&[re("(")], &[]),
        "rule 'r': bad regex '(': unclosed group (at offset 0)"
    );
    let bad_type = RuleSpec {
        types: Some("selects".to_string()),
        ..spec("ty")
    };
    assert!(e(&[bad_type], &[])
        .starts_with("rule 'ty': unknown statement type 'selects' (known: select,"));
    let bad_time = RuleSpec {
        at_times: Some("9am-5pm".to_string()),
        ..re("x")
    };
    assert!(e(&[bad_time], &[]).starts_with("rule 'r': bad time range '9am-5pm'"));
    assert_eq!(
        e(&[re("x"), re("y")], &[]),
        "rule 'r': duplicate rule name 'r' (first defined at rule 'r')"
    );
    let users = |mode: &str, rules: &[&str]| UsersSpec {
        patterns: vec!["%".to_string()],
        mode: mode.to_string(),
        rules: rules.iter().map(|s| s.to_string()).collect(),
    };
    assert_eq!(
        e(&[re("x")], &[users("any", &["r"]), users("any", &["q"])]),
        "users #2: users line names unknown rule 'q'"
    );
    assert_eq!(
        e(&[re("x")], &[users("most", &["r"])]),
        "users #1: unknown match mode 'most' (expected any, all or strict_all)"
    );
    assert_eq!(
        e(&[re("x")], &[users("all", &[])]),
        "users #1: names no rules"
    );
    assert_eq!(e(&[spec("")], &[]), "rule '': a rule needs a name");
}

#[test]
fn file_and_specs_combine() {
    let file = "rule f match type ddl\nusers % match any rules f lua_rule";
    let rules = [RuleSpec {
        regex: Some("secret".to_string()),
        ..spec("lua_rule")
    }];
    let rs = RuleSet::from_sources(Some(("fw.rules", file)), &rules, &[]).unwrap();
    assert_eq!(rs.rule_count(), 2);
    assert_eq!(block(&rs, "DROP TABLE t"), "deny f");
    assert_eq!(block(&rs, "SELECT secret"), "deny lua_rule");
    // Specs' users lines can name the file's rules.
    let users = [UsersSpec {
        patterns: vec!["app@%".to_string()],
        mode: "any".to_string(),
        rules: vec!["f".to_string()],
    }];
    let rs =
        RuleSet::from_sources(Some(("fw.rules", "rule f match type ddl")), &[], &users).unwrap();
    assert_eq!(
        verdict_at(&rs, Mode::Block, "DROP TABLE t", "app", "h", NOON),
        "deny f"
    );
    assert_eq!(
        verdict_at(&rs, Mode::Block, "DROP TABLE t", "other", "h", NOON),
        "allow"
    );
    // One namespace.
    let dup = [RuleSpec {
        no_where_clause: true,
        ..spec("f")
    }];
    let e = RuleSet::from_sources(Some(("fw.rules", "\nrule f match type ddl")), &dup, &[])
        .unwrap_err();
    assert_eq!(
        e.message,
        "rule 'f': duplicate rule name 'f' (first defined at fw.rules:2)"
    );
    // No file at all.
    assert_eq!(
        RuleSet::from_sources(None, &rules, &[])
            .unwrap()
            .rule_count(),
        1
    );
}

// ---------------------------------------------------------------- the example and scale

#[test]
fn example_rule_file_parses_and_works() {
    let text = include_str!("../../../../../examples/firewall.rules");
    let rs = parse(text);
    assert_eq!(rs.rule_count(), 12);
    assert!(rs.needs_classification());
    assert!(rs.needs_time());
    let v = |user: &str, host: &str, sql: &str, now: u32| {
        verdict_at(&rs, Mode::Block, sql, user, host, now)
    };
    assert_eq!(v("anyone", "1.2.3.4", "drop table t", NOON), "deny no_drop");
    assert_eq!(
        v("anyone", "1.2.3.4", "SELECT SLEEP(5)", NOON),
        "deny no_sleep"
    );
    assert_eq!(
        v("anyone", "1.2.3.4", "UPDATE t SET a = 1", NOON),
        "deny no_mass_update"
    );
    assert_eq!(
        v("anyone", "1.2.3.4", "SELECT * FROM hr.salaries", NOON),
        "deny secrets"
    );
    assert_eq!(v("anyone", "1.2.3.4", "SELECT * FROM t", NOON), "allow");
    assert_eq!(
        v("app", "10.0.0.7", "SELECT * FROM t", NOON),
        "deny no_select_star"
    );
    assert_eq!(
        v("app", "192.168.1.7", "CREATE TABLE t (a INT)", NOON),
        "deny no_ddl"
    );
    assert_eq!(
        v("app", "192.168.1.77", "CREATE TABLE t (a INT)", NOON),
        "allow"
    );
    assert_eq!(v("app", "10.0.0.7", "SELECT 'it''s'", NOON), "allow");
    assert_eq!(
        v("app", "10.0.0.7", "SELECT \"it's\"", NOON),
        "deny no_quote"
    );
    assert_eq!(
        v("report1", "10.0.0.7", "SELECT a FROM t", hms(10, 0, 0)),
        "deny reads"
    );
    assert_eq!(
        v("report1", "10.0.0.7", "SELECT a FROM t", hms(12, 30, 0)),
        "allow"
    );
    assert_eq!(
        v(
            "batch",
            "10.0.0.7",
            "DELETE FROM t WHERE a = 1 LIMIT 100000",
            hms(23, 0, 0)
        ),
        "deny no_writes_at_night"
    );
    assert_eq!(
        v(
            "batch",
            "10.0.0.7",
            "DELETE FROM t WHERE a = 1 LIMIT 10",
            hms(23, 0, 0)
        ),
        "allow"
    );
    assert_eq!(
        v(
            "batch",
            "10.0.0.7",
            "DELETE FROM t WHERE a = 1 LIMIT 100000",
            hms(10, 0, 0)
        ),
        "allow"
    );
}

#[test]
fn ten_thousand_regex_rules() {
    let mut text = String::new();
    for i in 0..10_000 {
        text.push_str(&format!("rule r{i} match regex 'secret_table_{i}\\b'\n"));
    }
    let rs = parse(&text);
    assert_eq!(rs.rule_count(), 10_000);
    assert!(!rs.needs_classification());
    let v = |sql: &str| {
        let st = Statement {
            sql: sql.as_bytes(),
            classification: None,
            user: "u",
            host: "h",
            database: None,
            now_seconds_of_day: 0,
        };
        describe(rs.check(Mode::Block, &st))
    };
    assert_eq!(v("SELECT * FROM public_table_1 WHERE id = 4711"), "allow");
    assert_eq!(v("SELECT * FROM secret_table_10000"), "allow");
    assert_eq!(
        v("SELECT * FROM secret_table_4711 WHERE id = 1"),
        "deny r4711"
    );
    assert_eq!(v("SELECT * FROM secret_table_9999"), "deny r9999");
    assert_eq!(v("SELECT * FROM secret_table_0"), "deny r0");
    // Several hits: the first listed matching rule is named.
    assert_eq!(
        v("SELECT * FROM secret_table_77, secret_table_7"),
        "deny r7"
    );
    // Through a users line and in allow mode too.
    text.push_str("users app@% match any rules r5 r6000\n");
    let rs = parse(&text);
    let v = |mode: Mode, user: &str, sql: &str| verdict_at(&rs, mode, sql, user, "h", NOON);
    assert_eq!(
        v(Mode::Block, "app", "SELECT * FROM secret_table_6000"),
        "deny r6000"
    );
    assert_eq!(
        v(Mode::Block, "app", "SELECT * FROM secret_table_6001"),
        "allow"
    );
    assert_eq!(
        v(Mode::Allow, "app", "SELECT * FROM secret_table_5"),
        "allow"
    );
    assert_eq!(
        v(Mode::Allow, "app", "SELECT * FROM secret_table_50"),
        "deny"
    );
}

#[test]
fn type_rules_see_every_statement_of_a_multi_statement() {
    let rs = parse("rule no_ddl match type ddl\n");
    assert_eq!(block(&rs, "SELECT 1; DROP TABLE t"), "deny no_ddl");
    assert_eq!(block(&rs, "SELECT 1; SELECT 2"), "allow");
    let reads = parse("rule reads match type select\n");
    let allow = |sql: &str| verdict_at(&reads, Mode::Allow, sql, "u", "127.0.0.1", NOON);
    assert_eq!(allow("SELECT 1; SELECT 2"), "allow");
    assert_eq!(
        allow("SELECT 1; DROP TABLE t"),
        "deny",
        "a leading SELECT is not a pass"
    );
    let scoped = parse("rule star match regex '\\*' on_queries delete\n");
    assert_eq!(
        block(&scoped, "SELECT * FROM t; DELETE FROM t WHERE a = 1"),
        "deny star"
    );
}
