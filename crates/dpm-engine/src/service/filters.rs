//! Built-in filters are process-wide: the startup file runs once per worker, so the first
//! worker to define a filter name creates its [`FilterDefinition`] (its options, rules,
//! log writer, counters) and every worker gets the same one back and makes its own
//! [`Filter`] from it. Kept here by name, so that operations reach every filter at once:
//! SIGHUP reopens their logs and reloads their rules, `service:reload_filters()` reloads
//! one service's.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, LazyLock, Mutex};

use crate::pipeline::Filter;

/// A built-in filter instance shared by every worker.
pub trait FilterDefinition: Send + Sync {
    /// The instance's name.
    fn name(&self) -> &str;
    /// This worker's filter, made from the shared instance.
    fn worker_filter(self: Arc<Self>) -> Rc<dyn Filter>;
    /// Reloads what the filter reads from files (a firewall's rule file). An error keeps
    /// what was loaded before and says why (`FILE:LINE: message`).
    fn reload(&self) -> Result<(), String> {
        Ok(())
    }
    /// Reopens the files the filter writes (after logrotate moved them).
    fn reopen_logs(&self) {}
}

static DEFINITIONS: LazyLock<Mutex<HashMap<String, Arc<dyn FilterDefinition>>>> =
    LazyLock::new(Default::default);

fn definitions() -> std::sync::MutexGuard<'static, HashMap<String, Arc<dyn FilterDefinition>>> {
    DEFINITIONS.lock().unwrap_or_else(|e| e.into_inner())
}

/// The filter named `name`: made by `make` the first time, the same one afterwards.
pub fn define_filter(
    name: &str,
    make: impl FnOnce() -> Result<Arc<dyn FilterDefinition>, String>,
) -> Result<Arc<dyn FilterDefinition>, String> {
    if let Some(existing) = definitions().get(name) {
        return Ok(existing.clone());
    }
    // Made outside the lock: making one may read files or start a writer thread.
    let made = make()?;
    Ok(definitions()
        .entry(name.to_string())
        .or_insert(made)
        .clone())
}

/// Reloads the named filters (those that are built-in; Lua filters have nothing to
/// reload). Every one is tried; the errors are returned, one line each.
pub fn reload_filters<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let found: Vec<Arc<dyn FilterDefinition>> = {
        let all = definitions();
        names
            .into_iter()
            .filter_map(|n| all.get(n).cloned())
            .collect()
    };
    found.iter().filter_map(|f| f.reload().err()).collect()
}

/// Every built-in filter: reopen logs, reload rules (SIGHUP). Returns the reload errors.
pub fn reopen_and_reload_all() -> Vec<String> {
    let all: Vec<Arc<dyn FilterDefinition>> = definitions().values().cloned().collect();
    for f in &all {
        f.reopen_logs();
    }
    all.iter().filter_map(|f| f.reload().err()).collect()
}

/// Every built-in filter reopens its log files (`dpm.reopen_logs()`).
pub fn reopen_logs() {
    let all: Vec<Arc<dyn FilterDefinition>> = definitions().values().cloned().collect();
    for f in &all {
        f.reopen_logs();
    }
}
