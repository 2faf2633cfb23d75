//! A bounded store of query digests: the top `capacity` (digest, user, service) keys by
//! statement count, kept with the space-saving algorithm (Metwally, Agrawal, El Abbadi,
//! 2005). While there is room every new key gets an entry; once full, a new key takes
//! the place of the entry with the smallest count and starts from that count plus one
//! (its `overcount` says by how much it may be over): keys that are frequent stay, rare
//! ones come and go, and memory stays at `capacity` entries whatever the number of
//! distinct statements. The smallest count is found with an indexed min-heap, so a
//! statement costs a hash lookup and O(log capacity) at worst.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rustc_hash::FxHashMap;

use crate::metrics::Latency;

/// How many bytes of a digest and of its sample statement are kept.
pub const TEXT_KEPT: usize = 1024;

/// What a digest entry is kept under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DigestKey {
    /// The digest's hash (the classifier's `digest_hash`).
    pub digest: u64,
    /// A hash of the user and the service.
    pub who: u64,
}

/// One digest's statistics.
#[derive(Clone, Debug)]
pub struct DigestEntry {
    /// Its key.
    pub key: DigestKey,
    /// The normalized statement (first [`TEXT_KEPT`] bytes). The texts are shared, so
    /// copying the entries out for the admin API costs no string copy.
    pub digest: Arc<str>,
    /// The first statement seen with this digest since the entry was made.
    pub sample: Arc<str>,
    /// Who ran it.
    pub user: Arc<str>,
    /// Through which service.
    pub service: Arc<str>,
    /// Statements counted (space-saving: at most `overcount` more than really ran).
    pub count: u64,
    /// How much `count` may be over (what the entry it replaced had counted).
    pub overcount: u64,
    /// Statements answered with an ERR.
    pub errors: u64,
    /// Rows their result sets had.
    pub rows: u64,
    /// Their latency (total in `latency.sum_us`, the histogram) and the longest.
    pub latency: Latency,
    /// The longest, in microseconds.
    pub max_us: u64,
    /// When the entry was made, and when a statement last finished, as Unix ms.
    pub first_seen_ms: u64,
    /// See `first_seen_ms` (made from `last_seen` when entries are copied out).
    pub last_seen_ms: u64,
    /// When a statement last finished: an `Instant` the data path already has, so a
    /// statement costs no wall-clock read.
    last_seen: Option<Instant>,
}

/// The store (see the module docs). One per worker: no lock.
pub struct DigestStore {
    capacity: usize,
    entries: Vec<DigestEntry>,
    /// Entry index by key.
    index: FxHashMap<DigestKey, usize>,
    /// A min-heap of entry indexes by count.
    heap: Vec<usize>,
    /// Each entry's place in `heap`.
    place: Vec<usize>,
}

/// Now as Unix milliseconds.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn kept(text: &[u8]) -> String {
    let mut end = text.len().min(TEXT_KEPT);
    // Cut on a character boundary when the text is UTF-8.
    while end > 0 && end < text.len() && (text[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    String::from_utf8_lossy(&text[..end]).into_owned()
}

impl DigestStore {
    /// An empty store of at most `capacity` entries (at least 1).
    pub fn new(capacity: usize) -> DigestStore {
        DigestStore {
            capacity: capacity.max(1),
            entries: Vec::new(),
            index: FxHashMap::default(),
            heap: Vec::new(),
            place: Vec::new(),
        }
    }

    /// Entries kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Counts a statement of `key` as it starts. `describe` gives the digest text, the
    /// statement (each cut to [`TEXT_KEPT`] here), the user and the service, and is called
    /// only for a key not kept.
    pub fn started<'a>(
        &mut self,
        key: DigestKey,
        describe: impl FnOnce() -> (&'a [u8], &'a [u8], String, &'a str),
    ) {
        if let Some(&i) = self.index.get(&key) {
            self.entries[i].count += 1;
            self.sift_down(self.place[i]);
            return;
        }
        let (digest, sample, user, service) = describe();
        let now = unix_ms();
        let fresh = |count: u64, overcount: u64| DigestEntry {
            key,
            digest: kept(digest).into(),
            sample: kept(sample).into(),
            user: user.into(),
            service: service.into(),
            count,
            overcount,
            errors: 0,
            rows: 0,
            latency: Latency::default(),
            max_us: 0,
            first_seen_ms: now,
            last_seen_ms: now,
            last_seen: None,
        };
        if self.entries.len() < self.capacity {
            let i = self.entries.len();
            self.entries.push(fresh(1, 0));
            self.index.insert(key, i);
            self.place.push(self.heap.len());
            self.heap.push(i);
            self.sift_up(self.heap.len() - 1);
            return;
        }
        // Full: the entry with the smallest count makes room.
        let i = self.heap[0];
        let least = self.entries[i].count;
        self.index.remove(&self.entries[i].key);
        self.entries[i] = fresh(least + 1, least);
        self.index.insert(key, i);
        self.sift_down(0);
    }

    /// A statement of `key` ended at `at`, after `took`, with `rows` rows, failed or not.
    /// A key evicted meanwhile is not counted.
    pub fn finished(
        &mut self,
        key: DigestKey,
        at: Instant,
        took: Duration,
        rows: u64,
        failed: bool,
    ) {
        let Some(&i) = self.index.get(&key) else {
            return;
        };
        let e = &mut self.entries[i];
        e.latency.record(took);
        e.max_us = e.max_us.max(took.as_micros().min(u64::MAX as u128) as u64);
        e.rows += rows;
        e.errors += failed as u64;
        e.last_seen = Some(at);
    }

    /// A copy of every entry, with `last_seen_ms` made from `last_seen`.
    pub fn entries(&self) -> Vec<DigestEntry> {
        let (now, now_ms) = (Instant::now(), unix_ms());
        self.entries
            .iter()
            .map(|e| {
                let mut copy = e.clone();
                if let Some(at) = e.last_seen {
                    let ago = now.saturating_duration_since(at).as_millis() as u64;
                    copy.last_seen_ms = now_ms.saturating_sub(ago).max(e.first_seen_ms);
                }
                copy
            })
            .collect()
    }

    /// Forgets every entry.
    pub fn reset(&mut self) {
        *self = DigestStore::new(self.capacity);
    }

    fn count_at(&self, h: usize) -> u64 {
        self.entries[self.heap[h]].count
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.place[self.heap[a]] = a;
        self.place[self.heap[b]] = b;
    }

    fn sift_up(&mut self, mut h: usize) {
        while h > 0 {
            let parent = (h - 1) / 2;
            if self.count_at(parent) <= self.count_at(h) {
                break;
            }
            self.swap(parent, h);
            h = parent;
        }
    }

    fn sift_down(&mut self, mut h: usize) {
        loop {
            let (l, r) = (2 * h + 1, 2 * h + 2);
            let mut least = h;
            if l < self.heap.len() && self.count_at(l) < self.count_at(least) {
                least = l;
            }
            if r < self.heap.len() && self.count_at(r) < self.count_at(least) {
                least = r;
            }
            if least == h {
                return;
            }
            self.swap(h, least);
            h = least;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u64) -> DigestKey {
        DigestKey { digest: n, who: 0 }
    }

    fn start(store: &mut DigestStore, n: u64) {
        let digest = format!("SELECT ?{n}");
        store.started(key(n), || (digest.as_bytes(), b"SELECT 1", "u".into(), "s"));
    }

    #[test]
    fn frequent_keys_stay_and_memory_stays_at_capacity() {
        let mut store = DigestStore::new(100);
        for round in 0..1000u64 {
            for hot in 0..10 {
                start(&mut store, hot);
            }
            // 50 new keys a round: 50,000 distinct in all.
            for cold in 0..50 {
                start(&mut store, 1_000 + round * 50 + cold);
            }
        }
        assert_eq!(store.len(), 100);
        assert_eq!(store.index.len(), 100);
        let entries = store.entries();
        for hot in 0..10 {
            let e = entries
                .iter()
                .find(|e| e.key == key(hot))
                .expect("a hot key stays");
            // Counted exactly from its first statement on (it was never evicted).
            assert_eq!((e.count, e.overcount), (1000, 0), "{e:?}");
        }
        // The heap is a heap of every entry.
        for h in 1..store.heap.len() {
            assert!(store.count_at((h - 1) / 2) <= store.count_at(h));
        }
        for (i, &p) in store.place.iter().enumerate() {
            assert_eq!(store.heap[p], i);
        }
    }

    #[test]
    fn a_finished_statement_adds_its_time_rows_and_error() {
        let mut store = DigestStore::new(2);
        start(&mut store, 1);
        store.finished(key(1), Instant::now(), Duration::from_millis(3), 5, false);
        start(&mut store, 1);
        store.finished(key(1), Instant::now(), Duration::from_millis(1), 0, true);
        store.finished(key(9), Instant::now(), Duration::from_millis(1), 0, true); // not kept: ignored
        let e = &store.entries()[0];
        assert_eq!((e.count, e.errors, e.rows, e.max_us), (2, 1, 5, 3000));
        assert_eq!((e.latency.count, e.latency.sum_us), (2, 4000));
        assert_eq!(&*e.digest, "SELECT ?1");
        store.reset();
        assert!(store.is_empty());
    }

    #[test]
    fn texts_are_cut_at_a_character_boundary() {
        let long = "é".repeat(TEXT_KEPT);
        let cut = kept(long.as_bytes());
        assert!(cut.len() <= TEXT_KEPT && cut.chars().all(|c| c == 'é'));
    }
}
