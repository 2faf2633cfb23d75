//! Python clients: PyMySQL (text protocol, no DEPRECATE_EOF), MariaDB
//! Connector/Python (binary protocol) and a raw protocol client that checks
//! packet shapes with DEPRECATE_EOF on and off. Each script asserts on its
//! own and prints a transcript that must match a run against MariaDB itself.

use crate::support::*;

fn run_both(script: &str, extra: &[&str]) -> String {
    MariaDb::get();
    let t = passthrough();
    let via = t.python(script, extra);
    via.assert_success(&format!("{script} through the target"));
    let direct = Target::direct().python(script, extra);
    direct.assert_success(&format!("{script} against MariaDB directly"));
    assert_eq!(via.stdout, direct.stdout, "{script}: transcripts differ");
    via.stdout
}

#[test]
fn deprecate_eof_off_pymysql_rows_and_empty_result_sets() {
    let out = run_both("pymysql_basic.py", &[]);
    assert!(out.contains("client asked DEPRECATE_EOF: False"), "{out}");
    assert!(out.contains("empty: () columns ['n', 'c']"), "{out}");
    assert!(out.contains("streamed: 20000 rows"), "{out}");
}

#[test]
fn pymysql_multi_statements_and_call_nextset() {
    let out = run_both("pymysql_multi.py", &[]);
    assert!(
        out.contains("three sets: [((1,),), ((2, 3),), (('x',),)]"),
        "{out}"
    );
}

#[test]
fn pymysql_sql_level_prepare_execute() {
    let out = run_both("pymysql_sql_prepare.py", &[]);
    assert!(out.contains("EXECUTE s USING @a, @b: 3 then 42"), "{out}");
}

#[test]
fn mariadb_connector_python_binary_protocol() {
    let out = run_both("mariadb_connector.py", &[]);
    assert!(out.contains("executemany: rowcount 200"), "{out}");
    assert!(out.contains("range 199..300: 2 rows"), "{out}");
}

#[test]
fn raw_protocol_deprecate_eof_off_packet_shapes() {
    let out = run_both("raw_protocol.py", &["--deprecate-eof", "off"]);
    assert!(
        out.contains("rows: ['cols=2 2 defs EOF rows=2 EOF"),
        "{out}"
    );
}

#[test]
fn raw_protocol_deprecate_eof_on_packet_shapes() {
    let out = run_both("raw_protocol.py", &["--deprecate-eof", "on"]);
    assert!(
        out.contains("rows: ['cols=2 2 defs rows=2 OK(0xFE)"),
        "{out}"
    );
}
