//! `core.set_nice(n)`: a priority between the coroutines of one worker (the seed's nice,
//! from -1024 to 1024), as far as the worker's scheduler can honour it.
//!
//! A worker runs its coroutines on tokio's `LocalSet`, which resumes ready tasks in FIFO
//! order and has no priorities: nothing can put a coroutine ahead of the others. What dpm
//! can do is make a coroutine give way more: at each `core.yield()`, a coroutine with a
//! positive nice `n` steps back `1 + n / 128` times (every other ready task of the worker
//! runs that many times before it goes on: 1 turn at nice 0 .. 127, 9 at 1024) instead of
//! once. A negative nice is accepted (scripts written for HAProxy use it) and acts as 0.
//! Waits (`core.msleep`, sockets, channels) are not affected: they end when their event
//! comes, whatever the nice.
//!
//! The nice belongs to the calling coroutine (a task, a callback, an action): it is kept
//! in a weak-keyed table of the Lua state, so it goes when the coroutine is collected.

use mlua::{Lua, Table, Value};

use crate::contexts::{current, Context};
use crate::errors::raise;

/// The registry name of the coroutine → nice table.
const NICE_TABLE: &str = "dpm.nice";

/// The seed's bounds.
const MIN: i64 = -1024;
const MAX: i64 = 1024;

/// The table of nice values, keyed weakly by coroutine.
fn table(lua: &Lua) -> mlua::Result<Table> {
    if let Value::Table(t) = lua.named_registry_value::<Value>(NICE_TABLE)? {
        return Ok(t);
    }
    let t = lua.create_table()?;
    let weak_keys = lua.create_table()?;
    weak_keys.set("__mode", "k")?;
    t.set_metatable(Some(weak_keys))?;
    lua.set_named_registry_value(NICE_TABLE, &t)?;
    Ok(t)
}

/// How many times the calling coroutine steps back at `core.yield()`.
pub fn turns(lua: &Lua) -> mlua::Result<u32> {
    // No table: nobody set a nice (the common case costs one registry lookup).
    let Value::Table(t) = lua.named_registry_value::<Value>(NICE_TABLE)? else {
        return Ok(1);
    };
    let nice = t.get::<Option<i64>>(lua.current_thread())?.unwrap_or(0);
    Ok(turns_for(nice))
}

fn turns_for(nice: i64) -> u32 {
    1 + (nice.clamp(0, MAX) / 128) as u32
}

/// Registers `core.set_nice` on `core`.
pub fn register(lua: &Lua, core: &Table) -> mlua::Result<()> {
    core.set(
        "set_nice",
        lua.create_function(|lua, nice: i64| {
            if matches!(current(lua), Context::Body | Context::Init) {
                return Err(raise(
                    lua,
                    "core.set_nice sets the nice of the calling task or callback, and cannot be called while the startup file loads",
                ));
            }
            if !(MIN..=MAX).contains(&nice) {
                return Err(raise(
                    lua,
                    format!("core.set_nice: the nice must be between -1024 and 1024, got {nice}"),
                ));
            }
            table(lua)?.set(lua.current_thread(), nice)
        })?,
    )
}

#[cfg(test)]
mod tests {
    use super::turns_for;

    #[test]
    fn a_positive_nice_steps_back_more_a_negative_one_like_zero() {
        assert_eq!(turns_for(0), 1);
        assert_eq!(turns_for(-1024), 1);
        assert_eq!(turns_for(127), 1);
        assert_eq!(turns_for(128), 2);
        assert_eq!(turns_for(1024), 9);
    }
}
