//! Lua-written filters: `dpm.filter{ name = "...", route_query = function(session,
//! query) ... end, client_reply = function(session, reply) ... end }` — an adapter from
//! the engine's [`Filter`]/[`FilterSession`] traits to a Lua table of functions.
//!
//! Each entry point runs as a coroutine on its worker's Lua state, so a filter may
//! sleep (`core.msleep`) and only its session waits — unless the filter was declared
//! with `yields = false`: its functions are then plain calls (cheaper; a yield in one is
//! an error). A Lua error, or a return value that
//! is no action, is logged with the filter's name and the client gets an ERR: the query
//! is never passed on half-decided.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dpm_engine::pipeline::{
    Action, Filter, FilterSession, Interest, Reply, Request, SessionRef, Step,
};
use dpm_engine::service::generations::Registry;
use dpm_engine::service::{Maturity, ModuleInfo, ModuleType};
use mlua::{AnyUserData, Function, Value};

use super::action::{error_action, from_lua, GENERIC_ERROR};
use super::session_object::{QueryObject, QueryState, ReplyObject, SessionObject};
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

/// A Lua filter's counters, shared by the same-named filter of every worker (also an
/// action's, `super::lua_action`).
#[derive(Default)]
pub struct FilterStats {
    pub(super) requests: AtomicU64,
    passed: AtomicU64,
    rewritten: AtomicU64,
    answered: AtomicU64,
    routed: AtomicU64,
    replies: AtomicU64,
    pub(super) errors: AtomicU64,
}

impl FilterStats {
    /// Counts what was decided for a request.
    pub(super) fn count(&self, action: &Action) {
        let counter = match action {
            Action::Forward => &self.passed,
            Action::Replace(_) => &self.rewritten,
            Action::Route(_) => &self.routed,
            Action::Reply(_) | Action::Drop => &self.answered,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters as the filter's diagnostics.
    pub(super) fn json(&self) -> serde_json::Value {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        serde_json::json!({
            "requests": get(&self.requests),
            "passed": get(&self.passed),
            "rewritten": get(&self.rewritten),
            "answered": get(&self.answered),
            "routed": get(&self.routed),
            "replies": get(&self.replies),
            "errors": get(&self.errors),
        })
    }
}

static STATS: Registry<Arc<FilterStats>> = Registry::new();

/// The counters of the filter named `name` (made at first use; a reload's file defining
/// a filter of the same name goes on with them, one that does not drops them).
pub(super) fn stats_of(name: &str) -> Arc<FilterStats> {
    // Never an error: any two definitions of a name are the same counters.
    STATS
        .define(name.to_string(), |_| Ok(()), |_| Ok(Arc::default()))
        .unwrap_or_default()
}

/// One worker's instance of a Lua filter.
pub struct LuaFilter(Rc<Shared>);

/// What every session of a Lua filter shares.
struct Shared {
    name: String,
    route_query: Option<Function>,
    client_reply: Option<Function>,
    /// False when the startup file declared that its functions never yield (`yields =
    /// false`): they are then plain calls instead of coroutines.
    yields: bool,
    /// Log labels, made once (not per call).
    route_label: String,
    reply_label: String,
    host: Rc<Host>,
    stats: Arc<FilterStats>,
}

impl LuaFilter {
    /// A filter named `name` with the given entry points.
    pub fn new(
        name: String,
        route_query: Option<Function>,
        client_reply: Option<Function>,
        yields: bool,
        host: Rc<Host>,
    ) -> LuaFilter {
        LuaFilter(Rc::new(Shared {
            stats: stats_of(&name),
            route_label: format!("filter '{name}' route_query"),
            reply_label: format!("filter '{name}' client_reply"),
            name,
            route_query,
            client_reply,
            yields,
            host,
        }))
    }
}

impl Filter for LuaFilter {
    fn info(&self) -> &'static ModuleInfo {
        &INFO
    }

    fn name(&self) -> &str {
        &self.0.name
    }

    fn new_session(&self, session: &SessionRef) -> Rc<dyn FilterSession> {
        Rc::new(LuaFilterSession {
            filter: self.0.clone(),
            session: session.clone(),
            private: Rc::new(RefCell::new(Value::Nil)),
            objects: RefCell::new(None),
        })
    }

    fn diagnostics(&self) -> serde_json::Value {
        self.0.stats.json()
    }
}

/// The Lua objects a filter session hands its functions, made on first use.
struct Objects {
    session: AnyUserData,
    query: AnyUserData,
    query_state: Rc<QueryState>,
    reply: AnyUserData,
    reply_state: Rc<RefCell<Option<Rc<Reply>>>>,
}

/// One session's Lua filter: the functions, the session's private value, its objects.
pub struct LuaFilterSession {
    filter: Rc<Shared>,
    session: SessionRef,
    private: Rc<RefCell<Value>>,
    objects: RefCell<Option<Rc<Objects>>>,
}

impl LuaFilterSession {
    /// The session's Lua objects (made on first use).
    fn objects(&self) -> mlua::Result<Rc<Objects>> {
        if let Some(objects) = self.objects.borrow().as_ref() {
            return Ok(objects.clone());
        }
        let lua = &self.filter.host.lua;
        let query_state = Rc::new(QueryState::default());
        let reply_state = Rc::new(RefCell::new(None));
        let objects = Rc::new(Objects {
            session: lua.create_userdata(SessionObject {
                session: self.session.clone(),
                private: self.private.clone(),
            })?,
            query: lua.create_userdata(QueryObject(query_state.clone()))?,
            query_state,
            reply: lua.create_userdata(ReplyObject(reply_state.clone()))?,
            reply_state,
        });
        *self.objects.borrow_mut() = Some(objects.clone());
        Ok(objects)
    }

    /// Turns what `route_query` returned into an action, counting it.
    fn decide(
        &self,
        result: Result<Value, String>,
        objects: &Objects,
        request: &Request,
    ) -> Action {
        let value = match result {
            Ok(v) => v,
            Err(line) => return self.failed(&format!("failed: {line}"), true),
        };
        let rewritten = objects.query_state.rewritten.borrow_mut().take();
        // Only an answer needs the client's capabilities (a lookup by id).
        let caps = match value {
            Value::Table(_) => self.session.worker.negotiated_caps(self.session.id()),
            _ => 0,
        };
        match from_lua(&value, rewritten, request.command, caps) {
            Ok(action) => {
                self.filter.stats.count(&action);
                action
            }
            Err(why) => self.failed(&format!("{why} (an invalid action)"), false),
        }
    }

    /// The ERR a client gets when this filter failed (`logged`: the Lua error was
    /// already logged with its file:line).
    fn failed(&self, why: &str, logged: bool) -> Action {
        let name = &self.filter.name;
        self.filter.stats.errors.fetch_add(1, Ordering::Relaxed);
        if !logged {
            tracing::error!("ERROR: filter '{name}' route_query {why}");
        }
        error_action(GENERIC_ERROR, *b"HY000", format!("filter '{name}' {why}"))
    }
}

impl FilterSession for LuaFilterSession {
    fn name(&self) -> &str {
        &self.filter.name
    }

    /// Lets go of the session's Lua values, so that a private value referring back to
    /// the session (a closure over `session`, say) cannot keep it alive.
    fn close_session(&self) {
        *self.private.borrow_mut() = Value::Nil;
        self.objects.borrow_mut().take();
    }

    fn interest(&self) -> Interest {
        Interest {
            requests: self.filter.route_query.is_some(),
            replies: self.filter.client_reply.is_some(),
        }
    }

    // The session is the one this filter session was made for (kept in `self.session`).
    fn route_query(self: Rc<Self>, _: SessionRef, request: Rc<Request>) -> Step<Action> {
        let Some(func) = self.filter.route_query.clone() else {
            return Step::Ready(Action::Forward);
        };
        self.filter.stats.requests.fetch_add(1, Ordering::Relaxed);
        let objects = match self.objects() {
            Ok(o) => o,
            Err(e) => return Step::Ready(self.failed(&format!("failed: {e}"), false)),
        };
        objects.query_state.start(request.clone());
        let args = (objects.session.clone(), objects.query.clone());
        let label = &self.filter.route_label;
        if !self.filter.yields {
            // Declared never to yield: a plain call, no coroutine, no boxed future.
            let result = self.filter.host.call_sync_as(&func, label, args);
            return Step::Ready(self.decide(result, &objects, &request));
        }
        Step::Later(Box::pin(async move {
            let label = &self.filter.route_label;
            let result = self.filter.host.call_as(func, label, args).await;
            self.decide(result, &objects, &request)
        }))
    }

    fn client_reply(self: Rc<Self>, _: SessionRef, reply: Rc<Reply>) -> Step<()> {
        let Some(func) = self.filter.client_reply.clone() else {
            return Step::Ready(());
        };
        let stats = &self.filter.stats;
        stats.replies.fetch_add(1, Ordering::Relaxed);
        let objects = match self.objects() {
            Ok(o) => o,
            Err(e) => {
                tracing::error!("ERROR: {}: {e}", self.filter.reply_label);
                return Step::Ready(());
            }
        };
        *objects.reply_state.borrow_mut() = Some(reply);
        let args = (objects.session.clone(), objects.reply.clone());
        if !self.filter.yields {
            let host = &self.filter.host;
            if host
                .call_sync_as(&func, &self.filter.reply_label, args)
                .is_err()
            {
                stats.errors.fetch_add(1, Ordering::Relaxed);
            }
            return Step::Ready(());
        }
        Step::Later(Box::pin(async move {
            let host = &self.filter.host;
            if host
                .call_as(func, &self.filter.reply_label, args)
                .await
                .is_err()
            {
                self.filter.stats.errors.fetch_add(1, Ordering::Relaxed);
            }
        }))
    }
}
