//! One worker's sessions as the control plane shows them ([`SessionInfo`]), read on the
//! worker's own thread from its connection table: who, from where, through which
//! service to which servers, and what the session is doing.

use std::time::Instant;

use crate::conn::Conn;
use crate::tracker::Phase;
use crate::worker::Worker;
use crate::ConnId;

/// A session as an operator sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionInfo {
    /// The session's id (its client connection's id, as the Lua API knows it).
    pub id: ConnId,
    /// The worker it lives on.
    pub worker: usize,
    /// The client's address (`ip:port`, or `localhost` for a unix socket).
    pub client: Option<String>,
    /// The user it logged in as (service sessions, and sessions whose login dpm ran).
    pub user: Option<String>,
    /// Its current schema (service sessions).
    pub schema: Option<String>,
    /// The service it is a session of (none: a session run by DPM callbacks).
    pub service: Option<String>,
    /// The addresses of its backend connections, the linked one first.
    pub backends: Vec<String>,
    /// The servers of a service session's backends, the linked one first.
    pub servers: Vec<String>,
    /// Where it is in the protocol: `connecting`, `logging in`, `idle`, `busy`, `opaque`
    /// (TLS or compression end to end: dpm cannot tell).
    pub state: &'static str,
    /// A transaction is open (service sessions: as the server last said).
    pub in_transaction: bool,
    /// The command running, if one is (service sessions), e.g. `COM_QUERY`.
    pub command: Option<&'static str>,
    /// The statement running (its first bytes), for a query or prepare.
    pub statement: Option<String>,
    /// How long the command has been running, in milliseconds.
    pub running_ms: Option<u64>,
    /// Why its router keeps it on one server, if it does (readwritesplit's pin reason).
    pub pin_reason: Option<String>,
}

impl SessionInfo {
    /// As JSON, for the admin API.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "worker": self.worker,
            "client": self.client,
            "user": self.user,
            "schema": self.schema,
            "service": self.service,
            "backends": self.backends,
            "servers": self.servers,
            "state": self.state,
            "in_transaction": self.in_transaction,
            "command": self.command,
            "statement": self.statement,
            "running_ms": self.running_ms,
            "pin_reason": self.pin_reason,
        })
    }
}

/// The worker's sessions (one per client connection), by id.
pub(super) fn of_worker(worker: &Worker) -> Vec<SessionInfo> {
    let now = Instant::now();
    let mut all: Vec<SessionInfo> = clients(worker)
        .iter()
        .map(|c| describe(worker, c, now))
        .collect();
    all.sort_by_key(|s| s.id);
    all
}

/// Kills the worker's sessions whose linked backend is on server `name` and whose
/// router keeps one backend per session (a router that uses several moves the session
/// off a server that is not up by itself). How many were killed.
pub(super) fn kill_on_server(worker: &Worker, name: &str) -> usize {
    let mut killed = 0;
    for client in clients(worker) {
        let session = client.session.borrow().clone();
        let Some(pipeline) = session.and_then(|s| s.pipeline()) else {
            continue;
        };
        if !pipeline.uses_several_backends()
            && pipeline.server().name == name
            && crate::lifecycle::kill(worker, client.id)
        {
            killed += 1;
        }
    }
    killed
}

/// The worker's clients that are not closing.
fn clients(worker: &Worker) -> Vec<std::rc::Rc<Conn>> {
    let mut open = worker.clients();
    open.retain(|c| !c.closing.get());
    open
}

fn describe(worker: &Worker, client: &Conn, now: Instant) -> SessionInfo {
    let (phase, idle) = {
        let tracker = client.tracker.borrow();
        (tracker.phase(), tracker.is_idle())
    };
    let state = match phase {
        Phase::AwaitHandshake => "connecting",
        Phase::AwaitLogin | Phase::Authenticating => "logging in",
        Phase::Ready if idle => "idle",
        Phase::Ready => "busy",
        Phase::Tunnel => "opaque",
    };
    let mut info = SessionInfo {
        id: client.id,
        worker: worker.index(),
        client: client.transport.get().and_then(|t| t.peer()),
        user: None,
        schema: None,
        service: None,
        backends: Vec::new(),
        servers: Vec::new(),
        state,
        in_transaction: false,
        command: None,
        statement: None,
        running_ms: None,
        pin_reason: None,
    };
    let Some(session) = client.session.borrow().clone() else {
        return info;
    };
    if let Some(backend) = session.backend().and_then(|id| worker.get(id)) {
        info.backends.push(backend.target.clone());
    }
    info.user = session.user_name();
    let Some(pipeline) = session.pipeline() else {
        return info;
    };
    info.service = Some(pipeline.service.shared.name.clone());
    let linked = pipeline.server();
    info.servers.push(linked.name.clone());
    for server in session.backends.borrow().open() {
        if server.name != linked.name {
            info.servers.push(server.name.clone());
            info.backends.push(server.address.to_string());
        }
    }
    info.pin_reason = pipeline.router.borrow().pin_reason();
    let state = session.state.borrow();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    info.schema = state.schema.as_deref().map(text);
    info.in_transaction = state.in_transaction();
    if let Some(running) = state.running() {
        // 0: a pipelined command behind another, not identified.
        info.command =
            (running.command != 0).then(|| dpm_protocol::command::command_name(running.command));
        info.statement = running.statement.map(text);
        info.running_ms = Some(now.saturating_duration_since(running.since).as_millis() as u64);
    }
    info
}
