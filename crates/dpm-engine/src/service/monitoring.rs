//! Monitors: process-wide instances that watch servers and publish what they find on the
//! [`Server`]s themselves (up or down, role, lag: atomics routers read on every worker
//! without a lock), and the server events they raise (`server_down`, `new_primary`, …)
//! on one process-wide bus every worker can listen to.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex};

use tokio::sync::broadcast;

use super::module::ModuleInfo;
use super::server::Server;

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
    /// Counters and what it found, as JSON.
    fn diagnostics(&self) -> serde_json::Value;
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

/// Every defined monitor.
pub fn monitors() -> Vec<Arc<dyn Monitor>> {
    MONITORS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .map(|d| d.monitor.clone())
        .collect()
}

struct Defined {
    made_from: String,
    monitor: Arc<dyn Monitor>,
}

static MONITORS: LazyLock<Mutex<HashMap<String, Defined>>> = LazyLock::new(Default::default);

/// The monitor named `name`: made (and started) by `make` the first time, the same one
/// afterwards; `made_from` (module, servers, options) must not differ.
pub fn define_monitor(
    name: &str,
    made_from: &str,
    make: impl FnOnce() -> Result<Arc<dyn Monitor>, String>,
) -> Result<Arc<dyn Monitor>, String> {
    let mut all = MONITORS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(d) = all.get(name) {
        return if d.made_from == made_from {
            Ok(d.monitor.clone())
        } else {
            Err(format!(
                "monitor '{name}' is already defined with another module, other servers or other options"
            ))
        };
    }
    // Made under the lock: a second worker must not start a second monitor.
    let monitor = make()?;
    all.insert(
        name.to_string(),
        Defined {
            made_from: made_from.to_string(),
            monitor: monitor.clone(),
        },
    );
    Ok(monitor)
}
