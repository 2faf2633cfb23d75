//! Named tables (the shared maps and ACLs) that every worker reads without a lock.
//!
//! Every table of one kind sits in one immutable snapshot (name → table) behind an
//! [`ArcSwap`], with a version number bumped by each write. A table is split in
//! [`SHARDS`] shards by a hash of the key. A write copies the shard it changes (a 64th of
//! the table: filling a table of n entries one write at a time copies n²/128 entries, not
//! n²/2), changes the copy and publishes a new snapshot holding it (the other shards and
//! tables are shared with the old snapshot, an `Arc` each); writers take one mutex (only
//! each other wait). A reader keeps, per thread, the last snapshot it loaded and its version: while
//! the version has not moved, a read is one load of the version and two hash lookups — no
//! atomic read-modify-write, no shared counter (an `Arc`'s, a lock's) that readers on
//! other threads write, so lookups from every worker at once do not bounce a cache line
//! between cores. After a write, each thread's next read loads the new snapshot once
//! (arc-swap: lock-free). Reads are what scripts do per statement; writes are what they do
//! now and then (a deny-list entry, a map file at startup, in one batch).

use std::any::Any;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use rustc_hash::FxHashMap;

/// How many shards a table has: a write copies one.
pub(crate) const SHARDS: usize = 64;

/// The shard of `key`: the top bits of a hash of it other than the one the shard's own
/// hash map uses (keys of one shard still spread over that map's control bytes).
#[inline]
pub(crate) fn shard_of(key: &[u8]) -> usize {
    use std::hash::Hasher;
    let mut h = rustc_hash::FxHasher::default();
    h.write(key);
    (h.finish().wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize
}

/// One table: its shards.
type Table<T> = [Arc<T>; SHARDS];

/// One kind's tables by name, as published.
type Snapshot<T> = FxHashMap<String, Arc<Table<T>>>;

/// Gives each [`Tables`] an identity for the per-thread cache (an address could be
/// reused by a later one).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A thread's last snapshot of one [`Tables`]: (its id, the version, the snapshot).
type CachedSnapshot = (u64, u64, Arc<dyn Any + Send + Sync>);

thread_local! {
    /// This thread's last snapshot of each [`Tables`] it read.
    static SNAPSHOTS: RefCell<Vec<CachedSnapshot>> = const { RefCell::new(Vec::new()) };
}

/// Tables of type `T` by name.
pub(crate) struct Tables<T> {
    id: u64,
    /// Bumped after each write has published its snapshot.
    version: AtomicU64,
    all: ArcSwap<Snapshot<T>>,
    /// Held by writers only.
    writer: Mutex<()>,
}

impl<T> Default for Tables<T> {
    fn default() -> Self {
        Tables {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            version: AtomicU64::new(0),
            all: ArcSwap::from_pointee(FxHashMap::default()),
            writer: Mutex::new(()),
        }
    }
}

impl<T: Clone + Default + Send + Sync + 'static> Tables<T> {
    /// `read(table)` on the current snapshot; `None` if there is none.
    #[inline]
    fn with_snapshot<R>(&self, read: impl FnOnce(&Snapshot<T>) -> R) -> Option<R> {
        // Acquire: a version seen here comes with the snapshot published before it.
        let version = self.version.load(Ordering::Acquire);
        SNAPSHOTS.with_borrow_mut(|cache| {
            let at = match cache.iter().position(|(id, ..)| *id == self.id) {
                Some(at) => at,
                None => {
                    cache.push((self.id, u64::MAX, Arc::new(())));
                    cache.len() - 1
                }
            };
            let slot = &mut cache[at];
            if slot.1 != version {
                // Loaded after `version` was read: this snapshot is that one or newer.
                slot.2 = self.all.load_full();
                slot.1 = version;
            }
            slot.2.downcast_ref::<Snapshot<T>>().map(read)
        })
    }

    /// `read(shard)` on the shard of `key` in table `name`; `None` if there is no table.
    #[inline]
    pub(crate) fn read<R>(&self, name: &str, key: &[u8], read: impl FnOnce(&T) -> R) -> Option<R> {
        self.with_snapshot(|all| all.get(name).map(|table| read(&table[shard_of(key)])))
            .flatten()
    }

    /// `read(shard)` on every shard of table `name`, in shard order.
    pub(crate) fn read_all(&self, name: &str, mut read: impl FnMut(&T)) {
        self.with_snapshot(|all| {
            for shard in all.get(name).into_iter().flat_map(|t| t.iter()) {
                read(shard);
            }
        });
    }

    /// Publishes `change(copy)` as the new shard of `key` in table `name` (created empty
    /// when it does not exist yet); returns what `change` returned.
    pub(crate) fn write<R>(&self, name: &str, key: &[u8], change: impl FnOnce(&mut T) -> R) -> R {
        let at = shard_of(key);
        self.publish(name, |table| {
            let mut shard = T::clone(&table[at]);
            let result = change(&mut shard);
            table[at] = Arc::new(shard);
            result
        })
    }

    /// Publishes `change(shards)` for every shard of table `name` at once (a file's worth
    /// of entries: one copy of the table); `change` puts each entry in `shards[shard_of(key)]`.
    pub(crate) fn write_all(&self, name: &str, change: impl FnOnce(&mut [T])) {
        self.publish(name, |table| {
            let mut shards: Vec<T> = table.iter().map(|s| T::clone(s)).collect();
            change(&mut shards);
            for (slot, shard) in table.iter_mut().zip(shards) {
                *slot = Arc::new(shard);
            }
        })
    }

    /// Under the writer lock: `change` edits a copy of table `name`'s shard array, which
    /// is then published in a new snapshot.
    fn publish<R>(&self, name: &str, change: impl FnOnce(&mut Table<T>) -> R) -> R {
        // A panicking writer left no half-made snapshot (it changes private copies).
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let all = self.all.load();
        let mut table: Table<T> = match all.get(name) {
            Some(t) => Table::clone(t),
            None => std::array::from_fn(|_| Arc::new(T::default())),
        };
        let result = change(&mut table);
        let mut next = FxHashMap::clone(&all);
        next.insert(name.to_string(), Arc::new(table));
        self.all.store(Arc::new(next));
        self.version.fetch_add(1, Ordering::Release);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustc_hash::FxHashSet;

    #[test]
    fn a_reader_keeps_its_snapshot_while_a_writer_publishes_a_new_one() {
        let tables: Tables<FxHashSet<u32>> = Tables::default();
        assert_eq!(tables.read("t", b"k", |t| t.len()), None);
        tables.write("t", b"k", |t| t.insert(1));
        let before = tables.all.load_full().get("t").unwrap().clone();
        tables.write("t", b"k", |t| t.insert(2));
        assert_eq!(
            before[shard_of(b"k")].len(),
            1,
            "the old snapshot is unchanged"
        );
        assert_eq!(tables.read("t", b"k", |t| t.len()), Some(2));
    }

    #[test]
    fn a_thread_that_cached_a_snapshot_sees_a_later_write_by_another() {
        let tables: Tables<FxHashSet<u32>> = Tables::default();
        tables.write("t", b"k", |t| t.insert(1));
        let (ask, asked) = std::sync::mpsc::channel::<()>();
        let (tell, told) = std::sync::mpsc::channel::<usize>();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for () in asked {
                    tell.send(tables.read("t", b"k", |t| t.len()).unwrap())
                        .unwrap();
                }
            });
            ask.send(()).unwrap();
            assert_eq!(told.recv().unwrap(), 1);
            tables.write("t", b"k", |t| t.insert(2));
            ask.send(()).unwrap();
            assert_eq!(told.recv().unwrap(), 2, "the cached snapshot was replaced");
            drop(ask);
        });
    }

    #[test]
    fn writes_from_many_threads_are_all_kept() {
        let tables: Tables<FxHashSet<u32>> = Tables::default();
        std::thread::scope(|scope| {
            for thread in 0..4u32 {
                let tables = &tables;
                scope.spawn(move || {
                    for i in 0..200 {
                        let key = (thread * 1000 + i).to_le_bytes();
                        tables.write(&format!("t{}", i % 3), &key, |t| {
                            t.insert(thread * 1000 + i)
                        });
                    }
                });
            }
        });
        let mut total = 0;
        for i in 0..3 {
            tables.read_all(&format!("t{i}"), |t| total += t.len());
        }
        assert_eq!(total, 800);
    }
}

/// What a lookup costs here against the read-write lock the tables had before, and a
/// plain `ArcSwap::load` per read, on 1 and 2 threads:
/// `cargo test --release -p dpm-engine --lib lookup_cost -- --ignored --nocapture`.
#[cfg(test)]
mod lookup_cost {
    use super::*;
    use rustc_hash::FxHashSet;
    use std::sync::RwLock;
    use std::time::{Duration, Instant};

    type Key = Box<[u8]>;

    fn per_second(threads: usize, lookup: &(dyn Fn(&[u8]) -> bool + Sync)) -> f64 {
        let keys: Vec<Key> = (0..1000)
            .map(|i| format!("key-{i}").into_bytes().into())
            .collect();
        let run = Duration::from_millis(700);
        let total: u64 = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    let keys = &keys;
                    scope.spawn(move || {
                        let started = Instant::now();
                        let mut n = 0u64;
                        while started.elapsed() < run {
                            for k in keys {
                                assert!(lookup(k));
                            }
                            n += keys.len() as u64;
                        }
                        n
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).sum()
        });
        total as f64 / run.as_secs_f64()
    }

    #[test]
    #[ignore = "a measurement: run it with --release --ignored --nocapture"]
    fn lookup_cost() {
        let set: FxHashSet<Key> = (0..1000)
            .map(|i| format!("key-{i}").into_bytes().into())
            .collect();
        let locked: RwLock<FxHashMap<String, FxHashSet<Key>>> =
            RwLock::new([("acl".to_string(), set.clone())].into_iter().collect());
        let swapped: ArcSwap<FxHashMap<String, Arc<FxHashSet<Key>>>> = ArcSwap::from_pointee(
            [("acl".to_string(), Arc::new(set.clone()))]
                .into_iter()
                .collect(),
        );
        let tables: Tables<FxHashSet<Key>> = Tables::default();
        tables.write_all("acl", |shards| {
            for k in set {
                shards[shard_of(&k)].insert(k);
            }
        });
        for threads in [1, 2] {
            for _round in 0..3 {
                let rw = per_second(threads, &|k| {
                    locked
                        .read()
                        .unwrap()
                        .get("acl")
                        .is_some_and(|s| s.contains(k))
                });
                let sw = per_second(threads, &|k| {
                    swapped.load().get("acl").is_some_and(|s| s.contains(k))
                });
                let tb = per_second(threads, &|k| {
                    tables.read("acl", k, |s| s.contains(k)) == Some(true)
                });
                println!(
                    "{threads} thread(s): RwLock {:.1} M/s, ArcSwap::load {:.1} M/s ({:.2}x), Tables {:.1} M/s ({:.2}x)",
                    rw / 1e6, sw / 1e6, sw / rw, tb / 1e6, tb / rw
                );
            }
        }
    }
}
