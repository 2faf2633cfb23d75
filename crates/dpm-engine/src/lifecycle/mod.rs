//! Session lifecycle: the handshake timeout, the idle timeout and the graceful drain at
//! shutdown.
//!
//! * [`handshake_timeout`]: accepted clients are watched by one sweeper task per worker
//!   while they log in; a client that has not logged in by its deadline is closed
//!   together with its linked backend. No timer stays armed once all have logged in.
//! * [`idle_timeout`]: clients of a listener with an idle timeout are watched by one
//!   sweeper task per worker, which compares each client's command counter (kept by its
//!   tracker) with what it saw last time: the data path pays nothing but the counter.
//! * [`connection_limit`]: a listener's `max_connections`, counted over all workers.
//! * [`drain`]: on shutdown a worker closes its listeners, closes sessions as they become
//!   idle and, at the drain timeout, answers what is left with ERR 1053.
//! * [`kill`]: an operator kills one session (ERR 1927, as MariaDB's `KILL`).
//!
//! Timeouts are process-wide defaults ([`LifecycleConfig`], from the command line) that
//! a script may override per listener ([`Worker::set_listener_timeouts`]).

pub(crate) mod connection_limit;
mod drain;
mod handshake_timeout;
mod idle_timeout;
mod kill;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use bytes::BytesMut;
use dpm_protocol::err::ErrPacket;
use dpm_protocol::frame::encode_packet_with;
use rustc_hash::FxHashMap;

use crate::conn::Conn;
use crate::error::EngineError;
use crate::tracker::Phase;
use crate::worker::Worker;
use crate::ConnId;

pub(crate) use drain::drain;
pub(crate) use kill::kill;

/// Process-wide session timeouts (the command line's `--connect-timeout`,
/// `--idle-timeout`, `--drain-timeout`).
#[derive(Clone, Debug)]
pub struct LifecycleConfig {
    /// How long an accepted client may take to log in (default 10 s).
    pub handshake_timeout: Duration,
    /// How long a logged-in client may stay without a command (default: no limit).
    pub idle_timeout: Option<Duration>,
    /// How long a shutdown waits for running statements before closing what is left
    /// (default 30 s).
    pub drain_timeout: Duration,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        LifecycleConfig {
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: None,
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// The timeouts of one listener's clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenerTimeouts {
    /// Time allowed to log in.
    pub connect: Duration,
    /// Time allowed without a command once logged in; `None` = no limit.
    pub idle: Option<Duration>,
}

/// A worker's lifecycle bookkeeping.
#[derive(Default)]
pub(crate) struct State {
    /// Timeouts a script set on listeners (absent: the process-wide defaults).
    listeners: RefCell<FxHashMap<ConnId, ListenerTimeouts>>,
    /// Clients logging in, watched by the handshake sweeper.
    handshaking: handshake_timeout::Handshaking,
    /// Clients with an idle timeout, watched by the sweeper.
    idle: idle_timeout::Watched,
    /// Set once the worker drains: nothing new is accepted.
    draining: Cell<bool>,
}

impl State {
    /// True once the worker drains.
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.get()
    }
}

impl Worker {
    /// The timeouts the clients of `listener` get (the defaults unless a script set
    /// them).
    pub fn listener_timeouts(&self, listener: ConnId) -> ListenerTimeouts {
        let defaults = &self.inner.config.lifecycle;
        self.inner
            .lifecycle
            .listeners
            .borrow()
            .get(&listener)
            .copied()
            .unwrap_or(ListenerTimeouts {
                connect: defaults.handshake_timeout,
                idle: defaults.idle_timeout,
            })
    }

    /// Sets the handshake (`connect`) and/or idle timeout of the clients `listener`
    /// accepts from now on; `None` leaves a value as it is, an idle timeout of zero
    /// means none. Clients already accepted keep theirs.
    pub fn set_listener_timeouts(
        &self,
        listener: ConnId,
        connect: Option<Duration>,
        idle: Option<Duration>,
    ) -> Result<ListenerTimeouts, EngineError> {
        self.listener(listener)?;
        let mut timeouts = self.listener_timeouts(listener);
        if let Some(connect) = connect {
            timeouts.connect = connect;
        }
        if let Some(idle) = idle {
            timeouts.idle = Some(idle).filter(|d| !d.is_zero());
        }
        let mut listeners = self.inner.lifecycle.listeners.borrow_mut();
        // Forget listeners that closed since (scripts rarely open many).
        listeners.retain(|id, _| self.is_alive(*id));
        listeners.insert(listener, timeouts);
        Ok(timeouts)
    }
}

/// Hook: a listener accepted `client`. Arms its handshake timer and, if its listener
/// has one, its idle timeout.
pub(crate) fn on_accept(worker: &Worker, listener: ConnId, client: &Rc<Conn>) {
    let timeouts = worker.listener_timeouts(listener);
    handshake_timeout::arm(worker, client, timeouts.connect);
    if let Some(idle) = timeouts.idle {
        idle_timeout::watch(worker, client.id, idle);
    }
}

/// True once the client has logged in (or the conversation became opaque, TLS or
/// compression, where dpm cannot see the login end).
fn logged_in(conn: &Conn) -> bool {
    matches!(conn.tracker.borrow().phase(), Phase::Ready | Phase::Tunnel)
}

/// Closes a client and the backend linked to it (opened for it, it would otherwise be
/// left on a half-finished conversation). False if the client was already closed.
fn close_session(worker: &Worker, client: ConnId) -> bool {
    let partner = worker.get(client).and_then(|c| worker.partner_of(&c));
    let closed = worker.close(client);
    if let Some(partner) = partner {
        worker.close(partner.id);
    }
    closed
}

/// Seconds as people write them: `2`, `0.5`.
fn secs(d: Duration) -> String {
    format!("{}", d.as_secs_f64())
}

/// Writes an ERR packet to a logged-in client that is not waiting for anything, with
/// sequence id 1: the client reads it as the answer to the next command it sends (and
/// reports it), whether or not the command got out before the socket closed.
fn send_unsolicited_err(conn: &Conn, code: u16, sql_state: &[u8; 5], message: &str) {
    let err = ErrPacket {
        code,
        sql_state: Some(*sql_state),
        message: message.to_string().into(),
    };
    let mut packet = BytesMut::new();
    encode_packet_with(&mut packet, 1, |dst| err.encode(dst));
    conn.send(&packet);
}
