//! Lua-written filters: `dpm.filter{ name = "...", route_query = function(session,
//! query) ... end, client_reply = function(session, reply) ... end }` — an adapter from
//! the engine's [`Filter`]/[`FilterSession`] traits to a Lua table of functions.
//!
//! Each entry point runs as a coroutine on its worker's Lua state, so a filter may
//! sleep (`core.msleep`) and only its session waits. A Lua error, or a return value that
//! is no action, is logged with the filter's name and the client gets an ERR: the query
//! is never passed on half-decided.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use bytes::Bytes;
use dpm_engine::pipeline::{
    Action, Filter, FilterSession, Interest, Reply, ReplyKind, Request, SessionRef, Step,
};
use dpm_engine::service::{Maturity, ModuleInfo, ModuleType};
use mlua::{Function, Value};

use super::action::{error_action, from_lua, GENERIC_ERROR};
use super::session_object::{QueryObject, SessionObject};
use crate::host::Host;

/// The Lua filter module's declaration.
pub static INFO: ModuleInfo = ModuleInfo {
    kind: ModuleType::Filter,
    name: "lua",
    maturity: Maturity::Beta,
    version: "1.0.0",
    description: "A filter written in the startup file: route_query and client_reply Lua functions",
    options: &[],
};

/// A Lua filter's counters, shared by the same-named filter of every worker.
#[derive(Default)]
pub struct FilterStats {
    requests: AtomicU64,
    passed: AtomicU64,
    rewritten: AtomicU64,
    answered: AtomicU64,
    routed: AtomicU64,
    replies: AtomicU64,
    errors: AtomicU64,
}

static STATS: LazyLock<Mutex<HashMap<String, Arc<FilterStats>>>> = LazyLock::new(Default::default);

fn stats_of(name: &str) -> Arc<FilterStats> {
    STATS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(name.to_string())
        .or_default()
        .clone()
}

/// One worker's instance of a Lua filter.
pub struct LuaFilter {
    name: String,
    route_query: Option<Function>,
    client_reply: Option<Function>,
    host: Rc<Host>,
    stats: Arc<FilterStats>,
}

impl LuaFilter {
    /// A filter named `name` with the given entry points.
    pub fn new(
        name: String,
        route_query: Option<Function>,
        client_reply: Option<Function>,
        host: Rc<Host>,
    ) -> LuaFilter {
        let stats = stats_of(&name);
        LuaFilter {
            name,
            route_query,
            client_reply,
            host,
            stats,
        }
    }
}

impl Filter for LuaFilter {
    fn info(&self) -> &'static ModuleInfo {
        &INFO
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn new_session(&self, _session: &SessionRef) -> Rc<dyn FilterSession> {
        Rc::new(LuaFilterSession {
            name: self.name.clone(),
            route_query: self.route_query.clone(),
            client_reply: self.client_reply.clone(),
            host: self.host.clone(),
            stats: self.stats.clone(),
            private: Rc::new(RefCell::new(Value::Nil)),
        })
    }

    fn diagnostics(&self) -> serde_json::Value {
        let s = &self.stats;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        serde_json::json!({
            "requests": get(&s.requests),
            "passed": get(&s.passed),
            "rewritten": get(&s.rewritten),
            "answered": get(&s.answered),
            "routed": get(&s.routed),
            "replies": get(&s.replies),
            "errors": get(&s.errors),
        })
    }
}

/// One session's Lua filter: the functions and the session's private value.
pub struct LuaFilterSession {
    name: String,
    route_query: Option<Function>,
    client_reply: Option<Function>,
    host: Rc<Host>,
    stats: Arc<FilterStats>,
    private: Rc<RefCell<Value>>,
}

impl LuaFilterSession {
    fn session_object(&self, session: SessionRef) -> SessionObject {
        SessionObject {
            session,
            private: self.private.clone(),
        }
    }

    /// The ERR a client gets when this filter failed (`logged`: the Lua error was
    /// already logged with its file:line).
    fn failed(&self, why: &str, logged: bool) -> Action {
        self.stats.errors.fetch_add(1, Ordering::Relaxed);
        if !logged {
            tracing::error!("ERROR: filter '{}' route_query {why}", self.name);
        }
        error_action(
            GENERIC_ERROR,
            *b"HY000",
            format!("filter '{}' {why}", self.name),
        )
    }
}

impl FilterSession for LuaFilterSession {
    fn name(&self) -> &str {
        &self.name
    }

    fn interest(&self) -> Interest {
        Interest {
            requests: self.route_query.is_some(),
            replies: self.client_reply.is_some(),
        }
    }

    fn route_query(self: Rc<Self>, session: SessionRef, request: Rc<Request>) -> Step<Action> {
        let Some(func) = self.route_query.clone() else {
            return Step::Ready(Action::Forward);
        };
        Step::Later(Box::pin(async move {
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let caps = session.worker.negotiated_caps(session.id());
            let rewritten = Rc::new(RefCell::new(None::<Bytes>));
            let query = QueryObject {
                request: request.clone(),
                rewritten: rewritten.clone(),
            };
            let what = format!("filter '{}' route_query", self.name);
            let args = (self.session_object(session), query);
            let result = self.host.call_as(func, &what, args).await;
            let value = match result {
                Ok(v) => v,
                Err(line) => return self.failed(&format!("failed: {line}"), true),
            };
            let rewritten = rewritten.borrow_mut().take();
            match from_lua(&value, rewritten, request.command, caps) {
                Ok(action) => {
                    let counter = match &action {
                        Action::Forward => &self.stats.passed,
                        Action::Replace(_) => &self.stats.rewritten,
                        Action::Route(_) => &self.stats.routed,
                        Action::Reply(_) | Action::Drop => &self.stats.answered,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    action
                }
                Err(why) => self.failed(&format!("{why} (an invalid action)"), false),
            }
        }))
    }

    fn client_reply(self: Rc<Self>, session: SessionRef, reply: Rc<Reply>) -> Step<()> {
        let Some(func) = self.client_reply.clone() else {
            return Step::Ready(());
        };
        Step::Later(Box::pin(async move {
            self.stats.replies.fetch_add(1, Ordering::Relaxed);
            let table = match reply_table(&self.host.lua, &reply) {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!("ERROR: filter '{}' client_reply: {e}", self.name);
                    return;
                }
            };
            let what = format!("filter '{}' client_reply", self.name);
            if self
                .host
                .call_as(func, &what, (self.session_object(session), table))
                .await
                .is_err()
            {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
            }
        }))
    }
}

/// A reply as the Lua table `client_reply` receives.
fn reply_table(lua: &mlua::Lua, reply: &Reply) -> mlua::Result<mlua::Table> {
    let t = lua.create_table()?;
    t.set("command", reply.command)?;
    t.set(
        "type",
        match reply.kind {
            ReplyKind::Ok => "ok",
            ReplyKind::Err => "error",
            ReplyKind::ResultSet => "resultset",
        },
    )?;
    t.set("rows", reply.rows)?;
    t.set("affected_rows", reply.affected_rows)?;
    t.set("insert_id", reply.last_insert_id)?;
    t.set("status", reply.status)?;
    if reply.kind == ReplyKind::Err {
        t.set("error_code", reply.error_code)?;
        t.set("error_message", lua.create_string(&reply.error_message)?)?;
    }
    if let Some(server) = &reply.server {
        t.set("server", server.name.as_str())?;
    }
    Ok(t)
}
