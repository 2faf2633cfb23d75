//! The dpm process under test, and the [`Target`] a test talks to.

use super::{free_port, run_bounded, workspace_root, MariaDb};
use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long to wait for a freshly started dpm to listen.
pub const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);

/// Which stream a captured line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

#[derive(Default)]
struct Lines {
    lines: Vec<(Stream, String)>,
    /// Reader threads still running (0 = both streams closed).
    open: usize,
}

type Shared = Arc<(Mutex<Lines>, Condvar)>;

/// How to start dpm: `Dpm::builder("examples/x.lua").env("K", "V").spawn()`.
pub struct DpmBuilder {
    startfile: PathBuf,
    env: Vec<(String, String)>,
    args: Vec<String>,
    verbose: Option<u32>,
    current_dir: Option<PathBuf>,
    fd_limit: Option<u64>,
}

impl DpmBuilder {
    /// Sets an environment variable for the dpm process.
    pub fn env(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.env.push((key.into(), value.to_string()));
        self
    }
    /// Runs `startfile` instead of the one the builder was made with.
    pub fn startfile(mut self, startfile: impl AsRef<Path>) -> Self {
        self.startfile = startfile.as_ref().to_path_buf();
        self
    }
    /// Adds a command-line argument after `--startfile F --verbose N`.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }
    /// `--verbose N` (default 1); `None` leaves the flag out.
    pub fn verbose(mut self, level: Option<u32>) -> Self {
        self.verbose = level;
        self
    }
    /// Runs dpm in `dir` instead of the workspace root.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.current_dir = Some(dir.into());
        self
    }
    /// Starts dpm with its descriptor limit (soft and hard) lowered to `n`.
    pub fn fd_limit(mut self, n: u64) -> Self {
        self.fd_limit = Some(n);
        self
    }
    /// Starts the process (does not wait for anything).
    pub fn spawn(self) -> Dpm {
        let exe = env!("CARGO_BIN_EXE_dpm");
        let mut cmd = Command::new(exe);
        cmd.current_dir(self.current_dir.clone().unwrap_or_else(workspace_root))
            .arg("--startfile")
            .arg(&self.startfile);
        if let Some(v) = self.verbose {
            cmd.arg("--verbose").arg(v.to_string());
        }
        // One worker unless a test asks for more: startfiles then run once, as the
        // original's single Lua state did (tests read its output line by line).
        cmd.args(&self.args)
            .env("DPM_THREADS", "1")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(n) = self.fd_limit {
            use std::os::unix::process::CommandExt;
            // SAFETY: only setrlimit, which is async-signal-safe, runs between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let limit = libc::rlimit {
                        rlim_cur: n as libc::rlim_t,
                        rlim_max: n as libc::rlim_t,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {exe}: {e}"));
        let shared: Shared = Arc::new((Mutex::new(Lines::default()), Condvar::new()));
        shared.0.lock().unwrap().open = 2;
        spawn_reader(child.stdout.take().unwrap(), Stream::Stdout, shared.clone());
        spawn_reader(child.stderr.take().unwrap(), Stream::Stderr, shared.clone());
        Dpm {
            child: Mutex::new(child),
            shared,
            description: format!(
                "dpm --startfile {} {:?} env {:?}",
                self.startfile.display(),
                self.args,
                self.env
            ),
        }
    }
}

fn spawn_reader(stream: impl Read + Send + 'static, which: Stream, shared: Shared) {
    thread::spawn(move || {
        let mut r = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf)
                        .trim_end_matches(['\n', '\r'])
                        .to_string();
                    let (m, cv) = &*shared;
                    m.lock().unwrap().lines.push((which, line));
                    cv.notify_all();
                }
            }
        }
        let (m, cv) = &*shared;
        m.lock().unwrap().open -= 1;
        cv.notify_all();
    });
}

/// A running dpm process; SIGKILLed on drop. If the test is panicking, its
/// captured output is printed on drop.
pub struct Dpm {
    child: Mutex<Child>,
    shared: Shared,
    description: String,
}

impl Dpm {
    /// `startfile` is relative to the workspace root (dpm's working dir)
    /// or absolute.
    pub fn builder(startfile: impl AsRef<Path>) -> DpmBuilder {
        DpmBuilder {
            startfile: startfile.as_ref().to_path_buf(),
            env: Vec::new(),
            args: Vec::new(),
            verbose: Some(1),
            current_dir: None,
            fd_limit: None,
        }
    }

    /// A builder for `startfile` with `DPM_LISTEN_PORT` set to a free port (returned) and
    /// `DPM_BACKEND_PORT` to the test MariaDB: the convention of every test startfile.
    pub fn in_front_of_mariadb(startfile: impl AsRef<Path>) -> (DpmBuilder, u16) {
        let port = free_port();
        let builder = Dpm::builder(startfile)
            .env("DPM_LISTEN_PORT", port)
            .env("DPM_BACKEND_PORT", MariaDb::get().port);
        (builder, port)
    }

    /// `dpm --startfile <startfile> --verbose 1` with `env`.
    pub fn start(startfile: impl AsRef<Path>, env: &[(&str, &str)]) -> Dpm {
        let mut b = Self::builder(startfile);
        for (k, v) in env {
            b = b.env(*k, *v);
        }
        b.spawn()
    }

    pub fn pid(&self) -> u32 {
        self.child.lock().unwrap().id()
    }

    /// Everything dpm printed so far (stdout and stderr interleaved in
    /// arrival order), one line per line.
    pub fn output(&self) -> String {
        self.lines_of(None).join("\n")
    }
    pub fn stdout(&self) -> String {
        self.lines_of(Some(Stream::Stdout)).join("\n")
    }
    pub fn stderr(&self) -> String {
        self.lines_of(Some(Stream::Stderr)).join("\n")
    }
    fn lines_of(&self, which: Option<Stream>) -> Vec<String> {
        let g = self.shared.0.lock().unwrap();
        g.lines
            .iter()
            .filter(|(s, _)| which.is_none_or(|w| w == *s))
            .map(|(_, l)| l.clone())
            .collect()
    }

    /// Waits until a line (stdout or stderr) containing `needle` has been
    /// printed and returns it; panics with the output so far on timeout or
    /// if dpm closed its output first.
    pub fn wait_for_line(&self, needle: &str, timeout: Duration) -> String {
        self.try_wait_for_line(needle, timeout).unwrap_or_else(|| {
            panic!(
                "{}: no line containing {needle:?} within {timeout:?} (exit status: {:?}); output:\n{}",
                self.description,
                self.try_status(),
                self.output()
            )
        })
    }

    /// Like [`Dpm::wait_for_line`], returning `None` instead of panicking.
    pub fn try_wait_for_line(&self, needle: &str, timeout: Duration) -> Option<String> {
        self.try_wait_for_line_after(0, needle, timeout)
    }

    /// Number of lines captured so far; pass it to
    /// [`Dpm::wait_for_line_after`] to only look at lines printed later.
    pub fn line_count(&self) -> usize {
        self.shared.0.lock().unwrap().lines.len()
    }

    /// Like [`Dpm::wait_for_line`] but ignores the first `skip` lines.
    pub fn wait_for_line_after(&self, skip: usize, needle: &str, timeout: Duration) -> String {
        self.try_wait_for_line_after(skip, needle, timeout)
            .unwrap_or_else(|| {
                panic!(
                    "{}: no new line containing {needle:?} within {timeout:?}; output:\n{}",
                    self.description,
                    self.output()
                )
            })
    }

    fn try_wait_for_line_after(
        &self,
        skip: usize,
        needle: &str,
        timeout: Duration,
    ) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let (m, cv) = &*self.shared;
        let mut g = m.lock().unwrap();
        loop {
            if let Some((_, l)) = g.lines.iter().skip(skip).find(|(_, l)| l.contains(needle)) {
                return Some(l.clone());
            }
            let now = Instant::now();
            if now >= deadline || g.open == 0 {
                return None;
            }
            g = cv.wait_timeout(g, deadline - now).unwrap().0;
        }
    }

    /// Waits until 127.0.0.1:`port` accepts TCP connections. Panics with
    /// dpm's output if dpm exits first or `timeout` passes.
    pub fn wait_until_listening(&self, port: u16, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut delay = Duration::from_millis(5);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            if let Some(status) = self.try_status() {
                panic!(
                    "{} exited with {status} before listening on port {port}; output:\n{}",
                    self.description,
                    self.output_after_exit()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "{} is not listening on port {port} after {timeout:?}; output:\n{}",
                    self.description,
                    self.output()
                );
            }
            thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(100));
        }
    }

    /// The exit status if dpm has exited.
    pub fn try_status(&self) -> Option<ExitStatus> {
        self.child.lock().unwrap().try_wait().ok().flatten()
    }

    /// Waits (bounded) for dpm to exit by itself; panics on timeout.
    pub fn wait_exit(&self, timeout: Duration) -> ExitStatus {
        super::wait_until(&format!("{} to exit", self.description), timeout, || {
            self.try_status()
        })
    }

    /// Sends a signal (e.g. `libc::SIGTERM`) to dpm.
    pub fn signal(&self, sig: i32) {
        if self.try_status().is_none() {
            // SAFETY: kill(2) on our own not-yet-reaped child.
            unsafe { libc::kill(self.pid() as libc::pid_t, sig) };
        }
    }

    /// Waits (bounded) until dpm's stdout and stderr are closed and every line has
    /// been collected: after an exit, the reader threads may still be behind.
    fn wait_streams_closed(&self) {
        let (m, cv) = &*self.shared;
        let g = m.lock().unwrap();
        let _ = cv.wait_timeout_while(g, Duration::from_secs(2), |l| l.open > 0);
    }

    /// Output once both streams are closed (bounded), for post-mortems.
    pub fn output_after_exit(&self) -> String {
        self.wait_streams_closed();
        self.output()
    }

    /// Everything dpm printed on stdout, once both streams are closed (bounded).
    pub fn stdout_after_exit(&self) -> String {
        self.wait_streams_closed();
        self.stdout()
    }

    /// Everything dpm printed on stderr, once both streams are closed (bounded).
    pub fn stderr_after_exit(&self) -> String {
        self.wait_streams_closed();
        self.stderr()
    }
}

impl Drop for Dpm {
    fn drop(&mut self) {
        let mut c = self.child.lock().unwrap();
        let _ = c.kill();
        let _ = c.wait();
        drop(c);
        if thread::panicking() {
            eprintln!(
                "=== {} output (pid exited) ===\n{}\n=== end of dpm output ===",
                self.description,
                self.output_after_exit()
            );
        }
    }
}

/// Whether `DPM_TEST_DIRECT=1`: tests then talk to MariaDB directly.
pub fn direct_mode() -> bool {
    std::env::var("DPM_TEST_DIRECT").is_ok_and(|v| v == "1")
}

/// Where a test sends its client traffic: a dpm listening on `port`, or
/// (direct mode / [`Target::direct`]) MariaDB itself.
pub struct Target {
    pub port: u16,
    pub dpm: Option<Dpm>,
}

impl Target {
    /// MariaDB itself, no proxy.
    pub fn direct() -> Target {
        Target {
            port: MariaDb::get().port,
            dpm: None,
        }
    }

    /// The MariaDB that offers TLS ([`MariaDb::tls`]) itself, no proxy.
    pub fn direct_tls() -> Target {
        Target {
            port: MariaDb::tls().port,
            dpm: None,
        }
    }

    /// A target served by an already started `dpm` listening on `port`
    /// (waits until it listens).
    pub fn proxy(dpm: Dpm, port: u16) -> Target {
        dpm.wait_until_listening(port, LISTEN_TIMEOUT);
        Target {
            port,
            dpm: Some(dpm),
        }
    }

    pub fn is_direct(&self) -> bool {
        self.dpm.is_none()
    }

    /// The dpm process; panics for a direct target.
    pub fn dpm(&self) -> &Dpm {
        self.dpm.as_ref().expect("this target has no dpm process")
    }
}

/// dpm running `examples/passthrough.lua` in front of the shared MariaDB,
/// listening on a fresh port. With `DPM_TEST_DIRECT=1`, MariaDB itself.
pub fn passthrough() -> Target {
    MariaDb::get();
    if direct_mode() {
        return Target::direct();
    }
    passthrough_with(|b| b)
}

/// dpm on `startfile` — a script that builds on examples/passthrough.lua (its
/// `DPM_LISTEN_*`/`DPM_BACKEND_*` variables) — in front of the shared MariaDB, on
/// `threads` workers, with `env` added; returns it and its port once it listens.
pub fn scripted_passthrough(startfile: &str, threads: usize, env: &[(&str, String)]) -> (Dpm, u16) {
    let db = MariaDb::get();
    let port = free_port();
    let mut builder = Dpm::builder(startfile)
        .env("DPM_LISTEN_HOST", "127.0.0.1")
        .env("DPM_LISTEN_PORT", port)
        .env("DPM_BACKEND_HOST", "127.0.0.1")
        .env("DPM_BACKEND_PORT", db.port)
        .arg("--threads")
        .arg(threads.to_string());
    for (k, v) in env {
        builder = builder.env(*k, v);
    }
    let dpm = builder.spawn();
    dpm.wait_until_listening(port, LISTEN_TIMEOUT);
    (dpm, port)
}

/// Like [`passthrough`] (ignoring direct mode), letting the caller add env
/// vars or arguments: `passthrough_with(|b| b.env("X", "1"))`.
pub fn passthrough_with(customize: impl FnOnce(DpmBuilder) -> DpmBuilder) -> Target {
    let db = MariaDb::get();
    let port = free_port();
    let builder = Dpm::builder("examples/passthrough.lua")
        .env("DPM_LISTEN_HOST", "127.0.0.1")
        .env("DPM_LISTEN_PORT", port)
        .env("DPM_BACKEND_HOST", "127.0.0.1")
        .env("DPM_BACKEND_PORT", db.port);
    Target::proxy(customize(builder).spawn(), port)
}

/// Starts dpm on a startup file of two lines — a server `s` on a closed port, then `line` —
/// and asserts that it stops at once with `bad.lua:2: ` and `expected` on stderr.
pub fn assert_start_fails_at_line_2(line: &str, expected: &str) {
    let err = start_fails_at_line_2(line).stderr_after_exit();
    assert!(
        err.contains("bad.lua:2: ") && err.contains(expected),
        "{line}\n{err}"
    );
}

/// Starts dpm on a startup file of two lines — a server `s` on a closed port, then `line` —
/// and returns the process once it has stopped, asserting that it failed.
pub fn start_fails_at_line_2(line: &str) -> Dpm {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.lua");
    std::fs::write(
        &file,
        format!("local s = dpm.server{{ name = 's', address = '127.0.0.1:1' }}\n{line}\n"),
    )
    .unwrap();
    let dpm = Dpm::builder(&file).spawn();
    let status = dpm.wait_exit(Duration::from_secs(10));
    assert!(!status.success(), "{line}: dpm did not fail");
    dpm
}

/// The hash `dpm hash-password --plugin <plugin>` prints for `password` (for `dpm.users`).
pub fn hash_password(plugin: &str, password: &str) -> String {
    let out = run_bounded(
        Command::new(env!("CARGO_BIN_EXE_dpm"))
            .arg("hash-password")
            .arg("--plugin")
            .arg(plugin),
        Some(format!("{password}\n").as_bytes()),
        Duration::from_secs(30),
    );
    out.assert_success("dpm hash-password");
    out.stdout.trim_end().to_string()
}
