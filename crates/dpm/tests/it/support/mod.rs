//! Test harness shared by every integration test in this binary.
//!
//! * [`MariaDb`]: one real `mariadbd` per test run (started lazily, killed and
//!   its temp dir removed when the test binary exits).
//! * [`Dpm`]: a `dpm` process with captured output; [`passthrough`] starts
//!   `examples/passthrough.lua` in front of the shared MariaDB and returns a
//!   [`Target`] (or, with `DPM_TEST_DIRECT=1`, the MariaDB port itself).
//! * Client helpers: [`Cli`] (the `mariadb` command-line client), [`admin`]
//!   (`mariadb-admin`), [`opts`]/[`connect`] (mysql_async), [`python`]
//!   (scripts in `tests/python`), [`Tmux`] (interactive terminal sessions).
//! * TLS: [`tls_files`] (a test CA and certificates, made once per run),
//!   [`MariaDb::tls`] (a second MariaDB that offers TLS), [`Cli::tls`],
//!   [`opts_tls`] (mysql_async), [`python_tls_args`] (PyMySQL).

#![allow(dead_code)]

pub mod clients;
pub mod dpm;
pub mod mariadb;
pub mod tls;
pub mod tmux;

pub use clients::*;
pub use dpm::*;
pub use mariadb::*;
pub use tls::*;
pub use tmux::*;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// The cargo workspace root (dpm's working directory in tests).
pub fn workspace_root() -> PathBuf {
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    p.canonicalize().unwrap_or(p)
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// Removes `dir` (recursively) once this test process has exited, however it ended:
/// a `sh` in its own process group (a Ctrl-C to the test does not reach it) blocks
/// reading a pipe whose only write end this process holds, and removes `dir` at EOF.
pub fn remove_at_exit(dir: &Path) {
    static HELD: Mutex<Vec<ChildStdin>> = Mutex::new(Vec::new());
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"while read -r _line; do :; done; rm -rf "$1""#)
        .arg("sh")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn the remover of {}: {e}", dir.display()));
    let stdin = child.stdin.take().unwrap();
    // Reaped by init once we exit; never waited for.
    std::mem::forget(child);
    HELD.lock().unwrap_or_else(|e| e.into_inner()).push(stdin);
}

/// A name unique within this test run (process id + counter), for tmux
/// sessions, files and the like.
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Polls `f` until it returns `Some`, with a short back-off, and panics with
/// `what` once `timeout` has passed.
pub fn wait_until<T>(what: &str, timeout: Duration, f: impl FnMut() -> Option<T>) -> T {
    try_wait_until(timeout, f)
        .unwrap_or_else(|| panic!("timed out after {timeout:?} waiting for {what}"))
}

/// Like [`wait_until`], returning `None` on timeout (for callers that explain the
/// failure themselves).
pub fn try_wait_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(5);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > timeout {
            return None;
        }
        thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(100));
    }
}

/// Async version of [`wait_until`].
pub async fn wait_until_async<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    let mut delay = Duration::from_millis(5);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(100));
    }
}

/// Runs `fut` with a deadline; panics naming `what` when it is exceeded.
pub async fn bounded<T>(
    what: &str,
    timeout: Duration,
    fut: impl std::future::Future<Output = T>,
) -> T {
    match tokio::time::timeout(timeout, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {timeout:?}: {what}"),
    }
}

/// What a finished subprocess printed.
#[derive(Debug, Clone)]
pub struct ProcOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl ProcOutput {
    pub fn success(&self) -> bool {
        self.status.success()
    }
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
    /// Panics (showing both streams) unless the process exited with 0.
    pub fn assert_success(&self, what: &str) -> &Self {
        assert!(self.success(), "{what} failed: {self}");
        self
    }
}

impl std::fmt::Display for ProcOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            truncate(&self.stdout, 8000),
            truncate(&self.stderr, 8000)
        )
    }
}

pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [{} bytes more]", &s[..end], s.len() - end)
}

/// Runs `cmd` to completion, feeding it `stdin`, killing it (and failing
/// the test) if it runs longer than `timeout`.
pub fn run_bounded(cmd: &mut Command, stdin: Option<&[u8]>, timeout: Duration) -> ProcOutput {
    let mut out = Vec::new();
    let (status, stderr) =
        run_bounded_streaming(cmd, stdin, timeout, |chunk| out.extend_from_slice(chunk));
    ProcOutput {
        status,
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr,
    }
}

/// Like [`run_bounded`], but hands stdout to `on_stdout` chunk by chunk
/// instead of keeping it (for outputs too large to hold comfortably).
pub fn run_bounded_streaming(
    cmd: &mut Command,
    stdin: Option<&[u8]>,
    timeout: Duration,
    mut on_stdout: impl FnMut(&[u8]) + Send,
) -> (ExitStatus, String) {
    let desc = format!("{cmd:?}");
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {desc}: {e}"));
    let pid = child.id() as libc::pid_t;
    let mut child_stdin = child.stdin.take();
    let mut child_stdout = child.stdout.take().unwrap();
    let mut child_stderr = child.stderr.take().unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    thread::scope(|s| {
        if let (Some(mut w), Some(data)) = (child_stdin.take(), stdin) {
            s.spawn(move || {
                let _ = w.write_all(data);
            });
        }
        let err_reader = s.spawn(move || {
            let mut v = Vec::new();
            let _ = child_stderr.read_to_end(&mut v);
            String::from_utf8_lossy(&v).into_owned()
        });
        let out_reader = s.spawn(move || {
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                match child_stdout.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => on_stdout(&buf[..n]),
                }
            }
        });
        s.spawn(move || {
            let _ = done_tx.send(child.wait());
        });
        match done_rx.recv_timeout(timeout) {
            Ok(status) => {
                let status = status.expect("wait for child");
                out_reader.join().unwrap();
                (status, err_reader.join().unwrap())
            }
            Err(_) => {
                // SAFETY: plain kill(2) on the pid of a child not yet reaped.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                let _ = done_rx.recv();
                let _ = out_reader.join();
                let stderr = err_reader.join().unwrap_or_default();
                panic!("{desc} did not finish within {timeout:?}; stderr: {stderr}");
            }
        }
    })
}
