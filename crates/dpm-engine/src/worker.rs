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
use crate::generation::Generation;
use crate::service::WorkerService;
use crate::shared::WorkerGauges;
use crate::sink::EventSink;
use crate::ConnId;

/// Runs socket hook `hook` of `generation`'s program on the socket `socket()` names, if
/// it registered one. Without one this is a `Cell` read: no address is built.
#[inline]
fn run_socket_hook(
    generation: &Generation,
    hook: crate::sockets::SocketHook,
    socket: impl FnOnce() -> (std::os::fd::RawFd, crate::sockets::SocketAddress),
) {
    if !generation.socket_hooks().has(hook) {
        return;
    }
    if let Some(sink) = generation.sink() {
        let (fd, addr) = socket();
        sink.socket_hook(hook, fd, &addr);
    }
}

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
    /// The generation this handle acts for (a Lua state's handle: its own); `None`:
    /// the one in force. Connections the handle opens belong to it.
    generation: Option<Rc<Generation>>,
}

/// What runs the startup file on a worker (for dpm: creates a Lua state and runs the
/// file in it), given a handle of the generation being loaded.
pub type Loader = Arc<dyn Fn(&Worker) -> Result<(), String> + Send + Sync>;

pub(crate) struct Inner {
    pub index: usize,
    pub config: WorkerConfig,
    /// Every open connection of the worker. Looked up on every read (the partner), so
    /// keyed with Fx hashing: ids are dpm's own counters, not attacker-chosen.
    pub conns: RefCell<FxHashMap<ConnId, Rc<Conn>>>,
    /// The generation in force: new connections of handles without one join it.
    pub current: RefCell<Rc<Generation>>,
    /// A reload's generation while its file loads, until committed or aborted.
    pub loading: RefCell<Option<Rc<Generation>>>,
    /// What runs the startup file (set by the runtime; used again by each reload).
    pub loader: RefCell<Option<Loader>>,
    /// Raw TCP sockets bound for services of another protocol, by address: a reload's
    /// state takes them over ([`Worker::bind_raw_tcp`]).
    pub raw_listeners: RefCell<FxHashMap<String, std::rc::Weak<tokio::net::TcpListener>>>,
    /// `remote_id` of closed connections, kept until the script forgets them.
    pub closed_remote: RefCell<FxHashMap<ConnId, ConnId>>,
    /// The hot path's read buffer, shared by all connections of the worker: a read is
    /// forwarded from it before the reader yields, so one is enough.
    pub scratch: RefCell<Box<[u8]>>,
    /// This worker's counters as the other workers see them (`dpm.stats().total`).
    pub gauges: Arc<WorkerGauges>,
    /// The service each listener serves, if any.
    pub services: RefCell<FxHashMap<ConnId, Rc<WorkerService>>>,
    /// Timeouts and drain state (see [`crate::lifecycle`]).
    pub lifecycle: crate::lifecycle::State,
    /// What the metrics endpoint shows ([`crate::metrics`]).
    pub metrics: crate::metrics::WorkerMetrics,
    /// The query digests of this worker's sessions ([`crate::digests`]).
    pub digests: crate::digests::WorkerDigests,
    /// Server connections kept for the next session ([`crate::session::pool`]).
    pub pool: crate::session::pool::WorkerPool,
}

impl Worker {
    /// A worker numbered `index` (0-based) with `config`. Must be used inside a
    /// `tokio::task::LocalSet` on a current-thread runtime.
    pub fn new(index: usize, config: WorkerConfig) -> Worker {
        let gauges = Arc::new(WorkerGauges::default());
        crate::shared::shared().publish_gauges(gauges.clone());
        let first = Generation::new(1, gauges.clone());
        Worker {
            generation: None,
            inner: Rc::new(Inner {
                index,
                config,
                conns: RefCell::new(FxHashMap::default()),
                current: RefCell::new(first),
                loading: RefCell::new(None),
                loader: RefCell::new(None),
                raw_listeners: RefCell::new(FxHashMap::default()),
                closed_remote: RefCell::new(FxHashMap::default()),
                scratch: RefCell::new(vec![0u8; crate::forward::SCRATCH_LEN].into_boxed_slice()),
                gauges,
                services: RefCell::new(FxHashMap::default()),
                lifecycle: Default::default(),
                metrics: Default::default(),
                digests: Default::default(),
                pool: Default::default(),
            }),
        }
    }

    /// This worker's number.
    pub fn index(&self) -> usize {
        self.inner.index
    }

    /// The generation this handle acts for: its own, or the one in force.
    pub fn generation(&self) -> Rc<Generation> {
        match &self.generation {
            Some(g) => g.clone(),
            None => self.inner.current.borrow().clone(),
        }
    }

    /// A handle acting for `generation` (connections it opens belong to it).
    pub fn in_generation(&self, generation: Rc<Generation>) -> Worker {
        Worker {
            inner: self.inner.clone(),
            generation: Some(generation),
        }
    }

    /// A handle acting for no generation in particular (the one in force), for work of
    /// the worker that outlives generations (sweepers): it keeps none alive.
    pub(crate) fn for_every_generation(&self) -> Worker {
        Worker {
            inner: self.inner.clone(),
            generation: None,
        }
    }

    /// The socket hooks the program of this handle's generation registered.
    pub fn socket_hooks(&self) -> crate::sockets::SocketHooks {
        self.generation().socket_hooks()
    }

    /// Tells the worker which socket hooks its program registered (the sink runs them).
    pub fn set_socket_hooks(&self, hooks: crate::sockets::SocketHooks) {
        self.generation().set_socket_hooks(hooks);
    }

    /// Runs socket hook `hook` on the socket `socket()` names (its descriptor and
    /// address), if the program of this handle's generation registered one.
    #[inline]
    pub(crate) fn socket_hook(
        &self,
        hook: crate::sockets::SocketHook,
        socket: impl FnOnce() -> (std::os::fd::RawFd, crate::sockets::SocketAddress),
    ) {
        match &self.generation {
            Some(g) => run_socket_hook(g, hook, socket),
            None => run_socket_hook(&self.inner.current.borrow().clone(), hook, socket),
        }
    }

    /// Installs the receiver of the events of this handle's generation.
    pub fn set_sink(&self, sink: Rc<dyn EventSink>) {
        self.generation().set_sink(sink);
    }

    pub(crate) fn get(&self, id: ConnId) -> Option<Rc<Conn>> {
        self.inner.conns.borrow().get(&id).cloned()
    }

    pub(crate) fn register(&self, role: Role, target: String) -> Rc<Conn> {
        let generation = self.generation();
        if role == Role::Client {
            generation.client_opened();
        }
        let conn = Rc::new(Conn::new(
            next_id(),
            role,
            target,
            self.inner.config.max_packet,
            generation,
        ));
        self.inner.conns.borrow_mut().insert(conn.id, conn.clone());
        self.publish_conn_count();
        conn
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

    /// The worker's clients (accepted connections), closing ones included.
    pub(crate) fn clients(&self) -> Vec<Rc<Conn>> {
        self.inner
            .conns
            .borrow()
            .values()
            .filter(|c| c.role == Role::Client)
            .cloned()
            .collect()
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
            peer: conn.transport.get().and_then(|s| s.peer()),
        })
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

    /// Binds a TCP listening socket the way [`Worker::listen_tcp`] does (SO_REUSEPORT,
    /// the listener socket hook) but hands it to the caller instead of accepting MySQL
    /// clients on it: for services that speak another protocol (`dpm-lua`'s raw TCP
    /// services), which accept and serve their connections themselves.
    ///
    /// While a reload loads, an address (with a fixed port) the generation in force
    /// bound this way gives back that same socket: the new state's accept loop takes
    /// it over when the reload commits, and no client is refused.
    pub fn bind_raw_tcp(
        &self,
        host: Option<&str>,
        port: u16,
    ) -> Result<Rc<tokio::net::TcpListener>, EngineError> {
        let name = crate::listener::tcp_address(host, port)?.to_string();
        let loading = !Rc::ptr_eq(&self.generation(), &self.inner.current.borrow());
        if loading && port != 0 {
            let bound = self
                .inner
                .raw_listeners
                .borrow()
                .get(&name)
                .and_then(|w| w.upgrade());
            if let Some(socket) = bound {
                return Ok(socket);
            }
        }
        let socket = Rc::new(crate::listener::bind_tcp(host, port, |fd, addr| {
            use crate::sockets::{SocketAddress, SocketHook};
            self.socket_hook(SocketHook::ListenerSocket, || {
                (fd, SocketAddress::Inet(addr))
            });
        })?);
        let mut raw = self.inner.raw_listeners.borrow_mut();
        raw.retain(|_, w| w.strong_count() > 0);
        raw.insert(name, Rc::downgrade(&socket));
        Ok(socket)
    }

    /// True once the worker has begun its graceful shutdown (it accepts nobody new).
    pub fn is_draining(&self) -> bool {
        self.inner.lifecycle.is_draining()
    }

    /// Starts listening on TCP `host:port` (`None` = all addresses) and returns the
    /// listener's id. Each worker binds its own socket with SO_REUSEPORT. While a reload
    /// loads, a listener on an address the generation in force listens on takes over
    /// that socket instead (no new socket, no listener socket hook).
    pub fn listen_tcp(&self, host: Option<&str>, port: u16) -> Result<ConnId, EngineError> {
        let name = format!("{}:{port}", host.unwrap_or("*"));
        let kind = ListenerKind::Tcp;
        if crate::control::check::check_only() {
            return Ok(self.register(Role::Listener(kind), name).id);
        }
        let wanted = crate::listener::tcp_address(host, port)?.to_string();
        let listening = match self.listening_to_take_over(&wanted) {
            Some(listening) => listening,
            None => {
                let before_bind = |fd, addr| {
                    use crate::sockets::{SocketAddress, SocketHook};
                    self.socket_hook(SocketHook::ListenerSocket, || {
                        (fd, SocketAddress::Inet(addr))
                    });
                };
                let listener = crate::listener::bind_tcp(host, port, before_bind)?;
                Rc::new(crate::listener::Listening::Tcp(listener))
            }
        };
        Ok(self.start_listener(kind, name, listening))
    }

    /// Starts listening on a unix socket at `path` with permission bits `mode` (taking
    /// the socket over during a reload, as [`Worker::listen_tcp`]).
    pub fn listen_unix(&self, path: &str, mode: u32) -> Result<ConnId, EngineError> {
        let kind = ListenerKind::Unix;
        if crate::control::check::check_only() {
            return Ok(self.register(Role::Listener(kind), path.to_string()).id);
        }
        let listening = match self.listening_to_take_over(path) {
            Some(listening) => listening,
            None => {
                let listener = crate::listener::bind_unix(path, mode)?;
                {
                    use std::os::fd::AsRawFd;
                    let socket = || {
                        let addr = crate::sockets::SocketAddress::Unix(path.to_string());
                        (listener.as_raw_fd(), addr)
                    };
                    // A unix listener is hooked once bound (tokio binds as it creates).
                    self.socket_hook(crate::sockets::SocketHook::ListenerSocket, socket);
                }
                Rc::new(crate::listener::Listening::Unix(listener))
            }
        };
        Ok(self.start_listener(kind, path.to_string(), listening))
    }

    /// The socket a listener of the generation in force is bound to at `address`
    /// (`ip:port` however the file spelt it, or a path), when this handle's generation
    /// is a reload's that is loading.
    fn listening_to_take_over(&self, address: &str) -> Option<Rc<crate::listener::Listening>> {
        let mine = self.generation();
        let current = self.inner.current.borrow().clone();
        if Rc::ptr_eq(&mine, &current) {
            return None;
        }
        let conns = self.inner.conns.borrow();
        conns
            .values()
            .filter(|c| Rc::ptr_eq(&c.generation, &current))
            .filter_map(|c| c.listening.get())
            .find(|l| l.address().as_deref() == Some(address))
            .cloned()
    }

    /// Registers a listener on `listening`: it accepts at once if its generation is in
    /// force, else once a reload commits it.
    fn start_listener(
        &self,
        kind: ListenerKind,
        name: String,
        listening: Rc<crate::listener::Listening>,
    ) -> ConnId {
        let conn = self.register(Role::Listener(kind), name);
        let _ = conn.listening.set(listening.clone());
        let generation = self.generation();
        if Rc::ptr_eq(&generation, &self.inner.current.borrow()) {
            crate::listener::spawn_accept_loop(self.clone(), conn.clone(), listening);
        } else {
            generation
                .waiting_listeners
                .borrow_mut()
                .push((conn.clone(), listening));
        }
        conn.id
    }

    /// Makes `listener` serve `service`: each client it accepts becomes a session of the
    /// service (after the listener's own [`Event::ClientAccepted`] callback, if any, ran).
    pub fn serve(&self, listener: ConnId, service: Rc<WorkerService>) -> Result<(), EngineError> {
        self.listener(listener)?;
        if let Some(tls) = service.shared.client_tls() {
            self.set_listener_tls(listener, tls)?;
        }
        self.inner.services.borrow_mut().insert(listener, service);
        Ok(())
    }

    /// The open listener `id`, or why it is not one.
    pub(crate) fn listener(&self, id: ConnId) -> Result<Rc<Conn>, EngineError> {
        let conn = self.get(id).ok_or(EngineError::DeadConnection(id))?;
        if !matches!(conn.role, Role::Listener(_)) {
            return Err(EngineError::WrongKind {
                id,
                problem: "is not a listener",
            });
        }
        Ok(conn)
    }

    /// The diagnostics of every service this worker's listeners serve (each once, by
    /// name), with this worker's filters'.
    pub fn service_diagnostics(&self) -> Vec<serde_json::Value> {
        let mut seen = std::collections::BTreeMap::new();
        for service in self.inner.services.borrow().values() {
            seen.entry(service.shared.name.clone())
                .or_insert_with(|| service.diagnostics());
        }
        seen.into_values().collect()
    }

    pub(crate) fn listener_service(&self, listener: ConnId) -> Option<Rc<WorkerService>> {
        self.inner.services.borrow().get(&listener).cloned()
    }

    /// Makes `listener` offer TLS to the clients it accepts from now on (dpm terminates
    /// it: `crate::tls`). A listener keeps the first TLS settings it was given.
    pub fn set_listener_tls(
        &self,
        listener: ConnId,
        tls: Arc<crate::tls::ServerTls>,
    ) -> Result<(), EngineError> {
        let conn = self.listener(listener)?;
        match conn.tls.get() {
            Some(crate::tls::TlsRole::Accept(current)) if !Arc::ptr_eq(current, &tls) => {
                Err(EngineError::WrongKind {
                    id: listener,
                    problem: "already has other TLS settings",
                })
            }
            _ => {
                let _ = conn.tls.set(crate::tls::TlsRole::Accept(tls));
                Ok(())
            }
        }
    }

    /// Limits the clients `listener` has open at once, over every worker's listener on
    /// the same address; clients beyond get ERR 1040.
    pub fn set_listener_limit(&self, listener: ConnId, max: u32) -> Result<(), EngineError> {
        let conn = self.listener(listener)?;
        let limit = crate::lifecycle::connection_limit::ListenerLimit::define(&conn.target, max)
            .map_err(EngineError::Config)?;
        let _ = conn.limit.set(limit);
        Ok(())
    }

    /// The TLS version and cipher suite of connection `id`, if it uses TLS dpm terminates.
    pub fn tls_info(&self, id: ConnId) -> Option<(String, String)> {
        self.get(id)?.transport.get()?.tls_description()
    }

    /// Opens a backend connection to `host:port` in the background and returns its id at
    /// once. A failure shows up later as a close; a client linked to the backend that has
    /// not had a greeting yet gets an ERR 2003 naming the address.
    pub fn connect_tcp(&self, host: &str, port: u16) -> Result<ConnId, EngineError> {
        self.connect_tcp_tls(host, port, None)
    }

    /// [`Worker::connect_tcp`], with TLS towards the server when `tls` is given (dpm
    /// sends the SSLRequest when the client's login passes: `crate::tls`).
    pub fn connect_tcp_tls(
        &self,
        host: &str,
        port: u16,
        tls: Option<Arc<crate::tls::ClientTls>>,
    ) -> Result<ConnId, EngineError> {
        if host.is_empty() || host.contains(['/', ' ']) {
            return Err(EngineError::BadAddress(host.to_string()));
        }
        let conn = self.register(Role::Backend, format!("{host}:{port}"));
        if let Some(tls) = tls {
            let role = crate::tls::TlsRole::Connect {
                tls,
                host: host.to_string(),
            };
            let _ = conn.tls.set(role);
        }
        if crate::control::check::check_only() {
            return Ok(conn.id);
        }
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
        if crate::control::check::check_only() {
            return Ok(conn.id);
        }
        crate::connector::spawn_connect(
            self.clone(),
            conn.clone(),
            crate::connector::Target::Unix(path.to_string()),
        );
        Ok(conn.id)
    }

    /// Writes one packet (`payload`, split into frames when ≥ 16 MiB) to `id` with the
    /// sequence ids the protocol expects, driving the connection's state as a sent
    /// packet. A callback registered for the event it raises runs soon after, with `(id)`.
    pub fn wire(&self, id: ConnId, payload: &[u8]) -> Result<(), EngineError> {
        let conn = self.get(id).ok_or(EngineError::DeadConnection(id))?;
        let event = if conn.tls.get().is_some() && payload.first() == Some(&10) {
            // Perhaps a greeting the script made, to a client of a listener with TLS.
            let mut greeting = payload.to_vec();
            crate::tls::offer_in_script_greeting(&conn, &mut greeting);
            crate::forward::write_packet(&conn, &greeting)
        } else {
            crate::forward::write_packet(&conn, payload)
        };
        if let Some(event) = event.filter(|&e| conn.mask.get().has(e)) {
            if let Some(sink) = conn.generation.sink() {
                tokio::task::spawn_local(sink.packet(id, event, None));
            }
        }
        Ok(())
    }

    /// Closes `id`: its [`Event::Closing`] callback runs, its partner is unlinked (but stays
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
        if let Some(stream) = conn.transport.get() {
            // Before anything of the close: the descriptor is open, TCP_INFO readable.
            let hook = match conn.role {
                Role::Client => Some(crate::sockets::SocketHook::ClientClose),
                Role::Backend => Some(crate::sockets::SocketHook::ServerClose),
                _ => None,
            };
            if let Some(hook) = hook {
                run_socket_hook(&conn.generation, hook, || stream.hooked(&conn.target));
            }
        }
        // A client's place under its listener's limit is free from now on.
        conn.admission.take();
        self.inner.services.borrow_mut().remove(&id);
        self.leave_session_on_close(&conn);
        conn.close_signal.notify_waiters();
        if let Some(stream) = conn.transport.get() {
            stream.shutdown_read();
        }
        conn.out_ready.notify_one();
        conn.drained.notify_waiters();
        if conn.mask.get().has(Event::Closing) {
            if let Some(sink) = conn.generation.sink() {
                tokio::task::spawn_local(sink.closing(id));
            }
        }
        if conn.role == Role::Client && conn.generation.client_closed() {
            // The last session of a generation a reload replaced: after its closing
            // callback (spawned above, so it runs first).
            let worker = self.clone();
            let generation = conn.generation.clone();
            tokio::task::spawn_local(async move { worker.retire(&generation) });
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
