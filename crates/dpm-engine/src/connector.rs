//! Outbound connections to backends, made in the background.

use std::rc::Rc;

use tokio::net::{TcpStream, UnixStream};

use crate::conn::Conn;
use crate::service::ServerAddress;
use crate::sockets::{SocketAddress, SocketHook};
use crate::transport::Transport;
use crate::worker::Worker;

/// Where a backend connection goes.
pub(crate) enum Target {
    Tcp(String, u16),
    Unix(String),
}

impl From<&ServerAddress> for Target {
    fn from(address: &ServerAddress) -> Target {
        match address {
            ServerAddress::Tcp(host, port) => Target::Tcp(host.clone(), *port),
            ServerAddress::Unix(path) => Target::Unix(path.clone()),
        }
    }
}

pub(crate) fn spawn_connect(worker: Worker, conn: Rc<Conn>, target: Target) {
    tokio::task::spawn_local(async move {
        let timeout = worker.inner.config.connect_timeout;
        if let Err(e) = establish(&worker, &conn, &target, timeout, true).await {
            tracing::warn!(backend = conn.id, target = %conn.target, error = %e, "backend connect failed");
            refuse_waiting_client(&worker, &conn, &e);
            worker.close(conn.id);
        }
    });
}

/// Connects `conn` to `target` within `timeout` and, with `start_reading`, starts its
/// I/O (without: the caller runs a login on the transport first). An error leaves
/// `conn` open for the caller to close (a close it already saw is Ok).
pub(crate) async fn establish(
    worker: &Worker,
    conn: &Rc<Conn>,
    target: &Target,
    timeout: std::time::Duration,
    start_reading: bool,
) -> std::io::Result<()> {
    let stream = match tokio::time::timeout(timeout, connect(target, Some(worker))).await {
        Ok(r) => r?,
        Err(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connect timed out",
            ))
        }
    };
    if conn.closing.get() {
        return Ok(());
    }
    let _ = conn.transport.set(stream);
    tracing::debug!(backend = conn.id, target = %conn.target, "connected");
    if start_reading {
        crate::forward::start_io(worker, conn);
    }
    Ok(())
}

/// Opens a socket to `target` (TCP with TCP_NODELAY, or a unix socket), unbounded in time:
/// callers add their own timeout. Shared by backend connections and the engine's own
/// client ([`crate::client`]). With `hooks` (a backend connection), the worker's
/// server-socket hook runs on each socket before its connect.
pub(crate) async fn connect(target: &Target, hooks: Option<&Worker>) -> std::io::Result<Transport> {
    let Some(worker) = hooks.filter(|w| w.socket_hooks().has(SocketHook::ServerSocket)) else {
        return match target {
            Target::Tcp(host, port) => {
                let s = TcpStream::connect((host.as_str(), *port)).await?;
                s.set_nodelay(true)?;
                Ok(Transport::tcp(s))
            }
            Target::Unix(path) => Ok(Transport::unix(UnixStream::connect(path).await?)),
        };
    };
    // The socket is made here rather than by `connect` so that the hook sees it first:
    // each address the name resolves to, in turn, as `TcpStream::connect` would.
    use std::os::fd::AsRawFd;
    match target {
        Target::Tcp(host, port) => {
            let mut last = None;
            for addr in tokio::net::lookup_host((host.as_str(), *port)).await? {
                let socket = match addr {
                    std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
                    std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
                };
                socket.set_nodelay(true)?;
                let fd = socket.as_raw_fd();
                worker.socket_hook(SocketHook::ServerSocket, || (fd, SocketAddress::Inet(addr)));
                match socket.connect(addr).await {
                    Ok(s) => return Ok(Transport::tcp(s)),
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, format!("{host}: no address"))
            }))
        }
        Target::Unix(path) => {
            let socket = tokio::net::UnixSocket::new_stream()?;
            let fd = socket.as_raw_fd();
            worker.socket_hook(SocketHook::ServerSocket, || {
                (fd, SocketAddress::Unix(path.clone()))
            });
            Ok(Transport::unix(socket.connect(path).await?))
        }
    }
}

/// Error code sent when the backend cannot be reached. The text is the client library's
/// own 2003 message, but the code is a server one: MariaDB Connector/C rejects a packet
/// from a server that carries a client-side code (2000–2999) as malformed.
pub(crate) const BACKEND_UNREACHABLE: u16 = 1429; // ER_CONNECT_TO_FOREIGN_DATA_SOURCE

/// A client linked to a backend that could not be reached would wait for a greeting
/// forever: tell it why instead, with the text a client library uses for error 2003.
fn refuse_waiting_client(worker: &Worker, backend: &Conn, error: &std::io::Error) {
    let Some(client) = worker.partner_of(backend) else {
        return;
    };
    if !client.tracker.borrow().awaiting_handshake() {
        return;
    }
    let message = format!(
        "Can't connect to server on '{}' ({})",
        backend.target,
        crate::error::describe_os_error(error)
    );
    send_error(&client, BACKEND_UNREACHABLE, *b"HY000", message);
}

/// Writes an ERR packet to `conn` (sequence id and state from its tracker).
pub(crate) fn send_error(conn: &Conn, code: u16, sql_state: [u8; 5], message: String) {
    let mut payload = bytes::BytesMut::new();
    dpm_protocol::err::ErrPacket::new(code, sql_state, message).encode(&mut payload);
    crate::forward::write_packet(conn, &payload);
}
