//! Socket hooks and socket options in Lua (neper's model, in the proxy):
//! `dpm.client_socket(fn)`, `dpm.server_socket(fn)`, `dpm.listener_socket(fn)`,
//! `dpm.client_close(fn)`, `dpm.server_close(fn)` register `fn(fd, addr)` for the
//! moments `dpm_engine::sockets` describes; `dpm.setsockopt(fd, name, value)` and
//! `dpm.getsockopt(fd, name)` set and read options by name.
//!
//! The hooks of a worker live in its Lua state's app data; the engine is told which
//! exist (a bit each) so that a worker without hooks never calls here.

use std::cell::RefCell;
use std::os::fd::RawFd;
use std::rc::Rc;

use dpm_engine::sockets::{get_option, set_option, OptionValue, SocketAddress, SocketHook};
use mlua::{Function, Lua, Table, Value};

use crate::errors::raise;
use crate::host::Host;

/// This worker's hook functions, per hook, in registration order.
#[derive(Clone, Default)]
pub(crate) struct Hooks(Rc<RefCell<[Vec<Function>; 5]>>);

/// Registers the hook functions and the option functions on `dpm`.
pub fn register(lua: &Lua, dpm: &Table, host: &Rc<Host>) -> mlua::Result<()> {
    for hook in SocketHook::ALL {
        let h = host.clone();
        let f = lua.create_function(move |lua, func: Value| {
            let Value::Function(func) = func else {
                return Err(raise(
                    lua,
                    format!("dpm.{}: the hook must be a function", hook.name()),
                ));
            };
            let hooks = match lua.app_data_ref::<Hooks>() {
                Some(hooks) => hooks.clone(),
                None => {
                    lua.set_app_data(Hooks::default());
                    lua.app_data_ref::<Hooks>()
                        .map(|h| h.clone())
                        .unwrap_or_default()
                }
            };
            hooks.0.borrow_mut()[hook as usize].push(func);
            let mask = h.worker.socket_hooks().with(hook);
            h.worker.set_socket_hooks(mask);
            Ok(())
        })?;
        dpm.set(hook.name(), f)?;
    }
    dpm.set("setsockopt", setsockopt_function(lua, "dpm.setsockopt")?)?;
    dpm.set("getsockopt", getsockopt_function(lua, "dpm.getsockopt")?)?;
    Ok(())
}

/// `setsockopt(fd, name, value)` as a Lua function (`what` names it in errors):
/// `true`, or an error with the caller's `FILE:LINE:`. Shared with `dpm bench`.
pub fn setsockopt_function(lua: &Lua, what: &'static str) -> mlua::Result<Function> {
    lua.create_function(move |lua, (fd, name, value): (RawFd, String, Value)| {
        let value = match value {
            Value::Boolean(b) => OptionValue::Flag(b),
            Value::Integer(n) => OptionValue::Int(n),
            Value::Number(n) if n.fract() == 0.0 => OptionValue::Int(n as i64),
            Value::String(s) => OptionValue::Text(s.to_str()?.to_string()),
            other => {
                let kind = other.type_name();
                return Err(raise(
                    lua,
                    format!("{what}: {name} cannot be set to a {kind}"),
                ));
            }
        };
        set_option(fd, &name, &value).map_err(|e| raise(lua, format!("{what}: {e}")))?;
        Ok(true)
    })
}

/// `getsockopt(fd, name)` as a Lua function (`what` names it in errors): a boolean,
/// number, string or (`TCP_INFO`) table. Shared with `dpm bench`.
pub fn getsockopt_function(lua: &Lua, what: &'static str) -> mlua::Result<Function> {
    lua.create_function(move |lua, (fd, name): (RawFd, String)| {
        let value = get_option(fd, &name).map_err(|e| raise(lua, format!("{what}: {e}")))?;
        Ok(match value {
            OptionValue::Flag(b) => Value::Boolean(b),
            OptionValue::Int(n) => Value::Integer(n),
            OptionValue::Text(s) => Value::String(lua.create_string(s)?),
            OptionValue::Linger(None) => Value::Boolean(false),
            OptionValue::Linger(Some(secs)) => Value::Integer(i64::from(secs)),
            OptionValue::Info(fields) => {
                let t = lua.create_table()?;
                for (k, v) in fields {
                    t.set(k, v)?;
                }
                Value::Table(t)
            }
        })
    })
}

/// `{ family = "inet" | "inet6", host = "127.0.0.1", port = 3306 }` or
/// `{ family = "unix", path = "/run/mysqld.sock" }`. Shared with `dpm bench`.
pub fn address_table(lua: &Lua, addr: &SocketAddress) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("family", addr.family())?;
    match addr {
        SocketAddress::Inet(a) => {
            t.set("host", a.ip().to_string())?;
            t.set("port", a.port())?;
        }
        SocketAddress::Unix(path) => t.set("path", path.as_str())?,
    }
    Ok(t)
}

/// Runs the functions registered for `hook` with `(fd, addr)`; an error is logged with
/// its `file:line` and the connection goes on.
pub fn run(host: &Host, hook: SocketHook, fd: RawFd, addr: &SocketAddress) {
    let funcs: Vec<Function> = match host.lua.app_data_ref::<Hooks>() {
        Some(hooks) => hooks.0.borrow()[hook as usize].clone(),
        None => return,
    };
    let addr = match address_table(&host.lua, addr) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("ERROR: socket hook {}: {e}", hook.name());
            return;
        }
    };
    let what = format!("socket hook {}", hook.name());
    let before = crate::contexts::enter(&host.lua, crate::contexts::Context::NoWait("socket hook"));
    for func in funcs {
        let _ = host.call_sync_as(&func, &what, (fd, addr.clone()));
    }
    crate::contexts::enter(&host.lua, before);
}
