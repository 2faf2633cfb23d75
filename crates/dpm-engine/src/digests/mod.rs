//! Query digests (`dpm.digests{ capacity = N }`): per (digest, user, service), how many
//! statements ran, how many failed, their rows, total and longest time, a latency
//! histogram, first and last seen, and one sample statement — for the statements of
//! service sessions (`COM_QUERY`). Kept per worker in a bounded [`store::DigestStore`]
//! (space-saving top-`capacity`), so memory stays flat whatever the number of distinct
//! statements; the admin API asks each worker for a copy and merges them.
//!
//! Off until the startup file asks for it: then each `COM_QUERY` of a service session gets
//! its digest's hash (the classifier's, handed in by the layer above as a
//! [`DigestHashFn`], the engine not knowing SQL: one pass over the bytes when a statement
//! of the same shape — the same but for its literals — was seen on the thread, the lexer
//! otherwise); the digest's text is written ([`DigestFn`]) only for a key not kept yet.

pub mod store;

use std::cell::RefCell;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::pipeline::Pipeline;
use crate::session::Session;
use crate::worker::Worker;
use store::{DigestEntry, DigestKey, DigestStore};

/// How many bytes of a statement are digested (see [`statement_starts`]).
pub const DIGESTED: usize = 64 * 1024;

/// Writes the digest of SQL text into the buffer (cleared first) and returns its hash.
pub type DigestFn = fn(&[u8], &mut Vec<u8>) -> u64;

/// The digest hash of SQL text alone (it may skip the lexer for a statement whose shape
/// it has seen: the classifier's `digest_hash_cached`).
pub type DigestHashFn = fn(&[u8]) -> u64;

/// The process's digest settings.
#[derive(Clone, Copy, Debug)]
pub struct DigestConfig {
    /// Entries kept per worker.
    pub capacity: usize,
    /// The digest's hash, per statement.
    pub hash: DigestHashFn,
    /// The digest's text, for a key the store does not keep yet.
    pub digest: DigestFn,
}

static CONFIG: OnceLock<DigestConfig> = OnceLock::new();

/// Turns digests on (the startup file; every worker asks the same). They are the
/// process's: a reload's file may ask for them as they are, but turning them on or
/// changing the capacity fails the reload, saying it takes effect only at restart (a file
/// that does not ask leaves them on).
pub fn enable(capacity: usize, hash: DigestHashFn, digest: DigestFn) -> Result<(), String> {
    if capacity == 0 {
        return Err("dpm.digests: capacity must be at least 1".to_string());
    }
    if crate::service::generations::loading() && CONFIG.get().map(|c| c.capacity) != Some(capacity)
    {
        return Err(format!(
            "dpm.digests: digests {} at a reload: dpm.digests{{ capacity = {capacity} }} takes effect only at restart",
            match CONFIG.get() {
                Some(c) => format!("keep their capacity of {}", c.capacity),
                None => "cannot be turned on".to_string(),
            }
        ));
    }
    let config = CONFIG.get_or_init(|| DigestConfig {
        capacity,
        hash,
        digest,
    });
    if config.capacity != capacity {
        return Err(format!(
            "dpm.digests: already enabled with capacity {}",
            config.capacity
        ));
    }
    Ok(())
}

/// The settings, when digests are on (a load of a once-set cell: the data path's test).
#[inline]
pub fn config() -> Option<&'static DigestConfig> {
    CONFIG.get()
}

/// A worker's digest store and the buffer digests are written into.
#[derive(Default)]
pub(crate) struct WorkerDigests {
    store: RefCell<Option<DigestStore>>,
    scratch: RefCell<Vec<u8>>,
}

/// The statement of a session being timed for its digest.
#[derive(Clone, Copy, Debug)]
pub struct Pending {
    key: DigestKey,
    rows: u64,
}

impl Pending {
    /// One more row in its result.
    #[inline]
    pub fn row(&mut self) {
        self.rows += 1;
    }
}

/// A `COM_QUERY` of a service session leaves for its server: counted under its digest;
/// its rows are counted and its time taken (from the session's own clock read as the
/// command left) until its response ends ([`statement_ended`]).
pub(crate) fn statement_starts(
    worker: &Worker,
    config: &DigestConfig,
    session: &Session,
    pipeline: &Pipeline,
    payload: &[u8],
) -> Pending {
    let sql = payload.get(1..).unwrap_or_default();
    let digests = &worker.inner.digests;
    let mut scratch = digests.scratch.borrow_mut();
    // A statement of megabytes is digested by its first DIGESTED bytes: its digest is
    // told apart by them, and a worker does not lex megabytes per statement.
    let sql = &sql[..sql.len().min(DIGESTED)];
    let digest = (config.hash)(sql);
    let service = &pipeline.service.shared.name;
    // Borrowed, not cloned: the user's text is copied only for a key not kept yet.
    let state = session.state.borrow();
    let user = state.user.as_deref();
    let who = {
        use std::hash::{BuildHasher, Hash, Hasher};
        let mut h = rustc_hash::FxBuildHasher.build_hasher();
        user.hash(&mut h);
        service.hash(&mut h);
        h.finish()
    };
    let key = DigestKey { digest, who };
    let mut store = digests.store.borrow_mut();
    let store = store.get_or_insert_with(|| DigestStore::new(config.capacity));
    store.started(key, || {
        // A key not kept: its text, once.
        (config.digest)(sql, &mut scratch);
        let user = user
            .map(|u| String::from_utf8_lossy(u).into_owned())
            .unwrap_or_default();
        (&scratch[..], sql, user, service.as_str())
    });
    Pending { key, rows: 0 }
}

/// The response of a timed statement ended (with an ERR or not).
pub(crate) fn statement_ended(
    worker: &Worker,
    pending: Pending,
    started: Instant,
    took: Duration,
    failed: bool,
) {
    if let Some(store) = worker.inner.digests.store.borrow_mut().as_mut() {
        store.finished(pending.key, started + took, took, pending.rows, failed);
    }
}

/// A copy of the worker's entries.
pub(crate) fn entries(worker: &Worker) -> Vec<DigestEntry> {
    worker
        .inner
        .digests
        .store
        .borrow()
        .as_ref()
        .map(|s| s.entries())
        .unwrap_or_default()
}

/// Forgets the worker's entries.
pub(crate) fn reset(worker: &Worker) {
    if let Some(store) = worker.inner.digests.store.borrow_mut().as_mut() {
        store.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::generations::{abort_load, begin_load, serial_test};

    #[test]
    fn a_reload_cannot_turn_digests_on() {
        // (Turned on for good, they would change every other test of the process.)
        let _serial = serial_test();
        begin_load();
        let e = enable(100, |_| 0, |_, _| 0).unwrap_err();
        abort_load();
        assert!(e.contains("cannot be turned on"), "{e}");
        assert!(e.contains("takes effect only at restart"), "{e}");
        assert!(config().is_none());
    }
}
