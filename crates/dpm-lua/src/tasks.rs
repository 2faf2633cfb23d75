//! `core.register_init(fn)` and `core.register_task(fn [, { per_worker = true }])`.
//!
//! The startup file runs on every worker, so each worker's Lua state registers the same
//! functions. Init functions run on every worker, once its file has loaded and before
//! its listeners accept (an error in one stops dpm at startup, with its `file:line`).
//! A task is a coroutine started once the workers run; it may loop forever with
//! `core.msleep`. A task registered plainly runs **once per process**, on worker 0 (the
//! other workers' registrations of it are ignored); with `per_worker = true` it runs on
//! every worker. A task registered from a running task or callback starts at once (on the
//! worker that registered it). A task that raises is logged with its `file:line` and
//! ends; its worker goes on. A hot reload stops the old state's tasks when the new
//! state's start.

use std::cell::RefCell;
use std::rc::Rc;

use mlua::{Function, Lua, Table, Value};

use crate::contexts::{self, Context};
use crate::errors::raise;
use crate::host::Host;

/// Functions registered while the file loads, waiting for their moment.
#[derive(Clone, Default)]
pub(crate) struct Pending {
    inits: Rc<RefCell<Vec<Function>>>,
    tasks: Rc<RefCell<Vec<Function>>>,
}

/// Registers `core.register_init` and `core.register_task` on `core`.
pub fn register(lua: &Lua, core: &Table, host: &Rc<Host>) -> mlua::Result<()> {
    let pending = Pending::default();
    lua.set_app_data(pending.clone());
    let p = pending.clone();
    core.set(
        "register_init",
        lua.create_function(move |lua, func: Value| {
            contexts::in_body(lua, "core.register_init")?;
            p.inits
                .borrow_mut()
                .push(function(lua, "core.register_init", func)?);
            Ok(())
        })?,
    )?;
    let h = host.clone();
    core.set(
        "register_task",
        lua.create_function(move |lua, (func, options): (Value, Option<Table>)| {
            let func = function(lua, "core.register_task", func)?;
            let per_worker = match &options {
                Some(o) => o.get::<Option<bool>>("per_worker")?.unwrap_or(false),
                None => false,
            };
            if !per_worker && h.worker.index() != 0 {
                // Once per process: worker 0's registration runs it.
                return Ok(());
            }
            match contexts::current(lua) {
                Context::Body | Context::Init => pending.tasks.borrow_mut().push(func),
                _ => start(&h, func),
            }
            Ok(())
        })?,
    )?;
    Ok(())
}

fn function(lua: &Lua, what: &str, value: Value) -> mlua::Result<Function> {
    match value {
        Value::Function(f) => Ok(f),
        other => Err(raise(
            lua,
            format!(
                "{what}: the argument must be a function, not a {}",
                other.type_name()
            ),
        )),
    }
}

/// Runs the init functions (the state is in the init context meanwhile). The first
/// error is returned as its one line.
pub fn run_inits(host: &Host) -> Result<(), String> {
    let Some(pending) = host.lua.app_data_ref::<Pending>().map(|p| p.clone()) else {
        return Ok(());
    };
    let inits: Vec<Function> = pending.inits.borrow_mut().drain(..).collect();
    let before = contexts::enter(&host.lua, Context::Init);
    let mut outcome = Ok(());
    for init in inits {
        if let Err(line) = host.call_sync_as(&init, "init function", ()) {
            outcome = Err(line);
            break;
        }
    }
    contexts::enter(&host.lua, before);
    outcome
}

/// Starts the tasks registered while the file loaded (they run once the worker's
/// runtime polls them).
pub fn start_registered(host: &Rc<Host>) {
    let Some(pending) = host.lua.app_data_ref::<Pending>().map(|p| p.clone()) else {
        return;
    };
    let tasks: Vec<Function> = pending.tasks.borrow_mut().drain(..).collect();
    for task in tasks {
        start(host, task);
    }
}

/// Starts a task; it ends by itself, or when a reload replaces its state.
fn start(host: &Rc<Host>, task: Function) {
    let h = host.clone();
    host.spawn_until(crate::host::Phase::Replaced, async move {
        let host = h;
        // An error is logged by call_as with its file:line; the task simply ends.
        let _ = host.call_as(task, "task", ()).await;
        // A verdict of the budget on this task is not a client command's to answer.
        crate::sandbox::take_tripped(&host.lua);
    });
}
