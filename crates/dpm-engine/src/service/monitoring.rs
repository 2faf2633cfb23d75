//! Monitors: process-wide instances that watch servers and publish what they find on the
//! [`Server`]s themselves (up or down, role, lag: atomics routers read on every worker
//! without a lock), and the server events they raise (`server_down`, `new_primary`, …)
//! on one process-wide bus every worker can listen to.
//!
//! At a reload a monitor defined the same way (module, options, the same server objects)
//! keeps running; one that leaves the registry (dropped from the file, or replaced by
//! another definition) is stopped (`super::generations`).

use std::fmt;
use std::sync::{Arc, LazyLock};

use tokio::sync::broadcast;

use super::generations::Registry;
use super::module::ModuleInfo;
use super::server::{same_servers, Server};

/// What happened to a server.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ServerEventKind {
    /// It stopped answering (or was found down at the first check).
    ServerDown,
    /// It answers (again, or at the first check).
    ServerUp,
    /// It became the primary.
    NewPrimary,
    /// It was the primary and is not any more (down, or demoted).
    LostPrimary,
    /// Its replication lag went over the monitor's threshold.
    LagOver,
    /// Its replication lag came back under the threshold.
    LagUnder,
}

impl ServerEventKind {
    /// The event's name (`server_down`, `new_primary`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ServerEventKind::ServerDown => "server_down",
            ServerEventKind::ServerUp => "server_up",
            ServerEventKind::NewPrimary => "new_primary",
            ServerEventKind::LostPrimary => "lost_primary",
            ServerEventKind::LagOver => "lag_over",
            ServerEventKind::LagUnder => "lag_under",
        }
    }
}

impl fmt::Display for ServerEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event about a server.
#[derive(Clone, Debug)]
pub struct ServerEvent {
    /// What happened.
    pub kind: ServerEventKind,
    /// To which server.
    pub server: Arc<Server>,
}

/// Events waiting for a slow listener before it loses the oldest (it is told how many).
const BUS_CAPACITY: usize = 1024;

static BUS: LazyLock<broadcast::Sender<ServerEvent>> =
    LazyLock::new(|| broadcast::channel(BUS_CAPACITY).0);

/// Raises `event` for every listener.
pub fn raise_server_event(event: ServerEvent) {
    // No listener is fine: nobody asked.
    let _ = BUS.send(event);
}

/// A new listener: it gets every event raised from now on.
pub fn server_events() -> broadcast::Receiver<ServerEvent> {
    BUS.subscribe()
}

/// A monitor instance, shared by every worker.
pub trait Monitor: Send + Sync {
    /// The module's declaration.
    fn info(&self) -> &'static ModuleInfo;
    /// The instance's name.
    fn name(&self) -> &str;
    /// The servers it watches.
    fn servers(&self) -> Vec<Arc<Server>>;
    /// Counters and what it found, as JSON (saying whether it runs or was stopped).
    fn diagnostics(&self) -> serde_json::Value;
    /// Stops it for good: its task ends (after the check under way, whose findings it
    /// no longer publishes) and it raises no more events. Called when it leaves the
    /// registry at a reload; sessions go on with what it last published.
    fn stop(&self);
    /// Starts a planned switch of the primary role to server `to`; the receiver gets
    /// the outcome. An error when the monitor cannot do it at all.
    fn switchover(
        &self,
        to: &str,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<(), String>>, String> {
        Err(format!(
            "monitor '{}' ({}) cannot switch over to {to}",
            self.name(),
            self.info().name
        ))
    }
}

/// Every monitor in force.
pub fn monitors() -> Vec<Arc<dyn Monitor>> {
    MONITORS.values().into_iter().map(|d| d.monitor).collect()
}

#[derive(Clone)]
struct Defined {
    made_from: String,
    monitor: Arc<dyn Monitor>,
}

/// A monitor that leaves the registry is stopped.
static MONITORS: Registry<Defined> = Registry::retiring(|d| d.monitor.stop());

/// The monitor named `name` of `servers`: made (and started) by `make` the first time,
/// the same one afterwards; `made_from` (module, servers, options) and the server objects
/// must not differ. At a reload, the monitor in force if it was made from the same and
/// watches the same server objects, else a new one (the old one is stopped when the
/// reload takes effect).
pub fn define_monitor(
    name: &str,
    made_from: &str,
    servers: &[Arc<Server>],
    make: impl FnOnce() -> Result<Arc<dyn Monitor>, String>,
) -> Result<Arc<dyn Monitor>, String> {
    let same = |d: &Defined| {
        if d.made_from == made_from && same_servers(&d.monitor.servers(), servers) {
            Ok(())
        } else {
            Err(format!(
                "monitor '{name}' is already defined with another module, other servers or other options"
            ))
        }
    };
    // Made under the lock: a second worker must not start a second monitor.
    let defined = MONITORS.define(name.to_string(), same, |_| {
        Ok(Defined {
            made_from: made_from.to_string(),
            monitor: make()?,
        })
    })?;
    Ok(defined.monitor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::generations::{abort_load, begin_load, commit_load, serial_test};
    use crate::service::{Maturity, ModuleType, ServerAddress, ServerRole};
    use std::sync::atomic::{AtomicBool, Ordering};

    static WATCH: ModuleInfo = ModuleInfo {
        kind: ModuleType::Monitor,
        name: "watch",
        maturity: Maturity::Alpha,
        version: "0.0.0",
        description: "watches nothing, runs until stopped (a test monitor)",
        options: &[],
    };

    struct Watch {
        name: String,
        servers: Vec<Arc<Server>>,
        stopped: AtomicBool,
    }

    impl Monitor for Watch {
        fn info(&self) -> &'static ModuleInfo {
            &WATCH
        }
        fn name(&self) -> &str {
            &self.name
        }
        fn servers(&self) -> Vec<Arc<Server>> {
            self.servers.clone()
        }
        fn diagnostics(&self) -> serde_json::Value {
            let stopped = self.stopped.load(Ordering::Relaxed);
            serde_json::json!({ "state": if stopped { "stopped" } else { "running" } })
        }
        fn stop(&self) {
            self.stopped.store(true, Ordering::Relaxed);
        }
    }

    fn server(name: &str) -> Arc<Server> {
        let address = ServerAddress::Unix(format!("/{name}"));
        Arc::new(Server::new(name.into(), address, ServerRole::Unknown))
    }

    /// Defines monitor `name` of `servers` made from `options`.
    fn monitor(name: &str, options: &str, servers: &[Arc<Server>]) -> Arc<dyn Monitor> {
        let made_from = format!("module watch, options {options}");
        define_monitor(name, &made_from, servers, || {
            Ok(Arc::new(Watch {
                name: name.into(),
                servers: servers.to_vec(),
                stopped: AtomicBool::new(false),
            }))
        })
        .unwrap()
    }

    fn state(monitor: &Arc<dyn Monitor>) -> serde_json::Value {
        monitor.diagnostics()["state"].clone()
    }

    fn in_force(name: &str) -> Option<Arc<dyn Monitor>> {
        monitors().into_iter().find(|m| m.name() == name)
    }

    #[test]
    fn a_reload_keeps_an_unchanged_monitor_running_and_stops_the_others() {
        let _serial = serial_test();
        let db = [server("m-db")];
        let kept = monitor("m-kept", "{}", &db);
        let new_options = monitor("m-options", "{}", &db);
        let new_servers = monitor("m-servers", "{}", &db);
        let dropped = monitor("m-dropped", "{}", &db);

        begin_load();
        assert!(Arc::ptr_eq(&monitor("m-kept", "{}", &db), &kept));
        let replaced = monitor("m-options", r#"{"interval":5}"#, &db);
        // Same name and options, but another server object under the same name.
        let moved = monitor("m-servers", "{}", &[server("m-db")]);
        // Nothing stops before the reload takes effect.
        assert_eq!(state(&new_options), "running");
        assert_eq!(state(&dropped), "running");
        commit_load();

        assert_eq!(state(&kept), "running");
        assert!(Arc::ptr_eq(&in_force("m-kept").unwrap(), &kept));
        for old in [&new_options, &new_servers, &dropped] {
            assert_eq!(state(old), "stopped", "{} left and is stopped", old.name());
        }
        assert_eq!(state(&replaced), "running");
        assert_eq!(state(&moved), "running");
        assert!(Arc::ptr_eq(&in_force("m-servers").unwrap(), &moved));
        assert!(in_force("m-dropped").is_none());
    }

    #[test]
    fn an_aborted_reload_stops_the_monitors_it_started() {
        let _serial = serial_test();
        let db = [server("ma-db")];
        let old = monitor("ma-replaced", "{}", &db);

        begin_load();
        let added = monitor("ma-added", "{}", &db);
        let replacing = monitor("ma-replaced", r#"{"interval":5}"#, &db);
        abort_load();

        assert_eq!(state(&added), "stopped");
        assert_eq!(state(&replacing), "stopped");
        assert_eq!(state(&old), "running");
        assert!(Arc::ptr_eq(&in_force("ma-replaced").unwrap(), &old));
        assert!(in_force("ma-added").is_none());
    }
}
