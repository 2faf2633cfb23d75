//! The `core` table (the execution model of the seed `haproxy-lua.txt`): functions that
//! suspend only the calling callback's coroutine, never the worker.
//!
//! `core.msleep(ms)`, `core.sleep(s)` and `core.yield()` may be called from any task,
//! callback or timer; the connection whose callback sleeps waits, every other connection
//! of the worker goes on. Called where nothing may wait (the startup file's body, an init
//! function, a socket hook) they raise an error naming the function and the context
//! (`crate::contexts`).
//!
//! `core.set_nice(n)` makes the calling coroutine give way at its `core.yield()`
//! (`crate::nice`).
//!
//! `core.log(level, msg)` and `core.Debug/Info/Warning/Alert(msg)` write to dpm's log;
//! `core.now()` tells the time; `core.load_map(name, path)` and `core.load_acl(name,
//! path)` fill a shared map or ACL from a file while the startup file loads.
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
        lua.create_async_function(|lua, ms: u64| async move {
            let _wait = crate::contexts::may_wait(&lua, "core.msleep")?;
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(())
        })?,
    )?;
    core.set(
        "sleep",
        lua.create_async_function(|lua, seconds: f64| async move {
            let _wait = crate::contexts::may_wait(&lua, "core.sleep")?;
            tokio::time::sleep(Duration::from_secs_f64(seconds.max(0.0))).await;
            Ok(())
        })?,
    )?;
    core.set(
        "yield",
        lua.create_async_function(|lua, ()| async move {
            let _wait = crate::contexts::may_wait(&lua, "core.yield")?;
            for _ in 0..crate::nice::turns(&lua)? {
                tokio::task::yield_now().await;
            }
            Ok(())
        })?,
    )?;
    crate::nice::register(lua, &core)?;
    register_shared(lua, &core)?;
    register_log(lua, &core)?;
    register_files(lua, &core)?;
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

/// HAProxy's log levels, as `core.emerg` … `core.debug`.
const LEVELS: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// Writes `msg` to dpm's log at HAProxy level `level` (0 emerg … 7 debug).
fn log_at(level: i64, msg: &str) {
    match level {
        i64::MIN..=3 => tracing::error!(target: "lua", "{msg}"),
        4 => tracing::warn!(target: "lua", "{msg}"),
        5 | 6 => tracing::info!(target: "lua", "{msg}"),
        _ => tracing::debug!(target: "lua", "{msg}"),
    }
}

/// `core.log`, `core.Debug/Info/Warning/Alert`, the level constants, `core.now()`.
fn register_log(lua: &Lua, core: &Table) -> mlua::Result<()> {
    for (level, name) in LEVELS.iter().enumerate() {
        core.set(*name, level as i64)?;
    }
    core.set(
        "log",
        lua.create_function(|_, (level, msg): (i64, mlua::String)| {
            log_at(level, &msg.to_string_lossy());
            Ok(())
        })?,
    )?;
    for (name, level) in [("Debug", 7), ("Info", 6), ("Warning", 4), ("Alert", 1)] {
        core.set(
            name,
            lua.create_function(move |_, msg: mlua::String| {
                log_at(level, &msg.to_string_lossy());
                Ok(())
            })?,
        )?;
    }
    core.set(
        "now",
        lua.create_function(|lua, ()| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            let t = lua.create_table()?;
            t.set("sec", now.as_secs())?;
            t.set("usec", now.subsec_micros())?;
            Ok(t)
        })?,
    )?;
    Ok(())
}

/// The lines of a map or ACL file that carry something: `(line number, text)`, without
/// blank lines and `#` comments.
fn entries(lua: &Lua, what: &str, path: &str) -> mlua::Result<Vec<(usize, String)>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| crate::errors::raise(lua, format!("{what}: cannot read {path}: {e}")))?;
    Ok(text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim().to_string()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .collect())
}

/// `core.load_map(name, path)` (lines `key value`: the key up to the first blank, the
/// value the rest) and `core.load_acl(name, path)` (one entry per line), while the
/// startup file loads (body or init). Return how many entries were loaded.
fn register_files(lua: &Lua, core: &Table) -> mlua::Result<()> {
    core.set(
        "load_map",
        lua.create_function(|lua, (name, path): (String, String)| {
            loading(lua, "core.load_map")?;
            let mut loaded = Vec::new();
            for (line, text) in entries(lua, "core.load_map", &path)? {
                let Some((key, value)) = text.split_once(char::is_whitespace) else {
                    return Err(crate::errors::raise(
                        lua,
                        format!("core.load_map: {path}:{line}: a key and a value are needed"),
                    ));
                };
                let value = SharedValue::Bytes(value.trim().as_bytes().into());
                loaded.push((key.as_bytes().into(), value));
            }
            let n = loaded.len();
            // One write: each write copies the map (its readers take no lock).
            shared().map_set_many(&name, loaded);
            Ok(n)
        })?,
    )?;
    core.set(
        "load_acl",
        lua.create_function(|lua, (name, path): (String, String)| {
            loading(lua, "core.load_acl")?;
            let keys: Vec<_> = entries(lua, "core.load_acl", &path)?
                .into_iter()
                .map(|(_, text)| text.into_bytes().into_boxed_slice())
                .collect();
            let n = keys.len();
            shared().acl_add_many(&name, keys);
            Ok(n)
        })?,
    )?;
    Ok(())
}

/// Refuses `function` once the workers run: a file is read while the startup file loads
/// (body or init), not while connections wait.
fn loading(lua: &Lua, function: &str) -> mlua::Result<()> {
    use crate::contexts::{current, Context};
    match current(lua) {
        Context::Body | Context::Init => Ok(()),
        _ => Err(crate::errors::raise(
            lua,
            format!("{function} reads a file, so it runs while the startup file loads (its body or an init function), not in a task or callback"),
        )),
    }
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
