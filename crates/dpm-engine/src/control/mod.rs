//! The control plane's way into the workers: what an operator (the admin API, and the
//! startup file's own calls) can ask of a running process without touching the data
//! path.
//!
//! Each worker has a mailbox ([`Request`]s, answered on the worker's own thread by a
//! task started with the worker): the list of its sessions, killing one, closing the
//! sessions on a server put into maintenance, its services' diagnostics. Another thread
//! asks every worker and gathers the answers ([`sessions`], [`kill_session`], …); a
//! worker busy in a long callback answers late, so every gathering is bounded
//! ([`ANSWER_TIMEOUT`]) and says which workers did not answer. Nothing here is read or
//! written by the forwarding loop: a process nobody asks pays for one idle task per
//! worker.
//!
//! Also here, because the startup file declares them and the binary acts on them: the
//! admin listener the file asked for ([`admin`]), the process's log level
//! ([`log_level`]) and `dpm --check`'s mode ([`check`]).

pub mod admin;
pub mod check;
pub mod log_level;
pub mod reload;
mod sessions;

use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

pub use sessions::SessionInfo;

use crate::shared::WorkerGauges;
use crate::worker::Worker;
use crate::ConnId;

/// How long a worker has to answer a request before it is reported as not answering.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// What another thread can ask a worker.
enum Request {
    /// Its sessions.
    Sessions(oneshot::Sender<Vec<SessionInfo>>),
    /// Kill session `id` if it is this worker's: true if it was.
    Kill(ConnId, oneshot::Sender<bool>),
    /// Kill the sessions whose backend is on server `name` and cannot move to another
    /// one: how many.
    KillOnServer(String, oneshot::Sender<usize>),
    /// The diagnostics of each service its listeners serve (with this worker's filters).
    Services(oneshot::Sender<Vec<serde_json::Value>>),
    /// Its counters for the metrics endpoint.
    Metrics(oneshot::Sender<crate::metrics::WorkerSnapshot>),
    /// A copy of its query digests.
    Digests(oneshot::Sender<Vec<crate::digests::store::DigestEntry>>),
    /// Forget its query digests.
    ResetDigests(oneshot::Sender<()>),
    /// Run the startup file again in a new generation (a reload's first step).
    LoadGeneration(oneshot::Sender<Result<u64, String>>),
    /// Put the loaded generation in force: true if there was one.
    CommitGeneration(oneshot::Sender<bool>),
    /// Forget the loaded generation.
    AbortGeneration(oneshot::Sender<()>),
}

/// A worker as the control plane knows it.
struct Mailbox {
    index: usize,
    requests: mpsc::UnboundedSender<Request>,
    gauges: Arc<WorkerGauges>,
}

static MAILBOXES: LazyLock<Mutex<Vec<Mailbox>>> = LazyLock::new(Default::default);

fn mailboxes() -> std::sync::MutexGuard<'static, Vec<Mailbox>> {
    MAILBOXES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Opens `worker`'s mailbox and starts the task that answers it. Must run on the
/// worker's thread, inside its `LocalSet` (the runtime does it as each worker starts).
pub(crate) fn open_mailbox(worker: &Worker) {
    let (requests, mut inbox) = mpsc::unbounded_channel();
    mailboxes().push(Mailbox {
        index: worker.index(),
        requests,
        gauges: worker.gauges().clone(),
    });
    let worker = worker.clone();
    tokio::task::spawn_local(async move {
        while let Some(request) = inbox.recv().await {
            answer(&worker, request);
        }
    });
}

/// Answers one request on the worker's thread (a dropped asker is not an error).
fn answer(worker: &Worker, request: Request) {
    match request {
        Request::Sessions(reply) => {
            let _ = reply.send(sessions::of_worker(worker));
        }
        Request::Kill(id, reply) => {
            let _ = reply.send(crate::lifecycle::kill(worker, id));
        }
        Request::KillOnServer(name, reply) => {
            let _ = reply.send(sessions::kill_on_server(worker, &name));
        }
        Request::Services(reply) => {
            let _ = reply.send(worker.service_diagnostics());
        }
        Request::Metrics(reply) => {
            let _ = reply.send(worker.metrics_snapshot());
        }
        Request::Digests(reply) => {
            let _ = reply.send(crate::digests::entries(worker));
        }
        Request::ResetDigests(reply) => {
            crate::digests::reset(worker);
            let _ = reply.send(());
        }
        Request::LoadGeneration(reply) => {
            let _ = reply.send(worker.load_generation());
        }
        Request::CommitGeneration(reply) => {
            let _ = reply.send(worker.commit_generation());
        }
        Request::AbortGeneration(reply) => {
            worker.abort_generation();
            let _ = reply.send(());
        }
    }
}

/// Sends `make(reply)` to every worker and waits (at most [`ANSWER_TIMEOUT`] in all)
/// for their answers: each worker's, and the indexes of those that did not answer.
async fn ask_all<T>(make: impl Fn(oneshot::Sender<T>) -> Request) -> (Vec<(usize, T)>, Vec<usize>) {
    ask_all_within(ANSWER_TIMEOUT, make).await
}

/// [`ask_all`] with another bound.
async fn ask_all_within<T>(
    bound: Duration,
    make: impl Fn(oneshot::Sender<T>) -> Request,
) -> (Vec<(usize, T)>, Vec<usize>) {
    let pending: Vec<(usize, oneshot::Receiver<T>)> = mailboxes()
        .iter()
        .filter_map(|m| {
            let (tx, rx) = oneshot::channel();
            m.requests.send(make(tx)).ok().map(|()| (m.index, rx))
        })
        .collect();
    let deadline = tokio::time::Instant::now() + bound;
    let mut answers = Vec::new();
    let mut silent = Vec::new();
    for (index, rx) in pending {
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(answer)) => answers.push((index, answer)),
            _ => silent.push(index),
        }
    }
    (answers, silent)
}

/// Answers gathered from the workers, and which did not answer in time.
#[derive(Debug)]
pub struct Gathered<T> {
    /// What the workers that answered said, in worker order.
    pub items: Vec<T>,
    /// Workers that did not answer within [`ANSWER_TIMEOUT`] (busy in a long callback).
    pub silent_workers: Vec<usize>,
}

/// Every session of the process, by id.
pub async fn sessions() -> Gathered<SessionInfo> {
    let (answers, silent_workers) = ask_all(Request::Sessions).await;
    let mut items: Vec<SessionInfo> = answers.into_iter().flat_map(|(_, s)| s).collect();
    items.sort_by_key(|s| s.id);
    Gathered {
        items,
        silent_workers,
    }
}

/// What became of a kill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Killed {
    /// Killed.
    Yes,
    /// No worker has the session.
    NoSuchSession,
    /// No worker that answered has it, and these did not answer in time: the session may
    /// be on one of them, and is then killed when that worker gets to the request.
    Unknown(Vec<usize>),
}

/// Kills session `id`: its client is told ERR 1927 (connection was killed), as MariaDB's
/// `KILL` tells it, and the session is closed with its backends.
pub async fn kill_session(id: ConnId) -> Killed {
    let (answers, silent) = ask_all(|reply| Request::Kill(id, reply)).await;
    if answers.into_iter().any(|(_, killed)| killed) {
        Killed::Yes
    } else if silent.is_empty() {
        Killed::NoSuchSession
    } else {
        Killed::Unknown(silent)
    }
}

/// Kills, on every worker, the sessions whose backend is on server `name` and whose
/// router cannot move them to another server (see [`SessionInfo`]): how many, and the
/// workers that did not answer in time (theirs are killed when they get to it).
pub async fn kill_sessions_on_server(name: &str) -> Gathered<usize> {
    let (answers, silent_workers) =
        ask_all(|reply| Request::KillOnServer(name.to_string(), reply)).await;
    Gathered {
        items: answers.into_iter().map(|(_, n)| n).collect(),
        silent_workers,
    }
}

/// The diagnostics of every service (with its filters') as one worker sees them.
pub async fn service_diagnostics() -> Vec<serde_json::Value> {
    let (answers, _) = ask_all(Request::Services).await;
    answers
        .into_iter()
        .next()
        .map(|(_, d)| d)
        .unwrap_or_default()
}

/// Every worker's counters for the metrics endpoint (`crate::metrics`), and which
/// workers did not answer in time.
pub async fn metrics() -> Gathered<crate::metrics::WorkerSnapshot> {
    let (answers, silent_workers) = ask_all(Request::Metrics).await;
    Gathered {
        items: answers.into_iter().map(|(_, m)| m).collect(),
        silent_workers,
    }
}

/// Every worker's query digests (one entry per worker per key: merging is the caller's),
/// and which workers did not answer in time.
pub async fn digests() -> Gathered<crate::digests::store::DigestEntry> {
    let (answers, silent_workers) = ask_all(Request::Digests).await;
    Gathered {
        items: answers.into_iter().flat_map(|(_, d)| d).collect(),
        silent_workers,
    }
}

/// Forgets every worker's query digests.
pub async fn reset_digests() {
    let _ = ask_all(Request::ResetDigests).await;
}

/// What a worker publishes about itself, read without asking it.
#[derive(Debug, Clone)]
pub struct WorkerInfo {
    /// Its number.
    pub index: usize,
    /// Open connections (listeners included).
    pub connections: u64,
    /// Lua functions entered.
    pub lua_calls: u64,
    /// Packets decoded for Lua.
    pub packets_decoded: u64,
    /// Requests and replies a service's filters ran for.
    pub pipeline_runs: u64,
    /// Generations of the startup file alive (1, plus one per reload whose old sessions
    /// are still open).
    pub generations: u64,
}

/// Every worker's published counters.
pub fn workers() -> Vec<WorkerInfo> {
    use std::sync::atomic::Ordering::Relaxed;
    let mut all: Vec<WorkerInfo> = mailboxes()
        .iter()
        .map(|m| WorkerInfo {
            index: m.index,
            connections: m.gauges.connections.load(Relaxed),
            lua_calls: m.gauges.lua_calls.load(Relaxed),
            packets_decoded: m.gauges.packets_decoded.load(Relaxed),
            pipeline_runs: m.gauges.pipeline_runs.load(Relaxed),
            generations: m.gauges.generations.load(Relaxed),
        })
        .collect();
    all.sort_by_key(|w| w.index);
    all
}
