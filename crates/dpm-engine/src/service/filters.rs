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

/// A defined filter and what it was made from (module and options, as JSON).
struct Defined {
    made_from: String,
    filter: Arc<dyn FilterDefinition>,
}

static DEFINITIONS: LazyLock<Mutex<HashMap<String, Defined>>> = LazyLock::new(Default::default);

fn definitions() -> std::sync::MutexGuard<'static, HashMap<String, Defined>> {
    DEFINITIONS.lock().unwrap_or_else(|e| e.into_inner())
}

/// The filter named `name`: made by `make` the first time, the same one afterwards.
/// `made_from` (module and options) must be the same each time: every worker runs the
/// same startup file, so a difference is two filters given one name — an error.
pub fn define_filter(
    name: &str,
    made_from: &str,
    make: impl FnOnce() -> Result<Arc<dyn FilterDefinition>, String>,
) -> Result<Arc<dyn FilterDefinition>, String> {
    let same = |d: &Defined| {
        if d.made_from == made_from {
            Ok(d.filter.clone())
        } else {
            Err(format!(
                "filter '{name}' is already defined with another module or other options ({}): give each filter its own name",
                d.made_from
            ))
        }
    };
    if let Some(existing) = definitions().get(name) {
        return same(existing);
    }
    // Made outside the lock: making one may read files or start a writer thread.
    let made = make()?;
    let mut all = definitions();
    let entry = all.entry(name.to_string()).or_insert(Defined {
        made_from: made_from.to_string(),
        filter: made,
    });
    same(entry)
}

/// Reloads the named filters (those that are built-in; Lua filters have nothing to
/// reload). Every one is tried; the errors are returned, one line each.
pub fn reload_filters<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let found: Vec<Arc<dyn FilterDefinition>> = {
        let all = definitions();
        names
            .into_iter()
            .filter_map(|n| all.get(n).map(|d| d.filter.clone()))
            .collect()
    };
    found.iter().filter_map(|f| f.reload().err()).collect()
}

/// Every built-in filter: reopen logs, reload rules (SIGHUP). Returns the reload errors.
pub fn reopen_and_reload_all() -> Vec<String> {
    let all = every_filter();
    for f in &all {
        f.reopen_logs();
    }
    all.iter().filter_map(|f| f.reload().err()).collect()
}

/// Every built-in filter reopens its log files (`dpm.reopen_logs()`).
pub fn reopen_logs() {
    for f in every_filter() {
        f.reopen_logs();
    }
}

/// The names of every built-in filter instance, sorted.
pub fn filter_names() -> Vec<String> {
    let mut names: Vec<String> = definitions().keys().cloned().collect();
    names.sort();
    names
}

fn every_filter() -> Vec<Arc<dyn FilterDefinition>> {
    definitions().values().map(|d| d.filter.clone()).collect()
}
