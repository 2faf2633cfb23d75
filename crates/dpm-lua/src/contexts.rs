//! Execution contexts (the seed `haproxy-lua.txt`): where a Lua function runs decides what
//! it may do, and a function called where it may not says so by name.
//!
//! | context | what runs there | may wait (`core.msleep`, `dpm.collected` …) |
//! |---|---|---|
//! | body | the startup file as it loads | no |
//! | init | `core.register_init` functions, after the file loaded, before listeners accept | no |
//! | task | `core.register_task` functions | yes |
//! | runtime | callbacks, timers, filters | yes |
//! | socket hook | `dpm.client_socket` … functions | no |
//!
//! A worker's Lua state is in body, then init, then running (tasks and runtime); a
//! function that runs to completion (a socket hook) marks the state for its duration.

use mlua::Lua;

use crate::errors::{raise, raise_from_script};

/// The phase of a worker's Lua state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    /// The startup file as it loads.
    Body,
    /// The init functions, after the file loaded.
    Init,
    /// Tasks, callbacks, timers and filters: they may wait.
    Running,
    /// A function that must run to completion (named).
    NoWait(&'static str),
}

impl Context {
    fn describe(self) -> String {
        match self {
            Context::Body => "the body context (the startup file as it loads)".into(),
            Context::Init => "the init context (a core.register_init function)".into(),
            Context::Running => "a task or callback".into(),
            Context::NoWait(what) => format!("a {what} (which runs to completion)"),
        }
    }
}

/// The context the state is in now (running, for a state that never said).
pub fn current(lua: &Lua) -> Context {
    lua.app_data_ref::<Context>()
        .map(|c| *c)
        .unwrap_or(Context::Running)
}

/// Moves the state to `context`; returns the one it was in.
pub fn enter(lua: &Lua, context: Context) -> Context {
    let before = current(lua);
    lua.set_app_data(context);
    before
}

/// Held by a function that waits, for as long as it runs: when it returns, the Lua
/// function that called it goes on with a new CPU burst (`crate::sandbox`).
#[derive(Debug)]
pub struct Waiting(Lua);

impl Drop for Waiting {
    fn drop(&mut self) {
        crate::sandbox::burst_starts(&self.0);
    }
}

/// Refuses `function` (a function that waits) unless the state is running a task or a
/// callback: the error names the function and the context. Keep the guard it returns
/// until the function is done waiting.
#[must_use = "the guard starts the caller's next CPU burst when the wait is over"]
pub fn may_wait(lua: &Lua, function: &str) -> mlua::Result<Waiting> {
    match current(lua) {
        Context::Running => Ok(Waiting(lua.clone())),
        context => Err(raise_from_script(
            lua,
            format!(
                "{function} waits, and cannot be called in {}: call it from a task (core.register_task), a callback or a timer",
                context.describe()
            ),
        )),
    }
}

/// Refuses `function` unless the startup file is loading (body) — functions that set
/// the process up.
pub fn in_body(lua: &Lua, function: &str) -> mlua::Result<()> {
    match current(lua) {
        Context::Body => Ok(()),
        context => Err(raise(
            lua,
            format!(
                "{function} can only be called while the startup file loads, not in {}",
                context.describe()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiting_function_names_itself_and_the_context() {
        let lua = Lua::new();
        assert!(may_wait(&lua, "core.msleep").is_ok(), "running by default");
        enter(&lua, Context::Body);
        let err = may_wait(&lua, "core.msleep").unwrap_err().to_string();
        assert!(
            err.contains("core.msleep waits, and cannot be called in the body context"),
            "{err}"
        );
        assert!(in_body(&lua, "core.register_init").is_ok());
        let before = enter(&lua, Context::NoWait("socket hook"));
        assert_eq!(before, Context::Body);
        let err = may_wait(&lua, "core.sleep").unwrap_err().to_string();
        assert!(
            err.contains("in a socket hook (which runs to completion)"),
            "{err}"
        );
        enter(&lua, Context::Running);
        let err = in_body(&lua, "core.register_init").unwrap_err().to_string();
        assert!(err.contains("not in a task or callback"), "{err}");
    }
}
