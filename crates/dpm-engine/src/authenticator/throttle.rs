//! Slowing down password guessing: an address whose logins to proxy-held users failed
//! `failures` times within `window` gets every further answer — refusal or success, so
//! that the delay itself tells nothing — only after `delay` (and a log line), until a
//! login from it succeeds or the window passes. Process-wide.
//!
//! At a reload the new file's settings (the defaults if it sets none) take effect with
//! it; what was counted is kept when they are the same.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Once, RwLock};
use std::time::{Duration, Instant};

use crate::service::generations;

/// The throttle's settings (`dpm.login_throttle{ failures, window, delay }`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LoginThrottle {
    /// Failed logins allowed within `window` before refusals are delayed; 0 = never delay.
    pub failures: u32,
    pub window: Duration,
    pub delay: Duration,
}

impl Default for LoginThrottle {
    fn default() -> LoginThrottle {
        LoginThrottle {
            failures: 5,
            window: Duration::from_secs(60),
            delay: Duration::from_secs(2),
        }
    }
}

/// Addresses remembered at most (the oldest are forgotten first).
const MAX_ADDRESSES: usize = 10_000;

pub(crate) struct Throttle {
    settings: LoginThrottle,
    /// Per address: failures in the current window, and when the window started.
    failed: Mutex<HashMap<String, (u32, Instant)>>,
}

static CURRENT: LazyLock<RwLock<Arc<Throttle>>> =
    LazyLock::new(|| RwLock::new(Arc::new(Throttle::new(LoginThrottle::default()))));

/// The settings the reload's file set, while a reload loads (`None`: none yet).
static LOADED: Mutex<Option<LoginThrottle>> = Mutex::new(None);

/// Replaces the settings (what was counted is forgotten), or, while a reload loads,
/// sets those it takes effect with.
pub fn set_login_throttle(settings: LoginThrottle) {
    static FOLLOWING: Once = Once::new();
    FOLLOWING.call_once(|| generations::follow_reloads(&ReloadedThrottle));
    if generations::loading() {
        *LOADED.lock().unwrap_or_else(|e| e.into_inner()) = Some(settings);
    } else {
        replace(settings);
    }
}

fn replace(settings: LoginThrottle) {
    let mut current = CURRENT.write().unwrap_or_else(|e| e.into_inner());
    if current.settings != settings {
        *current = Arc::new(Throttle::new(settings));
    }
}

/// The throttle's side of a reload's end.
struct ReloadedThrottle;

impl generations::Reloadable for ReloadedThrottle {
    fn commit(&self) {
        let loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner()).take();
        replace(loaded.unwrap_or_default());
    }

    fn abort(&self) {
        LOADED.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

pub(crate) fn current() -> Arc<Throttle> {
    CURRENT.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The address without its port.
fn address(peer: &str) -> &str {
    crate::transport::peer_ip(peer)
}

impl Throttle {
    fn new(settings: LoginThrottle) -> Throttle {
        Throttle {
            settings,
            failed: Mutex::new(HashMap::new()),
        }
    }

    /// How long an answer to `peer` must wait: `delay` once it failed `failures` times
    /// within the window.
    pub(crate) fn delay_for(&self, peer: &str) -> Option<Duration> {
        if self.settings.failures == 0 {
            return None;
        }
        let failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
        let (count, since) = failed.get(address(peer))?;
        (*count >= self.settings.failures && since.elapsed() < self.settings.window)
            .then_some(self.settings.delay)
    }

    /// A login from `peer` failed.
    pub(crate) fn failed(&self, peer: &str) {
        if self.settings.failures == 0 {
            return;
        }
        let now = Instant::now();
        let mut failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
        if failed.len() >= MAX_ADDRESSES {
            let window = self.settings.window;
            failed.retain(|_, (_, since)| now.duration_since(*since) < window);
            if failed.len() >= MAX_ADDRESSES {
                failed.clear();
            }
        }
        let entry = failed.entry(address(peer).to_string()).or_insert((0, now));
        if now.duration_since(entry.1) >= self.settings.window {
            *entry = (0, now);
        }
        entry.0 += 1;
    }

    /// A login from `peer` succeeded: its failures are forgotten.
    pub(crate) fn succeeded(&self, peer: &str) {
        let mut failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
        if !failed.is_empty() {
            failed.remove(address(peer));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_after_the_allowed_failures_and_forgets_on_success() {
        let t = Throttle::new(LoginThrottle {
            failures: 2,
            window: Duration::from_secs(60),
            delay: Duration::from_millis(500),
        });
        t.failed("10.0.0.1:1000");
        assert_eq!(t.delay_for("10.0.0.1:1001"), None);
        t.failed("10.0.0.1:1001");
        assert_eq!(
            t.delay_for("10.0.0.1:1002"),
            Some(Duration::from_millis(500))
        );
        // Another address is not affected.
        assert_eq!(t.delay_for("10.0.0.2:1000"), None);
        t.succeeded("10.0.0.1:2000");
        assert_eq!(t.delay_for("10.0.0.1:1003"), None);
    }

    #[test]
    fn a_reload_sets_its_files_throttle_or_the_default() {
        use crate::service::generations::{abort_load, begin_load, commit_load, serial_test};
        let _serial = serial_test();
        let strict = LoginThrottle {
            failures: 1,
            ..LoginThrottle::default()
        };
        let lenient = LoginThrottle {
            failures: 100,
            ..LoginThrottle::default()
        };
        set_login_throttle(strict);
        current().failed("10.0.0.9:1");

        begin_load();
        set_login_throttle(lenient);
        assert_eq!(
            current().settings,
            strict,
            "in force until the reload takes effect"
        );
        abort_load();
        assert_eq!(current().settings, strict);

        begin_load();
        set_login_throttle(strict);
        commit_load();
        assert!(
            current().delay_for("10.0.0.9:2").is_some(),
            "same settings: counts kept"
        );

        begin_load();
        set_login_throttle(lenient);
        commit_load();
        assert_eq!(current().settings, lenient);

        begin_load(); // a file that sets none
        commit_load();
        assert_eq!(current().settings, LoginThrottle::default());
    }

    #[test]
    fn zero_failures_never_delays() {
        let t = Throttle::new(LoginThrottle {
            failures: 0,
            ..LoginThrottle::default()
        });
        for _ in 0..10 {
            t.failed("10.0.0.1:1");
            assert_eq!(t.delay_for("10.0.0.1:1"), None);
        }
    }
}
