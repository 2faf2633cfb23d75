//! The Lua runtime of HAProxy's model: init functions and tasks on several workers
//! (once per process, or per worker), a task that fails, the context rules (what waits
//! cannot run while the startup file loads), and `core`'s log, time and file functions.

use crate::support::*;
use std::time::Duration;

#[test]
fn tasks_run_once_per_process_or_per_worker_and_a_failing_one_harms_nothing() {
    let db = MariaDb::get();
    let dir = tempfile::tempdir().unwrap();
    let map = dir.path().join("servers.map");
    std::fs::write(
        &map,
        "# name address\ndb1 127.0.0.1:3306\n\ndb2   10.0.0.2:3306\n",
    )
    .unwrap();
    let acl = dir.path().join("users.acl");
    std::fs::write(&acl, "app\nreport\n# not a user\n").unwrap();
    let port = free_port();
    let dpm = Dpm::builder("crates/dpm/tests/lua/tasks.lua")
        .env("DPM_LISTEN_HOST", "127.0.0.1")
        .env("DPM_LISTEN_PORT", port)
        .env("DPM_BACKEND_HOST", "127.0.0.1")
        .env("DPM_BACKEND_PORT", db.port)
        .env("DPM_MAP_FILE", path_str(&map))
        .env("DPM_ACL_FILE", path_str(&acl))
        .arg("--threads")
        .arg("2")
        .spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    let wait = Duration::from_secs(10);
    for w in 0..2 {
        dpm.wait_for_line(
            &format!("init ran on worker {w}, map says 127.0.0.1:3306"),
            wait,
        );
        dpm.wait_for_line(&format!("task per worker: worker {w}"), wait);
        dpm.wait_for_line(&format!("a warning from worker {w}'s task"), wait);
    }
    dpm.wait_for_line(
        "task once: worker 0, round 3, acl has app=true, now true",
        wait,
    );
    dpm.wait_for_line("task started by a task: worker 0", wait);
    let failed = dpm.wait_for_line("ERROR: task: ", wait);
    assert!(
        failed.contains("tasks.lua:") && failed.contains("a task that fails on purpose"),
        "{failed}"
    );
    // Both workers still serve.
    for _ in 0..6 {
        let out = Cli::new(port).arg("-N").run("SELECT 1");
        out.assert_success("served after a task failed");
    }
    let output = dpm.output();
    assert_eq!(
        output.matches("task once:").count(),
        1,
        "once per process:\n{output}"
    );
    assert!(
        !output.contains("task started by a task: worker 1"),
        "{output}"
    );
    assert_eq!(output.matches("ERROR: task: ").count(), 1, "{output}");
}

#[test]
fn what_waits_is_refused_while_the_startup_file_loads_by_name_and_context() {
    assert_start_fails_at_line_2(
        "core.msleep(10)",
        "core.msleep waits, and cannot be called in the body context (the startup file as it loads)",
    );
    assert_start_fails_at_line_2(
        "core.register_init(function() core.sleep(1) end)",
        "core.sleep waits, and cannot be called in the init context",
    );
    assert_start_fails_at_line_2(
        "core.register_task(42)",
        "core.register_task: the argument must be a function, not a integer",
    );
    assert_start_fails_at_line_2(
        "core.load_map('m', '/nonexistent/servers.map')",
        "core.load_map: cannot read /nonexistent/servers.map",
    );
    assert_start_fails_at_line_2(
        "core.register_init(function() error('init says no') end)",
        "init says no",
    );
}
