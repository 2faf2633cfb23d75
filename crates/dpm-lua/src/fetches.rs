//! `core.register_fetches(name, fn)` and `core.register_converters(name, fn)`: Lua
//! functions that module options use as `lua.NAME` expressions
//! ([`dpm_engine::pipeline::expr`]), and this worker's evaluator of those expressions.
//!
//! A fetch is `fn(txn) -> value`: `txn` is the seed's txn over the statement (its request
//! channel holds the SQL, `txn:get_priv()` is nil: a fetch keeps nothing). A converter is
//! `fn(string) -> value`. A value is a string; a number is written as Lua would, `true`
//! as `"1"`; `nil` or `false` is nothing (the expression stops there). Both run to
//! completion (the seed's context rule: they may not wait — a waiting function raises
//! an error naming the fetch context) under the sandbox's CPU budget; an error is logged
//! (`ERROR: fetch 'lua.NAME': FILE:LINE: message`) and gives nothing.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use dpm_engine::pipeline::expr::{Evaluator, Expr};
use dpm_engine::pipeline::{Request, SessionRef};
use mlua::{Function, Lua, Table, Value};

use crate::contexts::{self, Context};
use crate::errors::raise;
use crate::host::Host;
use crate::tcp_service::channel::Client;
use crate::tcp_service::txn::{Txn, TxnObject};

/// The fetches and converters this worker's startup file registered.
struct Samples {
    host: Rc<Host>,
    fetches: RefCell<HashMap<String, Function>>,
    converters: RefCell<HashMap<String, Function>>,
}

/// Refuses `function` unless the startup file is loading (body or init): what it
/// registers is named by options as the file loads.
pub fn registering(lua: &Lua, function: &str) -> mlua::Result<()> {
    match contexts::current(lua) {
        Context::Body | Context::Init => Ok(()),
        _ => Err(raise(
            lua,
            format!("{function} can only be called while the startup file loads (the body or an init function)"),
        )),
    }
}

/// `name` if it is a name (`lua.NAME` must parse), else the error of `function`.
pub fn checked_name(lua: &Lua, function: &str, name: String) -> mlua::Result<String> {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(name)
    } else {
        Err(raise(
            lua,
            format!("{function}: '{name}' is not a name (letters, digits, '_' and '-')"),
        ))
    }
}

/// The function argument of `function`.
pub fn function_arg(lua: &Lua, function: &str, value: Value) -> mlua::Result<Function> {
    match value {
        Value::Function(f) => Ok(f),
        other => Err(raise(
            lua,
            format!(
                "{function}: the second argument must be a function, not a {}",
                other.type_name()
            ),
        )),
    }
}

/// Registers the two `core` functions and installs this thread's evaluator.
pub fn register(lua: &Lua, core: &Table, host: &Rc<Host>) -> mlua::Result<()> {
    let samples = Rc::new(Samples {
        host: host.clone(),
        fetches: RefCell::default(),
        converters: RefCell::default(),
    });
    for (field, function) in [
        ("register_fetches", "core.register_fetches"),
        ("register_converters", "core.register_converters"),
    ] {
        let s = samples.clone();
        core.set(
            field,
            lua.create_function(move |lua, (name, func): (String, Value)| {
                registering(lua, function)?;
                let name = checked_name(lua, function, name)?;
                let func = function_arg(lua, function, func)?;
                let table = match field {
                    "register_fetches" => &s.fetches,
                    _ => &s.converters,
                };
                table.borrow_mut().insert(name, func);
                Ok(())
            })?,
        )?;
    }
    dpm_engine::pipeline::expr::set_evaluator(&host.worker, Rc::new(LuaEvaluator(samples)));
    Ok(())
}

struct LuaEvaluator(Rc<Samples>);

/// A fetch's or converter's result as bytes; `None` for nil and false.
fn to_bytes(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Integer(n) => Some(n.to_string().into_bytes()),
        Value::Number(n) => Some(n.to_string().into_bytes()),
        Value::Boolean(true) => Some(b"1".to_vec()),
        _ => None,
    }
}

impl LuaEvaluator {
    /// Runs `func` to completion in the fetch context; `None` on nothing or an error.
    fn call(&self, func: &Function, label: &str, arg: Value) -> Option<Vec<u8>> {
        let host = &self.0.host;
        let before = contexts::enter(&host.lua, Context::NoWait("fetch or converter"));
        let result = host.call_sync_as(func, label, arg);
        contexts::enter(&host.lua, before);
        // A budget's verdict here is this call's failure, already logged.
        crate::sandbox::take_tripped(&host.lua);
        to_bytes(&result.ok()?)
    }
}

impl Evaluator for LuaEvaluator {
    fn eval(
        &self,
        expr: &Expr,
        _session: &SessionRef,
        request: Option<&Request>,
    ) -> Option<Vec<u8>> {
        let samples = &self.0;
        let lua = &samples.host.lua;
        let fetch = samples.fetches.borrow().get(&expr.fetch).cloned()?;
        let txn = Txn::new(Client::statement(), Rc::default());
        if let Some(sql) = request.and_then(Request::sql) {
            txn.req.preload(sql);
        }
        let object = lua.create_userdata(TxnObject(txn)).ok()?;
        let label = format!("fetch 'lua.{}'", expr.fetch);
        let mut value = self.call(&fetch, &label, Value::UserData(object))?;
        for name in &expr.converters {
            let converter = samples.converters.borrow().get(name).cloned()?;
            let arg = Value::String(lua.create_string(&value).ok()?);
            value = self.call(&converter, &format!("converter 'lua.{name}'"), arg)?;
        }
        Some(value)
    }

    fn check(&self, expr: &Expr) -> Result<(), String> {
        if !self.0.fetches.borrow().contains_key(&expr.fetch) {
            return Err(format!(
                "no fetch 'lua.{0}' (register it with core.register_fetches(\"{0}\", fn) first)",
                expr.fetch
            ));
        }
        let converters = self.0.converters.borrow();
        match expr.converters.iter().find(|c| !converters.contains_key(*c)) {
            Some(c) => Err(format!(
                "no converter 'lua.{c}' (register it with core.register_converters(\"{c}\", fn) first)"
            )),
            None => Ok(()),
        }
    }
}
