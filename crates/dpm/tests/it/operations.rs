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

/// `dpm --check FILE` with `env`: (exit code, stdout, stderr).
fn check(file: &std::path::Path, env: &[(&str, String)]) -> (i32, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_dpm"));
    cmd.arg("--check")
        .arg(file)
        .current_dir(workspace_root())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let out = run_bounded(&mut cmd, None, Duration::from_secs(30));
    (out.code().unwrap_or(-1), out.stdout, out.stderr)
}

#[test]
fn every_example_checks_ok_without_a_server_anywhere() {
    // Nothing listens on these ports: a check connects nowhere, so it cannot tell.
    let nowhere = format!("127.0.0.1:{}", free_port());
    let env = [
        ("DPM_BACKEND", nowhere.clone()),
        ("DPM_PRIMARY", nowhere.clone()),
        ("DPM_REPLICA", nowhere.clone()),
        ("DPM_BACKEND_USER", "app".to_string()),
        ("DPM_BACKEND_PASSWORD", "secret".to_string()),
    ];
    let mut checked = 0;
    for entry in std::fs::read_dir(workspace_root().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "lua") {
            let (code, out, err) = check(&path, &env);
            assert_eq!(code, 0, "{}: {out}{err}", path.display());
            assert!(out.contains(": OK"), "{out}");
            checked += 1;
        }
    }
    assert!(checked >= 10, "{checked} examples");
}

#[test]
fn a_check_binds_nothing_and_reports_the_first_problem_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    // Ports in use by someone else: a start would fail, a check binds neither.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let good = write(
        "good.lua",
        &format!(
            "local db1 = dpm.server{{ name = 'db1', address = '127.0.0.1:1' }}\n\
             dpm.monitor{{ name = 'mon', module = 'mariadbmon', servers = {{ db1 }},\n\
                           options = {{ monitor_user = 'm', interval = 100 }} }}\n\
             local app = dpm.service{{ name = 'app', router = 'readwritesplit', servers = {{ db1 }} }}\n\
             listener = assert(dpm.listener('127.0.0.1', {port}))\n\
             listener:serve(app)\n\
             dpm.admin{{ listen = '127.0.0.1:{port}' }}\n\
             backend = dpm.connect('127.0.0.1', 1)\n\
             core.register_task(function() print('a task ran') end)\n"
        ),
    );
    let (code, out, err) = check(&good, &[]);
    assert_eq!(
        (code, out.trim_end()),
        (0, format!("{}: OK", good.display()).as_str()),
        "{err}"
    );
    assert!(!out.contains("a task ran"));

    let cases = [
        ("syntax.lua", "local x = \nlocal y = 2\n", "syntax.lua:2:"),
        (
            "module.lua",
            "local db1 = dpm.server{ name = 'db1', address = '127.0.0.1:1' }\n\
             dpm.service{ name = 'app', router = 'roundrobin', servers = { db1 } }\n",
            "module.lua:2: ",
        ),
        (
            "option.lua",
            "local db1 = dpm.server{ name = 'db1', address = '127.0.0.1:1' }\n\
             dpm.service{ name = 'app', router = 'readconnroute', servers = { db1 },\n\
                          options = { router_options = 'fastest' } }\n",
            "option.lua:2: ",
        ),
        (
            "type.lua",
            "local db1 = dpm.server{ name = 'db1', address = '127.0.0.1:1' }\n\
             dpm.monitor{ name = 'mon', module = 'mariadbmon', servers = { db1 },\n\
                          options = { monitor_user = 'm', interval = 'often' } }\n",
            "type.lua:2: ",
        ),
        (
            "cert.lua",
            "listener = dpm.listener('127.0.0.1', 1, { tls = { cert = '/nonexistent/server.pem', key = '/nonexistent/server.key' } })\n",
            "cert.lua:1: ",
        ),
    ];
    for (name, text, expected) in cases {
        let file = write(name, text);
        let (code, out, err) = check(&file, &[]);
        assert_eq!(code, 1, "{name}: {out}{err}");
        let line = err.lines().next().unwrap_or_default();
        assert!(line.contains(expected), "{name}: {err}");
        assert!(!out.contains("OK"), "{out}");
    }
    drop(taken);
}

/// Runs `program args` to completion (bounded), asserting success; its output.
fn must(program: &str, args: &[&str], what: &str) -> ProcOutput {
    let out = run_bounded(
        std::process::Command::new(program)
            .args(args)
            .current_dir(workspace_root()),
        None,
        Duration::from_secs(300),
    );
    out.assert_success(what);
    out
}

/// The Debian package, end to end: built with cargo-deb from this build's binary,
/// installed with dpkg, the service started as its systemd unit says (this machine runs
/// no systemd: the unit's `EnvironmentFile`, `ExecStartPre` and `ExecStart` are carried
/// out as systemd would), reloaded with its `ExecReload` signal, stopped, and the package
/// purged.
#[test]
fn the_debian_package_installs_and_its_service_serves() {
    let dir = tempfile::tempdir().unwrap();
    let deb = dir.path().join("dpm.deb");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    // The binary this test run built (the dev profile: `--no-build`), compressed fast.
    must(
        &cargo,
        &[
            "deb",
            "-p",
            "dpm",
            "--no-build",
            "--profile",
            "dev",
            "--fast",
            "--output",
            deb.to_str().unwrap(),
        ],
        "cargo deb (scripts/install-deps.sh installs cargo-deb)",
    );
    must("dpkg", &["-i", deb.to_str().unwrap()], "dpkg -i (as root)");
    let installed = || {
        let version = must("/usr/bin/dpm", &["--version"], "the installed dpm");
        assert!(version.stdout.starts_with("dpm "), "{}", version.stdout);
        let unit = std::fs::read_to_string("/usr/lib/systemd/system/dpm.service")
            .expect("the systemd unit");
        assert!(unit.contains("LimitNOFILE="), "{unit}");
        assert!(
            unit.contains("ExecReload=/bin/kill -HUP $MAINPID"),
            "{unit}"
        );
        let startup =
            std::fs::read_to_string("/etc/dpm/startup.lua").expect("/etc/dpm/startup.lua");
        assert!(startup.contains("passthrough"), "{startup}");
        assert!(std::path::Path::new("/usr/share/dpm/lua/dpml.lua").exists());
        must(
            "systemd-analyze",
            &["verify", "/usr/lib/systemd/system/dpm.service"],
            "systemd-analyze verify",
        );

        // The service, as systemd would start it.
        let port = free_port();
        std::fs::write(
            "/etc/default/dpm",
            format!(
                "DPM_LISTEN_PORT={port}\nDPM_BACKEND_PORT={}\n",
                MariaDb::get().port
            ),
        )
        .unwrap();
        let line = |key: &str| {
            unit.lines()
                .find_map(|l| l.strip_prefix(key))
                .unwrap_or_else(|| panic!("no {key} in the unit"))
                .to_string()
        };
        let env: Vec<(String, String)> = std::fs::read_to_string("/etc/default/dpm")
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let run = |command: &str| {
            let mut words = command.split_whitespace();
            let mut cmd = std::process::Command::new(words.next().unwrap());
            cmd.args(words)
                .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .current_dir("/etc/dpm");
            cmd
        };
        let check = run_bounded(
            &mut run(&line("ExecStartPre=")),
            None,
            Duration::from_secs(30),
        );
        check.assert_success("ExecStartPre (dpm --check)");
        let mut service = run(&line("ExecStart="))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let served = try_wait_until(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        let query = || {
            Cli::new(port)
                .user(USER)
                .password(Some(PASSWORD))
                .run("SELECT 'through the packaged dpm' AS v")
        };
        let first = served.map(|_| query());
        // ExecReload: SIGHUP to the main process; it goes on serving.
        unsafe { libc::kill(service.id() as i32, libc::SIGHUP) };
        std::thread::sleep(Duration::from_millis(300));
        let after_reload = query();
        unsafe { libc::kill(service.id() as i32, libc::SIGTERM) };
        let status = service.wait().unwrap();
        let mut stderr = String::new();
        use std::io::Read;
        let _ = service.stderr.take().unwrap().read_to_string(&mut stderr);
        let first = first.unwrap_or_else(|| panic!("the service never listened: {stderr}"));
        first.assert_success("a query through the service");
        assert_eq!(first.stdout, "v\nthrough the packaged dpm\n");
        after_reload.assert_success("a query after the reload");
        assert!(status.success(), "stopped with {status}: {stderr}");
    };
    let outcome = std::panic::catch_unwind(installed);
    let _ = std::fs::remove_file("/etc/default/dpm");
    must("dpkg", &["--purge", "dpm"], "dpkg --purge");
    assert!(!std::path::Path::new("/usr/bin/dpm").exists());
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn every_log_line_of_a_session_says_whose_it_is_as_text_and_as_json() {
    for format in ["text", "json"] {
        let port = free_port();
        let dpm = Dpm::builder("crates/dpm/tests/lua/filter_errors.lua")
            .env("DPM_LISTEN_PORT", port)
            .env("DPM_BACKEND", format!("127.0.0.1:{}", MariaDb::get().port))
            .arg("--log-format")
            .arg(format)
            .spawn();
        dpm.wait_until_listening(port, LISTEN_TIMEOUT);
        let out = Cli::new(port)
            .user(USER)
            .password(Some(PASSWORD))
            .run("SELECT 'boom'");
        assert!(!out.success());
        let line = dpm.wait_for_line("boom requested", Duration::from_secs(5));
        if format == "text" {
            assert!(
                line.contains(" session=") && line.contains(" client=127.0.0.1:"),
                "{line}"
            );
            assert!(line.trim_end().ends_with(&format!("user={USER}")), "{line}");
        } else {
            let json: serde_json::Value =
                serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("{e}: {line}"));
            assert_eq!(json["session"]["user"], USER, "{json}");
            assert!(json["session"]["id"].as_u64().unwrap() > 0, "{json}");
            assert!(
                json["session"]["client"]
                    .as_str()
                    .unwrap()
                    .starts_with("127.0.0.1:"),
                "{json}"
            );
            assert_eq!(json["level"], "ERROR", "{json}");
        }
    }
}
