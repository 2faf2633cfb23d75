//! The process's log level, changed while it runs (`dpm.set_log_level`, the admin API).
//! The binary owns the logger and installs the function that changes its filter; the
//! engine only carries the request to it, so that every layer can ask.

use std::sync::{LazyLock, Mutex, OnceLock};

/// Changes the logger's filter to a level or `tracing` filter directive.
type Setter = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

static SETTER: OnceLock<Setter> = OnceLock::new();
static CURRENT: LazyLock<Mutex<String>> = LazyLock::new(|| Mutex::new("warn".to_string()));

/// Installs the logger's setter and its level at start (the binary, once).
pub fn install(initial: &str, setter: Setter) {
    *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = initial.to_string();
    let _ = SETTER.set(setter);
}

/// The level now: `error`, `warn`, `info`, `debug`, `trace`, or a filter directive.
pub fn current() -> String {
    CURRENT.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Sets the level (one of the names above, or a `tracing` filter directive such as
/// `warn,dpm_engine=debug`); an unknown level changes nothing and says why.
pub fn set(level: &str) -> Result<(), String> {
    let level = level.trim();
    if level.is_empty() {
        return Err("a log level cannot be empty".to_string());
    }
    let setter = SETTER
        .get()
        .ok_or_else(|| "this process has no logger to change".to_string())?;
    setter(level)?;
    let before = std::mem::replace(
        &mut *CURRENT.lock().unwrap_or_else(|e| e.into_inner()),
        level.to_string(),
    );
    tracing::warn!("log level changed from {before} to {level}");
    Ok(())
}
