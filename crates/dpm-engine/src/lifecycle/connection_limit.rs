//! Per-listener connection limits (`dpm.listener(host, port, { max_connections = N })`):
//! process-wide, because every worker binds the same address and clients land on any of
//! them. A client accepted beyond the limit gets ERR 1040 "Too many connections" in
//! place of a greeting, as from the server; its place is given back when it closes.
//!
//! At a reload a listener given another `max_connections` gets a new limit that goes on
//! counting the clients the old one admitted (`crate::service::generations`).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crate::service::generations::Registry;

/// The limit of one listening address.
#[derive(Debug)]
pub struct ListenerLimit {
    max: u32,
    /// Clients open on the address (shared with the address's earlier limits).
    open: Arc<AtomicU32>,
}

/// A client's place under its listener's limit (given back when dropped).
#[derive(Debug)]
pub(crate) struct Admission(Arc<ListenerLimit>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

static LIMITS: Registry<Arc<ListenerLimit>> = Registry::new();

impl ListenerLimit {
    /// The limit of `address` (the same one for every worker's listener on it).
    pub(crate) fn define(address: &str, max: u32) -> Result<Arc<ListenerLimit>, String> {
        let same = |limit: &Arc<ListenerLimit>| {
            (limit.max == max).then_some(()).ok_or_else(|| {
                format!(
                    "listener {address} already has max_connections = {}",
                    limit.max
                )
            })
        };
        LIMITS.define(address.to_string(), same, |before| {
            let open = before.map_or_else(Default::default, |b| b.open.clone());
            Ok(Arc::new(ListenerLimit { max, open }))
        })
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
        let _serial = crate::service::generations::serial_test();
        let limit = ListenerLimit::define("test:1", 2).unwrap();
        let a = limit.admit().unwrap();
        let _b = limit.admit().unwrap();
        assert!(limit.admit().is_none());
        drop(a);
        assert!(limit.admit().is_some());
        assert!(ListenerLimit::define("test:1", 3).is_err());
    }

    #[test]
    fn a_reload_changes_the_limit_and_counts_the_clients_already_in() {
        use crate::service::generations::{abort_load, begin_load, commit_load};
        let _serial = crate::service::generations::serial_test();
        let old = ListenerLimit::define("reload:1", 1).unwrap();
        let _in = old.admit().unwrap();

        begin_load();
        assert!(Arc::ptr_eq(
            &ListenerLimit::define("reload:1", 1).unwrap(),
            &old
        ));
        abort_load();

        begin_load();
        let new = ListenerLimit::define("reload:1", 2).unwrap();
        commit_load();
        assert_eq!(new.max(), 2);
        let _second = new.admit().unwrap();
        assert!(
            new.admit().is_none(),
            "the client the old limit admitted counts"
        );
        assert!(Arc::ptr_eq(
            &ListenerLimit::define("reload:1", 2).unwrap(),
            &new
        ));
    }
}
