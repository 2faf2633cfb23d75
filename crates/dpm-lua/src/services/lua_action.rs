//! Actions in a service's chain (the seed's `tcp-request content lua` actions, for MySQL
//! statements): `core.register_action(name, fn)` while the startup file loads, then
//! `"lua.NAME"` in `dpm.service{ filters = { … } }` runs `fn(txn)` for every client
//! command of a session, as a coroutine (it may wait: only its session waits).
//!
//! The txn is the seed's class (`crate::tcp_service::txn`) over a statement instead of a
//! socket: the request channel holds the statement's SQL (COM_QUERY, COM_STMT_PREPARE;
//! empty for other commands), the response channel what the action answers. When the
//! action returns, what the channels hold decides:
//!
//! * `txn:close()`: the client's session is closed, the statement dropped;
//! * the response holds text: dpm answers with it — a one-column (`response`) result set
//!   for COM_QUERY, an OK whose info is the text otherwise;
//! * `txn:finish()` with an empty response: dpm answers OK; the statement goes no further;
//! * the request's SQL changed (`set`, `append`, `get` without putting it back): the new
//!   SQL goes on; else the statement goes on unchanged.
//!
//! `get_priv` / `set_priv` keep a value for the session (each statement's txn sees it).
//! An error in the action, or one the sandbox stopped, answers the client with an ERR
//! naming the action, as a Lua filter's does.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use dpm_engine::pipeline::{
    Action, Filter, FilterSession, Interest, Reply, Request, SessionRef, Step,
};
use dpm_engine::service::ModuleInfo;
use dpm_protocol::command::com;
use mlua::{Function, Lua, Table, Value};

use super::action::{error_action, from_lua, GENERIC_ERROR};
use super::filter::{stats_of, FilterStats};
use crate::host::Host;
use crate::tcp_service::channel::Client;
use crate::tcp_service::txn::{Ending, Txn, TxnObject};

/// The actions this worker's startup file registered, by name.
pub(crate) struct Actions {
    host: Rc<Host>,
    by_name: RefCell<HashMap<String, Function>>,
}

/// Registers `core.register_action(name, fn)` on `core`.
pub fn register(lua: &Lua, core: &Table, host: &Rc<Host>) -> mlua::Result<()> {
    lua.set_app_data(Rc::new(Actions {
        host: host.clone(),
        by_name: RefCell::default(),
    }));
    core.set(
        "register_action",
        lua.create_function(|lua, (name, func): (String, Value)| {
            let what = "core.register_action";
            crate::fetches::registering(lua, what)?;
            let name = crate::fetches::checked_name(lua, what, name)?;
            let func = crate::fetches::function_arg(lua, what, func)?;
            if let Some(actions) = lua.app_data_ref::<Rc<Actions>>() {
                actions.by_name.borrow_mut().insert(name, func);
            }
            Ok(())
        })?,
    )
}

/// The filter a `"lua.NAME"` entry of a service's `filters` names; `Err` says why not.
pub fn filter_for(lua: &Lua, entry: &str) -> Result<Rc<dyn Filter>, String> {
    let Some(name) = entry.strip_prefix("lua.") else {
        return Err(format!(
            "filters must be dpm.filter objects or \"lua.NAME\" actions, not the string '{entry}'"
        ));
    };
    let actions = lua
        .app_data_ref::<Rc<Actions>>()
        .map(|a| Rc::clone(&a))
        .ok_or("no actions")?;
    let func = actions.by_name.borrow().get(name).cloned().ok_or_else(|| {
        format!("no action '{name}' (register it with core.register_action(\"{name}\", fn) before the service)")
    })?;
    Ok(Rc::new(ActionFilter(Rc::new(Shared {
        label: format!("action '{entry}'"),
        stats: stats_of(entry),
        name: entry.to_string(),
        func,
        host: actions.host.clone(),
    }))))
}

/// One worker's instance of an action in a chain.
struct ActionFilter(Rc<Shared>);

struct Shared {
    /// `lua.NAME`.
    name: String,
    func: Function,
    host: Rc<Host>,
    /// The log label, made once.
    label: String,
    stats: Arc<FilterStats>,
}

impl Filter for ActionFilter {
    fn info(&self) -> &'static ModuleInfo {
        &super::filter::INFO
    }

    fn name(&self) -> &str {
        &self.0.name
    }

    fn new_session(&self, session: &SessionRef) -> Rc<dyn FilterSession> {
        Rc::new(ActionSession {
            shared: self.0.clone(),
            session: session.clone(),
            private: Rc::default(),
        })
    }

    fn diagnostics(&self) -> serde_json::Value {
        self.0.stats.json()
    }
}

struct ActionSession {
    shared: Rc<Shared>,
    session: SessionRef,
    /// `txn:set_priv`'s value, for the whole session.
    private: Rc<RefCell<Value>>,
}

impl ActionSession {
    async fn run(&self, request: Rc<Request>) -> Action {
        let shared = &self.shared;
        shared.stats.requests.fetch_add(1, Ordering::Relaxed);
        let txn = Txn::new(Client::statement(), self.private.clone());
        let sql = request.sql().map(<[u8]>::to_vec);
        if let Some(sql) = &sql {
            txn.req.preload(sql);
        }
        let object = match shared.host.lua.create_userdata(TxnObject(txn.clone())) {
            Ok(o) => o,
            Err(e) => return self.failed(&format!("failed: {e}")),
        };
        let result = shared
            .host
            .call_as(shared.func.clone(), &shared.label, object)
            .await;
        // The budget's verdict is answered here, as the failure it is.
        crate::sandbox::take_tripped(&shared.host.lua);
        if let Err(line) = result {
            return self.failed(&format!("failed: {line}"));
        }
        match self.outcome(&txn, &request, sql) {
            Ok(action) => {
                shared.stats.count(&action);
                action
            }
            Err(why) => {
                tracing::error!("ERROR: {}: {why}", shared.label);
                self.failed(&why)
            }
        }
    }

    /// What the channels hold decides the statement's fate (see the module's doc).
    fn outcome(
        &self,
        txn: &Txn,
        request: &Request,
        sql: Option<Vec<u8>>,
    ) -> Result<Action, String> {
        let ending = txn.ending.get();
        if ending == Some(Ending::Closed) {
            self.session.worker.close(self.session.id());
            return Ok(Action::Drop);
        }
        let caps = || self.session.worker.negotiated_caps(self.session.id());
        let answer = txn.res.contents();
        if !answer.is_empty() || ending == Some(Ending::Finished) {
            let lua = &self.shared.host.lua;
            let table = answer_table(lua, request.command, &answer).map_err(|e| e.to_string())?;
            return from_lua(&Value::Table(table), None, request.command, caps());
        }
        let changed = sql
            .filter(|sql| *sql != txn.req.contents())
            .map(|_| Bytes::from(txn.req.contents()));
        from_lua(&Value::Nil, changed, request.command, caps())
    }

    /// The ERR the client gets when the action failed (already logged).
    fn failed(&self, why: &str) -> Action {
        self.shared.stats.errors.fetch_add(1, Ordering::Relaxed);
        error_action(
            GENERIC_ERROR,
            *b"HY000",
            format!("filter '{}' {why}", self.shared.name),
        )
    }
}

/// The action table of an answer: a result set for COM_QUERY with text, else an OK.
fn answer_table(lua: &Lua, command: u8, text: &[u8]) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    if command == com::QUERY && !text.is_empty() {
        table.set("columns", lua.create_sequence_from(["response"])?)?;
        let row = lua.create_sequence_from([lua.create_string(text)?])?;
        table.set("rows", lua.create_sequence_from([row])?)?;
    } else {
        table.set("ok", true)?;
        if !text.is_empty() {
            table.set("info", lua.create_string(text)?)?;
        }
    }
    Ok(table)
}

impl FilterSession for ActionSession {
    fn name(&self) -> &str {
        &self.shared.name
    }

    fn interest(&self) -> Interest {
        Interest {
            requests: true,
            replies: false,
        }
    }

    fn close_session(&self) {
        *self.private.borrow_mut() = Value::Nil;
    }

    fn route_query(self: Rc<Self>, _: SessionRef, request: Rc<Request>) -> Step<Action> {
        Step::Later(Box::pin(async move { self.run(request).await }))
    }

    fn client_reply(self: Rc<Self>, _: SessionRef, _: Rc<Reply>) -> Step<()> {
        Step::Ready(())
    }
}
