//! Built-in filters are process-wide: the startup file runs once per worker, so the first
//! worker to define a filter name creates its [`FilterDefinition`] (its options, rules,
//! log writer, counters) and every worker gets the same one back and makes its own
//! [`Filter`] from it; at a reload, a filter made from the same module and options is
//! the one in force, kept (`super::generations`). Kept here by name, so that operations
//! reach every filter at once: SIGHUP reopens their logs and reloads their rules,
//! `service:reload_filters()` reloads one service's.

use std::rc::Rc;
use std::sync::Arc;

use super::generations::Registry;
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
#[derive(Clone)]
struct Defined {
    made_from: String,
    filter: Arc<dyn FilterDefinition>,
}

static DEFINITIONS: Registry<Defined> = Registry::new();

/// The filter named `name`: made by `make` the first time, the same one afterwards.
/// `made_from` (module and options) must be the same each time: every worker runs the
/// same startup file, so a difference is two filters given one name — an error. At a
/// reload, the filter in force if it was made from the same, else a new one.
pub fn define_filter(
    name: &str,
    made_from: &str,
    make: impl FnOnce() -> Result<Arc<dyn FilterDefinition>, String>,
) -> Result<Arc<dyn FilterDefinition>, String> {
    let same = |d: &Defined| {
        if d.made_from == made_from {
            Ok(())
        } else {
            Err(format!(
                "filter '{name}' is already defined with another module or other options ({}): give each filter its own name",
                d.made_from
            ))
        }
    };
    let key = name.to_string();
    if let Some(found) = DEFINITIONS.existing(&key, same) {
        return found.map(|d| d.filter);
    }
    // Made outside the lock: making one may read files or start a writer thread.
    let made = Defined {
        made_from: made_from.to_string(),
        filter: make()?,
    };
    DEFINITIONS
        .define(key, same, |_| Ok(made))
        .map(|d| d.filter)
}

/// Reloads the named filters (those that are built-in; Lua filters have nothing to
/// reload). Every one is tried; the errors are returned, one line each.
pub fn reload_filters<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let found: Vec<Arc<dyn FilterDefinition>> = names
        .into_iter()
        .filter_map(|n| DEFINITIONS.get(n).map(|d| d.filter))
        .collect();
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

/// The names of every built-in filter instance in force, sorted.
pub fn filter_names() -> Vec<String> {
    DEFINITIONS.with_in_force(|all| all.keys().cloned().collect())
}

fn every_filter() -> Vec<Arc<dyn FilterDefinition>> {
    DEFINITIONS.values().into_iter().map(|d| d.filter).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{Action, FilterSession, Interest, Reply, Request, SessionRef, Step};
    use crate::service::generations::{abort_load, begin_load, commit_load, serial_test};
    use crate::service::{Maturity, ModuleInfo, ModuleType};
    use std::sync::atomic::{AtomicU64, Ordering};

    static PASS: ModuleInfo = ModuleInfo {
        kind: ModuleType::Filter,
        name: "pass",
        maturity: Maturity::Alpha,
        version: "0.0.0",
        description: "passes everything on, counting its reloads (a test filter)",
        options: &[],
    };

    /// A filter that passes everything on; its state is how often its rules were reloaded.
    struct Pass {
        name: String,
        reloads: AtomicU64,
    }

    impl FilterDefinition for Pass {
        fn name(&self) -> &str {
            &self.name
        }
        fn worker_filter(self: Arc<Self>) -> Rc<dyn Filter> {
            Rc::new(PassSession(self))
        }
        fn reload(&self) -> Result<(), String> {
            self.reloads.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
    }

    /// A worker's `Pass`, and its sessions' (it keeps nothing per session).
    struct PassSession(Arc<Pass>);

    impl Filter for PassSession {
        fn info(&self) -> &'static ModuleInfo {
            &PASS
        }
        fn name(&self) -> &str {
            &self.0.name
        }
        fn new_session(&self, _: &SessionRef) -> Rc<dyn FilterSession> {
            Rc::new(PassSession(self.0.clone()))
        }
        fn diagnostics(&self) -> serde_json::Value {
            serde_json::json!({ "reloads": self.0.reloads.load(Ordering::Relaxed) })
        }
    }

    impl FilterSession for PassSession {
        fn name(&self) -> &str {
            &self.0.name
        }
        fn interest(&self) -> Interest {
            Interest::default()
        }
        fn route_query(self: Rc<Self>, _: SessionRef, _: Rc<Request>) -> Step<Action> {
            Step::Ready(Action::Forward)
        }
        fn client_reply(self: Rc<Self>, _: SessionRef, _: Rc<Reply>) -> Step<()> {
            Step::Ready(())
        }
    }

    /// Defines `name` made from `options`: the filter and whether it was made now.
    fn filter(name: &str, options: &str) -> (Arc<dyn FilterDefinition>, bool) {
        let mut made = false;
        let made_from = format!("module pass, options {options}");
        let filter = define_filter(name, &made_from, || {
            made = true;
            Ok(Arc::new(Pass {
                name: name.to_string(),
                reloads: AtomicU64::new(0),
            }))
        })
        .unwrap();
        (filter, made)
    }

    fn reloads(name: &str) -> serde_json::Value {
        let filter = DEFINITIONS.get(name).unwrap().filter;
        filter.worker_filter().diagnostics()["reloads"].clone()
    }

    #[test]
    fn a_reload_keeps_filters_made_the_same_and_replaces_the_others() {
        let _serial = serial_test();
        let (kept, _) = filter("f-kept", "{}");
        let (replaced, _) = filter("f-replaced", "{}");
        filter("f-dropped", "{}");
        assert!(reload_filters(["f-kept"]).is_empty());

        begin_load();
        let (kept_again, made) = filter("f-kept", "{}");
        assert!(Arc::ptr_eq(&kept_again, &kept) && !made);
        let (new, made) = filter("f-replaced", r#"{"a":1}"#);
        assert!(made && !Arc::ptr_eq(&new, &replaced));
        // A second worker's differing definition in the same load is an error.
        let e = define_filter("f-replaced", "module pass, options {}", || {
            unreachable!("the load's filter f-replaced exists")
        });
        assert!(e
            .err()
            .unwrap()
            .contains("already defined with another module"));
        // The admin API lists the filters in force while the load runs.
        assert!(filter_names().contains(&"f-dropped".to_string()));
        commit_load();

        assert_eq!(reloads("f-kept"), 1, "a kept filter keeps its state");
        assert!(Arc::ptr_eq(
            &DEFINITIONS.get("f-replaced").unwrap().filter,
            &new
        ));
        assert!(!filter_names().contains(&"f-dropped".to_string()));
    }

    #[test]
    fn an_aborted_reload_leaves_the_filters_as_they_were() {
        let _serial = serial_test();
        let (old, _) = filter("fa-replaced", "{}");

        begin_load();
        filter("fa-replaced", r#"{"a":2}"#);
        filter("fa-added", "{}");
        abort_load();

        assert!(Arc::ptr_eq(
            &DEFINITIONS.get("fa-replaced").unwrap().filter,
            &old
        ));
        assert!(!filter_names().contains(&"fa-added".to_string()));
    }
}
