//! The handshake timeout: a client that has not logged in `connect` after it was
//! accepted is closed, with its backend.
//!
//! One local task per accepted client, sleeping on tokio's timer (itself a hierarchical
//! timer wheel: arming and firing are O(1)). The task ends as soon as the client closes;
//! a client that logged in keeps a sleeping task until the deadline, which then finds
//! it logged in and ends. The task's future is 248 bytes (about 400 with tokio's task
//! header), against about 3.8 KB RSS that each silent client costs dpm in all (10,000
//! silent clients: 10 MB → 48 MB, debug build): a timer wheel of our own would save
//! under a tenth of that, so it is not worth its code.

use std::rc::Rc;
use std::time::Duration;

use crate::conn::Conn;
use crate::worker::Worker;

/// Starts the handshake timer of a freshly accepted client.
pub(super) fn arm(worker: &Worker, client: &Rc<Conn>, limit: Duration) {
    tokio::task::spawn_local(timer(worker.clone(), client.clone(), limit));
}

/// The timer task: ends when the client closes, or at `limit`, closing it unless it
/// logged in.
async fn timer(worker: Worker, client: Rc<Conn>, limit: Duration) {
    // Closed before this task first ran (a listener without a ClientAccepted
    // callback closes it at once): the close signal has been given already and would not wake us.
    if client.closing.get() {
        return;
    }
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::Role;
    use crate::worker::WorkerConfig;

    /// What each accepted client pays for its handshake timer until it logs in (plus
    /// tokio's task header): small next to the ~4 KB an accepted client costs anyway.
    #[test]
    fn the_timer_task_is_small() {
        let worker = Worker::new(0, WorkerConfig::default());
        let client = worker.register(Role::Client, "test".into());
        let task = timer(worker.clone(), client, Duration::from_secs(10));
        let size = std::mem::size_of_val(&task);
        eprintln!("handshake timer future: {size} bytes");
        assert!(size <= 512, "handshake timer future is {size} bytes");
    }
}
