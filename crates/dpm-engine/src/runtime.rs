//! Worker threads: N OS threads, each with a single-threaded tokio runtime, a
//! `LocalSet` and its own [`Worker`]. A connection, its backend(s) and its callbacks
//! stay on one worker, so the data path takes no locks.

use std::sync::mpsc;
use std::sync::Arc;

use crate::worker::{Worker, WorkerConfig};

/// Starts `threads` workers. `init` runs first on each worker thread, inside its
/// runtime (so it may open listeners and connections); it sets the worker up — for dpm,
/// it creates the worker's Lua state and runs the startup file.
///
/// Returns once every worker finished `init`: `Err` with the first failure (and the
/// process should exit), `Ok` when all are serving. The workers keep running in the
/// background until the process exits.
pub fn start_workers<F>(threads: usize, config: WorkerConfig, init: F) -> Result<(), String>
where
    F: Fn(&Worker) -> Result<(), String> + Send + Sync + 'static,
{
    let init = Arc::new(init);
    let (report, reports) = mpsc::channel::<Result<(), String>>();
    for index in 0..threads.max(1) {
        let init = init.clone();
        let report = report.clone();
        let config = config.clone();
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
                    let outcome = init(&worker);
                    let failed = outcome.is_err();
                    let _ = report.send(outcome);
                    if failed {
                        return;
                    }
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
    Ok(())
}
