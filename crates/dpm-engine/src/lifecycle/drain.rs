//! Graceful shutdown of one worker: stop accepting, let running statements finish, close
//! sessions as they become idle, and at the drain timeout close what is left.

use std::rc::Rc;
use std::time::Duration;

use dpm_protocol::err::ErrPacket;
use tokio::time::Instant;

use crate::conn::{Conn, Role};
use crate::tracker::Phase;
use crate::worker::Worker;

/// MariaDB's ER_SERVER_SHUTDOWN, what a server that is shutting down answers.
const SHUTDOWN_CODE: u16 = 1053;
const SHUTDOWN_STATE: &[u8; 5] = b"08S01";
const SHUTDOWN_MESSAGE: &str = "Server shutdown in progress";

/// How often a draining worker looks for sessions that became idle.
const POLL: Duration = Duration::from_millis(20);
/// How long the last closed connections may take to flush what was queued for them.
const FINAL_FLUSH: Duration = Duration::from_secs(1);

/// Drains the worker: returns when every connection is closed and flushed (or the
/// flush bound passed). Bounded by the drain timeout plus [`FINAL_FLUSH`].
pub(crate) async fn drain(worker: &Worker) {
    let state = &worker.inner.lifecycle;
    if state.draining.replace(true) {
        return;
    }
    let timeout = worker.inner.config.lifecycle.drain_timeout;
    let deadline = Instant::now() + timeout;
    let mut flushing: Vec<Rc<Conn>> = Vec::new();
    close_listeners(worker);
    let sessions = worker.clients().len();
    tracing::info!(
        worker = worker.index(),
        "draining {sessions} sessions (drain timeout {}s)",
        super::secs(timeout)
    );
    loop {
        // A script may have opened a listener since (from a timer or a callback).
        close_listeners(worker);
        let mut busy = 0;
        for conn in worker.clients() {
            if close_if_done(worker, &conn) {
                flushing.push(conn);
            } else {
                busy += 1;
            }
        }
        if busy == 0 {
            tracing::info!(worker = worker.index(), "drained");
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            let mut closed = 0;
            for conn in worker.clients() {
                close_at_deadline(worker, &conn);
                flushing.push(conn);
                closed += 1;
            }
            tracing::info!(
                worker = worker.index(),
                "closed {closed} sessions at drain timeout"
            );
            break;
        }
        tokio::time::sleep(POLL.min(deadline - now)).await;
    }
    // Backends without a client, and anything else still open.
    let ids: Vec<_> = worker.inner.conns.borrow().keys().copied().collect();
    for id in ids {
        if let Some(conn) = worker.get(id) {
            worker.close(id);
            flushing.push(conn);
        }
    }
    let until = Instant::now() + FINAL_FLUSH;
    flushing.retain(|c| c.unsent() > 0);
    while !flushing.is_empty() && Instant::now() < until {
        tokio::time::sleep(POLL.min(until - Instant::now())).await;
        flushing.retain(|c| c.unsent() > 0);
    }
}

fn close_listeners(worker: &Worker) {
    let listeners: Vec<_> = worker
        .inner
        .conns
        .borrow()
        .values()
        .filter(|c| matches!(c.role, Role::Listener(_)))
        .map(|c| c.id)
        .collect();
    for id in listeners {
        worker.close(id);
    }
}

/// Closes a session that has nothing running: an idle logged-in client (told ERR 1053
/// for its next command) or one that has not logged in yet. True if it was closed.
fn close_if_done(worker: &Worker, conn: &Rc<Conn>) -> bool {
    let (phase, idle) = {
        let tracker = conn.tracker.borrow();
        (tracker.phase(), tracker.is_idle())
    };
    match phase {
        Phase::Ready if idle => {
            super::send_unsolicited_err(conn, SHUTDOWN_CODE, SHUTDOWN_STATE, SHUTDOWN_MESSAGE);
        }
        // No greeting yet: an ERR in its place, without SQL state, as before a handshake.
        Phase::AwaitHandshake => {
            let err = shutdown_err(None);
            let mut packet = bytes::BytesMut::new();
            dpm_protocol::frame::encode_packet_with(&mut packet, 0, |dst| err.encode(dst));
            conn.send(&packet);
        }
        // A login in progress is not worth finishing: the session would be closed next.
        Phase::AwaitLogin | Phase::Authenticating => {}
        // Busy, or opaque (TLS/compression: dpm cannot tell when it is idle).
        Phase::Ready | Phase::Tunnel => return false,
    }
    super::close_session(worker, conn.id);
    true
}

/// Closes a session still busy at the drain timeout. A client waiting for a response
/// that has not started gets ERR 1053 as that response; one in the middle of a response
/// (or in a tunnel) is just closed: an ERR there would corrupt the result it is reading.
fn close_at_deadline(worker: &Worker, conn: &Rc<Conn>) {
    let answerable = {
        let tracker = conn.tracker.borrow();
        tracker.phase() == Phase::Ready && !tracker.response_started()
    };
    if answerable {
        let mut payload = bytes::BytesMut::new();
        shutdown_err(Some(SHUTDOWN_STATE)).encode(&mut payload);
        crate::forward::write_packet(conn, &payload);
    }
    super::close_session(worker, conn.id);
}

fn shutdown_err(sql_state: Option<&[u8; 5]>) -> ErrPacket {
    ErrPacket {
        code: SHUTDOWN_CODE,
        sql_state: sql_state.copied(),
        message: SHUTDOWN_MESSAGE.into(),
    }
}
