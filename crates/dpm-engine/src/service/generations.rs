//! Reloads of the startup file as the process-wide registries see them (servers,
//! services, filters, monitors, proxy-held users, listener limits).
//!
//! A reload (`crate::control::reload`) runs the new file on every worker while the old
//! one keeps serving, then switches every worker at once, or, if any worker failed,
//! forgets the new file. While it loads, [`loading`] is true: a definition equal to the
//! one in force gives the object in force back (a monitor keeps running, a server keeps
//! its state), a different one makes a new object that takes effect at [`commit_load`].

use std::sync::atomic::{AtomicBool, Ordering};

/// True while a reload's startup file runs.
static LOADING: AtomicBool = AtomicBool::new(false);

/// True while a reload's startup file runs on the workers.
pub fn loading() -> bool {
    LOADING.load(Ordering::Acquire)
}

/// A reload's startup file is about to run on every worker.
pub fn begin_load() {
    LOADING.store(true, Ordering::Release);
}

/// Every worker loaded the new file and switched to it: what it defined is now in force.
pub fn commit_load() {
    LOADING.store(false, Ordering::Release);
}

/// A worker failed to load the new file: what the load defined is forgotten.
pub fn abort_load() {
    LOADING.store(false, Ordering::Release);
}
