//! `dpm.monitor{ name, module, servers, options }` (a monitor module, process-wide like
//! services: the first worker starts it), `dpm.servers()` (every server's state) and
//! `dpm.on_server_event(fn)` (a function called on this worker for every server event a
//! monitor raises: `fn(event, server)` with the event's name and the server's state).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use dpm_engine::service::{server_events, servers, Monitor, ServerEvent, ServerEventKind};
use mlua::{Function, Lua, Table, UserData, UserDataMethods, Value};

use super::fields::{check_fields, opt_table, req_string};
use super::server::server_list;
use super::service::option_values;
use crate::errors::raise;
use crate::host::Host;

/// The `dpm.monitor` userdata.
#[derive(Clone)]
pub struct MonitorObject(pub Arc<dyn Monitor>);

impl UserData for MonitorObject {
    fn add_fields<F: mlua::UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field("__name", "dpm.monitor");
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("name", |_, this, ()| Ok(this.0.name().to_string()));
        methods.add_method("diagnostics", |lua, this, ()| {
            super::json::to_lua(lua, &this.0.diagnostics())
        });
    }
}

/// `dpm.monitor{...}`.
pub fn monitor(lua: &Lua, spec: Value) -> mlua::Result<MonitorObject> {
    let what = "dpm.monitor";
    let Value::Table(spec) = spec else {
        return Err(raise(
            lua,
            "dpm.monitor: expects a table { name = ..., module = \"mariadbmon\", servers = { ... }, options = { ... } }",
        ));
    };
    check_fields(lua, what, &spec, &["name", "module", "servers", "options"])?;
    let name = req_string(lua, what, &spec, "name")?;
    let what = format!("dpm.monitor '{name}'");
    let module = req_string(lua, &what, &spec, "module")?;
    let servers = match opt_table(lua, &what, &spec, "servers")? {
        Some(list) => server_list(lua, &what, &list)?,
        None => Vec::new(),
    };
    let options = match opt_table(lua, &what, &spec, "options")? {
        Some(t) => option_values(lua, &what, &t)?,
        None => Vec::new(),
    };
    dpm_modules::create_monitor(&name, &module, servers, options)
        .map(MonitorObject)
        .map_err(|e| raise(lua, format!("{what}: {e}")))
}

/// `dpm.servers()`: name → the server's state (its diagnostics: address, role, state,
/// lag, sessions, and what a monitor found, under `monitor`).
pub fn all_servers(lua: &Lua, _: ()) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    for server in servers() {
        t.set(
            server.name.as_str(),
            super::json::to_lua(lua, &server.diagnostics())?,
        )?;
    }
    Ok(t)
}

/// This worker's server event handlers (kept in the Lua state's app data).
#[derive(Clone, Default)]
pub(crate) struct Handlers(Rc<RefCell<Vec<Function>>>);

/// `dpm.on_server_event(fn)`. The first registration of a worker starts its listener,
/// which first tells the handlers the current state of every monitored server (as
/// `server_up` / `server_down`, and `new_primary` for a primary) and then every event
/// as it comes; a handler may be told a state twice. Handlers of a worker run one after
/// the other: if they fall more than 1,024 events behind they are told the current state
/// again instead of the events they missed.
pub fn on_server_event(lua: &Lua, host: &Rc<Host>, handler: Function) -> mlua::Result<()> {
    if let Some(handlers) = lua.app_data_ref::<Handlers>() {
        handlers.0.borrow_mut().push(handler);
        return Ok(());
    }
    let handlers = Handlers::default();
    handlers.0.borrow_mut().push(handler);
    lua.set_app_data(handlers.clone());
    // Subscribed before the current state is read: nothing falls in between.
    let mut events = server_events();
    let (h, host) = (host.clone(), host.clone());
    // The handlers serve their state's sessions until it retires.
    h.spawn_until(crate::host::Phase::Retired, async move {
        if !host.until_started().await {
            return;
        }
        for event in current_state() {
            deliver(&host, &handlers, event).await;
        }
        loop {
            match events.recv().await {
                Ok(event) => deliver(&host, &handlers, event).await,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    // Told the state again instead: the handlers' view is right again.
                    tracing::warn!(
                        "server event handlers fell {n} events behind; they are told the current state instead"
                    );
                    for event in current_state() {
                        deliver(&host, &handlers, event).await;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    Ok(())
}

/// The state of every monitored server, as the events that would have led to it.
fn current_state() -> Vec<ServerEvent> {
    let mut out = Vec::new();
    for server in servers() {
        let Some(found) = server.monitored() else {
            continue;
        };
        let up = found["state"] == "up";
        let kind = if up {
            ServerEventKind::ServerUp
        } else {
            ServerEventKind::ServerDown
        };
        out.push(ServerEvent {
            kind,
            server: server.clone(),
        });
        if up && found["role"] == "primary" {
            out.push(ServerEvent {
                kind: ServerEventKind::NewPrimary,
                server,
            });
        }
    }
    out
}

/// Calls every handler with `(event name, server state)`; a failing handler is logged
/// with its file:line and the others still run.
async fn deliver(host: &Rc<Host>, handlers: &Handlers, event: ServerEvent) {
    let list: Vec<Function> = handlers.0.borrow().clone();
    for handler in list {
        let state = match super::json::to_lua(&host.lua, &event.server.diagnostics()) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!("ERROR: server event: {e}");
                continue;
            }
        };
        let _ = host
            .call_as(
                handler,
                "server event handler",
                (event.kind.as_str(), state),
            )
            .await;
    }
}

/// `dpm.switchover("db2")`: asks the monitor watching `db2` to make it the primary
/// (planned: see docs/services.md). Waits for the outcome — so call it where Lua may
/// yield — and returns `true`, or `nil, "why"`.
pub async fn switchover(lua: Lua, to: String) -> mlua::Result<(Option<bool>, Option<String>)> {
    let _wait = crate::contexts::may_wait(&lua, "dpm.switchover")?;
    let monitor = dpm_engine::service::monitors()
        .into_iter()
        .find(|m| m.servers().iter().any(|s| s.name == to));
    let Some(monitor) = monitor else {
        return Ok((None, Some(format!("no monitor watches a server '{to}'"))));
    };
    let outcome = match monitor.switchover(&to) {
        Ok(receiver) => receiver
            .await
            .unwrap_or_else(|_| Err("the monitor stopped".to_string())),
        Err(e) => Err(e),
    };
    Ok(match outcome {
        Ok(()) => (Some(true), None),
        Err(e) => (None, Some(e)),
    })
}
