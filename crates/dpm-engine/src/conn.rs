//! One connection of a worker — listener, accepted client or backend — and its write
//! path. All fields are cells: a connection lives on one worker thread and is touched by
//! its reader task, its writer task and script calls, never at the same time.

use std::cell::{Cell, OnceCell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use tokio::sync::Notify;

use crate::event::EventMask;
use crate::session::Session;
use crate::tracker::{Side, Tracker};
use crate::transport::Transport;
use crate::ConnId;

/// Above this many unsent bytes the partner stops reading (backpressure).
pub(crate) const HIGH_WATER: usize = 4 << 20;
/// Below this many unsent bytes a paused partner resumes reading.
pub(crate) const LOW_WATER: usize = 1 << 20;

/// What a connection is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    /// A listening socket (TCP or unix).
    Listener(ListenerKind),
    /// A client accepted by a listener.
    Client,
    /// An outbound connection to a MySQL/MariaDB server.
    Backend,
}

/// The transport of a listener; the numbers are what `conn:listener()` returns.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ListenerKind {
    /// TCP (1).
    Tcp = 1,
    /// Unix domain socket (2).
    Unix = 2,
}

/// A connection's shared state.
pub(crate) struct Conn {
    pub id: ConnId,
    pub role: Role,
    /// Set once the socket exists (backends get it when their connect completes).
    pub transport: OnceCell<Transport>,
    pub tracker: RefCell<Tracker>,
    /// The session this connection belongs to: a client's own (from its accept on), a
    /// backend's while it is linked. Pairing lives in `crate::session`.
    pub session: RefCell<Option<Rc<Session>>>,
    /// The last partner's id; kept after the partner closes (the original's quirk).
    pub remote_id: Cell<ConnId>,
    /// Events with a callback.
    pub mask: Cell<EventMask>,
    /// Bytes waiting for the socket.
    pub out: RefCell<BytesMut>,
    /// Wakes the writer task.
    pub out_ready: Notify,
    /// Wakes readers paused by backpressure on this connection.
    pub drained: Notify,
    pub closing: Cell<bool>,
    /// The peer reset the connection (a read failed with ECONNRESET). Linux resets a
    /// connection its owner closes with unread data in it — a server that died before
    /// reading the last command sent to it never ran that command.
    pub reset_by_peer: Cell<bool>,
    /// Wakes this connection's reader (and accept loop) to stop.
    pub close_signal: Notify,
    /// For backends: the address being connected to (for error messages).
    pub target: String,
    /// TLS dpm terminates on this connection: offered to clients (listeners and their
    /// clients) or used towards the server (backends). Unset: TLS, if the two ends
    /// negotiate it, passes through opaquely.
    pub tls: OnceCell<crate::tls::TlsRole>,
    /// Bytes read before the connection's reader started (after a login dpm ran
    /// itself): the reader takes them first.
    pub pending_input: RefCell<BytesMut>,
    /// Listeners: the limit of open clients (`max_connections`).
    pub limit: OnceCell<Arc<crate::lifecycle::connection_limit::ListenerLimit>>,
    /// Clients: their place under their listener's limit, given back at close.
    pub admission: RefCell<Option<crate::lifecycle::connection_limit::Admission>>,
    /// The generation of the program whose code made it: its events go to that
    /// generation's sink (`crate::generation`).
    pub generation: Rc<crate::generation::Generation>,
    /// Listeners: the bound socket, shared with the next generation's listener on the
    /// same address after a reload.
    pub listening: OnceCell<Rc<crate::listener::Listening>>,
    /// Backends: where it stands with its server's pool (`crate::session::pool`).
    pub pool: Cell<crate::session::pool::PoolState>,
}

impl Conn {
    pub fn new(
        id: ConnId,
        role: Role,
        target: String,
        max_packet: usize,
        generation: Rc<crate::generation::Generation>,
    ) -> Conn {
        let side = if role == Role::Backend {
            Side::Backend
        } else {
            Side::Client
        };
        Conn {
            id,
            role,
            transport: OnceCell::new(),
            tracker: RefCell::new(Tracker::new(side, max_packet)),
            session: RefCell::new(None),
            remote_id: Cell::new(0),
            mask: Cell::new(EventMask::default()),
            out: RefCell::new(BytesMut::new()),
            out_ready: Notify::new(),
            drained: Notify::new(),
            closing: Cell::new(false),
            reset_by_peer: Cell::new(false),
            close_signal: Notify::new(),
            target,
            tls: OnceCell::new(),
            pending_input: RefCell::new(BytesMut::new()),
            limit: OnceCell::new(),
            admission: RefCell::new(None),
            generation,
            listening: OnceCell::new(),
            pool: Cell::default(),
        }
    }

    /// Queues bytes for the socket. When nothing is queued it writes straight away, so
    /// the common case costs one `write` and no copy.
    pub fn send(&self, mut data: &[u8]) {
        if data.is_empty() || self.closing.get() {
            return;
        }
        let mut out = self.out.borrow_mut();
        if out.is_empty() {
            if let Some(stream) = self.transport.get() {
                match stream.try_write(data) {
                    Ok(n) if n == data.len() => {
                        self.wake_writer_for_tls(stream);
                        return;
                    }
                    Ok(n) => data = &data[n..],
                    // WouldBlock, or an error the writer task will meet again and report.
                    Err(_) => {}
                }
            }
        }
        out.extend_from_slice(data);
        drop(out);
        self.out_ready.notify_one();
    }

    /// Queues one frame: a 4-byte header and its payload, written together.
    pub fn send_frame(&self, header: &[u8; 4], payload: &[u8]) {
        if self.closing.get() {
            return;
        }
        let mut out = self.out.borrow_mut();
        let mut written = 0;
        if out.is_empty() {
            if let Some(stream) = self.transport.get() {
                let bufs = [
                    std::io::IoSlice::new(header),
                    std::io::IoSlice::new(payload),
                ];
                written = stream.try_write_vectored(&bufs).unwrap_or(0);
            }
        }
        let total = header.len() + payload.len();
        if written == total {
            if let Some(stream) = self.transport.get() {
                self.wake_writer_for_tls(stream);
            }
            return;
        }
        if written < header.len() {
            out.extend_from_slice(&header[written..]);
            out.extend_from_slice(payload);
        } else {
            out.extend_from_slice(&payload[written - header.len()..]);
        }
        drop(out);
        self.out_ready.notify_one();
    }

    /// A TLS transport may have taken the bytes as plaintext and kept records the
    /// socket could not take yet: the writer task must flush them.
    #[inline]
    fn wake_writer_for_tls(&self, stream: &Transport) {
        if stream.has_pending_output() {
            self.out_ready.notify_one();
        }
    }

    /// Bytes queued but not yet written.
    pub fn unsent(&self) -> usize {
        self.out.borrow().len()
    }

    /// Writes queued bytes until none are left or the socket would block.
    /// Returns Ok(true) when the queue is empty.
    pub fn flush_some(&self) -> std::io::Result<bool> {
        let Some(stream) = self.transport.get() else {
            return Ok(false);
        };
        let mut out = self.out.borrow_mut();
        while !out.is_empty() {
            match stream.try_write(&out) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => out.advance(n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        if out.is_empty() && stream.has_pending_output() {
            // TLS records made from bytes already taken: they leave before we call the
            // queue empty.
            match stream.flush() {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        let empty = out.is_empty();
        if out.len() <= LOW_WATER {
            self.drained.notify_waiters();
        }
        if empty && out.capacity() > HIGH_WATER {
            *out = BytesMut::new();
        }
        Ok(empty)
    }
}
