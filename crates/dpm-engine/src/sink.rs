//! The seam between the engine and whatever programs it (the Lua layer): the engine
//! raises protocol [`Event`]s through [`EventSink`] and knows nothing about who answers
//! them or how they are numbered there (dpm-lua maps them to the DPM state numbers).

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

use crate::event::{Event, Verdict};
use crate::tracker::PacketKind;
use crate::ConnId;

/// A received packet handed to a callback: its whole payload (frames of a packet of
/// 16 MiB or more joined) and what the tracker found it to be.
#[derive(Clone, Debug)]
pub struct Packet {
    /// What the packet is (OK, column definition, row, …).
    pub kind: PacketKind,
    /// The payload, without the 4-byte header.
    pub payload: Bytes,
}

/// A boxed future that stays on its worker thread.
pub type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// Receives the events of one worker's connections. The engine calls a method only when
/// the connection's [`crate::EventMask`] says a callback exists for the event, so an
/// implementation may assume that it has work to do.
///
/// Every method returns a future so that a handler can suspend (sleep, wait on a socket)
/// without blocking the worker: the connection waits, other connections go on.
pub trait EventSink {
    /// A listener accepted a client ([`Event::ClientAccepted`] on the listener).
    fn accepted(&self, listener: ConnId, client: ConnId) -> LocalBoxFuture<()>;

    /// A packet raised `event` on a connection. `packet` is the packet received, or
    /// `None` for events raised by writing a packet (`ClientGot…`, `BackendGot…`). The verdict matters for received packets.
    fn packet(&self, conn: ConnId, event: Event, packet: Option<Packet>)
        -> LocalBoxFuture<Verdict>;

    /// A connection is closing ([`Event::Closing`]).
    fn closing(&self, conn: ConnId) -> LocalBoxFuture<()>;

    /// Runs the program's socket hook `hook` on socket `fd` (see [`crate::sockets`]):
    /// called only for hooks the worker was told are registered
    /// ([`crate::Worker::set_socket_hooks`]); runs to completion (it cannot suspend).
    fn socket_hook(
        &self,
        _hook: crate::sockets::SocketHook,
        _fd: std::os::fd::RawFd,
        _addr: &crate::sockets::SocketAddress,
    ) {
    }

    /// Its generation was put in force (at startup, or by a reload): start the
    /// program's background work (for dpm, its registered tasks).
    fn activate(&self) {}

    /// A reload replaced its generation: stop the program's background work (new
    /// sessions go to the new generation; its own sessions go on).
    fn deactivate(&self) {}

    /// Completes once none of the program's callbacks is running (the engine waits for
    /// it before closing what is left of a generation that ends).
    fn idle(&self) -> LocalBoxFuture<()> {
        Box::pin(std::future::ready(()))
    }

    /// Its generation ended: its last session closed, or its load was abandoned. The
    /// engine will not call it again (but for the closing callbacks of the connections it
    /// just closed); it should let go of its state.
    fn retired(&self) {}
}
