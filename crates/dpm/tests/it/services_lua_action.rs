//! Actions in a service's chain (issue 10, point 4): `core.register_action(name, fn)` and
//! `"lua.NAME"` in `dpm.service{ filters }`, with the seed's txn over a statement.

use crate::support::*;
use std::time::{Duration, Instant};

fn acted() -> (Dpm, u16) {
    let (builder, port) = Dpm::in_front_of_mariadb("crates/dpm/tests/lua/lua_action.lua");
    let dpm = builder.arg("--threads").arg("1").spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    (dpm, port)
}

#[test]
fn an_action_answers_rewrites_finishes_and_passes_statements() {
    let (dpm, port) = acted();
    let run = |sql: &str| {
        let out = Cli::new(port).arg("-N").run(sql);
        out.assert_success(sql);
        out.stdout.trim().to_string()
    };
    assert_eq!(run("SELECT 'hello'"), "hello from Lua");
    assert_eq!(run("SELECT 'rewrite'"), "rewritten");
    assert_eq!(run("SELECT 'append'"), "append\tmore");
    assert_eq!(run("SELECT 'untouched'"), "untouched");
    // The private value lasts for the session: the third statement counts 3.
    assert_eq!(
        run("SELECT 1; SELECT 2; SELECT 'count'"),
        "1\n2\nstatements=3"
    );
    // finish: an OK; the server, which would refuse this SQL, never saw it.
    let out = Cli::new(port)
        .arg("-N")
        .run("FINISH ME; SELECT 'after finish'");
    out.assert_success("finish");
    assert_eq!(out.stdout.trim(), "after finish");
    assert!(!dpm.output().contains("not reached"), "{}", dpm.output());
    // Without the action the server refuses it.
    let direct = Cli::new(MariaDb::get().port).run("FINISH ME");
    assert!(direct.stderr.contains("ERROR 1064"), "{direct}");
}

#[test]
fn a_failing_action_answers_an_error_and_close_ends_the_session() {
    let (dpm, port) = acted();
    let out = Cli::new(port).arg("-N").run("SELECT 'fail'");
    assert!(
        out.stderr.contains("ERROR 1105 (HY000)")
            && out.stderr.contains("filter 'lua.audit' failed: ")
            && out.stderr.contains("lua_action.lua:")
            && out.stderr.contains("failing on purpose"),
        "{out}"
    );
    dpm.wait_for_line("ERROR: action 'lua.audit': ", Duration::from_secs(10));
    // close: the client loses its connection; its next statement is never run.
    let out = Cli::new(port)
        .arg("-N")
        .run("SELECT 'close'; SELECT 'never'");
    assert!(!out.status.success(), "{out}");
    assert!(!out.stdout.contains("never"), "{out}");
    assert!(!dpm.output().contains("not reached"), "{}", dpm.output());
    // Other sessions go on.
    let again = Cli::new(port).arg("-N").run("SELECT 'fine'");
    again.assert_success("after close");
    assert_eq!(again.stdout.trim(), "fine");
}

#[test]
fn a_napping_action_holds_up_only_its_own_session() {
    let (_dpm, port) = acted();
    let napping = std::thread::spawn(move || {
        let started = Instant::now();
        let out = Cli::new(port).arg("-N").run("SELECT 'nap'");
        out.assert_success("nap");
        started.elapsed()
    });
    std::thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    let out = Cli::new(port).arg("-N").run(&"SELECT 1;".repeat(50));
    out.assert_success("the other session");
    let other = started.elapsed();
    assert!(napping.join().unwrap() >= Duration::from_millis(300));
    assert!(
        other < Duration::from_millis(300),
        "50 statements of another session took {other:?} while one action slept 300 ms"
    );
}

#[test]
fn actions_are_registered_before_a_service_names_them() {
    assert_start_fails_at_line_2(
        "dpm.service{ name = 'x', router = 'readconnroute', servers = { s }, filters = { 'lua.nope' } }",
        "dpm.service 'x': no action 'nope' (register it with core.register_action(\"nope\", fn) before the service)",
    );
    assert_start_fails_at_line_2(
        "dpm.service{ name = 'x', router = 'readconnroute', servers = { s }, filters = { 'audit' } }",
        "dpm.service 'x': filters must be dpm.filter objects or \"lua.NAME\" actions, not the string 'audit'",
    );
    assert_start_fails_at_line_2(
        "core.register_action('a b', function() end)",
        "core.register_action: 'a b' is not a name (letters, digits, '_' and '-')",
    );
    assert_start_fails_at_line_2(
        "core.register_action('a', 42)",
        "core.register_action: the second argument must be a function, not a integer",
    );
}

#[test]
fn fetches_and_converters_drive_a_routing_hint_a_filter_match_and_qla_fields() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("gold.log");
    let (builder, port) = Dpm::in_front_of_mariadb("crates/dpm/tests/lua/fetches.lua");
    let dpm = builder
        .env("DPM_QLA_FILE", log.display())
        .arg("--threads")
        .arg("1")
        .spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    let run = |sql: &str| Cli::new(port).arg("-N").run(sql);
    // The routing hint: "DB" lowered to its own server passes, no hint passes, another
    // server reaches the router, which refuses it by name.
    for sql in ["SELECT 'plain'", "SELECT 'nowhere'"] {
        let out = run(sql);
        out.assert_success(sql);
    }
    let out = run("SELECT 'ELSEWHERE'");
    assert!(
        out.stderr.contains("ERROR 1105")
            && out.stderr.contains("cannot route to server 'elsewhere'"),
        "{out}"
    );
    // The filter match on a fetch's value, and the fields.
    run("SELECT 'gold', 'tenant=acme'").assert_success("gold");
    run("SELECT 'basic', 'tenant=other'").assert_success("basic");
    run("SELECT 'gold', 'no tenant'").assert_success("gold without a tenant");
    let lines = wait_until("two gold lines", Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        (text.lines().count() >= 2).then_some(text)
    });
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].contains(r#""sql":"SELECT 'gold', 'tenant=acme'""#)
            && lines[0].contains(r#""tenant":"ACME""#)
            && lines[0].contains(r#""waits":null"#),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains(r#""tenant":null"#), "{}", lines[1]);
    // A fetch may not wait: its error names the function and the context.
    let refused = dpm.wait_for_line("ERROR: fetch 'lua.waits': ", Duration::from_secs(10));
    assert!(
        refused.contains("fetches.lua:")
            && refused.contains("core.msleep waits, and cannot be called in a fetch or converter"),
        "{refused}"
    );
}

#[test]
fn an_expression_names_registered_fetches_and_converters() {
    assert_start_fails_at_line_2(
        "dpm.service{ name = 'x', router = 'readconnroute', servers = { s }, route = 'lua.nope' }",
        "dpm.service 'x': field 'route': no fetch 'lua.nope' (register it with core.register_fetches(\"nope\", fn) first)",
    );
    assert_start_fails_at_line_2(
        "core.register_fetches('f', function() end) dpm.service{ name = 'x', router = 'readconnroute', servers = { s }, route = 'lua.f,lua.c' }",
        "dpm.service 'x': field 'route': no converter 'lua.c' (register it with core.register_converters(\"c\", fn) first)",
    );
    assert_start_fails_at_line_2(
        "dpm.filter{ name = 'q', module = 'qla', options = { file = '/dev/null', match_on = 'tier' } }",
        "option 'match_on': 'tier' is not an expression (lua.FETCH, then any ,lua.CONVERTER",
    );
    assert_start_fails_at_line_2(
        "core.register_converters('c', 'not a function')",
        "core.register_converters: the second argument must be a function, not a string",
    );
}
