//! The functions of the `dpm` table that manage sockets and time (reference §3.1, §3.3).
//! Packet functions (`wire_packet`, `check_pass`, `new_*_pkt`, …) live in `packets`.

use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

use dpm_engine::{ConnId, Role};
use mlua::{AnyUserData, IntoLuaMulti, Lua, MultiValue, Table, Value};

use crate::conn_object::ConnObject;
use crate::errors::raise;
use crate::host::Host;
use crate::services::fields::{check_fields, opt_table};

/// A connection argument: its id and role, or a Lua error naming the argument.
pub fn conn_arg(lua: &Lua, value: &Value, what: &str) -> mlua::Result<(ConnId, Role)> {
    match value {
        Value::UserData(ud) => match ud.borrow::<ConnObject>() {
            Ok(c) => Ok((c.id, c.role)),
            Err(_) => Err(raise(lua, format!("{what} must be a connection object"))),
        },
        _ => Err(raise(lua, format!("{what} must be a connection object"))),
    }
}

/// Returns `(nil, message)`, the Lua convention for an expected failure.
fn fail(lua: &Lua, message: String) -> mlua::Result<MultiValue> {
    (Value::Nil, message).into_lua_multi(lua)
}

fn port_arg(lua: &Lua, port: i64) -> mlua::Result<u16> {
    u16::try_from(port).map_err(|_| raise(lua, format!("invalid port {port}")))
}

/// Registers the socket and time functions on `dpm`.
pub fn register(lua: &Lua, dpm: &Table, host: &Rc<Host>) -> mlua::Result<()> {
    let h = host.clone();
    dpm.set(
        "listener",
        lua.create_function(
            move |lua, (addr, port, opts): (Option<String>, i64, Option<Table>)| {
                let port = port_arg(lua, port)?;
                let what = "dpm.listener";
                if let Some(opts) = &opts {
                    if listener_mode(lua, opts)? {
                        check_fields(lua, "dpm.listener (mode = \"tcp\")", opts, &["mode"])?;
                        return crate::tcp_service::listen(lua, &h, addr.as_deref(), port);
                    }
                }
                let (tls, max_connections) = match &opts {
                    Some(opts) => {
                        check_fields(lua, what, opts, &["tls", "max_connections", "mode"])?;
                        let tls = match opt_table(lua, what, opts, "tls")? {
                            Some(t) => Some(crate::tls_options::server_tls(lua, what, &t)?),
                            None => None,
                        };
                        (tls, max_connections_option(lua, opts)?)
                    }
                    None => (None, None),
                };
                let listening = h.worker.listen_tcp(addr.as_deref(), port).and_then(|id| {
                    if let Some(tls) = tls {
                        h.worker.set_listener_tls(id, tls)?;
                    }
                    if let Some(max) = max_connections {
                        h.worker.set_listener_limit(id, max)?;
                    }
                    Ok(id)
                });
                match listening {
                    Ok(id) => h
                        .conn_object(id, Role::Listener(dpm_engine::ListenerKind::Tcp))?
                        .into_lua_multi(lua),
                    Err(e) => fail(lua, e.to_string()),
                }
            },
        )?,
    )?;
    let h = host.clone();
    dpm.set(
        "listener_unix",
        lua.create_function(move |lua, (path, mode): (String, Option<String>)| {
            let mode = match mode {
                Some(m) => u32::from_str_radix(m.trim_start_matches("0o"), 8)
                    .map_err(|_| raise(lua, format!("invalid octal mode '{m}'")))?,
                None => 0o700,
            };
            match h.worker.listen_unix(&path, mode) {
                Ok(id) => h
                    .conn_object(id, Role::Listener(dpm_engine::ListenerKind::Unix))?
                    .into_lua_multi(lua),
                Err(e) => fail(lua, e.to_string()),
            }
        })?,
    )?;
    let h = host.clone();
    dpm.set(
        "connect",
        lua.create_function(
            move |lua, (addr, port, opts): (String, i64, Option<Table>)| {
                let port = port_arg(lua, port)?;
                let what = "dpm.connect";
                let tls = match &opts {
                    Some(opts) => {
                        check_fields(lua, what, opts, &["tls"])?;
                        match opt_table(lua, what, opts, "tls")? {
                            Some(t) => Some(crate::tls_options::client_tls(lua, what, &t)?),
                            None => None,
                        }
                    }
                    None => None,
                };
                match h.worker.connect_tcp_tls(&addr, port, tls) {
                    Ok(id) => h.conn_object(id, Role::Backend)?.into_lua_multi(lua),
                    Err(e) => fail(lua, e.to_string()),
                }
            },
        )?,
    )?;
    let h = host.clone();
    dpm.set(
        "connect_unix",
        lua.create_function(
            move |lua, path: String| match h.worker.connect_unix(&path) {
                Ok(id) => h.conn_object(id, Role::Backend)?.into_lua_multi(lua),
                Err(e) => fail(lua, e.to_string()),
            },
        )?,
    )?;
    let h = host.clone();
    dpm.set(
        "close",
        lua.create_function(move |lua, conn: Value| {
            let (id, _) = conn_arg(lua, &conn, "Argument")?;
            Ok(h.worker.close(id).then_some(1))
        })?,
    )?;
    let h = host.clone();
    dpm.set(
        "proxy_connect",
        lua.create_function(move |lua, (client, backend): (Value, Value)| {
            let client = match conn_arg(lua, &client, "Arg 1") {
                Ok((id, Role::Client)) if h.worker.is_alive(id) => id,
                _ => return Err(raise(lua, "Arg 1 must be a valid client")),
            };
            let backend = match conn_arg(lua, &backend, "Arg 2") {
                Ok((id, Role::Backend)) if h.worker.is_alive(id) => id,
                _ => return Err(raise(lua, "Arg 2 must be a valid backend")),
            };
            h.worker.link(client, backend).map_err(|e| raise(lua, e))
        })?,
    )?;
    let h = host.clone();
    dpm.set(
        "proxy_disconnect",
        lua.create_function(move |lua, conn: Value| {
            let (id, _) = conn_arg(lua, &conn, "Argument")?;
            h.worker
                .unlink(id)
                .map_err(|_| raise(lua, "Must specify a connected client/server to disconnect."))
        })?,
    )?;
    dpm.set(
        "gettimeofday",
        lua.create_function(|_, ()| {
            let now = since_epoch();
            Ok((now.as_secs() as i64, now.subsec_micros() as i64))
        })?,
    )?;
    dpm.set(
        "time",
        lua.create_function(|_, ()| Ok(since_epoch().as_secs() as i64))?,
    )?;
    dpm.set(
        "time_hires",
        lua.create_function(|_, ()| Ok(since_epoch().as_millis() as i64))?,
    )?;
    Ok(())
}

/// A listener's `mode`: true for `"tcp"` (a raw TCP service, `crate::tcp_service`),
/// false for `"mysql"` (the default).
fn listener_mode(lua: &Lua, opts: &Table) -> mlua::Result<bool> {
    match crate::services::fields::opt_string(lua, "dpm.listener", opts, "mode")?.as_deref() {
        None | Some("mysql") => Ok(false),
        Some("tcp") => Ok(true),
        Some(other) => Err(raise(
            lua,
            format!("dpm.listener: mode must be \"mysql\" or \"tcp\", not '{other}'"),
        )),
    }
}

/// A listener's `max_connections` option: a positive integer.
fn max_connections_option(lua: &Lua, opts: &Table) -> mlua::Result<Option<u32>> {
    match opts.get::<Value>("max_connections")? {
        Value::Nil => Ok(None),
        Value::Integer(n) if n > 0 => Ok(Some(u32::try_from(n).unwrap_or(u32::MAX))),
        _ => Err(raise(
            lua,
            "dpm.listener: max_connections must be a positive integer",
        )),
    }
}

fn since_epoch() -> std::time::Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Borrows a `dpm.conn` from a userdata argument.
pub fn conn_from_userdata(ud: &AnyUserData) -> Option<ConnId> {
    ud.borrow::<ConnObject>().ok().map(|c| c.id)
}
