//! The script runtime (neper's model, for MySQL): where a `dpm bench` script runs and
//! how its parts meet.
//!
//! A script has four parts: shared variables, hooks, `run()`, and the processing of what
//! `collect()` gathered. It runs in the **main thread** first ([`run_script`]): the
//! first two parts there only prepare (`collect(v)` returns an opaque wrapper, hooks are
//! checked); `run()` looks up where each wrapper is held (a local of a function on the
//! stack, or a global) and starts the load threads. Each **load thread** has its own Lua
//! state and runs the same script as a coroutine ([`ThreadScript`]) until it reaches
//! `run()`, where that copy stops with its locals, hooks and workload function alive; in
//! a load thread `collect(v)` returns `v` itself. The thread's connections then call the
//! hooks and the workload. When the run is over, each thread's `run()` reads the current
//! value of every collected variable where the main thread found its wrapper (so
//! `local n = collect(0)` later changed by `n = n + 1` in a hook is read as changed),
//! copies them out ([`LuaCopy`]), and that copy of the script ends there. The main
//! thread's `run()` fills each wrapper with `{ [1] = thread 1's value, ... }`, returns
//! the report as a table, and the script's last part runs in the main thread alone.
//!
//! The part before `run()` therefore runs once per thread plus once: keep it to reading
//! and defining (its `print`s show once, from the main thread; a load thread's `print`
//! is silent until `run()`).

mod api;
mod conn;
mod packet;

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::path::Path;
use std::rc::Rc;

use dpm_lua::copy::LuaCopy;
use dpm_lua::errors::error_line;
use mlua::{Function, Lua, Table, Value};
use tokio::sync::oneshot;

use crate::client::io::PacketHooks;
use crate::client::Conn;
use crate::oltp::Builtin;
use crate::report::Report;
use crate::runner::{self, RunConfig, TxnError, Workload};

pub use conn::LuaConn;

/// Where the main thread found a collected value's wrapper.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// Local number `index` of the function `level` frames above `run()`.
    Local {
        /// `debug.getlocal` level, counted from inside `run`.
        level: i64,
        /// `debug.getlocal` index.
        index: i64,
    },
    /// A global variable.
    Global(String),
}

/// Per collected value (in `collect` order), where it is held, if found.
pub type Places = Vec<Option<Place>>;

/// The main thread's part of `collect` and `run`.
const MAIN_PRELUDE: &str = r#"
local rust_run = ...
local wrappers, index, ran = {}, setmetatable({}, { __mode = "k" }), false
function collect(value)
    if ran then error("collect() must be called before run()", 2) end
    local w = {}
    wrappers[#wrappers + 1] = w
    index[w] = #wrappers
    return w
end
function run()
    if ran then error("run() may be called only once", 2) end
    ran = true
    local places, level = {}, 2
    while true do
        local info = debug.getinfo(level, "S")
        if not info then break end
        if info.what ~= "C" then
            local i = 1
            while true do
                local name, v = debug.getlocal(level, i)
                if not name then break end
                local k = type(v) == "table" and index[v]
                if k and not places[k] and name:sub(1, 1) ~= "(" then
                    places[k] = { level = level, index = i }
                end
                i = i + 1
            end
        end
        level = level + 1
    end
    for name, v in pairs(_G) do
        local k = type(name) == "string" and type(v) == "table" and index[v]
        if k and not places[k] then places[k] = { global = name } end
    end
    local results, report = rust_run(#wrappers, places)
    for k, w in ipairs(wrappers) do
        for t, v in pairs(results[k]) do w[t] = v end
    end
    return report
end
return function() return ran end
"#;

/// A load thread's part of `collect` and `run`.
const THREAD_PRELUDE: &str = r#"
local rust_reached, rust_wait, rust_finish, rust_mark, places = ...
function collect(value)
    rust_mark(value)
    return value
end
function run()
    rust_reached()
    rust_wait()
    local values = {}
    for k, place in pairs(places) do
        if place.level then
            local name, v = debug.getlocal(place.level, place.index)
            if name then values[k] = { v } end
        elseif place.global then
            values[k] = { _G[place.global] }
        end
    end
    rust_finish(values)
end
"#;

/// Runs a script in the main thread: everything up to `run()`, the load (see
/// [`runner::run`]), and the rest. `config.workload` is replaced by the script; a
/// `--workload` built-in in it serves when the script registers no workload function.
/// Returns the report (None if the script failed before any run) and the script's error.
pub fn run_script(path: &Path, config: RunConfig) -> (Option<Report>, Result<(), String>) {
    let source = match std::fs::read(path) {
        Ok(s) => s,
        Err(e) => return (None, Err(format!("cannot read {}: {e}", path.display()))),
    };
    let lua = new_lua();
    let report: Rc<RefCell<Option<Report>>> = Rc::new(RefCell::new(None));
    let result = (|| -> Result<(), String> {
        let facts = api::Facts {
            thread: 0,
            threads: config.threads,
            connections: config.connections,
            duration: config.duration.as_secs_f64(),
        };
        let fail = |e: mlua::Error| error_line(&e);
        let registered = api::install(&lua, facts).map_err(fail)?;
        let (fallback, oltp) = match &config.workload {
            Workload::Builtin(b, o) => (Some(*b), o.clone()),
            Workload::Script { builtin, oltp, .. } => (*builtin, oltp.clone()),
        };
        let run_fn = {
            let (report, path) = (report.clone(), path.to_path_buf());
            lua.create_function(move |lua, (marks, places): (usize, Table)| {
                let places = read_places(marks, &places)?;
                let mut cfg = config.clone();
                let named = registered.borrow().builtin.clone();
                cfg.workload = Workload::Script {
                    path: path.clone(),
                    places,
                    marks,
                    builtin: named.as_deref().and_then(Builtin::from_name).or(fallback),
                    oltp: oltp.clone(),
                };
                let outcome = runner::run(&cfg).map_err(mlua::Error::runtime)?;
                let results = lua.create_table()?;
                for k in 0..marks {
                    let per_thread = lua.create_table()?;
                    for (t, values) in outcome.collected.iter().enumerate() {
                        if let Some(v) = values.get(k) {
                            per_thread.set(t + 1, v.to_lua(lua)?)?;
                        }
                    }
                    results.set(k + 1, per_thread)?;
                }
                let table = json_to_lua(lua, &outcome.report.json())?;
                let fatal = outcome.report.fatal.clone();
                *report.borrow_mut() = Some(outcome.report);
                if let Some(fatal) = fatal {
                    // The run failed: the script's last part does not run.
                    return Err(mlua::Error::runtime(fatal));
                }
                Ok((results, table))
            })
            .map_err(fail)?
        };
        let ran: Function = lua
            .load(MAIN_PRELUDE)
            .set_name("=dpm-bench")
            .call(run_fn)
            .map_err(fail)?;
        lua.load(&source[..])
            .set_name(format!("@{}", path.display()))
            .exec()
            .map_err(fail)?;
        if !ran.call::<bool>(()).map_err(fail)? {
            lua.globals()
                .get::<Function>("run")
                .and_then(|run| run.call::<Value>(()))
                .map_err(fail)?;
        }
        Ok(())
    })();
    let report = report.borrow_mut().take();
    let result = match (&report, result) {
        // The run's own failure is in the report; say it once.
        (Some(r), Err(_)) if r.fatal.is_some() => Err(r.fatal.clone().unwrap_or_default()),
        (_, result) => result,
    };
    (report, result)
}

/// A Lua state with the safe standard libraries and `debug` (which `run()` uses to find
/// collected variables, and scripts may use too: the script is the user's own program).
fn new_lua() -> Lua {
    // SAFETY: the debug library is what mlua calls unsafe (it can break the sandbox);
    // a load generator runs its user's own script, unsandboxed by design.
    unsafe {
        Lua::unsafe_new_with(
            mlua::StdLib::ALL_SAFE | mlua::StdLib::DEBUG,
            mlua::LuaOptions::default(),
        )
    }
}

fn read_places(marks: usize, places: &Table) -> mlua::Result<Places> {
    let mut out = vec![None; marks];
    for (k, slot) in out.iter_mut().enumerate() {
        let Some(place) = places.get::<Option<Table>>(k + 1)? else {
            continue;
        };
        if let Some(global) = place.get::<Option<String>>("global")? {
            *slot = Some(Place::Global(global));
        } else {
            *slot = Some(Place::Local {
                level: place.get("level")?,
                index: place.get("index")?,
            });
        }
    }
    Ok(out)
}

fn json_to_lua(lua: &Lua, v: &serde_json::Value) -> mlua::Result<Value> {
    Ok(match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Boolean(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Number(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => Value::String(lua.create_string(s)?),
        serde_json::Value::Array(items) => {
            let t = lua.create_table()?;
            for item in items {
                t.raw_push(json_to_lua(lua, item)?)?;
            }
            Value::Table(t)
        }
        serde_json::Value::Object(map) => {
            let t = lua.create_table()?;
            for (k, item) in map {
                t.set(k.as_str(), json_to_lua(lua, item)?)?;
            }
            Value::Table(t)
        }
    })
}

/// A thread's collected values, or why they could not be copied.
type Values = Result<Vec<LuaCopy>, String>;

/// A load thread's copy of the script, stopped in `run()`.
pub struct ThreadScript {
    lua: Lua,
    registered: api::Shared,
    thread: usize,
    packet_hooks: Option<Rc<dyn PacketHooks>>,
    /// Tells the copy stopped in `run()` that the load is over.
    release: RefCell<Option<oneshot::Sender<()>>>,
    /// The values its `run()` reads, once released.
    values: RefCell<Option<oneshot::Receiver<Values>>>,
    /// The coroutine running the script.
    chunk: RefCell<Option<tokio::task::JoinHandle<()>>>,
    /// Marked values (for those the main thread did not find in a variable).
    marks: mlua::RegistryKey,
    /// Error-queue watchers (`client_recverr`).
    watchers: RefCell<Vec<tokio::task::JoinHandle<()>>>,
    /// A hook's failure outside a connection's own call (a recverr watcher).
    failed: Rc<RefCell<Option<String>>>,
    marks_count: usize,
}

impl ThreadScript {
    /// Loads the script in a new Lua state and runs it until `run()` (or its end).
    pub async fn start(
        path: &Path,
        index: usize,
        places: Places,
        marks_count: usize,
    ) -> Result<ThreadScript, String> {
        let thread = index + 1;
        let at = |e: mlua::Error| format!("thread {thread}: {}", error_line(&e));
        let source =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let lua = new_lua();
        let facts = api::Facts {
            thread,
            threads: 0,
            connections: 0,
            duration: 0.0,
        };
        let registered = api::install(&lua, facts).map_err(at)?;
        let reached = Rc::new(Cell::new(false));
        silence_print_until(&lua, reached.clone()).map_err(at)?;
        let (reached_tx, reached_rx) = oneshot::channel::<()>();
        let (release_tx, release_rx) = oneshot::channel::<()>();
        let (values_tx, values_rx) = oneshot::channel();
        let marks = lua.create_table().map_err(at)?;
        let marks_key = lua.create_registry_value(marks.clone()).map_err(at)?;
        let prelude_args = thread_functions(
            &lua,
            reached.clone(),
            reached_tx,
            release_rx,
            values_tx,
            marks,
            marks_count,
            &places,
        )
        .map_err(at)?;
        lua.load(THREAD_PRELUDE)
            .set_name("=dpm-bench")
            .call::<()>(prelude_args)
            .map_err(at)?;
        let chunk = lua
            .load(&source[..])
            .set_name(format!("@{}", path.display()))
            .into_function()
            .map_err(at)?;
        let (done_tx, done_rx) = oneshot::channel::<Result<(), String>>();
        let handle = tokio::task::spawn_local(async move {
            let result = chunk.call_async::<()>(()).await.map_err(|e| error_line(&e));
            let _ = done_tx.send(result);
        });
        // Either the copy reaches run(), or it ends (an error, or no run() at all).
        tokio::select! {
            _ = reached_rx => {}
            done = done_rx => match done {
                Ok(Ok(())) => reached.set(true),
                Ok(Err(e)) => return Err(format!("thread {thread}: {e}")),
                Err(_) => return Err(format!("thread {thread}: the script stopped")),
            },
        }
        let (send, recv) = {
            let r = registered.borrow();
            (r.sendmsg.clone(), r.recvmsg.clone())
        };
        let packet_hooks: Option<Rc<dyn PacketHooks>> = if send.is_some() || recv.is_some() {
            Some(Rc::new(packet::LuaPacketHooks {
                send,
                recv,
                lua: lua.clone(),
            }))
        } else {
            None
        };
        Ok(ThreadScript {
            lua,
            registered,
            thread,
            packet_hooks,
            release: RefCell::new(Some(release_tx)),
            values: RefCell::new(Some(values_rx)),
            chunk: RefCell::new(Some(handle)),
            marks: marks_key,
            watchers: RefCell::new(Vec::new()),
            failed: Rc::new(RefCell::new(None)),
            marks_count,
        })
    }

    /// True when the script registered a workload function.
    pub fn has_workload(&self) -> bool {
        self.registered.borrow().workload.is_some()
    }

    /// The packet hooks, if any.
    pub fn packet_hooks(&self) -> Option<Rc<dyn PacketHooks>> {
        self.packet_hooks.clone()
    }

    /// Runs the `client_socket` hooks (the socket exists, it is not connected yet).
    pub fn client_socket(&self, fd: RawFd, addr: &SocketAddr) -> Result<(), String> {
        let funcs = self.registered.borrow().client_socket.clone();
        self.socket_hooks("client_socket", &funcs, fd, addr)
    }

    /// Runs the `client_close` hooks (the socket is still open).
    pub fn client_close(&self, fd: RawFd, addr: &SocketAddr) -> Result<(), String> {
        let funcs = self.registered.borrow().client_close.clone();
        self.socket_hooks("client_close", &funcs, fd, addr)
    }

    fn socket_hooks(
        &self,
        what: &str,
        funcs: &[Function],
        fd: RawFd,
        addr: &SocketAddr,
    ) -> Result<(), String> {
        if funcs.is_empty() {
            return Ok(());
        }
        let inet = dpm_engine::sockets::SocketAddress::Inet(*addr);
        let table = dpm_lua::sockets::address_table(&self.lua, &inet)
            .map_err(|e| format!("{what}: {}", error_line(&e)))?;
        for f in funcs {
            f.call::<()>((fd, table.clone()))
                .map_err(|e| format!("{what}: {}", error_line(&e)))?;
        }
        Ok(())
    }

    /// Starts watching the connection's error queue if `client_recverr` is registered.
    pub fn watch_errors(&self, fd: RawFd) {
        let Some(hook) = self.registered.borrow().recverr.clone() else {
            return;
        };
        if let Some(h) = packet::watch_errors(self.lua.clone(), hook, fd, self.failed.clone()) {
            self.watchers.borrow_mut().push(h);
        }
    }

    /// The Lua side of a new connection (its `setup` has run).
    pub async fn connection(&self, conn: Conn, index: usize) -> Result<LuaConn, TxnError> {
        let (workload, setup) = self
            .registered
            .borrow()
            .workload
            .clone()
            .ok_or_else(|| TxnError::Script("no workload function".into()))?;
        LuaConn::new(&self.lua, conn, index + 1, self.thread, workload, setup).await
    }

    /// After the load: stops the watchers, lets the copy in `run()` read its collected
    /// values, and returns them (`collect` order).
    pub async fn finish(&self) -> Result<Vec<LuaCopy>, String> {
        for w in self.watchers.borrow_mut().drain(..) {
            w.abort();
        }
        if let Some(e) = self.failed.borrow_mut().take() {
            return Err(format!("thread {}: {e}", self.thread));
        }
        let release = self.release.borrow_mut().take();
        let values = self.values.borrow_mut().take();
        let from_run = match (release, values) {
            (Some(release), Some(values)) => match release.send(()) {
                Ok(()) => tokio::time::timeout(std::time::Duration::from_secs(5), values)
                    .await
                    .ok()
                    .and_then(Result::ok),
                Err(()) => None,
            },
            _ => None,
        };
        if let Some(handle) = self.chunk.borrow_mut().take() {
            handle.abort();
        }
        match from_run {
            Some(values) => values.map_err(|e| format!("thread {}: {e}", self.thread)),
            // The script ended without run(): the marked values themselves.
            None => {
                let copy = || -> mlua::Result<Vec<LuaCopy>> {
                    let marks: Table = self.lua.registry_value(&self.marks)?;
                    (1..=self.marks_count)
                        .map(|k| LuaCopy::from_lua(&self.lua, &marks.get::<Value>(k)?))
                        .collect()
                };
                copy().map_err(|e| format!("thread {}: {}", self.thread, error_line(&e)))
            }
        }
    }
}

/// A load thread's `print` says nothing until its copy of the script reaches `run()`
/// (the main thread has printed the same already).
fn silence_print_until(lua: &Lua, reached: Rc<Cell<bool>>) -> mlua::Result<()> {
    let print: Function = lua.globals().get("print")?;
    lua.globals().set(
        "print",
        lua.create_function(move |_, args: mlua::MultiValue| {
            if reached.get() {
                print.call::<()>(args)?;
            }
            Ok(())
        })?,
    )
}

/// The Rust functions of [`THREAD_PRELUDE`]: reached, wait, finish, mark, places.
#[allow(clippy::too_many_arguments)]
fn thread_functions(
    lua: &Lua,
    reached: Rc<Cell<bool>>,
    reached_tx: oneshot::Sender<()>,
    release_rx: oneshot::Receiver<()>,
    values_tx: oneshot::Sender<Values>,
    marks: Table,
    marks_count: usize,
    places: &Places,
) -> mlua::Result<(Function, Function, Function, Function, Table)> {
    let reached_tx = RefCell::new(Some(reached_tx));
    let on_reached = lua.create_function(move |_, ()| {
        reached.set(true);
        if let Some(tx) = reached_tx.borrow_mut().take() {
            let _ = tx.send(());
        }
        Ok(())
    })?;
    let release_rx = Rc::new(RefCell::new(Some(release_rx)));
    let wait = lua.create_async_function(move |_, ()| {
        let rx = release_rx.borrow_mut().take();
        async move {
            match rx {
                Some(rx) => {
                    let _ = rx.await;
                }
                None => std::future::pending::<()>().await,
            }
            Ok(())
        }
    })?;
    let marks_for_finish = marks.clone();
    let values_tx = RefCell::new(Some(values_tx));
    let finish = lua.create_async_function(move |lua, found: Table| {
        let copies = (|| -> mlua::Result<Vec<LuaCopy>> {
            let mut out = Vec::with_capacity(marks_count);
            for k in 1..=marks_count {
                let value = match found.get::<Option<Table>>(k)? {
                    Some(boxed) => boxed.get::<Value>(1)?,
                    None => marks_for_finish.get::<Value>(k)?,
                };
                out.push(LuaCopy::from_lua(&lua, &value)?);
            }
            Ok(out)
        })()
        .map_err(|e| error_line(&e));
        if let Some(tx) = values_tx.borrow_mut().take() {
            let _ = tx.send(copies);
        }
        // This copy of the script ends here: the rest runs in the main thread only.
        async move { std::future::pending::<mlua::Result<()>>().await }
    })?;
    let count = Cell::new(0usize);
    let mark = lua.create_function(move |_, value: Value| {
        count.set(count.get() + 1);
        marks.raw_set(count.get(), value)
    })?;
    let table = lua.create_table()?;
    for (k, place) in places.iter().enumerate() {
        let Some(place) = place else { continue };
        let t = lua.create_table()?;
        match place {
            Place::Local { level, index } => {
                t.set("level", *level)?;
                t.set("index", *index)?;
            }
            Place::Global(name) => t.set("global", name.as_str())?,
        }
        table.set(k + 1, t)?;
    }
    Ok((on_reached, wait, finish, mark, table))
}
