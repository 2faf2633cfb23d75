//! Why a statement went where it went: the reasons readwritesplit gives, counted per
//! instance, and the session's route log (the last statements and their reasons), kept
//! as small records and put into words only when someone asks.

use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dpm_engine::service::Server;

/// Why a statement was routed where it was.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Reason {
    /// A read, on a replica.
    Read,
    /// A read on the primary: no replica is usable (down, lagging, or none).
    ReadOnPrimary,
    /// A causal read on the primary: its replica had not applied the session's write in
    /// time.
    CausalReadOnPrimary,
    /// A read on the primary: dpm cannot open another backend for this session.
    ReadNoSpareBackend,
    /// A statement that may write.
    Write,
    /// Inside a read-write transaction (or with autocommit off).
    InTransaction,
    /// Inside a read-only transaction, on its replica.
    ReadOnlyTransaction,
    /// The session is pinned to the primary.
    Pinned,
    /// A hint in a comment or a filter's route request.
    Hint,
    /// A session command: runs on every backend of the session.
    SessionCommand,
    /// Reads state of the previous statement (FOUND_ROWS(), ROW_COUNT()): same server.
    PreviousStatement,
    /// LAST_INSERT_ID(): where the writes run.
    LastInsertId,
    /// A prepared statement's long data, bulk execute, or cursor fetch: on the primary
    /// (long data and bulk) or where the statement was executed (fetch).
    PreparedStatement,
    /// A command that is not a statement (COM_PING, COM_STATISTICS …): current backend.
    Command,
    /// The session's transaction, lost with its server, replayed on this one.
    TransactionReplayed,
}

/// Every reason, in counter order.
pub const ALL: [Reason; 15] = [
    Reason::Read,
    Reason::ReadOnPrimary,
    Reason::CausalReadOnPrimary,
    Reason::ReadNoSpareBackend,
    Reason::Write,
    Reason::InTransaction,
    Reason::ReadOnlyTransaction,
    Reason::Pinned,
    Reason::Hint,
    Reason::SessionCommand,
    Reason::PreviousStatement,
    Reason::LastInsertId,
    Reason::PreparedStatement,
    Reason::Command,
    Reason::TransactionReplayed,
];

impl Reason {
    /// The counter's name in diagnostics.
    pub fn key(self) -> &'static str {
        match self {
            Reason::Read => "read",
            Reason::ReadOnPrimary => "read_on_primary_no_replica",
            Reason::CausalReadOnPrimary => "causal_read_on_primary",
            Reason::ReadNoSpareBackend => "read_on_current_cannot_open_backend",
            Reason::Write => "write",
            Reason::InTransaction => "in_transaction",
            Reason::ReadOnlyTransaction => "read_only_transaction",
            Reason::Pinned => "pinned",
            Reason::Hint => "hint",
            Reason::SessionCommand => "session_command",
            Reason::PreviousStatement => "previous_statement_state",
            Reason::LastInsertId => "last_insert_id",
            Reason::PreparedStatement => "prepared_statement",
            Reason::Command => "command",
            Reason::TransactionReplayed => "transaction_replayed",
        }
    }
}

/// Statements routed per reason (one instance's, shared by every worker).
#[derive(Default)]
pub struct ReasonCounters([AtomicU64; ALL.len()]);

impl ReasonCounters {
    pub fn count(&self, reason: Reason) {
        self.0[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn to_json(&self) -> serde_json::Value {
        let map = ALL
            .iter()
            .map(|r| {
                (
                    r.key().to_string(),
                    self.0[*r as usize].load(Ordering::Relaxed).into(),
                )
            })
            .collect();
        serde_json::Value::Object(map)
    }
}

/// One routed statement, as the route log keeps it.
pub struct Routed {
    /// The server it went to (None: every backend of the session).
    pub server: Option<Arc<Server>>,
    pub reason: Reason,
    /// The replica's lag when it was chosen.
    pub lag: Option<u64>,
    /// What pinned the session, for `Pinned`; the hint, for `Hint`.
    pub detail: Option<Rc<str>>,
}

impl Routed {
    /// "db2: read, lag 0 s", "db1: pinned since `LOCK TABLES t WRITE` (LOCK TABLES)" …
    pub fn describe(&self) -> String {
        let server = self
            .server
            .as_ref()
            .map_or("all backends", |s| s.name.as_str());
        let why = match self.reason {
            Reason::Read => {
                let lag = match self.lag {
                    Some(lag) => format!("read, lag {lag} s"),
                    None => "read, lag unknown".to_string(),
                };
                match self.detail.as_deref() {
                    Some(causal) => format!("{lag}, {causal}"),
                    None => lag,
                }
            }
            Reason::ReadOnPrimary => "read, no replica usable".into(),
            Reason::CausalReadOnPrimary => {
                "read, causal: the replica had not applied the session's write within causal_reads_timeout".into()
            }
            Reason::ReadNoSpareBackend => {
                "read, stays on the current server (dpm cannot log in to another server for this session: no proxy-held user, or its session-command history overflowed)".into()
            }
            Reason::Write => "write".into(),
            Reason::InTransaction => "in transaction".into(),
            Reason::ReadOnlyTransaction => "in read-only transaction".into(),
            Reason::Pinned => format!("pinned since {}", self.detail.as_deref().unwrap_or("?")),
            Reason::Hint => format!("hint ({})", self.detail.as_deref().unwrap_or("?")),
            Reason::SessionCommand => "session command".into(),
            Reason::PreviousStatement => "reads the previous statement's state".into(),
            Reason::LastInsertId => "LAST_INSERT_ID() (where the writes run)".into(),
            Reason::PreparedStatement => {
                "prepared statement's long data, bulk execute or cursor fetch".into()
            }
            Reason::Command => "command".into(),
            Reason::TransactionReplayed => {
                "the transaction, lost with its server, replayed here".into()
            }
        };
        format!("{server}: {why}")
    }
}

/// A session's last routed statements (at most [`RouteLog::LEN`]); the ring is
/// allocated once, so logging a statement allocates nothing.
#[derive(Default)]
pub struct RouteLog(VecDeque<Routed>);

impl RouteLog {
    pub const LEN: usize = 16;

    pub fn push(&mut self, routed: Routed) {
        if self.0.len() == Self::LEN {
            self.0.pop_front();
        }
        self.0.push_back(routed);
    }

    pub fn describe(&self) -> Vec<String> {
        self.0.iter().map(Routed::describe).collect()
    }
}
