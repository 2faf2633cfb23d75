//! What the startup file prints while it loads is shown once, not once per worker.
//!
//! The file runs on every worker, so a `print` in its body (or in an init function)
//! would appear as many times as there are workers. Only worker 0's such prints are
//! shown; the other workers' are dropped while their file loads. Once the workers run,
//! every `print` is shown (a callback's output is about its own connection).

use mlua::{Function, Lua, MultiValue};

use crate::contexts::{self, Context};

/// Wraps the global `print` of the state of worker `worker`.
pub fn install(lua: &Lua, worker: usize) -> mlua::Result<()> {
    if worker == 0 {
        return Ok(());
    }
    let print: Function = lua.globals().get("print")?;
    let once = lua.create_function(move |lua, args: MultiValue| {
        if matches!(contexts::current(lua), Context::Body | Context::Init) {
            return Ok(());
        }
        print.call::<()>(args)
    })?;
    lua.globals().set("print", once)
}
