//! The seam between the engine and whatever programs it (the Lua layer): the engine
//! raises events through [`EventSink`] and knows nothing about who answers them.

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
    /// A listener accepted a client (event `MYC_CONNECT` on the listener).
    fn accepted(&self, listener: ConnId, client: ConnId) -> LocalBoxFuture<()>;

    /// A connection reached `event`. `packet` is the packet received, or `None` for
    /// transitions caused by sending. The verdict matters for received packets.
    fn packet(&self, conn: ConnId, event: Event, packet: Option<Packet>)
        -> LocalBoxFuture<Verdict>;

    /// A connection is closing (event `MY_CLOSING`).
    fn closing(&self, conn: ConnId) -> LocalBoxFuture<()>;
}
