//! State shared by every worker of the process: named counters, maps and ACLs that any
//! worker's script can write and every other worker's script reads, and each worker's
//! published gauges (what `dpm.stats()` sums over the process).
//!
//! Workers share nothing else: connections, callbacks and Lua states stay on their own
//! thread. None of it is on the forwarding path — a script pays for it only when it
//! calls it. Reads of maps and ACLs take no lock ([`tables`]: snapshots behind
//! `arc-swap`; a write copies the shard, a 64th of the table, it changes). Counters are atomics (a name lookup
//! under a read lock, then one atomic add).

mod tables;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use rustc_hash::{FxHashMap, FxHashSet};

use tables::Tables;

/// A value stored in a shared map: what a script can put there and get back unchanged.
#[derive(Clone, Debug, PartialEq)]
pub enum SharedValue {
    /// A byte string (Lua strings may hold any bytes).
    Bytes(Box<[u8]>),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
}

/// Keys of maps and ACLs: byte strings.
pub type Key = Box<[u8]>;

/// Counters one worker publishes for the others to read. Only its own worker writes
/// them (so plain loads and stores suffice); any thread reads them.
#[derive(Default, Debug)]
pub struct WorkerGauges {
    /// Lua functions entered for events, timers and closes.
    pub lua_calls: AtomicU64,
    /// Packets decoded into Lua objects.
    pub packets_decoded: AtomicU64,
    /// Open connections, listeners included.
    pub connections: AtomicU64,
    /// Requests and replies a service's filters were run for (the forwarding loop
    /// stopped for them).
    pub pipeline_runs: AtomicU64,
    /// Generations of the startup file alive on the worker: the one in force, and
    /// those replaced by a reload that still have sessions (see `crate::generation`).
    pub generations: AtomicU64,
}

impl WorkerGauges {
    /// Adds one to `counter` (single writer: no read-modify-write instruction needed).
    pub fn bump(counter: &AtomicU64) {
        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
}

/// Sums of every worker's [`WorkerGauges`].
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct ProcessTotals {
    /// Workers that published gauges.
    pub workers: u64,
    /// Σ lua_calls.
    pub lua_calls: u64,
    /// Σ packets_decoded.
    pub packets_decoded: u64,
    /// Σ open connections.
    pub connections: u64,
    /// Σ pipeline_runs.
    pub pipeline_runs: u64,
}

/// The process-wide shared state. Get it with [`shared`].
#[derive(Default)]
pub struct Shared {
    counters: RwLock<FxHashMap<String, Arc<AtomicI64>>>,
    maps: Tables<FxHashMap<Key, SharedValue>>,
    acls: Tables<FxHashSet<Key>>,
    gauges: RwLock<Vec<Arc<WorkerGauges>>>,
}

static SHARED: LazyLock<Shared> = LazyLock::new(Shared::default);

/// The state shared by every worker of this process.
pub fn shared() -> &'static Shared {
    &SHARED
}

/// A lock that a panicking holder poisoned still guards consistent data here (every
/// update is a single insert or remove), so poisoning is ignored rather than spread.
fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}
fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn counter(&self, name: &str) -> Arc<AtomicI64> {
        if let Some(c) = read(&self.counters).get(name) {
            return c.clone();
        }
        write(&self.counters)
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    /// Adds `delta` to counter `name` (created at 0) and returns the new value. Atomic:
    /// concurrent adds from several workers are never lost. Wraps on overflow.
    pub fn counter_add(&self, name: &str, delta: i64) -> i64 {
        self.counter(name)
            .fetch_add(delta, Ordering::Relaxed)
            .wrapping_add(delta)
    }

    /// The value of counter `name` (0 if it was never set).
    pub fn counter_get(&self, name: &str) -> i64 {
        read(&self.counters)
            .get(name)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Sets counter `name` to `value`.
    pub fn counter_set(&self, name: &str, value: i64) {
        self.counter(name).store(value, Ordering::Relaxed);
    }

    /// Sets `key` to `value` in map `name` (created if needed). Copies the map.
    pub fn map_set(&self, name: &str, key: &[u8], value: SharedValue) {
        self.maps.write(name, key, |m| m.insert(key.into(), value));
    }

    /// Sets every `(key, value)` of `entries` in map `name` with one copy of the map (a
    /// map file).
    pub fn map_set_many(&self, name: &str, entries: impl IntoIterator<Item = (Key, SharedValue)>) {
        self.maps.write_all(name, |shards| {
            for (key, value) in entries {
                shards[tables::shard_of(&key)].insert(key, value);
            }
        });
    }

    /// The value of `key` in map `name`. Takes no lock.
    pub fn map_get(&self, name: &str, key: &[u8]) -> Option<SharedValue> {
        self.maps.read(name, key, |m| m.get(key).cloned()).flatten()
    }

    /// Removes `key` from map `name`; true if it was there.
    pub fn map_del(&self, name: &str, key: &[u8]) -> bool {
        // Removing what is not there copies nothing.
        self.maps.read(name, key, |m| m.contains_key(key)) == Some(true)
            && self.maps.write(name, key, |m| m.remove(key).is_some())
    }

    /// A copy of every entry of map `name` (empty if there is no such map).
    pub fn map_entries(&self, name: &str) -> Vec<(Key, SharedValue)> {
        let mut entries = Vec::new();
        self.maps.read_all(name, |m| {
            entries.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
        });
        entries
    }

    /// Adds `key` to ACL `name` (created if needed); true if it was not there yet.
    pub fn acl_add(&self, name: &str, key: &[u8]) -> bool {
        self.acls.read(name, key, |s| s.contains(key)) != Some(true)
            && self.acls.write(name, key, |s| s.insert(key.into()))
    }

    /// Adds every key of `keys` to ACL `name` with one copy of the ACL (an ACL file).
    pub fn acl_add_many(&self, name: &str, keys: impl IntoIterator<Item = Key>) {
        self.acls.write_all(name, |shards| {
            for key in keys {
                shards[tables::shard_of(&key)].insert(key);
            }
        });
    }

    /// Removes `key` from ACL `name`; true if it was there.
    pub fn acl_del(&self, name: &str, key: &[u8]) -> bool {
        self.acls.read(name, key, |s| s.contains(key)) == Some(true)
            && self.acls.write(name, key, |s| s.remove(key))
    }

    /// Whether ACL `name` holds `key`. Takes no lock.
    pub fn acl_match(&self, name: &str, key: &[u8]) -> bool {
        self.acls.read(name, key, |s| s.contains(key)) == Some(true)
    }

    /// Registers a worker's gauges so that [`Shared::totals`] counts them.
    pub fn publish_gauges(&self, gauges: Arc<WorkerGauges>) {
        write(&self.gauges).push(gauges);
    }

    /// The sums over every worker's gauges.
    pub fn totals(&self) -> ProcessTotals {
        let gauges = read(&self.gauges);
        let mut t = ProcessTotals {
            workers: gauges.len() as u64,
            ..ProcessTotals::default()
        };
        for g in gauges.iter() {
            t.lua_calls += g.lua_calls.load(Ordering::Relaxed);
            t.packets_decoded += g.packets_decoded.load(Ordering::Relaxed);
            t.connections += g.connections.load(Ordering::Relaxed);
            t.pipeline_runs += g.pipeline_runs.load(Ordering::Relaxed);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up_across_threads() {
        let s = Shared::default();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..10_000 {
                        s.counter_add("hits", 1);
                    }
                });
            }
        });
        assert_eq!(s.counter_get("hits"), 40_000);
        assert_eq!(s.counter_add("hits", -40_000), 0);
        assert_eq!(s.counter_get("never"), 0);
        s.counter_set("hits", 7);
        assert_eq!(s.counter_get("hits"), 7);
    }

    #[test]
    fn maps_keep_typed_values_and_acls_match_exact_keys() {
        let s = Shared::default();
        s.map_set("m", b"a", SharedValue::Int(1));
        s.map_set("m", b"b", SharedValue::Bytes(b"x\0y".to_vec().into()));
        assert_eq!(s.map_get("m", b"a"), Some(SharedValue::Int(1)));
        assert_eq!(
            s.map_get("m", b"b"),
            Some(SharedValue::Bytes(b"x\0y".to_vec().into()))
        );
        assert_eq!(s.map_get("m", b"c"), None);
        assert_eq!(s.map_get("other", b"a"), None);
        assert_eq!(s.map_entries("m").len(), 2);
        assert!(s.map_del("m", b"a"));
        assert!(!s.map_del("m", b"a"));
        assert!(s.acl_add("deny", b"10.0.0.1"));
        assert!(!s.acl_add("deny", b"10.0.0.1"));
        assert!(s.acl_match("deny", b"10.0.0.1"));
        assert!(!s.acl_match("deny", b"10.0.0.2"));
        assert!(s.acl_del("deny", b"10.0.0.1"));
        assert!(!s.acl_match("deny", b"10.0.0.1"));
    }

    #[test]
    fn totals_sum_every_published_worker() {
        let s = Shared::default();
        let (a, b) = (
            Arc::new(WorkerGauges::default()),
            Arc::new(WorkerGauges::default()),
        );
        s.publish_gauges(a.clone());
        s.publish_gauges(b.clone());
        WorkerGauges::bump(&a.lua_calls);
        WorkerGauges::bump(&b.lua_calls);
        WorkerGauges::bump(&b.connections);
        let t = s.totals();
        assert_eq!((t.workers, t.lua_calls, t.connections), (2, 2, 1));
    }
}
