//! The transport: the one type through which every connection's socket is read and
//! written (TCP or unix socket), used through readiness and `try_*` calls so that a
//! connection's reader and writer share it by reference.
//!
//! Nothing above it — forwarding, sessions, the pipeline — touches a socket. TLS plugs
//! in here: a `Tls` variant wrapping the socket and its TLS state behind the same
//! methods, swapped in after a client's SSLRequest or right after a backend connect,
//! without the pipeline noticing. (The only other socket write in dpm is the refusal a
//! listener sends, out of descriptors, to a client it never registers.)

use std::io;

use bytes::BytesMut;
use tokio::net::{TcpStream, UnixStream};

/// A connected socket (see the module docs).
#[derive(Debug)]
pub enum Transport {
    /// TCP (TCP_NODELAY is set on every stream dpm makes or accepts).
    Tcp(TcpStream),
    /// Unix domain stream socket.
    Unix(UnixStream),
}

impl Transport {
    /// Waits until the socket may be readable.
    pub async fn readable(&self) -> io::Result<()> {
        match self {
            Transport::Tcp(s) => s.readable().await,
            Transport::Unix(s) => s.readable().await,
        }
    }

    /// Waits until the socket may be writable.
    pub async fn writable(&self) -> io::Result<()> {
        match self {
            Transport::Tcp(s) => s.writable().await,
            Transport::Unix(s) => s.writable().await,
        }
    }

    /// Reads what is available into the spare capacity of `buf`.
    pub fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Transport::Tcp(s) => s.try_read_buf(buf),
            Transport::Unix(s) => s.try_read_buf(buf),
        }
    }

    /// Reads what is available into `buf`. A short read means the socket is drained:
    /// its readiness is cleared at once, so the next wait goes straight to epoll instead
    /// of costing one more `read` that fails with EAGAIN (one syscall per read saved).
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Tcp(s) => read_draining(s, socket2::SockRef::from(s), buf),
            Transport::Unix(s) => read_draining(s, socket2::SockRef::from(s), buf),
        }
    }

    /// Writes what the socket accepts now.
    pub fn try_write(&self, data: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Tcp(s) => s.try_write(data),
            Transport::Unix(s) => s.try_write(data),
        }
    }

    /// Stops reading: a reader waiting on the socket wakes up and reads end-of-file.
    pub fn shutdown_read(&self) {
        let sock = match self {
            Transport::Tcp(s) => socket2::SockRef::from(s),
            Transport::Unix(s) => socket2::SockRef::from(s),
        };
        let _ = sock.shutdown(std::net::Shutdown::Read);
    }

    /// Shuts both directions down; the peer sees end-of-file.
    pub fn shutdown(&self) {
        let sock = match self {
            Transport::Tcp(s) => socket2::SockRef::from(s),
            Transport::Unix(s) => socket2::SockRef::from(s),
        };
        let _ = sock.shutdown(std::net::Shutdown::Both);
    }

    /// The peer's address as text: `ip:port` for TCP, `localhost` for unix sockets.
    pub fn peer(&self) -> Option<String> {
        match self {
            Transport::Tcp(s) => s.peer_addr().ok().map(|a| a.to_string()),
            Transport::Unix(_) => Some("localhost".to_string()),
        }
    }
}

impl Transport {
    /// Writes what the socket accepts now from several buffers in one system call.
    pub fn try_write_vectored(&self, bufs: &[std::io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Transport::Tcp(s) => s.try_write_vectored(bufs),
            Transport::Unix(s) => s.try_write_vectored(bufs),
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
