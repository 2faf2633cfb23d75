//! Slowing down password guessing: an address whose logins to proxy-held users failed
//! `failures` times within `window` gets every further answer — refusal or success, so
//! that the delay itself tells nothing — only after `delay` (and a log line), until a
//! login from it succeeds or the window passes. Process-wide.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, RwLock};
use std::time::{Duration, Instant};

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

/// Replaces the settings (what was counted is forgotten).
pub fn set_login_throttle(settings: LoginThrottle) {
    let mut current = CURRENT.write().unwrap_or_else(|e| e.into_inner());
    if current.settings != settings {
        *current = Arc::new(Throttle::new(settings));
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
