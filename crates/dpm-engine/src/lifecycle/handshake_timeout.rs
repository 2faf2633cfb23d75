//! The handshake timeout: a client that has not logged in `connect` after it was
//! accepted is closed, with its backend.
//!
//! One sweeper task per worker, running only while some client is logging in: it wakes
//! every eighth of the shortest handshake timeout (between 10 ms and 250 ms), forgets the
//! clients that logged in or closed, and closes those past their deadline. Once every
//! client has logged in the sweeper ends, so a worker in steady state has no timer armed
//! at all. (A timer per client, the first design, kept one armed for the first 10 s of
//! every connection: tokio's time driver then ran at every wake-up of the worker, which
//! costs a forwarder with one busy client a measurable share of its CPU per query.)
//! A client is closed between `connect` and `connect` + one sweep period after it was
//! accepted.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use tokio::time::Instant;

use crate::conn::Conn;
use crate::worker::Worker;

const MIN_PERIOD: Duration = Duration::from_millis(10);
const MAX_PERIOD: Duration = Duration::from_millis(250);

/// The clients of a worker that are logging in.
#[derive(Default)]
pub(crate) struct Handshaking {
    clients: RefCell<Vec<Pending>>,
    /// The sweeper task is running.
    sweeping: Cell<bool>,
}

struct Pending {
    client: Rc<Conn>,
    limit: Duration,
    deadline: Instant,
}

/// Starts the handshake clock of a freshly accepted client.
pub(super) fn arm(worker: &Worker, client: &Rc<Conn>, limit: Duration) {
    let handshaking = &worker.inner.lifecycle.handshaking;
    handshaking.clients.borrow_mut().push(Pending {
        client: client.clone(),
        limit,
        deadline: Instant::now() + limit,
    });
    if !handshaking.sweeping.replace(true) {
        tokio::task::spawn_local(sweep(worker.for_every_generation()));
    }
}

async fn sweep(worker: Worker) {
    let handshaking = &worker.inner.lifecycle.handshaking;
    loop {
        let period = handshaking
            .clients
            .borrow()
            .iter()
            .map(|p| p.limit / 8)
            .min()
            .unwrap_or(MAX_PERIOD)
            .clamp(MIN_PERIOD, MAX_PERIOD);
        tokio::time::sleep(period).await;
        let now = Instant::now();
        let mut expired = Vec::new();
        handshaking.clients.borrow_mut().retain(|p| {
            if p.client.closing.get() || super::logged_in(&p.client) {
                return false;
            }
            if now >= p.deadline {
                expired.push((p.client.id, p.limit));
                return false;
            }
            true
        });
        for (client, limit) in expired {
            if super::close_session(&worker, client) {
                tracing::info!(
                    "client {client} did not finish its handshake within {}s; closed",
                    super::secs(limit)
                );
            }
        }
        if handshaking.clients.borrow().is_empty() {
            handshaking.sweeping.set(false);
            return;
        }
    }
}
