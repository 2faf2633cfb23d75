//! Values collected from every worker (neper's `collect`, in the proxy):
//! `dpm.collect(name, value)` marks a value of this worker's Lua state under a name, and
//! `dpm.collected(name)` returns every worker's current value of it, as a table from
//! worker number to value.
//!
//! Each worker's Lua state lives on its own thread, so a value is read where it lives:
//! the first `dpm.collect` of a worker starts a small task that answers requests for its
//! values; `dpm.collected` sends one request to every worker that has such a task and
//! waits for their answers (so it must be called where Lua may wait: a callback, a timer,
//! a filter — not the startup file's body). A value crosses threads as a copy ([`Copy`]:
//! nil, booleans, numbers, strings, and tables of them, up to 16 levels deep).

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use mlua::{Lua, Table, Value};
use tokio::sync::{mpsc, oneshot};

use crate::errors::raise;

/// A request for the value a worker collects under `name`.
struct Ask {
    name: String,
    reply: oneshot::Sender<Option<Copy>>,
}

/// Every worker's mailbox for [`Ask`]s, by worker number.
static MAILBOXES: LazyLock<Mutex<HashMap<usize, mpsc::UnboundedSender<Ask>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// How long `dpm.collected` waits for a worker (a worker busy in a long callback answers
/// late; its value is left out rather than waited for).
const ANSWER_WITHIN: Duration = Duration::from_secs(1);

/// Nesting beyond which a table is not copied (a table that contains itself stops here).
const MAX_DEPTH: usize = 16;

/// A Lua value copied out of one Lua state into another.
#[derive(Debug, Clone, PartialEq)]
enum Copy {
    Nil,
    Bool(bool),
    Int(i64),
    Num(f64),
    Str(Vec<u8>),
    Table(Vec<(Copy, Copy)>),
}

/// This worker's collected values: name → the value, kept in the Lua registry.
struct Marked(mlua::RegistryKey);

/// Registers `dpm.collect` and `dpm.collected`.
pub fn register(lua: &Lua, dpm: &Table, worker: usize) -> mlua::Result<()> {
    dpm.set(
        "collect",
        lua.create_function(move |lua, (name, value): (String, Value)| {
            let marked = marked_table(lua, worker)?;
            marked.set(name, value.clone())?;
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
                    out.set(worker, to_lua(&lua, &copy)?)?;
                }
            }
            Ok(out)
        })?,
    )?;
    Ok(())
}

/// This worker's table of marked values; the first call starts the worker's mailbox.
fn marked_table(lua: &Lua, worker: usize) -> mlua::Result<Table> {
    if let Some(marked) = lua.app_data_ref::<Marked>() {
        return lua.registry_value(&marked.0);
    }
    let table = lua.create_table()?;
    let key = lua.create_registry_value(table.clone())?;
    lua.set_app_data(Marked(key));
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
    Ok(table)
}

/// A copy of the value this worker collects under `name` (None: it collects none).
fn lookup(lua: &Lua, name: &str) -> mlua::Result<Option<Copy>> {
    let Some(marked) = lua.app_data_ref::<Marked>() else {
        return Ok(None);
    };
    let table: Table = lua.registry_value(&marked.0)?;
    match table.get::<Value>(name)? {
        Value::Nil => Ok(None),
        value => copy(lua, &value, 0).map(Some),
    }
}

fn copy(lua: &Lua, value: &Value, depth: usize) -> mlua::Result<Copy> {
    Ok(match value {
        Value::Nil => Copy::Nil,
        Value::Boolean(b) => Copy::Bool(*b),
        Value::Integer(n) => Copy::Int(*n),
        Value::Number(n) => Copy::Num(*n),
        Value::String(s) => Copy::Str(s.as_bytes().to_vec()),
        Value::Table(t) if depth < MAX_DEPTH => {
            let mut pairs = Vec::new();
            for pair in t.pairs::<Value, Value>() {
                let (k, v) = pair?;
                pairs.push((copy(lua, &k, depth + 1)?, copy(lua, &v, depth + 1)?));
            }
            Copy::Table(pairs)
        }
        Value::Table(_) => {
            return Err(raise(
                lua,
                format!("a collected table nests deeper than {MAX_DEPTH} levels"),
            ))
        }
        other => {
            return Err(raise(
                lua,
                format!("a collected value cannot be a {}", other.type_name()),
            ))
        }
    })
}

fn to_lua(lua: &Lua, copy: &Copy) -> mlua::Result<Value> {
    Ok(match copy {
        Copy::Nil => Value::Nil,
        Copy::Bool(b) => Value::Boolean(*b),
        Copy::Int(n) => Value::Integer(*n),
        Copy::Num(n) => Value::Number(*n),
        Copy::Str(s) => Value::String(lua.create_string(s)?),
        Copy::Table(pairs) => {
            let t = lua.create_table()?;
            for (k, v) in pairs {
                t.set(to_lua(lua, k)?, to_lua(lua, v)?)?;
            }
            Value::Table(t)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_copy_across_states_and_refuse_what_cannot_cross() {
        let a = Lua::new();
        let b = Lua::new();
        let value: Value = a
            .load("return { n = 3, name = 'w', on = true, ratio = 0.5, list = { 1, 2 } }")
            .eval()
            .unwrap();
        let copied = to_lua(&b, &copy(&a, &value, 0).unwrap()).unwrap();
        b.globals().set("v", copied).unwrap();
        let ok: bool = b
            .load(
                "return v.n == 3 and v.name == 'w' and v.on and v.ratio == 0.5 and v.list[2] == 2",
            )
            .eval()
            .unwrap();
        assert!(ok);
        let f: Value = a.load("return { f = print }").eval().unwrap();
        let err = copy(&a, &f, 0).unwrap_err().to_string();
        assert!(err.contains("cannot be a function"), "{err}");
        let cycle: Value = a.load("local t = {} t.t = t return t").eval().unwrap();
        let err = copy(&a, &cycle, 0).unwrap_err().to_string();
        assert!(err.contains("deeper than 16"), "{err}");
    }
}
