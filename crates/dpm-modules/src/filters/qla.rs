//! `qla` — the query log (MaxScale's `qlafilter`): one JSON line per statement with its
//! time, session, user, client, service, the server that answered, duration, rows, error
//! and the SQL (or only its digest). Lines go to a [`LogWriter`]: a worker never waits
//! for the disk; when the queue is full, lines are dropped and counted.
//!
//! The line is written when the reply has passed, from the reply's request — the
//! statement as it reached the server, after every rewrite, wherever `qla` sits in the
//! chain — and its duration (sent → last packet of the reply). Statements the pipeline
//! answered itself (a firewall's denial) are logged too, with `server: null`.

use std::cell::Cell;
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dpm_engine::pipeline::{
    sql_of, Action, Filter, FilterSession, Interest, Reply, ReplyKind, Request, SessionRef, Step,
};
use dpm_engine::service::{
    FilterDefinition, Maturity, ModuleInfo, ModuleType, OptionKind, OptionSpec, Options,
};
use dpm_protocol::command::com;

use super::common::line::JsonLine;
use super::common::log_writer::LogWriter;
use super::common::scope::{self, Scope};
use super::common::session_facts::SessionFacts;
use crate::classifier::cached_classification;
use dpm_engine::pipeline::expr::Expr;

const OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        name: "file",
        kind: OptionKind::Str,
        default: None,
        description:
            "the file lines are appended to (required; reopened on SIGHUP and dpm.reopen_logs())",
    },
    OptionSpec {
        name: "log",
        kind: OptionKind::Enum(&["sql", "digest"]),
        default: Some("sql"),
        description: "log the SQL text, or only its normalized digest and digest hash",
    },
    OptionSpec {
        name: "sample",
        kind: OptionKind::Int,
        default: Some("1"),
        description: "log one statement in this many (per worker)",
    },
    OptionSpec {
        name: "queue_size",
        kind: OptionKind::Int,
        default: Some("10000"),
        description: "lines waiting for the writer thread before new ones are dropped",
    },
    OptionSpec {
        name: "fields",
        kind: OptionKind::Table,
        default: None,
        description: "more fields for each line: { name = \"lua.FETCH[,lua.CONVERTER]...\" }, each the expression's value (null when nothing)",
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
    name: "qla",
    maturity: Maturity::Beta,
    version: "1.0.0",
    description:
        "Query log: one JSON line per statement (time, session, user, client, service, server, \
                  duration, rows, error, SQL or digest) through a bounded queue to a writer thread",
    options: OPTIONS,
};

/// The process-wide query log.
pub struct QueryLog {
    name: String,
    digest_only: bool,
    sample: u64,
    scope: Scope,
    /// `fields`: more fields per line, each an expression's value.
    fields: Vec<(String, Expr)>,
    writer: LogWriter,
    logged: AtomicU64,
    skipped: AtomicU64,
}

impl QueryLog {
    /// A query log named `name` from checked options.
    pub fn create(name: &str, options: &Options) -> Result<Arc<dyn FilterDefinition>, String> {
        let file = options
            .str("file")
            .ok_or("filter 'qla': option 'file' is required")?;
        let queue = options.int("queue_size").unwrap_or(10000);
        let sample = options.int("sample").unwrap_or(1);
        if !(1..=1_000_000).contains(&queue) || sample < 1 {
            return Err(
                "filter 'qla': option 'queue_size' must be 1 to 1000000 and 'sample' at least 1"
                    .into(),
            );
        }
        Ok(Arc::new(QueryLog {
            name: name.to_string(),
            digest_only: options.str("log") == Some("digest"),
            sample: sample as u64,
            scope: Scope::from_options(options).map_err(|e| format!("filter 'qla': {e}"))?,
            fields: fields(options).map_err(|e| format!("filter 'qla': option 'fields': {e}"))?,
            writer: LogWriter::open(Path::new(file), queue as usize, &format!("filter '{name}'"))?,
            logged: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
        }))
    }
}

impl FilterDefinition for QueryLog {
    fn name(&self) -> &str {
        &self.name
    }

    fn worker_filter(self: Arc<Self>) -> Rc<dyn Filter> {
        Rc::new(WorkerQueryLog {
            log: self,
            counter: Rc::new(Cell::new(0)),
        })
    }

    fn reopen_logs(&self) {
        self.writer.reopen();
    }
}

/// One worker's query log: the shared log and this worker's sampling counter.
struct WorkerQueryLog {
    log: Arc<QueryLog>,
    counter: Rc<Cell<u64>>,
}

impl Filter for WorkerQueryLog {
    fn info(&self) -> &'static ModuleInfo {
        &INFO
    }

    fn name(&self) -> &str {
        &self.log.name
    }

    fn new_session(&self, session: &SessionRef) -> Rc<dyn FilterSession> {
        Rc::new(QueryLogSession {
            log: self.log.clone(),
            counter: self.counter.clone(),
            facts: SessionFacts::of(session),
        })
    }

    fn diagnostics(&self) -> serde_json::Value {
        let mut d = self.log.writer.diagnostics();
        d["logged"] = self.log.logged.load(Ordering::Relaxed).into();
        d["out_of_scope"] = self.log.skipped.load(Ordering::Relaxed).into();
        d["log"] = if self.log.digest_only {
            "digest"
        } else {
            "sql"
        }
        .into();
        d
    }
}

struct QueryLogSession {
    log: Arc<QueryLog>,
    counter: Rc<Cell<u64>>,
    facts: SessionFacts,
}

impl QueryLogSession {
    /// The line for `reply` to `request`, or None when it is out of scope.
    fn line(&self, session: &SessionRef, request: &Request, reply: &Reply) -> Option<Vec<u8>> {
        let log = &self.log;
        let user = SessionFacts::user(session);
        if !log
            .scope
            .covers_session(user.as_deref(), self.facts.client.as_deref())
        {
            return None;
        }
        let sql = request.sql();
        if !log.scope.covers_statement(session, request) {
            return None;
        }
        let n = self.counter.get().wrapping_add(1);
        self.counter.set(n);
        if log.sample > 1 && n % log.sample != 1 {
            return None;
        }
        let mut line = JsonLine::with_capacity(256 + sql.map_or(0, <[u8]>::len));
        line.now("time")
            .num("session", self.facts.id)
            .opt_bytes("user", user.as_deref())
            .opt_bytes("client", self.facts.client.as_deref().map(str::as_bytes))
            .str("service", &self.facts.service)
            .opt_bytes("server", reply.server.as_ref().map(|s| s.name.as_bytes()))
            .str("command", command_name(request.command))
            .num("duration_us", reply.duration.as_micros() as u64)
            .num("rows", reply.rows)
            .num("affected_rows", reply.affected_rows);
        match reply.kind {
            ReplyKind::Err => line.num("error", u64::from(reply.error_code)),
            _ => line.null("error"),
        };
        if request.command == com::STMT_EXECUTE && request.payload.len() >= 5 {
            let id = u32::from_le_bytes([
                request.payload[1],
                request.payload[2],
                request.payload[3],
                request.payload[4],
            ]);
            line.num("statement_id", u64::from(id));
        }
        match (sql, log.digest_only) {
            (Some(_), true) => {
                if let Some(c) = cached_classification(request) {
                    line.str("digest", &c.digest)
                        .num("digest_hash", c.digest_hash);
                }
            }
            (Some(sql), false) => {
                line.bytes("sql", sql);
            }
            (None, _) => {}
        }
        for (name, expr) in &log.fields {
            line.opt_bytes(name, expr.eval(session, Some(request)).as_deref());
        }
        Some(line.finish())
    }
}

impl FilterSession for QueryLogSession {
    fn name(&self) -> &str {
        &self.log.name
    }

    /// Requests, so that replies carry theirs (the SQL); the line is written per reply.
    fn interest(&self) -> Interest {
        Interest {
            requests: true,
            replies: true,
        }
    }

    /// Statements in scope of `match`/`exclude`: the others are not even stopped for.
    fn wants(&self, payload: &[u8]) -> bool {
        let scope = &self.log.scope;
        payload.first().is_some_and(|&c| is_statement(c))
            && (!scope.filters_sql() || sql_of(payload).is_some_and(|sql| scope.covers_sql(sql)))
    }

    fn route_query(self: Rc<Self>, _: SessionRef, _: Rc<Request>) -> Step<Action> {
        Step::Ready(Action::Forward)
    }

    fn client_reply(self: Rc<Self>, session: SessionRef, reply: Rc<Reply>) -> Step<()> {
        let Some(request) = reply.request.as_deref().filter(|r| is_statement(r.command)) else {
            return Step::Ready(());
        };
        match self.line(&session, request, &reply) {
            Some(line) => {
                self.log.logged.fetch_add(1, Ordering::Relaxed);
                self.log.writer.write(line);
            }
            None => {
                self.log.skipped.fetch_add(1, Ordering::Relaxed);
            }
        }
        Step::Ready(())
    }
}

/// The `fields` option: names (letters, digits, `_`) to expressions.
fn fields(options: &Options) -> Result<Vec<(String, Expr)>, String> {
    let Some(table) = options.table("fields") else {
        return Ok(Vec::new());
    };
    let serde_json::Value::Object(map) = table else {
        return Err("a table of name = \"lua.FETCH\" pairs is expected".into());
    };
    map.iter()
        .map(|(name, value)| {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(format!(
                    "'{name}' is not a field name (letters, digits and '_')"
                ));
            }
            let text = value
                .as_str()
                .ok_or_else(|| format!("field '{name}' must be an expression (a string)"))?;
            Ok((
                name.clone(),
                Expr::parse_registered(text).map_err(|e| format!("field '{name}': {e}"))?,
            ))
        })
        .collect()
}

/// The commands that are statements: text queries, prepares and executions.
fn is_statement(command: u8) -> bool {
    matches!(command, com::QUERY | com::STMT_PREPARE | com::STMT_EXECUTE)
}

fn command_name(command: u8) -> &'static str {
    match command {
        com::QUERY => "COM_QUERY",
        com::STMT_PREPARE => "COM_STMT_PREPARE",
        com::STMT_EXECUTE => "COM_STMT_EXECUTE",
        _ => "other",
    }
}
