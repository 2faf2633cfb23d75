//! Listening sockets and their accept loops. TCP listeners are bound with SO_REUSEPORT
//! so that every worker binds the same address and the kernel spreads the accepts.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::Mutex;
use std::time::Duration;

use dpm_protocol::frame::encode_packet_with;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, UnixListener};

use crate::conn::{Conn, Role};
use crate::error::EngineError;
use crate::event::Event;
use crate::transport::Transport;
use crate::worker::Worker;

/// A bound listening socket (shared by the listeners of two generations across a
/// reload).
pub(crate) enum Listening {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listening {
    /// The address it is bound to (`ip:port`, or the socket's path), as a reload
    /// compares it with the address a new listener asks for.
    pub(crate) fn address(&self) -> Option<String> {
        match self {
            Listening::Tcp(l) => l.local_addr().ok().map(|a| a.to_string()),
            Listening::Unix(l) => l
                .local_addr()
                .ok()?
                .as_pathname()
                .map(|p| p.display().to_string()),
        }
    }
}

/// Binds a TCP listener (SO_REUSEPORT); `before_bind` gets the new socket's descriptor
/// and the address it is about to be bound to (the listener socket hook).
/// The address `host:port` names (`None`, `""` and `"*"`: every IPv4 address;
/// `localhost`: 127.0.0.1; else an IP address).
pub(crate) fn tcp_address(host: Option<&str>, port: u16) -> Result<SocketAddr, EngineError> {
    let ip: IpAddr = match host {
        None | Some("") | Some("*") => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Some("localhost") => IpAddr::V4(Ipv4Addr::LOCALHOST),
        Some(h) => h
            .parse()
            .map_err(|_| EngineError::BadAddress(h.to_string()))?,
    };
    Ok(SocketAddr::new(ip, port))
}

pub(crate) fn bind_tcp(
    host: Option<&str>,
    port: u16,
    before_bind: impl FnOnce(std::os::fd::RawFd, SocketAddr),
) -> Result<TcpListener, EngineError> {
    let text = format!("{}:{port}", host.unwrap_or("0.0.0.0"));
    let addr = tcp_address(host, port)?;
    let err = |source| EngineError::Listen {
        addr: text.clone(),
        source,
    };
    let socket =
        Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(err)?;
    socket.set_reuse_address(true).map_err(err)?;
    socket.set_reuse_port(true).map_err(err)?;
    socket.set_nonblocking(true).map_err(err)?;
    {
        use std::os::fd::AsRawFd;
        before_bind(socket.as_raw_fd(), addr);
    }
    socket.bind(&addr.into()).map_err(err)?;
    // Bursts of thousands of connects must not overflow the accept queue (the kernel
    // caps this at net.core.somaxconn).
    socket.listen(8192).map_err(err)?;
    TcpListener::from_std(socket.into()).map_err(err)
}

pub(crate) fn bind_unix(path: &str, mode: u32) -> Result<UnixListener, EngineError> {
    let err = |source| EngineError::Listen {
        addr: path.to_string(),
        source,
    };
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let listener = UnixListener::bind(path).map_err(err)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(err)?;
    Ok(listener)
}

pub(crate) fn spawn_accept_loop(worker: Worker, lconn: Rc<Conn>, listening: Rc<Listening>) {
    SpareDescriptor::fill();
    // Its clients, and their backends, belong to the listener's generation.
    let worker = worker.in_generation(lconn.generation.clone());
    tokio::task::spawn_local(async move {
        loop {
            if lconn.closing.get() {
                break;
            }
            let accepted = tokio::select! {
                // The close first: a listener closed by a reload must leave the clients
                // waiting in the socket to the next generation's listener, which shares
                // it; one it accepted now would find nobody to serve it.
                biased;
                _ = lconn.close_signal.notified() => break,
                r = accept(&listening) => r,
            };
            match accepted {
                Ok(stream) => on_accept(&worker, &lconn, stream),
                Err(e) if is_out_of_descriptors(&e) => {
                    if refuse_one_waiting_client(&listening, &e) {
                        worker
                            .metrics()
                            .client_refused(crate::metrics::RefusedReason::OutOfDescriptors);
                        tracing::warn!(listener = lconn.id, error = %e, "client refused");
                    } else {
                        // At the limit with nobody waiting: look again shortly.
                        tracing::debug!(listener = lconn.id, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(listener = lconn.id, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        tracing::debug!(listener = lconn.id, "listener closed");
    });
}

async fn accept(listening: &Listening) -> std::io::Result<Transport> {
    match listening {
        Listening::Tcp(l) => {
            let (s, _) = l.accept().await?;
            s.set_nodelay(true)?;
            Ok(Transport::tcp(s))
        }
        Listening::Unix(l) => Ok(Transport::unix(l.accept().await?.0)),
    }
}

/// One descriptor held open (on `/dev/null`) for the moment the process runs out: it is
/// given up to accept a waiting client just long enough to tell it why it is refused,
/// instead of leaving it in the accept queue waiting for a greeting that never comes.
/// Process-wide because the descriptor limit is; taken rarely, so a mutex is enough.
struct SpareDescriptor;

static SPARE_DESCRIPTOR: Mutex<Option<File>> = Mutex::new(None);

impl SpareDescriptor {
    /// Opens the spare descriptor if it is not held (at each listener start and after use).
    fn fill() {
        let mut spare = SPARE_DESCRIPTOR.lock().unwrap_or_else(|e| e.into_inner());
        if spare.is_none() {
            *spare = File::open("/dev/null").ok();
        }
    }

    /// Closes the spare descriptor; false if it was not held.
    fn release() -> bool {
        let mut spare = SPARE_DESCRIPTOR.lock().unwrap_or_else(|e| e.into_inner());
        spare.take().is_some()
    }
}

fn is_out_of_descriptors(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// Error code for a client refused because dpm is out of descriptors: the server's own
/// "too many connections", which drivers already report as "the server is full".
const TOO_MANY_CONNECTIONS: u16 = 1040; // ER_CON_COUNT_ERROR

/// Accepts one client from the queue with the spare descriptor and sends it an ERR
/// packet in place of the greeting. True if a client was refused that way.
///
/// Synchronous on purpose: between giving the spare up and taking it back nothing else
/// of this worker may run, or a backend connect would take the freed slot for good. The
/// accept is a plain non-blocking `accept4` (not tokio's), so an empty queue (the kernel
/// reports EMFILE before it looks at the queue) returns at once instead of waiting.
fn refuse_one_waiting_client(listening: &Listening, cause: &std::io::Error) -> bool {
    if !SpareDescriptor::release() {
        SpareDescriptor::fill();
        return false;
    }
    let sock = match listening {
        Listening::Tcp(l) => socket2::SockRef::from(l),
        Listening::Unix(l) => socket2::SockRef::from(l),
    };
    let refused = match sock.accept() {
        Ok((client, _)) => {
            send_pre_handshake_error(&client, cause);
            true
        }
        Err(_) => false,
    };
    SpareDescriptor::fill();
    refused
}

/// Sends "too many connections" to a client that has not had a greeting yet.
fn send_pre_handshake_error(client: &Socket, cause: &std::io::Error) {
    let message = format!(
        "Too many connections: dpm is out of file descriptors ({})",
        crate::error::describe_os_error(cause)
    );
    // A fresh socket's send buffer is empty: one small non-blocking send is enough.
    let _ = client.set_nonblocking(true);
    let _ = client.send(&too_many_connections(message));
}

/// ERR 1040 in place of a greeting. Before the handshake the client's capabilities are
/// unknown: no sqlstate (as the server itself does).
fn too_many_connections(message: String) -> bytes::BytesMut {
    let err = dpm_protocol::err::ErrPacket {
        code: TOO_MANY_CONNECTIONS,
        sql_state: None,
        message: message.into(),
    };
    let mut packet = bytes::BytesMut::new();
    encode_packet_with(&mut packet, 0, |dst| err.encode(dst));
    packet
}

fn on_accept(worker: &Worker, lconn: &Rc<Conn>, stream: Transport) {
    use crate::sockets::SocketHook;
    worker.socket_hook(SocketHook::ClientSocket, || stream.hooked(&lconn.target));
    let peer = stream.peer().unwrap_or_default();
    let admission = match lconn.limit.get() {
        Some(limit) => match limit.admit() {
            Some(a) => Some(a),
            None => {
                refuse_over_limit(&stream, lconn, limit.max(), &peer);
                let why = crate::metrics::RefusedReason::MaxConnections;
                worker.metrics().client_refused(why);
                return;
            }
        },
        None => None,
    };
    let client = worker.register(Role::Client, peer.clone());
    worker.metrics().client_accepted();
    client.admission.replace(admission);
    let _ = client.transport.set(stream);
    if let Some(tls) = lconn.tls.get() {
        let _ = client.tls.set(tls.clone());
    }
    client
        .session
        .replace(Some(Rc::new(crate::session::Session::new(client.id))));
    tracing::debug!(listener = lconn.id, client = client.id, %peer, "accepted");
    crate::lifecycle::on_accept(worker, lconn.id, &client);
    let sink = lconn
        .generation
        .sink()
        .filter(|_| lconn.mask.get().has(Event::ClientAccepted));
    let service = worker.listener_service(lconn.id);
    if sink.is_none() && service.is_none() {
        // Nobody takes the client: the original closed such a client at the next GC.
        worker.close(client.id);
        return;
    }
    let worker = worker.clone();
    let lid = lconn.id;
    let scope = client.clone();
    let start = async move {
        // The listener's ClientAccepted callback runs first; a service takes the client if
        // it left it unlinked.
        if let Some(sink) = sink {
            sink.accepted(lid, client.id).await;
        }
        if client.closing.get() {
            return;
        }
        let unlinked = client
            .session
            .borrow()
            .as_ref()
            .is_some_and(|s| s.backend().is_none());
        let service = service.filter(|_| unlinked);
        // A service whose users dpm holds answers the login before the client's reader
        // starts (`crate::authenticator`); it starts the reader itself.
        let proxy_auth = service
            .as_ref()
            .is_some_and(|s| crate::authenticator::service_has_users(&s.shared.name));
        if !proxy_auth {
            crate::forward::start_io(&worker, &client);
        }
        if let Some(service) = service {
            crate::service::start_session(worker, client, service, proxy_auth).await;
        }
    };
    // The accept callback, the login dpm runs and the backend's connect log as the
    // session's work.
    tokio::task::spawn_local(crate::log_context::scoped(&scope, start));
}

/// Answers a client beyond the listener's `max_connections` with the server's ERR 1040
/// in place of a greeting; the socket closes when `stream` is dropped.
fn refuse_over_limit(stream: &Transport, lconn: &Conn, max: u32, peer: &str) {
    tracing::info!(listener = lconn.id, %peer, max, "client refused: the listener has max_connections clients");
    // A fresh socket's send buffer is empty: one non-blocking write is enough.
    let _ = stream.try_write(&too_many_connections("Too many connections".into()));
}
