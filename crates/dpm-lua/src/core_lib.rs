//! The `core` table (the execution model of the seed `haproxy-lua.txt`): functions that
//! suspend only the calling callback's coroutine, never the worker.
//!
//! `core.msleep(ms)`, `core.sleep(s)` and `core.yield()` may be called from any callback
//! or timer; the connection whose callback sleeps waits, every other connection of the
//! worker goes on. Called from the startup file's main chunk (not a coroutine) they
//! raise "attempt to yield from outside a coroutine".

use std::time::Duration;

use mlua::{Lua, Table};

/// Creates the global `core` table.
pub fn register(lua: &Lua) -> mlua::Result<Table> {
    let core = lua.create_table()?;
    core.set(
        "msleep",
        lua.create_async_function(|_, ms: u64| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(())
        })?,
    )?;
    core.set(
        "sleep",
        lua.create_async_function(|_, seconds: f64| async move {
            tokio::time::sleep(Duration::from_secs_f64(seconds.max(0.0))).await;
            Ok(())
        })?,
    )?;
    core.set(
        "yield",
        lua.create_async_function(|_, ()| async move {
            tokio::task::yield_now().await;
            Ok(())
        })?,
    )?;
    lua.globals().set("core", core.clone())?;
    Ok(core)
}
