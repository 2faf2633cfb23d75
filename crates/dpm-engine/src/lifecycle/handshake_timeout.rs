//! The handshake timeout: a client that has not logged in `connect` after it was
//! accepted is closed, with its backend.
//!
//! One local task per accepted client, sleeping on tokio's timer (itself a hierarchical
//! timer wheel: arming and firing are O(1)). The task ends as soon as the client closes;
//! a client that logged in keeps a sleeping task until the deadline, which then finds
//! it logged in and ends. A task with its timer costs a few hundred bytes, so 10,000
//! clients connecting at once cost a few MB for at most `connect`, against the 6 KB
//! every proxied session costs anyway (BENCHMARKS.md).

use std::rc::Rc;
use std::time::Duration;

use crate::conn::Conn;
use crate::worker::Worker;

/// Starts the handshake timer of a freshly accepted client.
pub(super) fn arm(worker: &Worker, client: &Rc<Conn>, limit: Duration) {
    let worker = worker.clone();
    let client = client.clone();
    tokio::task::spawn_local(async move {
        tokio::select! {
            _ = tokio::time::sleep(limit) => {}
            _ = client.close_signal.notified() => return,
        }
        if client.closing.get() || super::logged_in(&client) {
            return;
        }
        if super::close_session(&worker, client.id) {
            tracing::info!(
                "client {} did not finish its handshake within {}s; closed",
                client.id,
                super::secs(limit)
            );
        }
    });
}
