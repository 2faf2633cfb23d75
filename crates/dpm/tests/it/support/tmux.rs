//! Interactive terminal sessions under tmux (private server per session).

use super::{run_bounded, unique_name, wait_until, ProcOutput};
use std::process::Command;
use std::time::{Duration, Instant};

/// A detached tmux session running one command, on its own tmux server
/// (`-L <unique>`), killed on drop.
pub struct Tmux {
    socket: String,
    name: String,
}

impl Tmux {
    /// Starts `program args…` in a 200x50 detached session. The pane stays
    /// after the program exits (`remain-on-exit`) so its last words can be read.
    pub fn start(program: &str, args: &[String]) -> Tmux {
        let t = Tmux {
            socket: unique_name("dpm-it"),
            name: "it".into(),
        };
        // remain-on-exit is set before the program starts, so that even a
        // program that exits at once leaves its pane to be read.
        let mut cmd = t.tmux();
        cmd.args([
            "start-server",
            ";",
            "set-option",
            "-g",
            "remain-on-exit",
            "on",
            ";",
        ])
        .args(["new-session", "-d", "-x", "200", "-y", "50", "-s", &t.name])
        .arg(program)
        .args(args);
        t.check(cmd, "new-session");
        t
    }

    fn tmux(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-f", "/dev/null", "-L", &self.socket])
            .env("TERM", "xterm-256color");
        c
    }

    fn check(&self, mut cmd: Command, what: &str) -> ProcOutput {
        let out = run_bounded(&mut cmd, None, Duration::from_secs(10));
        assert!(out.success(), "tmux {what} failed: {out}");
        out
    }

    /// Types `text` literally, then Enter.
    pub fn send_line(&self, text: &str) {
        // tmux takes an argument ending in ';' as a command separator, so
        // every ';' is sent as a hex key instead.
        for (i, part) in text.split(';').enumerate() {
            if i > 0 {
                self.send_keys(&["-H", "3b"]);
            }
            if !part.is_empty() {
                let mut cmd = self.tmux();
                cmd.args(["send-keys", "-t", &self.name, "-l", part]);
                self.check(cmd, "send-keys");
            }
        }
        self.send_keys(&["Enter"]);
    }

    /// Sends tmux key names (`Enter`, `C-c`, …).
    pub fn send_keys(&self, keys: &[&str]) {
        let mut cmd = self.tmux();
        cmd.args(["send-keys", "-t", &self.name]).args(keys);
        self.check(cmd, "send-keys");
    }

    /// The whole pane including scrollback, wrapped lines joined.
    pub fn capture(&self) -> String {
        let mut cmd = self.tmux();
        cmd.args(["capture-pane", "-p", "-J", "-S", "-", "-t", &self.name]);
        self.check(cmd, "capture-pane").stdout
    }

    /// Waits until the pane contains `needle` at least `n` times; returns
    /// the pane. Panics with the pane's content on timeout.
    pub fn wait_for_n(&self, needle: &str, n: usize, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let pane = self.capture();
            if pane.matches(needle).count() >= n {
                return pane;
            }
            if Instant::now() > deadline {
                panic!("tmux pane never showed {needle:?} x{n} within {timeout:?}; pane:\n{pane}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the pane contains `needle`; returns the pane.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> String {
        self.wait_for_n(needle, 1, timeout)
    }

    /// Whether the program in the pane has exited.
    pub fn pane_dead(&self) -> bool {
        let mut cmd = self.tmux();
        cmd.args(["display-message", "-p", "-t", &self.name, "#{pane_dead}"]);
        self.check(cmd, "display-message").stdout.trim() == "1"
    }

    /// Waits (bounded) until the program in the pane has exited.
    pub fn wait_exit(&self, timeout: Duration) {
        wait_until("the tmux pane's program to exit", timeout, || {
            self.pane_dead().then_some(())
        });
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Ok(out) = self
                .tmux()
                .args(["capture-pane", "-p", "-J", "-S", "-", "-t", &self.name])
                .output()
            {
                eprintln!(
                    "=== tmux pane ===\n{}\n=== end of pane ===",
                    String::from_utf8_lossy(&out.stdout)
                );
            }
        }
        let _ = self.tmux().arg("kill-server").output();
    }
}
