//! The service layer of the `dpm` table: `dpm.server`, `dpm.filter`, `dpm.service`,
//! `listener:serve(service)`, `dpm.classify`, the Lua filter adapter and the objects
//! filters get; `dpm.monitor`, `dpm.servers`, `dpm.on_server_event`, `dpm.switchover`.

mod action;
mod classify;
pub(crate) mod fields;
mod filter;
mod json;
pub mod lua_action;
pub(crate) mod monitor;
mod route_hint;
mod server;
mod service;
mod session_object;
mod users;

use std::rc::Rc;

use mlua::{Lua, Table};

pub use filter::INFO as LUA_FILTER_INFO;
pub use service::ServiceObject;

use crate::host::Host;

/// Registers `dpm.server`, `dpm.filter` and `dpm.service`.
pub fn register(lua: &Lua, dpm: &Table, host: &Rc<Host>) -> mlua::Result<()> {
    dpm.set("server", lua.create_function(server::server)?)?;
    let h = host.clone();
    dpm.set(
        "filter",
        lua.create_function(move |lua, spec: mlua::Value| service::filter(lua, &h, spec))?,
    )?;
    let h = host.clone();
    dpm.set(
        "service",
        lua.create_function(move |lua, spec: mlua::Value| service::service(lua, &h, spec))?,
    )?;
    dpm.set("monitor", lua.create_function(monitor::monitor)?)?;
    dpm.set("servers", lua.create_function(monitor::all_servers)?)?;
    dpm.set(
        "switchover",
        lua.create_async_function(monitor::switchover)?,
    )?;
    let h = host.clone();
    dpm.set(
        "on_server_event",
        lua.create_function(move |lua, handler: mlua::Function| {
            monitor::on_server_event(lua, &h, handler)
        })?,
    )?;
    dpm.set(
        "reopen_logs",
        lua.create_function(|_, ()| {
            dpm_engine::service::reopen_logs();
            Ok(())
        })?,
    )?;
    dpm.set("users", lua.create_function(users::users)?)?;
    dpm.set(
        "login_throttle",
        lua.create_function(users::login_throttle)?,
    )?;
    dpm.set(
        "reload_tls",
        lua.create_function(crate::tls_options::reload_all)?,
    )?;
    classify::register(lua, dpm)?;
    Ok(())
}
