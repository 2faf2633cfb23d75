//! A worker: one OS thread's set of connections and the control API a script drives
//! (listen, connect, link, wire, close). Everything here runs on the worker's own
//! single-threaded runtime; nothing is shared with other workers but the id counter
//! and what [`crate::shared`] holds.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashMap;

use crate::conn::{Conn, ListenerKind, Role};
use crate::error::EngineError;
use crate::event::{Event, EventMask};
use crate::shared::WorkerGauges;
use crate::sink::EventSink;
use crate::ConnId;

/// Process-wide connection ids start at 1, shared by listeners, clients and backends.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn next_id() -> ConnId {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// Limits and timeouts of a worker.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Largest logical packet accepted from any peer (MariaDB's own maximum is 1 GiB).
    pub max_packet: usize,
    /// How long a backend connect may take before it counts as failed.
    pub connect_timeout: Duration,
    /// How long a closing connection may spend flushing what was queued for it.
    pub close_flush_timeout: Duration,
    /// Client handshake, idle and drain timeouts (see [`crate::lifecycle`]).
    pub lifecycle: crate::lifecycle::LifecycleConfig,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            max_packet: 1 << 30,
            connect_timeout: Duration::from_secs(10),
            close_flush_timeout: Duration::from_secs(5),
            lifecycle: Default::default(),
        }
    }
}

/// What a script may ask about a connection.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    /// Listener, client or backend.
    pub role: Role,
    /// Id of the linked (or last linked) partner, 0 if none or after unlinking.
    pub remote_id: ConnId,
    /// The peer address (`ip:port`, or `localhost` for unix sockets), once connected.
    pub peer: Option<String>,
}

/// A handle to the current thread's worker. Cheap to clone; not `Send`.
#[derive(Clone)]
pub struct Worker {
    pub(crate) inner: Rc<Inner>,
}

pub(crate) struct Inner {
    pub index: usize,
    pub config: WorkerConfig,
    /// Every open connection of the worker. Looked up on every read (the partner), so
    /// keyed with Fx hashing: ids are dpm's own counters, not attacker-chosen.
    pub conns: RefCell<FxHashMap<ConnId, Rc<Conn>>>,
    pub sink: RefCell<Option<Rc<dyn EventSink>>>,
    /// `remote_id` of closed connections, kept until the script forgets them.
    pub closed_remote: RefCell<FxHashMap<ConnId, ConnId>>,
    /// The hot path's read buffer, shared by all connections of the worker: a read is
    /// forwarded from it before the reader yields, so one is enough.
    pub scratch: RefCell<Box<[u8]>>,
    /// This worker's counters as the other workers see them (`dpm.stats().total`).
    pub gauges: Arc<WorkerGauges>,
    /// Timeouts and drain state (see [`crate::lifecycle`]).
    pub lifecycle: crate::lifecycle::State,
}

impl Worker {
    /// A worker numbered `index` (0-based) with `config`. Must be used inside a
    /// `tokio::task::LocalSet` on a current-thread runtime.
    pub fn new(index: usize, config: WorkerConfig) -> Worker {
        let gauges = Arc::new(WorkerGauges::default());
        crate::shared::shared().publish_gauges(gauges.clone());
        Worker {
            inner: Rc::new(Inner {
                index,
                config,
                conns: RefCell::new(FxHashMap::default()),
                sink: RefCell::new(None),
                closed_remote: RefCell::new(FxHashMap::default()),
                scratch: RefCell::new(vec![0u8; crate::forward::SCRATCH_LEN].into_boxed_slice()),
                gauges,
                lifecycle: Default::default(),
            }),
        }
    }

    /// This worker's number.
    pub fn index(&self) -> usize {
        self.inner.index
    }

    /// Installs the receiver of this worker's events.
    pub fn set_sink(&self, sink: Rc<dyn EventSink>) {
        *self.inner.sink.borrow_mut() = Some(sink);
    }

    pub(crate) fn sink(&self) -> Option<Rc<dyn EventSink>> {
        self.inner.sink.borrow().clone()
    }

    pub(crate) fn get(&self, id: ConnId) -> Option<Rc<Conn>> {
        self.inner.conns.borrow().get(&id).cloned()
    }

    pub(crate) fn register(&self, role: Role, target: String) -> Rc<Conn> {
        let conn = Rc::new(Conn::new(
            next_id(),
            role,
            target,
            self.inner.config.max_packet,
        ));
        self.inner.conns.borrow_mut().insert(conn.id, conn.clone());
        self.publish_conn_count();
        conn
    }

    /// The linked partner of `conn`, if it is still open.
    pub(crate) fn partner_of(&self, conn: &Conn) -> Option<Rc<Conn>> {
        conn.partner.get().and_then(|id| self.get(id))
    }

    /// Copies the size of the connection table to the published gauge.
    fn publish_conn_count(&self) {
        let open = self.inner.conns.borrow().len() as u64;
        self.inner.gauges.connections.store(open, Ordering::Relaxed);
    }

    /// This worker's published counters (see [`crate::shared`]).
    pub fn gauges(&self) -> &Arc<WorkerGauges> {
        &self.inner.gauges
    }

    /// Number of open connections (listeners included).
    pub fn conn_count(&self) -> usize {
        self.inner.conns.borrow().len()
    }

    /// True if the connection is open.
    pub fn is_alive(&self, id: ConnId) -> bool {
        self.inner.conns.borrow().contains_key(&id)
    }

    /// Facts about an open connection.
    pub fn info(&self, id: ConnId) -> Option<ConnInfo> {
        let conn = self.get(id)?;
        Some(ConnInfo {
            role: conn.role,
            remote_id: conn.remote_id.get(),
            peer: conn.stream.get().and_then(|s| s.peer()),
        })
    }

    /// The id of the partner `id` is (or was last) linked to; 0 if none. Still answers
    /// after `id` closed, until [`Worker::forget`] (scripts clean up with it).
    pub fn remote_id(&self, id: ConnId) -> ConnId {
        match self.get(id) {
            Some(conn) => conn.remote_id.get(),
            None => self
                .inner
                .closed_remote
                .borrow()
                .get(&id)
                .copied()
                .unwrap_or(0),
        }
    }

    /// Drops what is remembered about a closed connection.
    pub fn forget(&self, id: ConnId) {
        self.inner.closed_remote.borrow_mut().remove(&id);
    }

    /// Capabilities the two ends of `id`'s conversation agreed on (0 before login).
    pub fn negotiated_caps(&self, id: ConnId) -> u64 {
        self.get(id)
            .map_or(0, |c| c.tracker.borrow().negotiated_caps())
    }

    /// How an EOF about to be written to `id` must be encoded (see
    /// [`crate::tracker::EofStyle`]); an `Omit` answer consumes the omitted EOF.
    pub fn take_eof_style(&self, id: ConnId) -> crate::tracker::EofStyle {
        self.get(id).map_or(crate::tracker::EofStyle::Classic, |c| {
            c.tracker.borrow_mut().take_eof_style()
        })
    }

    /// Sets which events of `id` have a callback.
    pub fn set_event_mask(&self, id: ConnId, mask: EventMask) {
        if let Some(conn) = self.get(id) {
            conn.mask.set(mask);
        }
    }

    /// Starts listening on TCP `host:port` (`None` = all addresses) and returns the
    /// listener's id. Each worker binds its own socket with SO_REUSEPORT.
    pub fn listen_tcp(&self, host: Option<&str>, port: u16) -> Result<ConnId, EngineError> {
        let listener = crate::listener::bind_tcp(host, port)?;
        let conn = self.register(
            Role::Listener(ListenerKind::Tcp),
            format!("{}:{port}", host.unwrap_or("*")),
        );
        crate::listener::spawn_accept_loop(
            self.clone(),
            conn.clone(),
            crate::listener::Listening::Tcp(listener),
        );
        Ok(conn.id)
    }

    /// Starts listening on a unix socket at `path` with permission bits `mode`.
    pub fn listen_unix(&self, path: &str, mode: u32) -> Result<ConnId, EngineError> {
        let listener = crate::listener::bind_unix(path, mode)?;
        let conn = self.register(Role::Listener(ListenerKind::Unix), path.to_string());
        crate::listener::spawn_accept_loop(
            self.clone(),
            conn.clone(),
            crate::listener::Listening::Unix(listener),
        );
        Ok(conn.id)
    }

    /// Opens a backend connection to `host:port` in the background and returns its id at
    /// once. A failure shows up later as a close; a client linked to the backend that has
    /// not had a greeting yet gets an ERR 2003 naming the address.
    pub fn connect_tcp(&self, host: &str, port: u16) -> Result<ConnId, EngineError> {
        if host.is_empty() || host.contains(['/', ' ']) {
            return Err(EngineError::BadAddress(host.to_string()));
        }
        let conn = self.register(Role::Backend, format!("{host}:{port}"));
        crate::connector::spawn_connect(
            self.clone(),
            conn.clone(),
            crate::connector::Target::Tcp(host.to_string(), port),
        );
        Ok(conn.id)
    }

    /// Opens a backend connection over the unix socket at `path`.
    pub fn connect_unix(&self, path: &str) -> Result<ConnId, EngineError> {
        let conn = self.register(Role::Backend, path.to_string());
        crate::connector::spawn_connect(
            self.clone(),
            conn.clone(),
            crate::connector::Target::Unix(path.to_string()),
        );
        Ok(conn.id)
    }

    /// Links a client and a backend: from now on each packet read on one side is
    /// forwarded to the other unless a callback says otherwise.
    pub fn link(&self, client: ConnId, backend: ConnId) -> Result<(), EngineError> {
        let c = self
            .get(client)
            .ok_or(EngineError::DeadConnection(client))?;
        let b = self
            .get(backend)
            .ok_or(EngineError::DeadConnection(backend))?;
        if c.role != Role::Client {
            return Err(EngineError::WrongKind {
                id: client,
                problem: "is not a client",
            });
        }
        if b.role != Role::Backend {
            return Err(EngineError::WrongKind {
                id: backend,
                problem: "is not a backend",
            });
        }
        for (conn, other) in [(&c, &b), (&b, &c)] {
            // Whoever was linked before loses its back-pointer instead of keeping a dangling one.
            if let Some(old) = conn
                .partner
                .get()
                .filter(|&p| p != other.id)
                .and_then(|p| self.get(p))
            {
                if old.partner.get() == Some(conn.id) {
                    old.partner.set(None);
                }
            }
            conn.partner.set(Some(other.id));
            conn.remote_id.set(other.id);
        }
        // A backend that became linked may hold unread data paused for lack of a partner.
        b.drained.notify_waiters();
        c.drained.notify_waiters();
        Ok(())
    }

    /// Unlinks `id` and its partner; both `remote_id`s become 0.
    pub fn unlink(&self, id: ConnId) -> Result<(), EngineError> {
        let conn = self.get(id).ok_or(EngineError::DeadConnection(id))?;
        let partner = conn.partner.take().ok_or(EngineError::WrongKind {
            id,
            problem: "is not linked",
        })?;
        conn.remote_id.set(0);
        if let Some(p) = self.get(partner) {
            if p.partner.get() == Some(id) {
                p.partner.set(None);
                p.remote_id.set(0);
            }
        }
        Ok(())
    }

    /// Writes one packet (`payload`, split into frames when ≥ 16 MiB) to `id` with the
    /// sequence ids the protocol expects, driving the connection's state as a sent
    /// packet. A callback registered for the state reached runs soon after, with `(id)`.
    pub fn wire(&self, id: ConnId, payload: &[u8]) -> Result<(), EngineError> {
        let conn = self.get(id).ok_or(EngineError::DeadConnection(id))?;
        let event = crate::forward::write_packet(&conn, payload);
        if let (Some(event), Some(sink)) = (event.filter(|&e| conn.mask.get().has(e)), self.sink())
        {
            tokio::task::spawn_local(sink.packet(id, event, None));
        }
        Ok(())
    }

    /// Closes `id`: its `MY_CLOSING` callback runs, its partner is unlinked (but stays
    /// open), queued bytes are flushed, then the socket closes. Returns false if it was
    /// already closed.
    pub fn close(&self, id: ConnId) -> bool {
        let Some(conn) = self.inner.conns.borrow_mut().remove(&id) else {
            return false;
        };
        self.publish_conn_count();
        if conn.closing.replace(true) {
            return false;
        }
        tracing::debug!(conn = id, role = ?conn.role, "closing");
        if conn.role != Role::Listener(ListenerKind::Tcp)
            && conn.role != Role::Listener(ListenerKind::Unix)
        {
            self.inner
                .closed_remote
                .borrow_mut()
                .insert(id, conn.remote_id.get());
        }
        if let Some(p) = conn.partner.take().and_then(|p| self.get(p)) {
            if p.partner.get() == Some(id) {
                p.partner.set(None);
                p.drained.notify_waiters();
            }
        }
        conn.close_signal.notify_waiters();
        if let Some(stream) = conn.stream.get() {
            stream.shutdown_read();
        }
        conn.out_ready.notify_one();
        conn.drained.notify_waiters();
        if conn.mask.get().has(Event::MY_CLOSING) {
            if let Some(sink) = self.sink() {
                tokio::task::spawn_local(sink.closing(id));
            }
        }
        true
    }

    /// Closes every connection (at shutdown).
    pub fn close_all(&self) {
        let ids: Vec<ConnId> = self.inner.conns.borrow().keys().copied().collect();
        for id in ids {
            self.close(id);
        }
    }
}
