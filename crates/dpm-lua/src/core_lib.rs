//! The `core` table (the execution model of the seed `haproxy-lua.txt`): functions that
//! suspend only the calling callback's coroutine, never the worker.
//!
//! `core.msleep(ms)`, `core.sleep(s)` and `core.yield()` may be called from any callback
//! or timer; the connection whose callback sleeps waits, every other connection of the
//! worker goes on. Called from the startup file's main chunk (not a coroutine) they
//! raise "attempt to yield from outside a coroutine".
//!
//! State shared by every worker (the seed's global maps and ACLs, plus counters) lives
//! in Rust ([`dpm_engine::shared`]); these functions read and write it from any worker's
//! Lua state: `core.set_map/get_map/del_map/map_entries`, `core.add_acl/del_acl/match_acl`,
//! `core.add_counter/get_counter/set_counter`.

use std::time::Duration;

use dpm_engine::shared::{shared, Shared, SharedValue};
use mlua::{Lua, Table, Value};

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
    register_shared(lua, &core)?;
    lua.globals().set("core", core.clone())?;
    Ok(core)
}

/// A Lua value as a shared-map value; `what` names the function for the error.
fn to_shared(what: &str, value: Value) -> mlua::Result<SharedValue> {
    Ok(match value {
        Value::String(s) => SharedValue::Bytes(s.as_bytes().to_vec().into_boxed_slice()),
        Value::Integer(i) => SharedValue::Int(i),
        Value::Number(n) => SharedValue::Float(n),
        Value::Boolean(b) => SharedValue::Bool(b),
        other => {
            return Err(mlua::Error::runtime(format!(
                "{what}: the value must be a string, number or boolean (got {})",
                other.type_name()
            )))
        }
    })
}

/// A shared-map value as the Lua value that was stored.
fn from_shared(lua: &Lua, value: SharedValue) -> mlua::Result<Value> {
    Ok(match value {
        SharedValue::Bytes(b) => Value::String(lua.create_string(&*b)?),
        SharedValue::Int(i) => Value::Integer(i),
        SharedValue::Float(n) => Value::Number(n),
        SharedValue::Bool(b) => Value::Boolean(b),
    })
}

/// Sets `core.<field>(name, key)` to a yes/no operation on a named shared map or ACL.
fn set_keyed_query(
    lua: &Lua,
    core: &Table,
    field: &str,
    op: fn(&Shared, &str, &[u8]) -> bool,
) -> mlua::Result<()> {
    core.set(
        field,
        lua.create_function(move |_, (name, key): (String, mlua::String)| {
            Ok(op(shared(), &name, &key.as_bytes()))
        })?,
    )
}

/// The functions on state shared by every worker.
fn register_shared(lua: &Lua, core: &Table) -> mlua::Result<()> {
    core.set(
        "set_map",
        lua.create_function(|_, (name, key, value): (String, mlua::String, Value)| {
            let value = to_shared("core.set_map", value)?;
            shared().map_set(&name, &key.as_bytes(), value);
            Ok(())
        })?,
    )?;
    core.set(
        "get_map",
        lua.create_function(|lua, (name, key): (String, mlua::String)| {
            match shared().map_get(&name, &key.as_bytes()) {
                Some(v) => from_shared(lua, v),
                None => Ok(Value::Nil),
            }
        })?,
    )?;
    set_keyed_query(lua, core, "del_map", Shared::map_del)?;
    core.set(
        "map_entries",
        lua.create_function(|lua, name: String| {
            let t = lua.create_table()?;
            for (k, v) in shared().map_entries(&name) {
                t.set(lua.create_string(&*k)?, from_shared(lua, v)?)?;
            }
            Ok(t)
        })?,
    )?;
    set_keyed_query(lua, core, "add_acl", Shared::acl_add)?;
    set_keyed_query(lua, core, "del_acl", Shared::acl_del)?;
    set_keyed_query(lua, core, "match_acl", Shared::acl_match)?;
    core.set(
        "add_counter",
        lua.create_function(|_, (name, delta): (String, Option<i64>)| {
            Ok(shared().counter_add(&name, delta.unwrap_or(1)))
        })?,
    )?;
    core.set(
        "get_counter",
        lua.create_function(|_, name: String| Ok(shared().counter_get(&name)))?,
    )?;
    core.set(
        "set_counter",
        lua.create_function(|_, (name, value): (String, i64)| {
            shared().counter_set(&name, value);
            Ok(())
        })?,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn shared_functions_keep_value_types_and_reject_others() {
        let lua = mlua::Lua::new();
        super::register(&lua).unwrap();
        lua.load(
            r#"
            local m = "core_lib_test"
            core.set_map(m, "s", "a\0b")
            core.set_map(m, 7, 7)
            core.set_map(m, "f", 1.5)
            core.set_map(m, "b", false)
            assert(core.get_map(m, "s") == "a\0b")
            assert(math.type(core.get_map(m, "7")) == "integer")
            assert(core.get_map(m, "f") == 1.5)
            assert(core.get_map(m, "b") == false)
            assert(core.get_map(m, "none") == nil and core.get_map("no map", "s") == nil)
            local n = 0
            for _ in pairs(core.map_entries(m)) do n = n + 1 end
            assert(n == 4, n)
            assert(core.del_map(m, "s") == true and core.del_map(m, "s") == false)
            local ok, err = pcall(core.set_map, m, "x", {})
            local want = "core.set_map: the value must be a string, number or boolean (got table)"
            assert(not ok and tostring(err):find(want, 1, true), tostring(err))
            assert(core.add_counter(m) == 1 and core.add_counter(m, 41) == 42)
            assert(core.get_counter(m) == 42 and core.get_counter("no counter") == 0)
            core.set_counter(m, -1)
            assert(core.get_counter(m) == -1)
            assert(core.add_acl(m, "u") and not core.add_acl(m, "u"))
            assert(core.match_acl(m, "u") and not core.match_acl(m, "v"))
            assert(core.del_acl(m, "u") and not core.match_acl(m, "u"))
            "#,
        )
        .exec()
        .unwrap();
    }
}
