//! Operating dpm outside the admin API: what the startup file prints while it loads is
//! shown once whatever the number of workers.

use crate::support::*;
use std::time::Duration;

#[test]
fn what_the_startup_file_prints_while_loading_is_shown_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("chatty.lua");
    std::fs::write(
        &file,
        "print('loading')\n\
         core.register_init(function() print('init ran') end)\n\
         core.register_task(function() print('task on worker ' .. dpm.stats().worker) end, { per_worker = true })\n\
         listener = dpm.listener('127.0.0.1', tonumber(os.getenv('PORT')))\n",
    )
    .unwrap();
    let port = free_port();
    let dpm = Dpm::builder(&file)
        .env("PORT", port)
        .arg("--threads")
        .arg("2")
        .spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    dpm.wait_for_line("task on worker 0", Duration::from_secs(5));
    dpm.wait_for_line("task on worker 1", Duration::from_secs(5));
    let out = dpm.stdout();
    assert_eq!(out.matches("loading").count(), 1, "{out}");
    assert_eq!(out.matches("init ran").count(), 1, "{out}");
}
