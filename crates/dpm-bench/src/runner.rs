//! Running the load: N OS threads, each a current-thread tokio runtime (and, with a
//! script, its own Lua state: [`crate::script::ThreadScript`]), M connections spread over
//! them round-robin, each connection a task that connects, prepares, then runs
//! transactions until told to stop.
//!
//! The phases, driven by the calling (main) thread:
//! 1. every thread starts, runs the script up to its `run()` (the hooks and workload are
//!    then known), connects and prepares its connections, and says it is ready;
//! 2. when all are, the clock starts ("go"); a progress line is printed every second on a
//!    terminal;
//! 3. after the duration the main thread says stop; a transaction that ends after that is
//!    not counted; each thread gives its connections [`STOP_GRACE`] to finish, aborts
//!    those still in a transaction, closes the sockets (the `client_close` hook), lets the
//!    script copy its collected values, and returns its figures.
//!
//! Bounded: every connect and login has a timeout, the run stops after its duration, and
//! the main thread gives up on a thread that has not returned [`HARD_GRACE`] after the
//! stop. An error not in `--ignore-errors` stops the whole run (as in sysbench).

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dpm_lua::copy::LuaCopy;
use tokio::sync::watch;

use crate::client::{ClientError, ConnectOptions};
use crate::oltp::{Builtin, OltpConn, OltpOptions};
use crate::report::{progress_line, Report};
use crate::script::{Places, ThreadScript};
use crate::stats::{Live, ThreadStats};

/// How long connections get to finish their transaction after the stop.
pub const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long after the stop the main thread waits for a thread before giving up.
pub const HARD_GRACE: Duration = Duration::from_secs(20);
/// Pause before connecting again after an ignored error broke a connection.
const RECONNECT_PAUSE: Duration = Duration::from_millis(100);

/// Error codes whose transactions are counted and retried rather than fatal
/// (`--ignore-errors`; sysbench's default is 1213, 1020, 1205).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IgnoreErrors {
    /// Every error.
    All,
    /// These codes.
    Codes(BTreeSet<u16>),
}

impl IgnoreErrors {
    /// Parses `all`, `none` or a comma-separated list of codes.
    pub fn parse(text: &str) -> Result<IgnoreErrors, String> {
        match text.trim() {
            "all" => Ok(IgnoreErrors::All),
            "none" | "" => Ok(IgnoreErrors::Codes(BTreeSet::new())),
            list => list
                .split(',')
                .map(|c| {
                    c.trim()
                        .parse::<u16>()
                        .map_err(|_| format!("'{c}' is not an error code"))
                })
                .collect::<Result<_, _>>()
                .map(IgnoreErrors::Codes),
        }
    }

    /// True when `code` is ignored.
    pub fn ignores(&self, code: u16) -> bool {
        match self {
            IgnoreErrors::All => true,
            IgnoreErrors::Codes(codes) => codes.contains(&code),
        }
    }
}

/// What each connection runs.
#[derive(Clone, Debug)]
pub enum Workload {
    /// A built-in sysbench workload.
    Builtin(Builtin, OltpOptions),
    /// The script's `workload` function (or, if it registered none, `fallback`).
    Script {
        /// The Lua file.
        path: std::path::PathBuf,
        /// Where the main thread found the collected values (see `script`).
        places: Places,
        /// How many values the script marks with `collect`.
        marks: usize,
        /// The built-in workload to run when the script registers no workload function
        /// (`--workload`, or the script's `workload("name")`).
        builtin: Option<Builtin>,
        /// The built-in's options.
        oltp: OltpOptions,
    },
}

/// A run's settings.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// OS threads.
    pub threads: usize,
    /// Connections in all.
    pub connections: usize,
    /// Measured window.
    pub duration: Duration,
    /// Where and as whom.
    pub connect: ConnectOptions,
    /// `--ignore-errors`.
    pub ignore: IgnoreErrors,
    /// Print a progress line every second (on a terminal).
    pub progress: bool,
    /// Random seed (0: from the clock).
    pub seed: u64,
    /// Give each load thread the scheduler weight of the connections it carries
    /// ([`renice_for`]).
    pub renice: bool,
    /// What runs.
    pub workload: Workload,
}

/// What a run returns: the report and, with a script, every thread's collected values
/// (`collected[thread][mark]`).
pub struct RunOutcome {
    /// The figures.
    pub report: Report,
    /// The values each thread's script collected.
    pub collected: Vec<Vec<LuaCopy>>,
}

/// The phase the main thread announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Prepare,
    Go,
    Stop,
    Abort,
}

/// State every thread shares.
struct Shared {
    phase: watch::Sender<Phase>,
    /// Set at the stop: transactions ending later are not counted.
    stopped: AtomicBool,
    /// The first fatal error.
    fatal: Mutex<Option<String>>,
    ready: std::sync::mpsc::Sender<Result<(), String>>,
}

impl Shared {
    fn fail(&self, message: String) {
        let mut fatal = self.fatal.lock().unwrap_or_else(|e| e.into_inner());
        if fatal.is_none() {
            *fatal = Some(message);
        }
        self.stopped.store(true, Ordering::Relaxed);
    }
}

/// A thread's result.
struct ThreadResult {
    stats: ThreadStats,
    collected: Vec<LuaCopy>,
}

/// Runs the load; blocks the calling thread until it is over.
pub fn run(config: &RunConfig) -> Result<RunOutcome, String> {
    let threads = config.threads.max(1);
    let (phase, _) = watch::channel(Phase::Prepare);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let shared = Arc::new(Shared {
        phase,
        stopped: AtomicBool::new(false),
        fatal: Mutex::new(None),
        ready: ready_tx,
    });
    let seed = if config.seed != 0 {
        config.seed
    } else {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    };
    let mut lives = Vec::new();
    let mut handles = Vec::new();
    for index in 0..threads {
        let live = Arc::new(Live::default());
        lives.push(live.clone());
        // Connections index, index + threads, ...: this thread's share.
        let conns: Vec<usize> = (index..config.connections).step_by(threads).collect();
        let (shared, config) = (shared.clone(), config.clone());
        let handle = std::thread::Builder::new()
            .name(format!("dpm-bench-{}", index + 1))
            .spawn(move || thread_main(index, conns, &config, &shared, &live, seed))
            .map_err(|e| format!("cannot start thread {}: {e}", index + 1))?;
        handles.push(handle);
    }
    // Phase 1: every thread ready (bounded by the connect timeout and the script).
    let ready_within = config.connect.timeout * 2 + Duration::from_secs(30);
    let mut failure = None;
    for _ in 0..threads {
        match ready_rx.recv_timeout(ready_within) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                failure.get_or_insert(e);
                break;
            }
            Err(_) => {
                failure.get_or_insert(format!(
                    "the threads were not ready within {ready_within:?}"
                ));
                break;
            }
        }
    }
    if let Some(e) = failure {
        shared.stopped.store(true, Ordering::Relaxed);
        shared.phase.send_replace(Phase::Abort);
        join_bounded(handles, HARD_GRACE);
        return Err(e);
    }
    // Phase 2: the measured window.
    let started = Instant::now();
    shared.phase.send_replace(Phase::Go);
    let show = config.progress && std::io::stdout().is_terminal();
    let mut last = (0, 0, 0);
    let mut last_at = started;
    let mut second = 0;
    while started.elapsed() < config.duration && !shared.stopped.load(Ordering::Relaxed) {
        // Wake at the next second (for the progress line) or the end, and at least every
        // 100 ms to notice a fatal error.
        let next_second = Duration::from_secs(second + 1);
        let wake = next_second.min(config.duration);
        let nap = wake.saturating_sub(started.elapsed());
        std::thread::sleep(nap.clamp(Duration::from_millis(1), Duration::from_millis(100)));
        if started.elapsed() >= next_second {
            second += 1;
            if show {
                let now: (u64, u64, u64) = lives
                    .iter()
                    .map(|l| l.read())
                    .fold((0, 0, 0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2));
                let delta = (now.0 - last.0, now.1 - last.1, now.2 - last.2);
                println!("{}", progress_line(second, last_at.elapsed(), delta));
                (last, last_at) = (now, Instant::now());
            }
        }
    }
    shared.stopped.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    shared.phase.send_replace(Phase::Stop);
    // Phase 3: results.
    let results = join_bounded(handles, HARD_GRACE);
    let mut per_thread = Vec::new();
    let mut collected = Vec::new();
    let mut total = ThreadStats::default();
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Some(Ok(r)) => {
                total.merge(&r.stats);
                per_thread.push(r.stats);
                collected.push(r.collected);
            }
            Some(Err(e)) => {
                shared.fail(e);
                per_thread.push(ThreadStats::default());
                collected.push(Vec::new());
            }
            None => {
                shared.fail(format!(
                    "thread {} did not stop within {HARD_GRACE:?} of the end",
                    i + 1
                ));
                per_thread.push(ThreadStats::default());
                collected.push(Vec::new());
            }
        }
    }
    let fatal = shared
        .fatal
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let workload = match &config.workload {
        Workload::Builtin(b, _) => b.name().to_string(),
        Workload::Script { path, .. } => path.display().to_string(),
    };
    Ok(RunOutcome {
        report: Report {
            workload,
            threads,
            connections: config.connections,
            elapsed,
            total,
            per_thread,
            fatal,
        },
        collected,
    })
}

/// Joins the threads, giving up (None) on those not done within `bound`.
fn join_bounded(
    handles: Vec<std::thread::JoinHandle<Result<ThreadResult, String>>>,
    bound: Duration,
) -> Vec<Option<Result<ThreadResult, String>>> {
    let deadline = Instant::now() + bound;
    handles
        .into_iter()
        .map(|h| {
            while !h.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if h.is_finished() {
                Some(h.join().unwrap_or_else(|_| Err("a thread panicked".into())))
            } else {
                None
            }
        })
        .collect()
}

fn thread_main(
    index: usize,
    conns: Vec<usize>,
    config: &RunConfig,
    shared: &Arc<Shared>,
    live: &Arc<Live>,
    seed: u64,
) -> Result<ThreadResult, String> {
    if config.renice {
        if let Err(e) = renice_for(conns.len()) {
            if index == 0 {
                eprintln!("dpm bench: warning: the load threads keep their priority ({e}); with many connections per thread they get less CPU than a thread-per-connection client would (--no-renice silences this)");
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("thread {}: cannot start its runtime: {e}", index + 1))?;
    let local = tokio::task::LocalSet::new();
    let result = local.block_on(
        &runtime,
        thread_run(index, conns, config, shared, live, seed),
    );
    if let Err(e) = &result {
        // A thread that fails before it is ready tells the main thread at once.
        let _ = shared.ready.send(Err(e.clone()));
    }
    result
}

/// The nice value that gives one thread the CFS weight of `connections` threads: the
/// weight grows by 1.25 per nice step (1024 at 0), so `-log1.25(connections)`, at most
/// 20 steps.
pub fn nice_for(connections: usize) -> i32 {
    if connections <= 1 {
        return 0;
    }
    let steps = (connections as f64).ln() / 1.25f64.ln();
    steps.round().min(20.0) as i32
}

/// Lowers the calling thread's nice value by [`nice_for`]`(connections)`, so that the
/// kernel's fair scheduler, which weighs threads, gives a thread that carries
/// `connections` connections the share that as many blocking client threads (sysbench's
/// model, one per connection) would get. Needs `CAP_SYS_NICE` (or a low enough
/// `RLIMIT_NICE`); the error says why it did not happen.
pub fn renice_for(connections: usize) -> Result<(), String> {
    let steps = nice_for(connections);
    if steps == 0 {
        return Ok(());
    }
    // SAFETY: gettid/getpriority/setpriority on the calling thread only.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        *libc::__errno_location() = 0;
        let current = libc::getpriority(libc::PRIO_PROCESS, tid);
        if current == -1 && *libc::__errno_location() != 0 {
            return Err(format!("getpriority: {}", std::io::Error::last_os_error()));
        }
        let target = (current - steps).max(-20);
        if libc::setpriority(libc::PRIO_PROCESS, tid, target) != 0 {
            return Err(format!(
                "setpriority {target}: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

async fn thread_run(
    index: usize,
    conns: Vec<usize>,
    config: &RunConfig,
    shared: &Arc<Shared>,
    live: &Arc<Live>,
    seed: u64,
) -> Result<ThreadResult, String> {
    let script = match &config.workload {
        Workload::Script {
            path,
            places,
            marks,
            ..
        } => Some(Rc::new(
            ThreadScript::start(path, index, places.clone(), *marks).await?,
        )),
        Workload::Builtin(..) => None,
    };
    let kind = match (&config.workload, &script) {
        (Workload::Builtin(b, o), _) => Kind::Oltp(*b, o.clone()),
        (Workload::Script { builtin, oltp, .. }, Some(s)) => {
            if s.has_workload() {
                Kind::Lua
            } else if let Some(b) = builtin {
                Kind::Oltp(*b, oltp.clone())
            } else {
                return Err(
                    "no workload: call workload(fn) in the script or give --workload NAME".into(),
                );
            }
        }
        (Workload::Script { .. }, None) => unreachable!("a script workload has a script"),
    };
    let stats = Rc::new(std::cell::RefCell::new(ThreadStats::default()));
    let (prepared_tx, mut prepared_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for conn_index in &conns {
        let task = ConnTask {
            index: *conn_index,
            config: config.clone(),
            kind: kind.clone(),
            script: script.clone(),
            shared: shared.clone(),
            live: live.clone(),
            stats: stats.clone(),
            seed: seed ^ (*conn_index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        };
        let prepared = prepared_tx.clone();
        tasks.push(tokio::task::spawn_local(task.run(prepared)));
    }
    drop(prepared_tx);
    // Ready once every connection is prepared (or has failed: the failure is fatal).
    for _ in 0..conns.len() {
        match prepared_rx.recv().await {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(e),
            None => break,
        }
    }
    let _ = shared.ready.send(Ok(()));
    let mut phase = shared.phase.subscribe();
    let _ = phase
        .wait_for(|p| matches!(p, Phase::Stop | Phase::Abort))
        .await;
    // Connections see the stop flag between transactions; give them time to finish.
    let deadline = tokio::time::Instant::now() + STOP_GRACE;
    for task in &mut tasks {
        if tokio::time::timeout_at(deadline, &mut *task).await.is_err() {
            task.abort();
        }
    }
    let collected = match &script {
        Some(s) => s.finish().await?,
        None => Vec::new(),
    };
    let stats = stats.borrow().clone();
    Ok(ThreadResult { stats, collected })
}

/// What a connection runs.
#[derive(Clone)]
enum Kind {
    Oltp(Builtin, OltpOptions),
    Lua,
}

/// One connection's task.
struct ConnTask {
    index: usize,
    config: RunConfig,
    kind: Kind,
    script: Option<Rc<ThreadScript>>,
    shared: Arc<Shared>,
    live: Arc<Live>,
    stats: Rc<std::cell::RefCell<ThreadStats>>,
    seed: u64,
}

/// A connection ready to run transactions.
enum Driver {
    Oltp(crate::client::Conn, Box<OltpConn>),
    Lua(crate::script::LuaConn),
}

impl Driver {
    fn fd(&self) -> std::os::fd::RawFd {
        match self {
            Driver::Oltp(conn, _) => conn.fd(),
            Driver::Lua(l) => l.fd(),
        }
    }

    async fn transaction(&mut self) -> Result<u64, TxnError> {
        match self {
            Driver::Oltp(conn, w) => w.transaction(conn).await.map_err(TxnError::Client),
            Driver::Lua(l) => l.transaction().await,
        }
    }

    fn quit(&mut self) {
        match self {
            Driver::Oltp(conn, _) => conn.quit(),
            Driver::Lua(l) => l.quit(),
        }
    }
}

/// Why a transaction failed.
pub enum TxnError {
    /// The client or the server (an error code, maybe ignored).
    Client(ClientError),
    /// A query of the script's workload: its code, `FILE:LINE: error ...`, and whether
    /// the connection broke.
    Query {
        /// The error code.
        code: u16,
        /// What to print.
        message: String,
        /// True when the connection cannot go on.
        breaks: bool,
    },
    /// The script itself (always fatal): `FILE:LINE: message`.
    Script(String),
}

impl TxnError {
    /// The error code `--ignore-errors` matches (None: never ignored).
    fn code(&self) -> Option<u16> {
        match self {
            TxnError::Client(ClientError::Hook(_)) | TxnError::Script(_) => None,
            TxnError::Client(e) => Some(e.code()),
            TxnError::Query { code, .. } => Some(*code),
        }
    }

    fn breaks(&self) -> bool {
        match self {
            TxnError::Client(e) => e.breaks_connection(),
            TxnError::Query { breaks, .. } => *breaks,
            TxnError::Script(_) => true,
        }
    }
}

impl std::fmt::Display for TxnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TxnError::Client(e) => write!(f, "{e}"),
            TxnError::Query { message, .. } | TxnError::Script(message) => f.write_str(message),
        }
    }
}

impl ConnTask {
    async fn run(self, prepared: tokio::sync::mpsc::UnboundedSender<Result<(), String>>) {
        let mut prepared = Some(prepared);
        let mut phase = self.shared.phase.subscribe();
        let mut first = true;
        loop {
            let driver = match self.open().await {
                Ok(d) => d,
                Err(e) => {
                    let message = format!("connection {}: {e}", self.index + 1);
                    let fatal = first || !e.code().is_some_and(|c| self.config.ignore.ignores(c));
                    if let Some(p) = prepared.take() {
                        let _ = p.send(Err(message));
                        return;
                    }
                    if fatal {
                        self.shared.fail(message);
                        return;
                    }
                    self.stats
                        .borrow_mut()
                        .error(&self.live, e.code().unwrap_or(0));
                    if self.stopping() {
                        return;
                    }
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    continue;
                }
            };
            if let Some(p) = prepared.take() {
                let _ = p.send(Ok(()));
                let _ = phase.wait_for(|p| *p != Phase::Prepare).await;
            } else {
                self.stats.borrow_mut().reconnects += 1;
            }
            first = false;
            if *phase.borrow() == Phase::Abort {
                self.close(driver);
                return;
            }
            match self.transactions(driver).await {
                Some(driver) => {
                    self.close(driver);
                    return;
                }
                None if self.stopping() => return,
                None => tokio::time::sleep(RECONNECT_PAUSE).await,
            }
        }
    }

    fn stopping(&self) -> bool {
        self.shared.stopped.load(Ordering::Relaxed)
    }

    /// Connects, logs in and sets the workload up.
    async fn open(&self) -> Result<Driver, TxnError> {
        let address: SocketAddr = self.config.connect.address;
        let script = self.script.clone();
        let on_socket = |fd| match &script {
            Some(s) => s.client_socket(fd, &address),
            None => Ok(()),
        };
        let hooks = self.script.as_ref().and_then(|s| s.packet_hooks());
        let mut conn = crate::client::Conn::connect(&self.config.connect, on_socket, hooks)
            .await
            .map_err(TxnError::Client)?;
        if let Some(s) = &self.script {
            s.watch_errors(conn.fd());
        }
        match &self.kind {
            Kind::Oltp(b, o) => {
                let w = OltpConn::new(&mut conn, *b, o, self.seed)
                    .await
                    .map_err(TxnError::Client)?;
                Ok(Driver::Oltp(conn, Box::new(w)))
            }
            Kind::Lua => {
                let s = self.script.as_ref().expect("a Lua workload has a script");
                Ok(Driver::Lua(s.connection(conn, self.index).await?))
            }
        }
    }

    /// Transactions until the stop; returns the driver to close, or None when an
    /// (ignored) error broke the connection.
    async fn transactions(&self, mut driver: Driver) -> Option<Driver> {
        // One clock read per transaction: a transaction starts when the previous ended.
        let mut started = Instant::now();
        while !self.stopping() {
            let result = driver.transaction().await;
            let ended = Instant::now();
            let latency = ended - started;
            started = ended;
            if self.stopping() {
                break;
            }
            match result {
                Ok(queries) => self
                    .stats
                    .borrow_mut()
                    .transaction(&self.live, latency, queries),
                Err(e) => {
                    self.stats
                        .borrow_mut()
                        .error(&self.live, e.code().unwrap_or(0));
                    if !e.code().is_some_and(|c| self.config.ignore.ignores(c)) {
                        self.shared
                            .fail(format!("connection {}: {e}", self.index + 1));
                        return Some(driver);
                    }
                    if e.breaks() {
                        self.close(driver);
                        return None;
                    }
                }
            }
        }
        Some(driver)
    }

    fn close(&self, mut driver: Driver) {
        let fd = driver.fd();
        if let Some(s) = &self.script {
            if let Err(e) = s.client_close(fd, &self.config.connect.address) {
                self.shared.fail(e);
            }
        }
        driver.quit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_gets_the_weight_of_its_connections() {
        assert_eq!(nice_for(1), 0);
        assert_eq!(nice_for(4), 6); // 1.25^6 = 3.8
        assert_eq!(nice_for(32), 16); // 1.25^16 = 35.5
        assert_eq!(nice_for(10_000), 20);
        assert_eq!(
            IgnoreErrors::parse("1213, 1205").unwrap(),
            IgnoreErrors::Codes([1213, 1205].into_iter().collect())
        );
        assert!(IgnoreErrors::parse("all").unwrap().ignores(2013));
        assert!(!IgnoreErrors::parse("none").unwrap().ignores(1213));
        assert!(IgnoreErrors::parse("12x").is_err());
    }
}
