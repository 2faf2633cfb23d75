//! `dpm.filter{...}` and `dpm.service{...}` in the startup file, the service object
//! (`service:diagnostics()`, `service:name()`) and `listener:serve(service)`.
//!
//! A service is process-wide (`dpm_engine::service`): the first worker to run
//! `dpm.service{ name = "app", ... }` creates it, the others get it back (and a reload's
//! file gets the one in force back if its router, router options, servers, filters and
//! TLS are the same); each worker keeps its own instances of the Lua filters (their
//! functions live in its Lua state).

use std::rc::Rc;

use dpm_engine::pipeline::Filter;
use dpm_engine::service::generations::Registry;
use dpm_engine::service::{define_service, ModuleType, OptionValue, Options, WorkerService};
use mlua::{Lua, Table, UserData, UserDataMethods, Value};

use super::fields::{check_fields, opt_bool, opt_function, opt_string, opt_table, req_string};
use super::filter::LuaFilter;
use super::server::server_list;
use crate::errors::raise;
use crate::host::Host;

/// The `dpm.filter` userdata: a filter ready to be put in a service's chain.
#[derive(Clone)]
pub struct FilterObject(pub Rc<dyn Filter>);

impl UserData for FilterObject {
    fn add_fields<F: mlua::UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field("__name", "dpm.filter");
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("name", |_, this, ()| Ok(this.0.name().to_string()));
        methods.add_method("diagnostics", |lua, this, ()| {
            super::json::to_lua(lua, &this.0.diagnostics())
        });
    }
}

/// The `dpm.service` userdata.
#[derive(Clone)]
pub struct ServiceObject(pub Rc<WorkerService>);

impl UserData for ServiceObject {
    fn add_fields<F: mlua::UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field("__name", "dpm.service");
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("name", |_, this, ()| Ok(this.0.shared.name.clone()));
        methods.add_method("diagnostics", |lua, this, ()| {
            super::json::to_lua(lua, &this.0.diagnostics())
        });
        // Rereads what the service's built-in filters read from files (a firewall's
        // rules): `true`, or `false, "FILE:LINE: message"` (the old rules stay). The
        // reading and compiling (10,000 regexes take a while) happen on a blocking
        // thread: the caller's coroutine waits, its worker goes on.
        methods.add_async_method("reload_filters", |_, this, ()| async move {
            let names = this.0.shared.filter_names.clone();
            let errors = tokio::task::spawn_blocking(move || {
                dpm_engine::service::reload_filters(names.iter().map(String::as_str))
            })
            .await
            .unwrap_or_else(|e| vec![format!("the reload failed: {e}")]);
            for e in &errors {
                tracing::error!("ERROR: {e}");
            }
            Ok(match errors.is_empty() {
                true => (true, None),
                false => (false, Some(errors.join("; "))),
            })
        });
    }
}

/// `dpm.filter{ name = ..., route_query = fn, client_reply = fn, yields = bool }` (a Lua
/// filter), or `dpm.filter{ name = ..., module = "qla", options = { ... } }` (a built-in
/// filter module).
pub fn filter(lua: &Lua, host: &Rc<Host>, spec: Value) -> mlua::Result<FilterObject> {
    let what = "dpm.filter";
    let Value::Table(spec) = spec else {
        return Err(raise(
            lua,
            "dpm.filter: expects a table { name = ..., route_query = ..., client_reply = ... } or { name = ..., module = ..., options = { ... } }",
        ));
    };
    if let Some(module) = opt_string(lua, what, &spec, "module")? {
        check_fields(lua, what, &spec, &["name", "module", "options"])?;
        let name = req_string(lua, what, &spec, "name")?;
        let what = format!("dpm.filter '{name}'");
        let options = match opt_table(lua, &what, &spec, "options")? {
            Some(t) => option_values(lua, &what, &t)?,
            None => Vec::new(),
        };
        let definition = dpm_modules::create_filter(&name, &module, options)
            .map_err(|e| raise(lua, format!("{what}: {e}")))?;
        return Ok(FilterObject(definition.worker_filter()));
    }
    check_fields(
        lua,
        what,
        &spec,
        &["name", "module", "route_query", "client_reply", "yields"],
    )?;
    let name = req_string(lua, what, &spec, "name")?;
    let route_query = opt_function(lua, what, &spec, "route_query")?;
    let client_reply = opt_function(lua, what, &spec, "client_reply")?;
    if route_query.is_none() && client_reply.is_none() {
        return Err(raise(
            lua,
            format!("dpm.filter '{name}': give route_query, client_reply or both (or module = \"...\" for a built-in filter)"),
        ));
    }
    let yields = opt_bool(lua, what, &spec, "yields")?.unwrap_or(true);
    Ok(FilterObject(Rc::new(LuaFilter::new(
        name,
        route_query,
        client_reply,
        yields,
        host.clone(),
    ))))
}

/// `dpm.service{ name, router, servers, filters, options }`.
pub fn service(lua: &Lua, host: &Rc<Host>, spec: Value) -> mlua::Result<ServiceObject> {
    let what = "dpm.service";
    let Value::Table(spec) = spec else {
        return Err(raise(
            lua,
            "dpm.service: expects a table { name = ..., router = ..., servers = { ... } }",
        ));
    };
    check_fields(
        lua,
        what,
        &spec,
        &[
            "name", "router", "servers", "filters", "options", "tls", "route",
        ],
    )?;
    let name = req_string(lua, what, &spec, "name")?;
    let what = format!("dpm.service '{name}'");
    let router = opt_string(lua, &what, &spec, "router")?.ok_or_else(|| {
        raise(
            lua,
            format!("{what}: field 'router' is required (a router module name)"),
        )
    })?;
    let servers = match opt_table(lua, &what, &spec, "servers")? {
        Some(list) => server_list(lua, &what, &list)?,
        None => Vec::new(),
    };
    if servers.is_empty() {
        return Err(raise(
            lua,
            format!("{what}: give at least one server in 'servers'"),
        ));
    }
    let mut filters: Vec<Rc<dyn Filter>> = Vec::new();
    if let Some(list) = opt_table(lua, &what, &spec, "filters")? {
        for value in list.sequence_values::<Value>() {
            match value? {
                Value::UserData(ud) => match ud.borrow::<FilterObject>() {
                    Ok(f) => filters.push(f.0.clone()),
                    Err(_) => {
                        return Err(raise(
                            lua,
                            format!("{what}: filters must be dpm.filter objects"),
                        ))
                    }
                },
                // "lua.NAME": an action registered with core.register_action.
                Value::String(entry) => filters.push(
                    super::lua_action::filter_for(lua, &entry.to_string_lossy())
                        .map_err(|e| raise(lua, format!("{what}: {e}")))?,
                ),
                _ => {
                    return Err(raise(
                        lua,
                        format!("{what}: filters must be dpm.filter objects"),
                    ))
                }
            }
        }
    }
    let mut names: Vec<String> = filters.iter().map(|f| f.name().to_string()).collect();
    names.sort();
    if let Some(dup) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(raise(
            lua,
            format!("{what}: two filters are named '{}'", dup[0]),
        ));
    }
    let options = match opt_table(lua, &what, &spec, "options")? {
        Some(t) => option_values(lua, &what, &t)?,
        None => Vec::new(),
    };
    // Checked on every worker, so that each one's errors point at the same line.
    let info = dpm_modules::registry::find(ModuleType::Router, &router)
        .map_err(|e| raise(lua, format!("{what}: {e}")))?;
    let checked =
        Options::validate(info, options.clone()).map_err(|e| raise(lua, format!("{what}: {e}")))?;
    // What the router is made from: another text (an option changed) is another router.
    let router_made_from = format!("router {router}, options {}", checked.to_json());
    claim_filter_names(&name, &names).map_err(|e| raise(lua, format!("{what}: {e}")))?;
    if let Some(route) = opt_string(lua, &what, &spec, "route")? {
        let expr = dpm_engine::pipeline::expr::Expr::parse_registered(&route)
            .map_err(|e| raise(lua, format!("{what}: field 'route': {e}")))?;
        // Last in the chain: the filters' answers and rewrites come first.
        filters.push(Rc::new(super::route_hint::RouteHint::new(expr)));
    }
    let filter_names = filters.iter().map(|f| f.name().to_string()).collect();
    let tls = match opt_table(lua, &what, &spec, "tls")? {
        Some(t) => Some(crate::tls_options::server_tls(lua, &what, &t)?),
        None => None,
    };
    let shared = define_service(&name, &router_made_from, servers, filter_names, tls, || {
        dpm_modules::create_router(&router, options)
    })
    .map_err(|e| raise(lua, format!("{what}: {e}")))?;
    Ok(ServiceObject(Rc::new(WorkerService::new(
        &host.worker,
        shared,
        filters,
    ))))
}

/// A module's options table as (name, value) pairs.
pub(super) fn option_values(
    lua: &Lua,
    what: &str,
    t: &Table,
) -> mlua::Result<Vec<(String, OptionValue)>> {
    let mut out = Vec::new();
    for pair in t.pairs::<Value, Value>() {
        let (key, value) = pair?;
        let Value::String(key) = key else {
            return Err(raise(lua, format!("{what}: option names must be strings")));
        };
        let key = key.to_string_lossy();
        let value = match value {
            Value::Boolean(b) => OptionValue::Bool(b),
            Value::Integer(n) => OptionValue::Int(n),
            Value::Number(n) if n.fract() == 0.0 => OptionValue::Int(n as i64),
            Value::String(s) => OptionValue::Str(s.to_string_lossy()),
            Value::Table(t) => OptionValue::Table(
                super::json::from_lua(&Value::Table(t), &key)
                    .map_err(|e| raise(lua, format!("{what}: option {e}")))?,
            ),
            other => {
                return Err(raise(
                    lua,
                    format!(
                        "{what}: option '{key}' has a value of type {}",
                        other.type_name()
                    ),
                ))
            }
        };
        out.push((key, value));
    }
    Ok(out)
}

/// A filter's counters are kept per name, process-wide (every worker's instance of the
/// filter adds to them): so a name belongs to one service (in each generation of the
/// startup file: a reload may move a filter to another service).
fn claim_filter_names(service: &str, names: &[String]) -> Result<(), String> {
    static OWNERS: Registry<String> = Registry::new();
    for name in names {
        let same = |owner: &String| {
            (owner == service).then_some(()).ok_or_else(|| {
                format!(
                    "filter '{name}' is already in service '{owner}': give filters of different services different names"
                )
            })
        };
        OWNERS.define(name.clone(), same, |_| Ok(service.to_string()))?;
    }
    Ok(())
}
