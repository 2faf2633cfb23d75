//! Hot reload of the startup file: SIGHUP and the admin API's `POST /v1/reload`.
//!
//! Two steps over every worker, so that the process switches as one or not at all:
//! each worker runs the file again in a new generation next to the one in force
//! (`crate::generation`); if every worker loaded it, every worker puts it in force;
//! if any failed (or did not answer in time), every worker forgets it and the old code
//! goes on as if nothing happened. The process-wide registries (servers, services,
//! filters, monitors, users) follow the same two steps (`crate::service::generations`).
//! One reload at a time: a second waits for the first.

use std::time::Duration;

use super::{ask_all_within, Request, ANSWER_TIMEOUT};

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
    let (loaded, silent) = ask_all_within(LOAD_TIMEOUT, Request::LoadGeneration).await;
    let failure = loaded
        .iter()
        .find_map(|(_, r)| r.as_ref().err().cloned())
        .or_else(|| {
            (!silent.is_empty()).then(|| {
                format!(
                    "worker(s) {silent:?} did not load the startup file within {}s",
                    LOAD_TIMEOUT.as_secs()
                )
            })
        });
    if let Some(failure) = failure {
        // A silent worker gets the abort after its load: its mailbox is in order.
        let _ = ask_all_within(ANSWER_TIMEOUT, Request::AbortGeneration).await;
        crate::service::generations::abort_load();
        tracing::error!("ERROR: reload failed, the running code stays: {failure}");
        return Err(failure);
    }
    let generation = loaded
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok().copied())
        .max()
        .unwrap_or_default();
    let (_, late_workers) = ask_all_within(ANSWER_TIMEOUT, Request::CommitGeneration).await;
    crate::service::generations::commit_load();
    tracing::info!(generation, "reloaded the startup file");
    Ok(Reloaded {
        generation,
        late_workers,
    })
}
