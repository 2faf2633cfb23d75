//! `top` — the N slowest statements of each session (MaxScale's `topfilter`), written
//! when the session closes as one JSON line with the session's totals: user, client,
//! service, start and end, statements, total time in statements. Lines go through a
//! [`LogWriter`] (a bounded queue to a writer thread), so a session's close never waits
//! for the disk.
//!
//! A statement enters a session's top only when it is slower than the fastest one there:
//! its SQL is copied then, not per statement.

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dpm_engine::pipeline::{
    Action, Filter, FilterSession, Interest, Reply, Request, SessionRef, Step,
};
use dpm_engine::service::{
    FilterDefinition, Maturity, ModuleInfo, ModuleType, OptionKind, OptionSpec, Options,
};
use dpm_protocol::command::com;

use super::common::line::{now_rfc3339, JsonLine};
use super::common::log_writer::LogWriter;
use super::common::scope::{self, Scope};
use super::common::session_facts::SessionFacts;

const OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        name: "file",
        kind: OptionKind::Str,
        default: None,
        description: "the file each closed session's line is appended to (required)",
    },
    OptionSpec {
        name: "count",
        kind: OptionKind::Int,
        default: Some("10"),
        description: "how many of the slowest statements each session reports",
    },
    scope::OPTIONS[0],
    scope::OPTIONS[1],
    scope::OPTIONS[2],
    scope::OPTIONS[3],
    scope::OPTIONS[4],
];

/// The module's declaration.
pub static INFO: ModuleInfo = ModuleInfo {
    kind: ModuleType::Filter,
    name: "top",
    maturity: Maturity::Beta,
    version: "1.0.0",
    description: "The N slowest statements of each session, written as JSON with the session's totals when it closes",
    options: OPTIONS,
};

/// The process-wide top filter.
pub struct TopStatements {
    name: String,
    count: usize,
    scope: Scope,
    writer: LogWriter,
    sessions_reported: AtomicU64,
}

impl TopStatements {
    /// A top filter named `name` from checked options.
    pub fn create(name: &str, options: &Options) -> Result<Arc<dyn FilterDefinition>, String> {
        let file = options
            .str("file")
            .ok_or("filter 'top': option 'file' is required")?;
        let count = options.int("count").unwrap_or(10);
        if !(1..=10_000).contains(&count) {
            return Err("filter 'top': option 'count' must be 1 to 10000".into());
        }
        Ok(Arc::new(TopStatements {
            name: name.to_string(),
            count: count as usize,
            scope: Scope::from_options(options).map_err(|e| format!("filter 'top': {e}"))?,
            writer: LogWriter::open(Path::new(file), 10_000, &format!("filter '{name}'"))?,
            sessions_reported: AtomicU64::new(0),
        }))
    }
}

impl FilterDefinition for TopStatements {
    fn name(&self) -> &str {
        &self.name
    }

    fn worker_filter(self: Arc<Self>) -> Rc<dyn Filter> {
        Rc::new(WorkerTop(self))
    }

    fn reopen_logs(&self) {
        self.writer.reopen();
    }
}

struct WorkerTop(Arc<TopStatements>);

impl Filter for WorkerTop {
    fn info(&self) -> &'static ModuleInfo {
        &INFO
    }

    fn name(&self) -> &str {
        &self.0.name
    }

    fn new_session(&self, session: &SessionRef) -> Rc<dyn FilterSession> {
        Rc::new(TopSession {
            filter: self.0.clone(),
            session: session.clone(),
            facts: SessionFacts::of(session),
            started: (now_rfc3339(), Instant::now()),
            totals: RefCell::new(Totals::default()),
        })
    }

    fn diagnostics(&self) -> serde_json::Value {
        let mut d = self.0.writer.diagnostics();
        d["count"] = self.0.count.into();
        d["sessions_reported"] = self.0.sessions_reported.load(Ordering::Relaxed).into();
        d
    }
}

#[derive(Default)]
struct Totals {
    statements: u64,
    time: Duration,
    /// The slowest statements so far, slowest first (at most `count`).
    top: Vec<(Duration, Vec<u8>)>,
}

struct TopSession {
    filter: Arc<TopStatements>,
    session: SessionRef,
    facts: SessionFacts,
    started: (String, Instant),
    totals: RefCell<Totals>,
}

impl TopSession {
    /// Counts a statement, and keeps it if it is among the slowest (`sql` given when it
    /// is in the filter's scope).
    fn note(&self, sql: Option<&[u8]>, took: Duration) {
        let mut t = self.totals.borrow_mut();
        t.statements += 1;
        t.time += took;
        let Some(sql) = sql else { return };
        let count = self.filter.count;
        if t.top.len() == count && t.top.last().is_some_and(|(d, _)| *d >= took) {
            return;
        }
        let at = t.top.partition_point(|(d, _)| *d >= took);
        t.top.insert(at, (took, sql.to_vec()));
        t.top.truncate(count);
    }
}

impl FilterSession for TopSession {
    fn name(&self) -> &str {
        &self.filter.name
    }

    fn interest(&self) -> Interest {
        Interest {
            requests: true,
            replies: true,
        }
    }

    /// Statements (they all count in the totals).
    fn wants(&self, payload: &[u8]) -> bool {
        matches!(
            payload.first(),
            Some(&(com::QUERY | com::STMT_PREPARE | com::STMT_EXECUTE))
        )
    }

    fn route_query(self: Rc<Self>, _: SessionRef, _: Rc<Request>) -> Step<Action> {
        Step::Ready(Action::Forward)
    }

    fn client_reply(self: Rc<Self>, session: SessionRef, reply: Rc<Reply>) -> Step<()> {
        let Some(request) = reply.request.as_deref() else {
            return Step::Ready(());
        };
        if !matches!(
            request.command,
            com::QUERY | com::STMT_PREPARE | com::STMT_EXECUTE
        ) {
            return Step::Ready(());
        }
        let scope = &self.filter.scope;
        let user = SessionFacts::user(&session);
        let in_scope = request.sql().filter(|_| {
            scope.covers_session(user.as_deref(), self.facts.client.as_deref())
                && scope.covers_statement(&session, request)
        });
        self.note(in_scope, reply.duration);
        Step::Ready(())
    }

    /// Writes the session's line.
    fn close_session(&self) {
        let t = self.totals.borrow();
        let mut list =
            Vec::with_capacity(64 + t.top.iter().map(|(_, s)| s.len() + 40).sum::<usize>());
        list.push(b'[');
        for (i, (took, sql)) in t.top.iter().enumerate() {
            if i > 0 {
                list.push(b',');
            }
            let mut entry = JsonLine::with_capacity(sql.len() + 40);
            entry
                .num("duration_us", took.as_micros() as u64)
                .bytes("sql", sql);
            list.extend_from_slice(&entry.finish());
        }
        list.push(b']');
        let user = SessionFacts::user(&self.session);
        let mut line = JsonLine::with_capacity(list.len() + 256);
        line.num("session", self.facts.id)
            .opt_bytes("user", user.as_deref())
            .opt_bytes("client", self.facts.client.as_deref().map(str::as_bytes))
            .str("service", &self.facts.service)
            .str("started", &self.started.0)
            .str("ended", &now_rfc3339())
            .num("duration_us", self.started.1.elapsed().as_micros() as u64)
            .num("statements", t.statements)
            .num("statement_time_us", t.time.as_micros() as u64)
            .raw("top", &list);
        self.filter
            .sessions_reported
            .fetch_add(1, Ordering::Relaxed);
        self.filter.writer.write(line.finish());
    }
}
