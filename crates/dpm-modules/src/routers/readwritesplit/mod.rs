//! `readwritesplit`: MaxScale's statement router. Each statement goes where it can run
//! correctly and cheaply — writes, transactions and what pins a session on the primary,
//! reads on the session's least-loaded replica within `max_replication_lag`, session
//! commands (SET, USE, PREPARE …) on every backend of the session — and each decision is
//! logged with its reason (`session:route_log()`, counters in diagnostics).
//!
//! The engine does the moving (`dpm_engine::session::backends`): switching the link,
//! opening a backend logged in on the client's behalf (proxy-held users) and replaying
//! the session's history of session commands on it. Files: `rules.rs` (what a
//! statement wants), `session.rs` (the session's state and decisions), `reason.rs`
//! (reasons, counters, the route log).

mod reason;
mod rules;
mod session;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dpm_engine::pipeline::{Interest, Router, RouterSession};
use dpm_engine::service::{
    Maturity, ModuleInfo, ModuleType, OptionKind, OptionSpec, Options, Server,
};

use reason::ReasonCounters;

/// The module's declaration.
pub static INFO: ModuleInfo = ModuleInfo {
    kind: ModuleType::Router,
    name: "readwritesplit",
    maturity: Maturity::Alpha,
    version: "0.1.0",
    description: "Routes each statement: writes and transactions to the primary, reads to a replica, session state replayed on every backend",
    options: &[
        OptionSpec {
            name: "max_replication_lag",
            kind: OptionKind::Int,
            default: Some("-1"),
            description: "seconds a replica may lag (as the monitor measured) and still take reads; -1: no limit",
        },
        OptionSpec {
            name: "max_sescmd_history",
            kind: OptionKind::Int,
            default: Some("50"),
            description: "session commands a session keeps to replay on backends it opens later; past it the session opens no new backend",
        },
        OptionSpec {
            name: "causal_reads",
            kind: OptionKind::Enum(&["none", "local"]),
            default: Some("none"),
            description: "local: after a session's write, its next read on a replica first waits for that replica to apply it (MASTER_GTID_WAIT), else runs on the primary",
        },
        OptionSpec {
            name: "causal_reads_timeout",
            kind: OptionKind::Millis,
            default: Some("10000"),
            description: "how long a causal read waits for its replica before it runs on the primary",
        },
        OptionSpec {
            name: "transaction_replay",
            kind: OptionKind::Bool,
            default: Some("false"),
            description: "a transaction whose primary dies is replayed on the new one, answers compared by checksum (a COMMIT in flight is not replayed)",
        },
        OptionSpec {
            name: "transaction_replay_max_size",
            kind: OptionKind::Int,
            default: Some("1048576"),
            description: "bytes of statements a transaction may keep for a replay; a bigger one is not replayed",
        },
        OptionSpec {
            name: "strict_sp_calls",
            kind: OptionKind::Bool,
            default: Some("false"),
            description: "a CALL pins the session to the primary: what a procedure's body leaves behind (user variables, temporary tables) is then read where it was made",
        },
        OptionSpec {
            name: "delayed_retry_timeout",
            kind: OptionKind::Millis,
            default: Some("10000"),
            description: "how long a new session waits for a server when none is up (a failover in progress) before it is refused",
        },
    ],
};

/// A readwritesplit instance (one per service, shared by every worker).
pub struct ReadWriteSplit {
    /// Seconds of lag a replica may have; None: any.
    max_lag: Option<u64>,
    history: usize,
    delayed_retry: std::time::Duration,
    /// `causal_reads = "local"`: how long a read waits for its replica.
    causal_reads: Option<std::time::Duration>,
    /// `transaction_replay`: the most bytes of statements a transaction keeps (0: off).
    replay_max: usize,
    /// `strict_sp_calls`: a CALL pins the session to the primary.
    pub(crate) strict_sp_calls: bool,
    replays: AtomicU64,
    sessions: AtomicU64,
    refused: AtomicU64,
    pinned_sessions: AtomicU64,
    open_failures: AtomicU64,
    backends_lost: AtomicU64,
    reads_retried: AtomicU64,
    causal_misses: AtomicU64,
    /// Rotates the choice among equally loaded replicas.
    replica_turn: AtomicU64,
    reasons: ReasonCounters,
}

impl ReadWriteSplit {
    /// Creates an instance from checked options.
    pub fn create(options: &Options) -> Result<Arc<dyn Router>, String> {
        Ok(Arc::new(ReadWriteSplit::new(options)?))
    }

    fn new(options: &Options) -> Result<ReadWriteSplit, String> {
        let lag = options.int("max_replication_lag").unwrap_or(-1);
        let history = options.int("max_sescmd_history").unwrap_or(50);
        if history < 0 {
            return Err(format!(
                "max_sescmd_history must be 0 or more, not {history}"
            ));
        }
        Ok(ReadWriteSplit {
            max_lag: u64::try_from(lag).ok(),
            history: history as usize,
            delayed_retry: std::time::Duration::from_millis(
                options
                    .int("delayed_retry_timeout")
                    .unwrap_or(10_000)
                    .max(0) as u64,
            ),
            sessions: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            pinned_sessions: AtomicU64::new(0),
            open_failures: AtomicU64::new(0),
            backends_lost: AtomicU64::new(0),
            reads_retried: AtomicU64::new(0),
            causal_misses: AtomicU64::new(0),
            replica_turn: AtomicU64::new(0),
            replay_max: match options.bool("transaction_replay") {
                Some(true) => options
                    .int("transaction_replay_max_size")
                    .unwrap_or(1 << 20)
                    .max(1) as usize,
                _ => 0,
            },
            replays: AtomicU64::new(0),
            strict_sp_calls: options.bool("strict_sp_calls") == Some(true),
            causal_reads: (options.str("causal_reads") == Some("local")).then(|| {
                std::time::Duration::from_millis(
                    options.int("causal_reads_timeout").unwrap_or(10_000).max(0) as u64,
                )
            }),
            reasons: ReasonCounters::default(),
        })
    }

    /// The replica may take reads as far as lag goes: with a limit, its monitored lag is
    /// within it — a replica whose monitor sees no lag figure (its SQL thread stopped)
    /// is out; one no monitor watches is in.
    fn lag_ok(&self, server: &Server) -> bool {
        match (self.max_lag, server.lag()) {
            (None, _) => true,
            (Some(max), Some(lag)) => lag <= max,
            (Some(_), None) => !server.lag_unknown_to_monitor(),
        }
    }
}

impl Router for ReadWriteSplit {
    fn info(&self) -> &'static ModuleInfo {
        &INFO
    }

    fn new_session(self: Arc<Self>) -> Box<dyn RouterSession> {
        Box::new(session::RwSession::new(self))
    }

    fn diagnostics(&self) -> serde_json::Value {
        let relaxed = Ordering::Relaxed;
        serde_json::json!({
            "max_replication_lag_s": self.max_lag.map_or(-1, |l| l as i64),
            "max_sescmd_history": self.history,
            "sessions_routed": self.sessions.load(relaxed),
            "sessions_refused": self.refused.load(relaxed),
            "sessions_pinned_now": self.pinned_sessions.load(relaxed),
            "backends_not_opened": self.open_failures.load(relaxed),
            "backends_lost": self.backends_lost.load(relaxed),
            "reads_retried_elsewhere": self.reads_retried.load(relaxed),
            "causal_reads": if self.causal_reads.is_some() { "local" } else { "none" },
            "causal_reads_timeout_ms": self.causal_reads.map_or(0, |t| t.as_millis() as u64),
            "causal_reads_on_primary": self.causal_misses.load(relaxed),
            "transaction_replay": self.replay_max > 0,
            "strict_sp_calls": self.strict_sp_calls,
            "transaction_replay_max_size": self.replay_max,
            "transaction_replays_started": self.replays.load(relaxed),
            "statements_by_reason": self.reasons.to_json(),
            "delayed_retry_timeout_ms": self.delayed_retry.as_millis() as u64,
        })
    }

    fn interest(&self) -> Interest {
        Interest {
            requests: true,
            replies: true,
        }
    }

    fn delayed_retry(&self) -> std::time::Duration {
        self.delayed_retry
    }

    fn session_command_history(&self) -> usize {
        self.history
    }

    fn transaction_replay(&self) -> usize {
        self.replay_max
    }
}
