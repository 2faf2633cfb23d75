//! The idle timeout: a logged-in client that sends no command for its listener's idle
//! timeout gets ERR 4031 and is closed, with its backend.
//!
//! No timer is reset per packet. One sweeper task per worker (running only while some
//! client has an idle timeout) wakes every eighth of the shortest idle timeout (between
//! 10 ms and 1 s) and compares each watched client's command counter, which its tracker
//! keeps anyway, with the value it saw before: a change, or a command still being
//! answered, restarts the client's idle clock. A client is closed between `idle` and
//! `idle` + two sweep periods after its last command's response ended.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use rustc_hash::FxHashMap;
use tokio::time::Instant;

use crate::worker::Worker;
use crate::ConnId;

/// MySQL's ER_CLIENT_INTERACTION_TIMEOUT (8.0.24+): clients that know it say the session
/// timed out; others still show its message.
const IDLE_CODE: u16 = 4031;
const IDLE_STATE: &[u8; 5] = b"HY000";
const IDLE_MESSAGE: &str =
    "The client was disconnected by the server because of inactivity (dpm idle timeout)";

const MIN_PERIOD: Duration = Duration::from_millis(10);
const MAX_PERIOD: Duration = Duration::from_secs(1);

/// The clients a worker watches for idleness.
pub(crate) struct Watched {
    clients: RefCell<FxHashMap<ConnId, Watch>>,
    /// The shortest idle timeout watched (sets the sweep period).
    shortest: Cell<Duration>,
    /// The sweeper task is running.
    sweeping: Cell<bool>,
}

impl Default for Watched {
    fn default() -> Self {
        Watched {
            clients: RefCell::default(),
            shortest: Cell::new(Duration::MAX),
            sweeping: Cell::new(false),
        }
    }
}

struct Watch {
    limit: Duration,
    /// The client's command counter at the last sweep.
    commands: u32,
    /// When the client was last seen busy (or its counter change).
    since: Instant,
}

/// Starts watching `client` for `limit` of inactivity.
pub(super) fn watch(worker: &Worker, client: ConnId, limit: Duration) {
    let watched = &worker.inner.lifecycle.idle;
    watched.clients.borrow_mut().insert(
        client,
        Watch {
            limit,
            commands: 0,
            since: Instant::now(),
        },
    );
    watched.shortest.set(watched.shortest.get().min(limit));
    if !watched.sweeping.replace(true) {
        tokio::task::spawn_local(sweep(worker.for_every_generation()));
    }
}

async fn sweep(worker: Worker) {
    loop {
        let period = {
            let watched = &worker.inner.lifecycle.idle;
            (watched.shortest.get() / 8).clamp(MIN_PERIOD, MAX_PERIOD)
        };
        tokio::time::sleep(period).await;
        let watched = &worker.inner.lifecycle.idle;
        let now = Instant::now();
        let mut expired = Vec::new();
        {
            let mut clients = watched.clients.borrow_mut();
            clients.retain(|&id, watch| {
                let Some(conn) = worker.get(id) else {
                    return false;
                };
                let tracker = conn.tracker.borrow();
                let commands = tracker.commands_received();
                if commands != watch.commands || !tracker.is_idle() {
                    watch.commands = commands;
                    watch.since = now;
                    return true;
                }
                if now.duration_since(watch.since) >= watch.limit {
                    expired.push((conn.clone(), watch.limit));
                    return false;
                }
                true
            });
            if clients.is_empty() {
                watched.shortest.set(Duration::MAX);
                watched.sweeping.set(false);
            } else if expired.iter().any(|(_, l)| *l == watched.shortest.get()) {
                let shortest = clients.values().map(|w| w.limit).min();
                watched.shortest.set(shortest.unwrap_or(Duration::MAX));
            }
        }
        for (conn, limit) in expired {
            super::send_unsolicited_err(&conn, IDLE_CODE, IDLE_STATE, IDLE_MESSAGE);
            if super::close_session(&worker, conn.id) {
                tracing::info!(
                    "client {} sent no command for {}s (idle timeout); closed",
                    conn.id,
                    super::secs(limit)
                );
            }
        }
        if !watched.sweeping.get() {
            return;
        }
    }
}
