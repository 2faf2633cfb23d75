//! Values collected from every worker (neper's `collect`, in the proxy):
//! `dpm.collect(name, value)` marks a value of this worker's Lua state under a name, and
//! `dpm.collected(name)` returns every worker's current value of it, as a table from
//! worker number to value.
//!
//! Each worker's Lua state lives on its own thread, so a value is read where it lives:
//! the first `dpm.collect` of a worker starts a small task that answers requests for its
//! values; `dpm.collected` sends one request to every worker that has such a task and
//! waits for their answers (so it must be called where Lua may wait: a callback, a timer,
//! a filter — not the startup file's body). A value crosses threads as a
//! [`LuaCopy`](crate::copy::LuaCopy).

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use mlua::{Lua, Table, Value};
use tokio::sync::{mpsc, oneshot};

use crate::copy::LuaCopy;

/// A request for the value a worker collects under `name`.
struct Ask {
    name: String,
    reply: oneshot::Sender<Option<LuaCopy>>,
}

/// Every worker's mailbox for [`Ask`]s, by worker number.
static MAILBOXES: LazyLock<Mutex<HashMap<usize, mpsc::UnboundedSender<Ask>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// How long `dpm.collected` waits for a worker (a worker busy in a long callback answers
/// late; its value is left out rather than waited for).
const ANSWER_WITHIN: Duration = Duration::from_secs(1);

/// This worker's collected values: name → the value, kept in the Lua registry; and
/// whether the state answers for the worker yet.
pub(crate) struct Marked {
    values: mlua::RegistryKey,
    published: std::cell::Cell<bool>,
}

/// Registers `dpm.collect` and `dpm.collected`.
pub fn register(lua: &Lua, dpm: &Table, host: &std::rc::Rc<crate::host::Host>) -> mlua::Result<()> {
    let worker = host.worker.index();
    let h = std::rc::Rc::downgrade(host);
    dpm.set(
        "collect",
        lua.create_function(move |lua, (name, value): (String, Value)| {
            let marked = marked_table(lua)?;
            marked.set(name, value.clone())?;
            // A state answers for its worker once in force: a reload's new state while
            // it loads (or after its load failed) does not take the old one's place.
            let active = h
                .upgrade()
                .is_some_and(|h| h.phase() == crate::host::Phase::Active);
            if active {
                publish(lua, worker);
            }
            Ok(value)
        })?,
    )?;
    dpm.set(
        "collected",
        lua.create_async_function(|lua, name: String| async move {
            let _wait = crate::contexts::may_wait(&lua, "dpm.collected")?;
            let boxes: Vec<(usize, mpsc::UnboundedSender<Ask>)> = {
                let boxes = MAILBOXES.lock().unwrap_or_else(|e| e.into_inner());
                boxes.iter().map(|(w, s)| (*w, s.clone())).collect()
            };
            let mut waiting = Vec::new();
            for (worker, mailbox) in boxes {
                let (reply, answer) = oneshot::channel();
                let ask = Ask {
                    name: name.clone(),
                    reply,
                };
                if mailbox.send(ask).is_ok() {
                    waiting.push((worker, answer));
                }
            }
            let out = lua.create_table()?;
            for (worker, answer) in waiting {
                if let Ok(Ok(Some(copy))) = tokio::time::timeout(ANSWER_WITHIN, answer).await {
                    out.set(worker, copy.to_lua(&lua)?)?;
                }
            }
            Ok(out)
        })?,
    )?;
    Ok(())
}

/// This state's table of marked values (made at the first call).
fn marked_table(lua: &Lua) -> mlua::Result<Table> {
    if let Some(marked) = lua.app_data_ref::<Marked>() {
        return lua.registry_value(&marked.values);
    }
    let table = lua.create_table()?;
    let values = lua.create_registry_value(table.clone())?;
    lua.set_app_data(Marked {
        values,
        published: std::cell::Cell::new(false),
    });
    Ok(table)
}

/// Makes this state the one that answers for `worker`'s collected values (once it has
/// any; the host calls it when its generation is put in force, `dpm.collect` when it
/// runs in a state in force): starts its mailbox task.
pub(crate) fn publish(lua: &Lua, worker: usize) {
    match lua.app_data_ref::<Marked>() {
        Some(marked) if !marked.published.replace(true) => {}
        _ => return,
    }
    let (sender, mut asks) = mpsc::unbounded_channel::<Ask>();
    MAILBOXES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(worker, sender);
    let weak = lua.weak();
    tokio::task::spawn_local(async move {
        while let Some(ask) = asks.recv().await {
            let Some(lua) = weak.try_upgrade() else {
                return;
            };
            let copy = lookup(&lua, &ask.name).unwrap_or_else(|e| {
                tracing::error!("ERROR: dpm.collected('{}'): {e}", ask.name);
                None
            });
            let _ = ask.reply.send(copy);
        }
    });
}

/// A copy of the value this worker collects under `name` (None: it collects none).
fn lookup(lua: &Lua, name: &str) -> mlua::Result<Option<LuaCopy>> {
    let Some(marked) = lua.app_data_ref::<Marked>() else {
        return Ok(None);
    };
    let table: Table = lua.registry_value(&marked.values)?;
    match table.get::<Value>(name)? {
        Value::Nil => Ok(None),
        value => LuaCopy::from_lua(lua, &value).map(Some),
    }
}
