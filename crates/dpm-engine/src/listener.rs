//! Listening sockets and their accept loops. TCP listeners are bound with SO_REUSEPORT
//! so that every worker binds the same address and the kernel spreads the accepts.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, UnixListener};

use crate::conn::{Conn, Role};
use crate::error::EngineError;
use crate::event::Event;
use crate::stream::Stream;
use crate::worker::Worker;

/// A bound listening socket.
pub(crate) enum Listening {
    Tcp(TcpListener),
    Unix(UnixListener),
}

pub(crate) fn bind_tcp(host: Option<&str>, port: u16) -> Result<TcpListener, EngineError> {
    let text = format!("{}:{port}", host.unwrap_or("0.0.0.0"));
    let ip: IpAddr = match host {
        None | Some("") | Some("*") => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Some("localhost") => IpAddr::V4(Ipv4Addr::LOCALHOST),
        Some(h) => h
            .parse()
            .map_err(|_| EngineError::BadAddress(h.to_string()))?,
    };
    let addr = SocketAddr::new(ip, port);
    let err = |source| EngineError::Listen {
        addr: text.clone(),
        source,
    };
    let socket =
        Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(err)?;
    socket.set_reuse_address(true).map_err(err)?;
    socket.set_reuse_port(true).map_err(err)?;
    socket.set_nonblocking(true).map_err(err)?;
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

pub(crate) fn spawn_accept_loop(worker: Worker, lconn: Rc<Conn>, listening: Listening) {
    tokio::task::spawn_local(async move {
        loop {
            if lconn.closing.get() {
                break;
            }
            let accepted = tokio::select! {
                r = accept(&listening) => r,
                _ = lconn.close_signal.notified() => break,
            };
            match accepted {
                Ok(stream) => on_accept(&worker, &lconn, stream),
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::warn!(listener = lconn.id, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        tracing::debug!(listener = lconn.id, "listener closed");
    });
}

async fn accept(listening: &Listening) -> std::io::Result<Stream> {
    match listening {
        Listening::Tcp(l) => {
            let (s, _) = l.accept().await?;
            s.set_nodelay(true)?;
            Ok(Stream::Tcp(s))
        }
        Listening::Unix(l) => Ok(Stream::Unix(l.accept().await?.0)),
    }
}

fn on_accept(worker: &Worker, lconn: &Rc<Conn>, stream: Stream) {
    let peer = stream.peer().unwrap_or_default();
    let client = worker.register(Role::Client, peer.clone());
    let _ = client.stream.set(stream);
    tracing::debug!(listener = lconn.id, client = client.id, %peer, "accepted");
    let sink = worker
        .sink()
        .filter(|_| lconn.mask.get().has(Event::MYC_CONNECT));
    let Some(sink) = sink else {
        // Nobody takes the client: the original closed such a client at the next GC.
        worker.close(client.id);
        return;
    };
    let worker = worker.clone();
    let lid = lconn.id;
    tokio::task::spawn_local(async move {
        sink.accepted(lid, client.id).await;
        if !client.closing.get() {
            crate::forward::start_io(&worker, &client);
        }
    });
}
