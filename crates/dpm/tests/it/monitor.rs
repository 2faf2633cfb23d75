//! The mariadbmon monitor against a real GTID primary and replica (and a server that is
//! down): roles found and published to readconnroute, server events to Lua,
//! `dpm.servers()`, diagnostics.

use crate::support::*;
use std::time::Duration;

fn cli(port: u16) -> Cli {
    Cli::new(port).user(USER).password(Some(PASSWORD)).db(DB)
}

/// dpm on tests/lua/topology.lua in front of `set` (db1 its primary, db2 and db3 its
/// replicas), with `flags` (DPM_AUTO_FAILOVER, DPM_AUTO_REJOIN); returns it and its port.
fn topology_dpm(set: &ReplicaSet, flags: &[(&str, &str)]) -> (Dpm, u16) {
    let port = free_port();
    let mut builder = Dpm::builder("crates/dpm/tests/lua/topology.lua")
        .env("DPM_LISTEN_PORT", port)
        .env("DPM_DB1", format!("127.0.0.1:{}", set.primary.port))
        .env("DPM_DB2", format!("127.0.0.1:{}", set.replicas[0].port))
        .env("DPM_DB3", format!("127.0.0.1:{}", set.replicas[1].port))
        .env("DPM_MONITOR_USER", USER)
        .env("DPM_MONITOR_PASSWORD", PASSWORD)
        .env("DPM_REPL_USER", REPL_USER)
        .env("DPM_REPL_PASSWORD", REPL_PASSWORD);
    for (key, value) in flags {
        builder = builder.env(*key, value);
    }
    let dpm = builder.spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    (dpm, port)
}

#[test]
fn the_monitor_finds_roles_raises_events_and_readconnroute_follows_it() {
    let pair = SharedReplication::get();
    let port = free_port();
    let dpm = Dpm::builder("crates/dpm/tests/lua/monitor_admin.lua")
        .env("DPM_LISTEN_PORT", port)
        .env("DPM_PRIMARY", format!("127.0.0.1:{}", pair.primary.port))
        .env("DPM_REPLICA", format!("127.0.0.1:{}", pair.replica.port))
        .env("DPM_DEAD", format!("127.0.0.1:{}", free_port()))
        .env("DPM_MONITOR_USER", USER)
        .env("DPM_MONITOR_PASSWORD", PASSWORD)
        .spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    // The first check corrects the declared roles and reports the dead server.
    let wait = Duration::from_secs(10);
    dpm.wait_for_line("server event server_up db1 role=primary", wait);
    dpm.wait_for_line("server event new_primary db1 role=primary", wait);
    dpm.wait_for_line("server event server_up db2 role=replica", wait);
    dpm.wait_for_line("server event server_down db3", wait);
    // readconnroute's "primary" is the server the monitor found, not the declared one.
    let out = cli(port).arg("--skip-column-names").run("SELECT @@port");
    out.assert_success("routed to the primary");
    assert_eq!(out.stdout.trim(), pair.primary.port.to_string());
    let out = cli(port).arg("--skip-column-names").run("SHOW DPM SERVERS");
    out.assert_success("dpm.servers()");
    let rows: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split('\t').collect())
        .collect();
    assert_eq!(rows[0][..3], ["db1", "primary", "up"], "{}", out.stdout);
    assert_eq!(rows[0][3], "0", "a primary has no lag: {}", out.stdout);
    assert_eq!(rows[0][5], "0", "read_only is false");
    assert_eq!(rows[1][..3], ["db2", "replica", "up"], "{}", out.stdout);
    assert!(
        rows[1][3].parse::<u64>().is_ok(),
        "a replica's lag is known: {}",
        out.stdout
    );
    assert_ne!(rows[0][4], rows[1][4], "two server ids");
    assert_eq!(rows[2][2], "down", "{}", out.stdout);
    let out = cli(port).arg("--skip-column-names").run("SHOW DPM MONITOR");
    let row: Vec<&str> = out.stdout.trim().split('\t').collect();
    assert_eq!(row[0], "mariadbmon");
    assert!(row[1].parse::<u64>().unwrap() >= 1, "{}", out.stdout);
    assert_eq!(row[2], "3");
}

#[test]
fn a_monitor_without_credentials_or_with_unknown_options_stops_the_start() {
    for (line, expected) in [
        ("dpm.monitor{ name = 'm', module = 'mariadbmon', servers = { s } }", "option 'monitor_user' is required"),
        ("dpm.monitor{ name = 'm', module = 'galeramon', servers = { s } }", "unknown monitor module 'galeramon' (known: mariadbmon)"),
        ("dpm.monitor{ name = 'm', module = 'mariadbmon', servers = { s }, options = { monitor_user = 'u', interval = 'fast' } }", "option 'interval' must be integer (milliseconds), not 'fast'"),
    ] {
        assert_start_fails_at_line_2(line, expected);
    }
}

#[test]
fn the_monitor_example_routes_writes_to_the_primary_it_found() {
    let pair = SharedReplication::get();
    let port = free_port();
    // The example declares no roles: only the monitor can tell which is the primary.
    // Listed replica first, so that a router ignoring the monitor would pick it.
    let dpm = Dpm::builder("examples/monitor.lua")
        .env("DPM_LISTEN_PORT", port)
        .env("DPM_PRIMARY", format!("127.0.0.1:{}", pair.replica.port))
        .env("DPM_REPLICA", format!("127.0.0.1:{}", pair.primary.port))
        .env("DPM_MONITOR_USER", USER)
        .env("DPM_MONITOR_PASSWORD", PASSWORD)
        .spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    dpm.wait_for_line("server event new_primary db2", Duration::from_secs(10));
    let out = cli(port).arg("--skip-column-names").run("SELECT @@port");
    out.assert_success("through the example");
    assert_eq!(out.stdout.trim(), pair.primary.port.to_string());
}

#[test]
fn auto_failover_promotes_the_furthest_replica_and_points_the_other_at_it() {
    // Its own servers: this test kills a primary.
    let set = ReplicaSet::start(2, 21);
    set.primary.direct_exec(&format!(
        "CREATE TABLE {DB}.failover (id INT PRIMARY KEY); INSERT INTO {DB}.failover VALUES (1);"
    ));
    // New sessions wait up to 8 s for a primary instead of being refused.
    let (dpm, port) = topology_dpm(
        &set,
        &[("DPM_AUTO_FAILOVER", "1"), ("DPM_DELAYED_RETRY", "8000")],
    );
    let wait = Duration::from_secs(15);
    dpm.wait_for_line("server event new_primary db1", wait);
    // Both replicas have the row before the primary dies.
    for r in &set.replicas {
        let has = try_wait_until(wait, || {
            let n = r.direct_exec(&format!("SELECT COUNT(*) FROM {DB}.failover"));
            (n.trim() == "1").then_some(())
        });
        assert!(has.is_some(), "replica caught up");
    }
    set.primary.kill();
    // At once, before the monitor noticed: the session waits for the failover, then its
    // write runs on the new primary — the client sees no error.
    let out = cli(port)
        .arg("--skip-column-names")
        .run("INSERT INTO failover VALUES (2); SELECT @@port");
    out.assert_success("a write while the failover runs");
    dpm.wait_for_line("server event lost_primary db1", wait);
    let promoted = dpm.wait_for_line("failover: primary db1 down for 3 checks; promoting", wait);
    let (name, new, other) = if promoted.contains("promoting db2") {
        ("db2", &set.replicas[0], &set.replicas[1])
    } else {
        ("db3", &set.replicas[1], &set.replicas[0])
    };
    dpm.wait_for_line(&format!("server event new_primary {name}"), wait);
    // That write landed on the new primary, and reaches the other replica.
    assert_eq!(out.stdout.trim(), new.port.to_string());
    let replicated = try_wait_until(wait, || {
        let n = other.direct_exec(&format!("SELECT COUNT(*) FROM {DB}.failover"));
        (n.trim() == "2").then_some(())
    });
    assert!(
        replicated.is_some(),
        "the other replica follows the new primary: {}",
        other.direct_exec("SHOW SLAVE STATUS\\G")
    );
    assert_eq!(
        new.direct_exec("SELECT @@read_only").trim(),
        "0",
        "the promoted server takes writes"
    );
}

#[test]
fn a_switchover_from_lua_moves_the_primary_role_without_losing_a_write() {
    // Its own servers: this test changes the topology.
    let set = ReplicaSet::start(2, 31);
    set.primary.direct_exec(&format!(
        "CREATE TABLE {DB}.switched (id INT PRIMARY KEY); INSERT INTO {DB}.switched VALUES (1);"
    ));
    let (dpm, port) = topology_dpm(&set, &[]);
    let wait = Duration::from_secs(15);
    dpm.wait_for_line("server event server_up db3", wait);
    dpm.wait_for_line("server event new_primary db1", wait);
    let ask = |sql: &str| cli(port).arg("--skip-column-names").run(sql).stdout;
    assert_eq!(
        ask("SWITCHOVER TO db9").trim(),
        "nil\tno monitor watches a server 'db9'"
    );
    assert_eq!(
        ask("SWITCHOVER TO db1").trim(),
        "nil\tdb1 is already the primary"
    );
    assert_eq!(ask("SWITCHOVER TO db2").trim(), "true\tNULL");
    dpm.wait_for_line("server event new_primary db2", wait);
    dpm.wait_for_line("server event lost_primary db1", wait);
    // Writes go to db2 now, and the old primary and the other replica follow it.
    let out = cli(port)
        .arg("--skip-column-names")
        .run("INSERT INTO switched VALUES (2); SELECT @@port");
    out.assert_success("a write after the switchover");
    assert_eq!(out.stdout.trim(), set.replicas[0].port.to_string());
    for follower in [&set.primary, &set.replicas[1]] {
        let has = try_wait_until(wait, || {
            let n = follower.direct_exec(&format!("SELECT COUNT(*) FROM {DB}.switched"));
            (n.trim() == "2").then_some(())
        });
        assert!(
            has.is_some(),
            "{}",
            follower.direct_exec("SHOW SLAVE STATUS\\G")
        );
    }
    assert_eq!(set.primary.direct_exec("SELECT @@read_only").trim(), "1");
}

#[test]
fn auto_rejoin_makes_a_stray_writable_server_a_replica_of_the_primary() {
    // Its own servers: this test changes the topology.
    let set = ReplicaSet::start(2, 41);
    let (dpm, port) = topology_dpm(&set, &[("DPM_AUTO_REJOIN", "1")]);
    let wait = Duration::from_secs(15);
    dpm.wait_for_line("server event new_primary db1", wait);
    // db3 leaves replication and takes writes: what an old primary coming back after a
    // failover looks like.
    let stray = &set.replicas[1];
    stray.direct_exec("STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = OFF;");
    dpm.wait_for_line(
        "rejoin: db3 was writable beside primary db1; it now replicates from it",
        wait,
    );
    assert_eq!(stray.direct_exec("SELECT @@read_only").trim(), "1");
    // Writes through dpm still go to db1, and reach db3 again.
    let out = cli(port).arg("--skip-column-names").run(
        "CREATE TABLE IF NOT EXISTS rejoined (id INT PRIMARY KEY); INSERT INTO rejoined VALUES (1); SELECT @@port",
    );
    out.assert_success("a write after the rejoin");
    assert_eq!(out.stdout.trim(), set.primary.port.to_string());
    let has = try_wait_until(wait, || {
        let n = stray
            .try_direct_exec(&format!("SELECT COUNT(*) FROM {DB}.rejoined"))
            .ok()?;
        (n.trim() == "1").then_some(())
    });
    assert!(
        has.is_some(),
        "{}",
        stray.direct_exec("SHOW SLAVE STATUS\\G")
    );
    // db2 pointed at db3 (as a replica coming back pointing at an old primary would be):
    // pointed back at db1.
    let misdirected = &set.replicas[0];
    misdirected.direct_exec(&format!(
        "STOP SLAVE; CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = {}; START SLAVE;",
        stray.port
    ));
    // (Between its STOP SLAVE and START SLAVE a check may find it not replicating at
    // all: rejoined either way.)
    dpm.wait_for_line("rejoin: db2 ", wait);
    let back = try_wait_until(wait, || {
        // Batch output, values only: state, Master_Host, Master_User, Master_Port, ...
        let status = misdirected.direct_exec("SHOW SLAVE STATUS\\G");
        let port = status.lines().nth(4).map(str::trim).map(String::from);
        (port == Some(set.primary.port.to_string())).then_some(())
    });
    assert!(
        back.is_some(),
        "{}",
        misdirected.direct_exec("SHOW SLAVE STATUS\\G")
    );
}
