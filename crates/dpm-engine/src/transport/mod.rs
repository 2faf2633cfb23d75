//! The transport: the one type through which every connection's socket is read and
//! written (TCP or unix socket, plain or TLS), used through readiness and `try_*` calls
//! so that a connection's reader and writer share it by reference.
//!
//! Nothing above it — forwarding, sessions, the pipeline — touches a socket. TLS is
//! switched on in place ([`Transport::start_tls`]) after a client's SSLRequest or after
//! dpm sent its own SSLRequest to a server; from then on the same `try_read`/`try_write`
//! carry plaintext and the TLS records are made and taken here ([`tls`]), the handshake
//! included, driven by the connection's ordinary reader and writer. (The only other
//! socket write in dpm is the refusal a listener sends, out of descriptors, to a client
//! it never registers.)

mod tls;

use std::cell::OnceCell;
use std::io;

use bytes::BytesMut;
use tokio::net::{TcpStream, UnixStream};

pub(crate) use tls::TlsLink;

/// A connected socket (see the module docs).
#[derive(Debug)]
pub struct Transport {
    socket: Socket,
    /// Set once, when the connection switches to TLS.
    tls: OnceCell<Box<TlsLink>>,
}

/// The socket under a transport.
#[derive(Debug)]
pub(crate) enum Socket {
    /// TCP (TCP_NODELAY is set on every stream dpm makes or accepts).
    Tcp(TcpStream),
    /// Unix domain stream socket.
    Unix(UnixStream),
}

impl Transport {
    /// A plain TCP transport.
    pub fn tcp(stream: TcpStream) -> Transport {
        Transport::from_socket(Socket::Tcp(stream))
    }

    /// A plain unix-socket transport.
    pub fn unix(stream: UnixStream) -> Transport {
        Transport::from_socket(Socket::Unix(stream))
    }

    fn from_socket(socket: Socket) -> Transport {
        Transport {
            socket,
            tls: OnceCell::new(),
        }
    }

    /// Waits until the transport may be readable (TLS: plaintext already decrypted
    /// counts as readable).
    pub async fn readable(&self) -> io::Result<()> {
        if let Some(tls) = self.tls.get() {
            if tls.has_buffered_input() {
                return Ok(());
            }
        }
        match &self.socket {
            Socket::Tcp(s) => s.readable().await,
            Socket::Unix(s) => s.readable().await,
        }
    }

    /// Waits until the socket may be writable.
    pub async fn writable(&self) -> io::Result<()> {
        match &self.socket {
            Socket::Tcp(s) => s.writable().await,
            Socket::Unix(s) => s.writable().await,
        }
    }

    /// Reads what is available into the spare capacity of `buf`.
    pub fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        if let Some(tls) = self.tls.get() {
            return tls.read_buf(&self.socket, buf);
        }
        match &self.socket {
            Socket::Tcp(s) => s.try_read_buf(buf),
            Socket::Unix(s) => s.try_read_buf(buf),
        }
    }

    /// Reads what is available into `buf`. A short read means the socket is drained:
    /// its readiness is cleared at once, so the next wait goes straight to epoll instead
    /// of costing one more `read` that fails with EAGAIN (one syscall per read saved).
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        // Why a `OnceCell` check and not an enum variant: the upgrade happens in place
        // while the reader and writer hold the transport by reference; for a plain
        // connection this costs one predictable branch per read.
        if let Some(tls) = self.tls.get() {
            return tls.read(&self.socket, buf);
        }
        match &self.socket {
            Socket::Tcp(s) => read_draining(s, socket2::SockRef::from(s), buf),
            Socket::Unix(s) => read_draining(s, socket2::SockRef::from(s), buf),
        }
    }

    /// Writes what the transport accepts now.
    pub fn try_write(&self, data: &[u8]) -> io::Result<usize> {
        if let Some(tls) = self.tls.get() {
            return tls.write(&self.socket, &[io::IoSlice::new(data)]);
        }
        self.socket.try_write(data)
    }

    /// Writes what the transport accepts now from several buffers (one system call
    /// when plain).
    pub fn try_write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        if let Some(tls) = self.tls.get() {
            return tls.write(&self.socket, bufs);
        }
        match &self.socket {
            Socket::Tcp(s) => s.try_write_vectored(bufs),
            Socket::Unix(s) => s.try_write_vectored(bufs),
        }
    }

    /// True when TLS records are made but not yet written to the socket: the writer
    /// must wait for the socket and flush them ([`Transport::flush`]).
    #[inline]
    pub fn has_pending_output(&self) -> bool {
        self.tls.get().is_some_and(|tls| tls.has_pending_output())
    }

    /// Writes pending TLS records; `WouldBlock` if the socket cannot take them all.
    pub fn flush(&self) -> io::Result<()> {
        match self.tls.get() {
            Some(tls) => tls.flush(&self.socket),
            None => Ok(()),
        }
    }

    /// Switches the connection to TLS. `early` holds bytes already read from the socket
    /// that belong to the TLS stream (a ClientHello that arrived with the SSLRequest);
    /// `raw_first` holds plain bytes still to be written before any TLS record (the
    /// SSLRequest dpm queued itself). Fails if the connection already uses TLS.
    pub(crate) fn start_tls(
        &self,
        connection: rustls::Connection,
        early: &[u8],
        raw_first: Vec<u8>,
    ) -> io::Result<()> {
        let link = TlsLink::new(connection, raw_first);
        link.take_early(early)?;
        self.tls
            .set(Box::new(link))
            .map_err(|_| io::Error::other("the connection already uses TLS"))?;
        // Whatever the handshake produced so far goes out now if the socket takes it;
        // the writer flushes the rest.
        match self.flush() {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
            _ => Ok(()),
        }
    }

    /// True once the connection uses TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.get().is_some()
    }

    /// The TLS protocol version and cipher suite in use, once the handshake is done.
    pub fn tls_description(&self) -> Option<(String, String)> {
        self.tls.get().and_then(|tls| tls.description())
    }

    /// Stops reading: a reader waiting on the socket wakes up and reads end-of-file.
    pub fn shutdown_read(&self) {
        let _ = self.socket.sock_ref().shutdown(std::net::Shutdown::Read);
    }

    /// Shuts both directions down; the peer sees end-of-file (after a TLS close_notify
    /// on a TLS connection).
    pub fn shutdown(&self) {
        if let Some(tls) = self.tls.get() {
            tls.close_notify(&self.socket);
        }
        let _ = self.socket.sock_ref().shutdown(std::net::Shutdown::Both);
    }

    /// The socket's descriptor and the peer's address, for a socket hook
    /// ([`crate::sockets`]); a unix socket is named by `path` (a listener's, or a
    /// backend's).
    pub(crate) fn hooked(&self, path: &str) -> (std::os::fd::RawFd, crate::sockets::SocketAddress) {
        use std::os::fd::AsRawFd;
        match &self.socket {
            Socket::Tcp(s) => (s.as_raw_fd(), crate::sockets::inet(s.peer_addr())),
            Socket::Unix(s) => (
                s.as_raw_fd(),
                crate::sockets::SocketAddress::Unix(path.to_string()),
            ),
        }
    }

    /// The peer's address as text: `ip:port` for TCP, `localhost` for unix sockets.
    pub fn peer(&self) -> Option<String> {
        match &self.socket {
            Socket::Tcp(s) => s.peer_addr().ok().map(|a| a.to_string()),
            Socket::Unix(_) => Some("localhost".to_string()),
        }
    }
}

/// The address part of a peer as [`Transport::peer`] writes it (`ip:port`, `[v6]:port`):
/// the IP without port or brackets; anything else unchanged (`localhost`).
pub fn peer_ip(peer: &str) -> &str {
    match peer.rsplit_once(':') {
        Some((ip, _)) if !ip.is_empty() => ip.trim_matches(['[', ']']),
        _ => peer,
    }
}

impl Socket {
    fn sock_ref(&self) -> socket2::SockRef<'_> {
        match self {
            Socket::Tcp(s) => socket2::SockRef::from(s),
            Socket::Unix(s) => socket2::SockRef::from(s),
        }
    }

    /// Reads raw bytes (the TLS records); a short read clears the readiness, as on the
    /// plain path (no extra `read` that fails with EAGAIN per record).
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => read_draining(s, socket2::SockRef::from(s), buf),
            Socket::Unix(s) => read_draining(s, socket2::SockRef::from(s), buf),
        }
    }

    /// Writes raw bytes; clears readiness on `WouldBlock`.
    fn try_write(&self, data: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.try_write(data),
            Socket::Unix(s) => s.try_write(data),
        }
    }
}

/// Tokio's readiness types (`TcpStream`, `UnixStream`) that offer `try_io`.
trait TryIo {
    fn try_io_read(&self, f: impl FnOnce() -> io::Result<usize>) -> io::Result<usize>;
}

impl TryIo for TcpStream {
    fn try_io_read(&self, f: impl FnOnce() -> io::Result<usize>) -> io::Result<usize> {
        self.try_io(tokio::io::Interest::READABLE, f)
    }
}

impl TryIo for UnixStream {
    fn try_io_read(&self, f: impl FnOnce() -> io::Result<usize>) -> io::Result<usize> {
        self.try_io(tokio::io::Interest::READABLE, f)
    }
}

fn read_draining(
    stream: &impl TryIo,
    sock: socket2::SockRef<'_>,
    buf: &mut [u8],
) -> io::Result<usize> {
    use std::io::Read;
    let mut got = 0;
    let result = stream.try_io_read(|| {
        let n = (&*sock).read(buf)?;
        got = n;
        if n > 0 && n < buf.len() {
            // Drained: report WouldBlock so tokio clears the readiness, keep the bytes.
            Err(io::ErrorKind::WouldBlock.into())
        } else {
            Ok(n)
        }
    });
    match result {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock && got > 0 => Ok(got),
        other => other,
    }
}
