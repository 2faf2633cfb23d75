//! Per-listener connection limits (`dpm.listener(host, port, { max_connections = N })`):
//! process-wide, because every worker binds the same address and clients land on any of
//! them. A client accepted beyond the limit gets ERR 1040 "Too many connections" in
//! place of a greeting, as from the server; its place is given back when it closes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

/// The limit of one listening address.
#[derive(Debug)]
pub struct ListenerLimit {
    max: u32,
    open: AtomicU32,
}

/// A client's place under its listener's limit (given back when dropped).
#[derive(Debug)]
pub(crate) struct Admission(Arc<ListenerLimit>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

static LIMITS: LazyLock<Mutex<HashMap<String, Arc<ListenerLimit>>>> =
    LazyLock::new(Default::default);

impl ListenerLimit {
    /// The limit of `address` (the same one for every worker's listener on it).
    pub(crate) fn define(address: &str, max: u32) -> Result<Arc<ListenerLimit>, String> {
        let mut limits = LIMITS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(limit) = limits.get(address) {
            if limit.max != max {
                return Err(format!(
                    "listener {address} already has max_connections = {}",
                    limit.max
                ));
            }
            return Ok(limit.clone());
        }
        let limit = Arc::new(ListenerLimit {
            max,
            open: AtomicU32::new(0),
        });
        limits.insert(address.to_string(), limit.clone());
        Ok(limit)
    }

    /// Takes a place; `None` when the listener is full.
    pub(crate) fn admit(self: &Arc<Self>) -> Option<Admission> {
        self.open
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Admission(self.clone()))
    }

    /// The limit.
    pub fn max(&self) -> u32 {
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_the_limit_and_gives_places_back() {
        let limit = ListenerLimit::define("test:1", 2).unwrap();
        let a = limit.admit().unwrap();
        let _b = limit.admit().unwrap();
        assert!(limit.admit().is_none());
        drop(a);
        assert!(limit.admit().is_some());
        assert!(ListenerLimit::define("test:1", 3).is_err());
    }
}
