//! Worker threads: N OS threads, each with a single-threaded tokio runtime, a
//! `LocalSet` and its own [`Worker`]. A connection, its backend(s) and its callbacks
//! stay on one worker, so the data path takes no locks.

use std::sync::mpsc;
use std::sync::Arc;

use tokio::sync::{mpsc as tokio_mpsc, watch};

use crate::worker::{Loader, Worker, WorkerConfig};

/// The running workers: tells them to shut down and hears when they are done.
pub struct Workers {
    shutdown: watch::Sender<bool>,
    done: tokio_mpsc::UnboundedReceiver<usize>,
    running: usize,
}

impl Workers {
    /// Asks every worker to drain: stop accepting, let running statements finish and
    /// close sessions, within the drain timeout (see `WorkerConfig::lifecycle`).
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Completes once every worker has drained (or died). Cancel-safe.
    pub async fn finished(&mut self) {
        while self.running > 0 {
            match self.done.recv().await {
                Some(_) => self.running -= 1,
                None => self.running = 0,
            }
        }
    }
}

/// Starts `threads` workers. `init` runs first on each worker thread, inside its
/// runtime (so it may open listeners and connections); it sets the worker up — for dpm,
/// it creates the worker's Lua state and runs the startup file.
///
/// Returns once every worker finished `init`: `Err` with the first failure (and the
/// process should exit), `Ok` when all are serving. The workers keep running in the
/// background until the process exits or [`Workers::shutdown`] drains them.
pub fn start_workers<F>(threads: usize, config: WorkerConfig, init: F) -> Result<Workers, String>
where
    F: Fn(&Worker) -> Result<(), String> + Send + Sync + 'static,
{
    let init: Loader = Arc::new(init);
    let (report, reports) = mpsc::channel::<Result<(), String>>();
    let (shutdown, shutdown_rx) = watch::channel(false);
    let (done_tx, done) = tokio_mpsc::unbounded_channel();
    for index in 0..threads.max(1) {
        let init = init.clone();
        let report = report.clone();
        let config = config.clone();
        let mut shutdown_rx = shutdown_rx.clone();
        let done_tx = done_tx.clone();
        std::thread::Builder::new()
            .name(format!("dpm-worker-{index}"))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = report.send(Err(format!("cannot start worker {index}: {e}")));
                        return;
                    }
                };
                let local = tokio::task::LocalSet::new();
                local.block_on(&runtime, async move {
                    let worker = Worker::new(index, config);
                    crate::control::open_mailbox(&worker);
                    crate::log_context::set_worker(&worker);
                    worker.set_loader(init.clone());
                    // The script's handle acts for the first generation, so that what it
                    // opens stays that generation's after a reload.
                    let outcome = {
                        // Not kept: this task lives as long as the worker, and must not
                        // keep the first generation alive after a reload.
                        let first = worker.current_generation();
                        let outcome = init(&worker.in_generation(first.clone()));
                        if let (Ok(()), Some(sink)) = (&outcome, first.sink()) {
                            sink.activate();
                        }
                        outcome
                    };
                    let failed = outcome.is_err();
                    let _ = report.send(outcome);
                    if failed {
                        return;
                    }
                    if shutdown_rx.wait_for(|&stop| stop).await.is_ok() {
                        crate::lifecycle::drain(&worker).await;
                        let _ = done_tx.send(index);
                    }
                    // The Lua state and the runtime stay up until the process exits:
                    // tearing them down would only run destructors nobody waits for.
                    std::future::pending::<()>().await;
                });
            })
            .map_err(|e| format!("cannot spawn worker thread: {e}"))?;
    }
    drop(report);
    for _ in 0..threads.max(1) {
        match reports.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err("a worker thread died during start-up".to_string()),
        }
    }
    Ok(Workers {
        shutdown,
        done,
        running: threads.max(1),
    })
}
