//! The `firewall` filter (MaxScale's `dbfwfilter`): applies a [`RuleSet`] to every
//! COM_QUERY and COM_STMT_PREPARE of a session — the session's user, its client's IP, its
//! schema, the statement's classification when a rule needs it, the local time when a
//! rule has windows. A denied statement is answered with `ERROR 1141 (42000)` naming the
//! rule and never reaches a server.
//!
//! Rules come from a rule file (`rules_file`) and/or Lua tables (`rules`, `users`). The
//! file is reread by `service:reload_filters()` and SIGHUP: a file with an error keeps
//! the old rules and the error is reported as `FILE:LINE: message`. Workers pick up new
//! rules at their next statement (a relaxed load of a generation counter per statement;
//! the rules themselves are shared, not copied).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use dpm_engine::pipeline::{
    sql_of, Action, Filter, FilterSession, Interest, Reply, ReplyPacket, Request, SessionRef, Step,
};
use dpm_engine::service::{
    FilterDefinition, Maturity, ModuleInfo, ModuleType, OptionKind, OptionSpec, Options,
};
use dpm_protocol::err::ErrPacket;

use super::{local_seconds_of_day, Mode, RuleSet, RuleSpec, Statement, UsersSpec, Verdict};
use crate::classifier::cached_classification;
use crate::filters::common::scope::client_ip;
use crate::filters::common::session_facts::SessionFacts;

const OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        name: "action",
        kind: OptionKind::Enum(&["block", "allow"]),
        default: Some("block"),
        description: "block: deny what the rules match (deny-list); allow: allow only what they match (allow-list)",
    },
    OptionSpec {
        name: "rules_file",
        kind: OptionKind::Str,
        default: None,
        description: "a rule file (docs/firewall.md), reread on reload_filters() and SIGHUP",
    },
    OptionSpec {
        name: "rules",
        kind: OptionKind::Table,
        default: None,
        description: "rules as Lua tables: { { name = ..., regex | no_where_clause | type | table = ..., at_times = ..., on_queries = ... }, ... }",
    },
    OptionSpec {
        name: "users",
        kind: OptionKind::Table,
        default: None,
        description: "users lines as Lua tables: { { users = { \"app@%\" }, match = \"any\", rules = { ... } }, ... }",
    },
];

/// The module's declaration.
pub static INFO: ModuleInfo = ModuleInfo {
    kind: ModuleType::Filter,
    name: "firewall",
    maturity: Maturity::Beta,
    version: "1.0.0",
    description: "Allows or denies statements by regex, statement type, table, user@host, time window \
                  and missing WHERE; rules from a reloadable file and Lua tables, regexes compiled into one set",
    options: OPTIONS,
};

/// The error code of a denied statement: MariaDB's "access denied to a table".
const DENIED: u16 = 1141;

/// The process-wide firewall.
pub struct Firewall {
    name: String,
    mode: Mode,
    file: Option<String>,
    lua_rules: Vec<RuleSpec>,
    lua_users: Vec<UsersSpec>,
    /// The rules in force, and their generation (bumped by each successful reload).
    rules: Mutex<Arc<RuleSet>>,
    /// Held through a whole reload (read, compile, store): reloads do not overtake each
    /// other.
    reloading: Mutex<()>,
    generation: AtomicU64,
    allowed: AtomicU64,
    denied: AtomicU64,
    denied_by_rule: Mutex<BTreeMap<String, u64>>,
    reloads: AtomicU64,
    failed_reloads: AtomicU64,
}

impl Firewall {
    /// A firewall named `name` from checked options (the rule file is read now).
    pub fn create(name: &str, options: &Options) -> Result<Arc<dyn FilterDefinition>, String> {
        let lua_rules = match options.table("rules") {
            Some(t) => rule_specs(t)?,
            None => Vec::new(),
        };
        let lua_users = match options.table("users") {
            Some(t) => users_specs(t)?,
            None => Vec::new(),
        };
        let file = options.str("rules_file").map(str::to_string);
        if file.is_none() && lua_rules.is_empty() {
            return Err("filter 'firewall': give 'rules_file', 'rules' or both".into());
        }
        let mode = match options.str("action") {
            Some("allow") => Mode::Allow,
            _ => Mode::Block,
        };
        let rules = load(file.as_deref(), &lua_rules, &lua_users)?;
        Ok(Arc::new(Firewall {
            name: name.to_string(),
            mode,
            file,
            lua_rules,
            lua_users,
            rules: Mutex::new(Arc::new(rules)),
            reloading: Mutex::new(()),
            generation: AtomicU64::new(0),
            allowed: AtomicU64::new(0),
            denied: AtomicU64::new(0),
            denied_by_rule: Mutex::new(BTreeMap::new()),
            reloads: AtomicU64::new(0),
            failed_reloads: AtomicU64::new(0),
        }))
    }

    fn current(&self) -> Arc<RuleSet> {
        self.rules.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The rules of the file (read now) and the Lua tables.
fn load(file: Option<&str>, rules: &[RuleSpec], users: &[UsersSpec]) -> Result<RuleSet, String> {
    let text = match file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| format!("filter 'firewall': cannot read rule file {path}: {e}"))?,
        ),
        None => None,
    };
    let source = file.zip(text.as_deref());
    RuleSet::from_sources(source, rules, users).map_err(|e| e.message)
}

impl FilterDefinition for Firewall {
    fn name(&self) -> &str {
        &self.name
    }

    fn worker_filter(self: Arc<Self>) -> Rc<dyn Filter> {
        // Generation first: a reload in between then only makes the worker refresh once
        // more, never keep old rules under the new generation.
        let generation = self.generation.load(Ordering::Acquire);
        let rules = self.current();
        Rc::new(WorkerFirewall(Rc::new(WorkerRules {
            firewall: self,
            cached: RefCell::new((generation, rules)),
        })))
    }

    fn reload(&self) -> Result<(), String> {
        if self.file.is_none() {
            return Ok(());
        }
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        match load(self.file.as_deref(), &self.lua_rules, &self.lua_users) {
            Ok(rules) => {
                *self.rules.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(rules);
                self.generation.fetch_add(1, Ordering::Release);
                self.reloads.fetch_add(1, Ordering::Relaxed);
                tracing::info!("filter '{}': rules reloaded", self.name);
                Ok(())
            }
            Err(e) => {
                self.failed_reloads.fetch_add(1, Ordering::Relaxed);
                Err(format!("{e} (filter '{}' keeps its old rules)", self.name))
            }
        }
    }
}

/// One worker's view of the firewall: its copy of the rules in force (an `Arc`).
struct WorkerRules {
    firewall: Arc<Firewall>,
    cached: RefCell<(u64, Arc<RuleSet>)>,
}

impl WorkerRules {
    /// The rules in force: this worker's copy unless a reload made newer ones.
    fn rules(&self) -> Arc<RuleSet> {
        let generation = self.firewall.generation.load(Ordering::Acquire);
        let mut cached = self.cached.borrow_mut();
        if cached.0 != generation {
            *cached = (generation, self.firewall.current());
        }
        cached.1.clone()
    }
}

struct WorkerFirewall(Rc<WorkerRules>);

impl Filter for WorkerFirewall {
    fn info(&self) -> &'static ModuleInfo {
        &INFO
    }

    fn name(&self) -> &str {
        &self.0.firewall.name
    }

    fn new_session(&self, session: &SessionRef) -> Rc<dyn FilterSession> {
        let client = SessionFacts::of(session).client;
        Rc::new(FirewallSession {
            rules: self.0.clone(),
            host: client.as_deref().map(client_ip).unwrap_or("").to_string(),
        })
    }

    fn diagnostics(&self) -> serde_json::Value {
        let f = &self.0.firewall;
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        serde_json::json!({
            "action": match f.mode { Mode::Block => "block", Mode::Allow => "allow" },
            "rules_file": f.file,
            "rules": f.current().rule_count(),
            "allowed": get(&f.allowed),
            "denied": get(&f.denied),
            "denied_by_rule": *f.denied_by_rule.lock().unwrap_or_else(|e| e.into_inner()),
            "reloads": get(&f.reloads),
            "failed_reloads": get(&f.failed_reloads),
        })
    }
}

struct FirewallSession {
    rules: Rc<WorkerRules>,
    /// The client's IP.
    host: String,
}

impl FilterSession for FirewallSession {
    fn name(&self) -> &str {
        &self.rules.firewall.name
    }

    fn interest(&self) -> Interest {
        Interest {
            requests: true,
            replies: false,
        }
    }

    /// Statements with SQL: an execution runs what was checked when it was prepared.
    fn wants(&self, payload: &[u8]) -> bool {
        sql_of(payload).is_some()
    }

    fn route_query(self: Rc<Self>, session: SessionRef, request: Rc<Request>) -> Step<Action> {
        let Some(sql) = request.sql() else {
            // Executions run what was checked when it was prepared.
            return Step::Ready(Action::Forward);
        };
        let firewall = &self.rules.firewall;
        let rules = self.rules.rules();
        let classification = match rules.needs_classification() {
            true => cached_classification(&request),
            false => None,
        };
        let state = session.session.state.borrow();
        let user = state.user.as_deref().map(String::from_utf8_lossy);
        let database = state.schema.as_deref().map(String::from_utf8_lossy);
        let statement = Statement {
            sql,
            classification: classification.as_deref(),
            user: user.as_deref().unwrap_or(""),
            host: &self.host,
            database: database.as_deref(),
            now_seconds_of_day: if rules.needs_time() {
                local_seconds_of_day()
            } else {
                0
            },
        };
        match rules.check(firewall.mode, &statement) {
            Verdict::Allow => {
                firewall.allowed.fetch_add(1, Ordering::Relaxed);
                Step::Ready(Action::Forward)
            }
            Verdict::Deny { rule, message } => {
                firewall.denied.fetch_add(1, Ordering::Relaxed);
                let rule = rule.unwrap_or("(none: allow-list)");
                *firewall
                    .denied_by_rule
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(rule.to_string())
                    .or_default() += 1;
                let who = format!("'{}'@'{}'", statement.user, self.host);
                tracing::info!(
                    "filter '{}': denied a statement of {who}: {message}",
                    firewall.name
                );
                let mut packet = BytesMut::new();
                ErrPacket::new(DENIED, *b"42000", format!("{message} for {who}"))
                    .encode(&mut packet);
                Step::Ready(Action::Reply(vec![ReplyPacket::Raw(packet.freeze())]))
            }
        }
    }

    fn client_reply(self: Rc<Self>, _: SessionRef, _: Rc<Reply>) -> Step<()> {
        Step::Ready(())
    }
}

/// The Lua `rules` option: a list of tables, each a [`RuleSpec`].
fn rule_specs(list: &serde_json::Value) -> Result<Vec<RuleSpec>, String> {
    const FIELDS: &[&str] = &[
        "name",
        "regex",
        "no_where_clause",
        "type",
        "table",
        "at_times",
        "on_queries",
    ];
    each_table(list, "rules", FIELDS, |t| {
        let s = |f: &str| t.get(f).and_then(|v| v.as_str()).map(str::to_string);
        Ok(RuleSpec {
            name: s("name").ok_or("a rule needs a name")?,
            regex: s("regex"),
            no_where_clause: t
                .get("no_where_clause")
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
            types: s("type"),
            tables: s("table"),
            at_times: s("at_times"),
            on_queries: s("on_queries"),
        })
    })
}

/// The Lua `users` option: a list of `{ users = { patterns }, match = mode, rules = { names } }`.
fn users_specs(list: &serde_json::Value) -> Result<Vec<UsersSpec>, String> {
    each_table(list, "users", &["users", "match", "rules"], |t| {
        let strings = |f: &str| -> Result<Vec<String>, String> {
            match t.get(f) {
                Some(serde_json::Value::String(s)) => Ok(vec![s.clone()]),
                Some(serde_json::Value::Array(items)) => items
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_string)
                            .ok_or(format!("'{f}' must hold strings"))
                    })
                    .collect(),
                _ => Err(format!("'{f}' must be a string or a list of strings")),
            }
        };
        Ok(UsersSpec {
            patterns: strings("users")?,
            mode: t
                .get("match")
                .and_then(|v| v.as_str())
                .unwrap_or("any")
                .to_string(),
            rules: strings("rules")?,
        })
    })
}

/// Converts each table of `list` with `make`; an unknown field or a non-table is an
/// error naming the option and the position.
fn each_table<T>(
    list: &serde_json::Value,
    option: &str,
    fields: &[&str],
    make: impl Fn(&serde_json::Map<String, serde_json::Value>) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    let items = list.as_array().ok_or(format!(
        "filter 'firewall': option '{option}' must be a list of tables"
    ))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let at = format!("filter 'firewall': {option}[{}]", i + 1);
            let t = item.as_object().ok_or(format!("{at} must be a table"))?;
            if let Some(unknown) = t.keys().find(|k| !fields.contains(&k.as_str())) {
                return Err(format!(
                    "{at}: unknown field '{unknown}' (fields: {})",
                    fields.join(", ")
                ));
            }
            make(t).map_err(|e| format!("{at}: {e}"))
        })
        .collect()
}
