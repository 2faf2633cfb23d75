//! One connection's TLS state: rustls's sans-I/O connection driven by the transport's
//! non-blocking reads and writes.
//!
//! Reading pulls TLS records from the socket until plaintext is ready (handshake
//! messages are answered on the way); writing hands plaintext to rustls and writes the
//! records it makes as far as the socket takes them. Records the socket could not take
//! stay here ([`TlsLink::has_pending_output`]) and plaintext is refused until they are
//! gone, so the connection's own output queue — and with it backpressure — keeps
//! working as for a plain socket. Everything runs on the connection's worker thread:
//! the `RefCell` is never borrowed across an await.

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};

use bytes::BytesMut;

use super::Socket;

/// Most plaintext accepted per write: bounds the records queued when the socket is slow.
const MAX_PLAINTEXT_PER_WRITE: usize = 256 * 1024;
/// Most plaintext taken per read into a connection's own buffer.
const READ_WINDOW: usize = 64 * 1024;

/// The TLS side of a transport (see the module docs).
pub(crate) struct TlsLink {
    connection: RefCell<rustls::Connection>,
    /// Plain bytes to write before any TLS record (dpm's own SSLRequest, if queued).
    raw_first: RefCell<Vec<u8>>,
    /// Decrypted bytes rustls holds, not yet read.
    plaintext: Cell<usize>,
    /// The peer closed (close_notify or end of the socket).
    peer_closed: Cell<bool>,
}

impl std::fmt::Debug for TlsLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsLink")
            .field("plaintext", &self.plaintext.get())
            .finish()
    }
}

/// The socket as `Read`/`Write` for rustls: non-blocking, readiness-aware.
struct SocketIo<'a>(&'a Socket);

impl Read for SocketIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl Write for SocketIo<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0.try_write(data)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TlsLink {
    pub(super) fn new(connection: rustls::Connection, raw_first: Vec<u8>) -> TlsLink {
        TlsLink {
            connection: RefCell::new(connection),
            raw_first: RefCell::new(raw_first),
            plaintext: Cell::new(0),
            peer_closed: Cell::new(false),
        }
    }

    /// Feeds TLS bytes that were read before the switch.
    pub(super) fn take_early(&self, mut early: &[u8]) -> io::Result<()> {
        let mut connection = self.connection.borrow_mut();
        while !early.is_empty() {
            connection.read_tls(&mut early)?;
            self.process(&mut connection)?;
        }
        Ok(())
    }

    /// True when a read would return data (or end-of-file) without the socket.
    pub(super) fn has_buffered_input(&self) -> bool {
        self.plaintext.get() > 0 || self.peer_closed.get()
    }

    /// True when records wait for the socket.
    pub(super) fn has_pending_output(&self) -> bool {
        !self.raw_first.borrow().is_empty() || self.connection.borrow().wants_write()
    }

    /// Reads plaintext into `buf`; `WouldBlock` when none is ready yet.
    pub(super) fn read(&self, socket: &Socket, buf: &mut [u8]) -> io::Result<usize> {
        let mut connection = self.connection.borrow_mut();
        loop {
            if self.plaintext.get() > 0 {
                let n = connection.reader().read(buf)?;
                self.plaintext.set(self.plaintext.get().saturating_sub(n));
                return Ok(n);
            }
            if self.peer_closed.get() {
                return Ok(0);
            }
            match connection.read_tls(&mut SocketIo(socket)) {
                Ok(0) => {
                    self.peer_closed.set(true);
                    continue;
                }
                Ok(_) => {}
                Err(e) => return Err(e),
            }
            let processed = self.process(&mut connection);
            // Handshake answers and alerts go out at once when the socket takes them.
            let _ = self.flush_locked(&mut connection, socket);
            processed?;
        }
    }

    /// [`TlsLink::read`] into the spare capacity of `buf`.
    pub(super) fn read_buf(&self, socket: &Socket, buf: &mut BytesMut) -> io::Result<usize> {
        let start = buf.len();
        if buf.capacity() - start < 4096 {
            buf.reserve(16 * 1024);
        }
        // A read returns about one TLS record: zero only what it can fill, not all the
        // room a large frame reserved (that would be quadratic in the frame's size).
        let room = (buf.capacity() - start).min(READ_WINDOW);
        buf.resize(start + room, 0);
        let result = self.read(socket, &mut buf[start..]);
        buf.truncate(start + *result.as_ref().unwrap_or(&0));
        result
    }

    /// Decrypts what rustls holds; a TLS error becomes `InvalidData`.
    fn process(&self, connection: &mut rustls::Connection) -> io::Result<()> {
        match connection.process_new_packets() {
            Ok(state) => {
                self.plaintext.set(state.plaintext_bytes_to_read());
                if state.peer_has_closed() {
                    self.peer_closed.set(true);
                }
                Ok(())
            }
            Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }

    /// Encrypts plaintext from `bufs` (refused with `WouldBlock` while records from an
    /// earlier write still wait for the socket) and writes the records as far as the
    /// socket takes them.
    pub(super) fn write(&self, socket: &Socket, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let mut connection = self.connection.borrow_mut();
        self.flush_locked(&mut connection, socket)?;
        let mut accepted = 0;
        for buf in bufs {
            let room = MAX_PLAINTEXT_PER_WRITE - accepted;
            if room == 0 {
                break;
            }
            let part = &buf[..buf.len().min(room)];
            let n = connection.writer().write(part)?;
            accepted += n;
            if n < part.len() {
                break;
            }
        }
        if accepted == 0 && bufs.iter().any(|b| !b.is_empty()) {
            // rustls's own buffer is full (a handshake still running): wait.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        match self.flush_locked(&mut connection, socket) {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
            _ => Ok(accepted),
        }
    }

    /// Writes pending records; `WouldBlock` if some remain.
    pub(super) fn flush(&self, socket: &Socket) -> io::Result<()> {
        self.flush_locked(&mut self.connection.borrow_mut(), socket)
    }

    fn flush_locked(&self, connection: &mut rustls::Connection, socket: &Socket) -> io::Result<()> {
        {
            let mut raw = self.raw_first.borrow_mut();
            while !raw.is_empty() {
                let n = socket.try_write(&raw)?;
                if n == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                raw.drain(..n);
            }
        }
        while connection.wants_write() {
            if connection.write_tls(&mut SocketIo(socket))? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }

    /// Sends close_notify, best effort (the socket is about to be shut down).
    pub(super) fn close_notify(&self, socket: &Socket) {
        let mut connection = self.connection.borrow_mut();
        connection.send_close_notify();
        let _ = self.flush_locked(&mut connection, socket);
    }

    /// The negotiated protocol version and cipher suite, once the handshake is done.
    pub(super) fn description(&self) -> Option<(String, String)> {
        let connection = self.connection.borrow();
        let version = connection.protocol_version()?;
        let suite = connection.negotiated_cipher_suite()?;
        let version = match version {
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_string(),
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_string(),
            other => format!("{other:?}"),
        };
        let suite = suite
            .suite()
            .as_str()
            .map_or_else(|| format!("{:?}", suite.suite()), str::to_string);
        Some((version, suite))
    }
}
