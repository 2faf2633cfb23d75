//! `dpm --check FILE`: the startup file is loaded and validated as for a start, but
//! nothing reaches out of the process. While the flag is set, listeners are registered
//! without binding, backend connections without connecting, monitors without starting,
//! and the admin listener is not bound; everything the file declares is still checked
//! (modules, options and their types, addresses, certificate files).

use std::sync::atomic::{AtomicBool, Ordering};

static CHECK_ONLY: AtomicBool = AtomicBool::new(false);

/// Puts the process in check mode (the binary, before any worker starts; never undone).
pub fn set_check_only() {
    CHECK_ONLY.store(true, Ordering::Relaxed);
}

/// True under `dpm --check`.
pub fn check_only() -> bool {
    CHECK_ONLY.load(Ordering::Relaxed)
}
