//! Hot reload of the startup file: SIGHUP and the admin API's `POST /v1/reload`.
//!
//! Two steps over every worker, so that the process switches as one or not at all:
//! each worker in turn runs the file again in a new generation next to the one in force
//! (`crate::generation`); if every worker loaded it, every worker puts it in force;
//! if any failed (or did not answer in time), every worker forgets it and the old code
//! goes on as if nothing happened. The process-wide registries (servers, services,
//! filters, monitors, users) follow the same two steps (`crate::service::generations`).
//! One reload at a time: a second waits for the first.

use std::time::Duration;

use tokio::sync::oneshot;

use super::{ask_all_within, mailboxes, Request, ANSWER_TIMEOUT};

/// How long the workers have to run the startup file: a file may connect somewhere or
/// read large maps as it loads.
pub const LOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// A reload that took effect.
#[derive(Debug, Clone)]
pub struct Reloaded {
    /// The generation now in force.
    pub generation: u64,
    /// Workers that did not confirm the switch in time (busy in a long callback): each
    /// switches when it gets to it.
    pub late_workers: Vec<usize>,
}

/// Serializes reloads (SIGHUP and the API may ask at once).
static RELOADING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Reloads the startup file on every worker (see the module docs). `Err` is the first
/// problem, `FILE:LINE: message` for an error in the file, and the old code runs on.
pub async fn reload() -> Result<Reloaded, String> {
    let _one_at_a_time = RELOADING.lock().await;
    crate::service::generations::begin_load();
    let (loaded, failure) = load_one_worker_at_a_time().await;
    if let Some(failure) = failure {
        // A silent worker gets the abort after its load: its mailbox is in order.
        let _ = ask_all_within(ANSWER_TIMEOUT, Request::AbortGeneration).await;
        crate::service::generations::abort_load();
        tracing::error!("ERROR: reload failed, the running code stays: {failure}");
        return Err(failure);
    }
    let generation = loaded.into_iter().max().unwrap_or_default();
    let (_, late_workers) = ask_all_within(ANSWER_TIMEOUT, Request::CommitGeneration).await;
    crate::service::generations::commit_load();
    tracing::info!(generation, "reloaded the startup file");
    Ok(Reloaded {
        generation,
        late_workers,
    })
}

/// Asks each worker in turn to load the file (a worker runs it on its own thread and
/// serves nobody meanwhile: one at a time, the others go on serving). Stops at the first
/// failure. The generation numbers loaded, and the failure if there was one.
async fn load_one_worker_at_a_time() -> (Vec<u64>, Option<String>) {
    let workers: Vec<(usize, tokio::sync::mpsc::UnboundedSender<Request>)> = mailboxes()
        .iter()
        .map(|m| (m.index, m.requests.clone()))
        .collect();
    let mut loaded = Vec::new();
    for (index, requests) in workers {
        let (reply, answer) = oneshot::channel();
        if requests.send(Request::LoadGeneration(reply)).is_err() {
            return (loaded, Some(format!("worker {index} is gone")));
        }
        match tokio::time::timeout(LOAD_TIMEOUT, answer).await {
            Ok(Ok(Ok(generation))) => loaded.push(generation),
            Ok(Ok(Err(failure))) => return (loaded, Some(failure)),
            Ok(Err(_)) => return (loaded, Some(format!("worker {index} is gone"))),
            Err(_) => {
                let failure = format!(
                    "worker {index} did not load the startup file within {}s",
                    LOAD_TIMEOUT.as_secs()
                );
                return (loaded, Some(failure));
            }
        }
    }
    (loaded, None)
}
