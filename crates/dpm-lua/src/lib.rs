//! Lua bindings for dpm: the `dpm` module a startup file programs the proxy with.
//!
//! It owns the per-worker Lua state ([`host::Host`]), the `dpm` table (functions and
//! constants with the original DPM's names, values and argument orders), the
//! connection and packet objects, callback registration and package callback objects,
//! and the [`dpm_engine::EventSink`] that calls Lua when a registered event fires.
//!
//! It must not know how bytes move: sockets, buffers and forwarding are the engine's;
//! it asks the engine through [`dpm_engine::Worker`] and answers through the sink.
//! Wire formats come from `dpm-protocol`.

pub mod callbacks;
pub mod conn_object;
pub mod constants;
pub mod core_lib;
pub mod errors;
pub mod functions;
pub mod host;
pub mod packets;
pub mod timer;

use std::path::Path;
use std::rc::Rc;

use dpm_engine::Worker;
use mlua::Lua;

/// Lua 5.1 names that scripts written for the original DPM (Lua 5.1) use.
const COMPAT_PRELUDE: &str = r#"
unpack = unpack or table.unpack
loadstring = loadstring or load
table.maxn = table.maxn or function(t) local n = 0 for k in pairs(t) do if type(k) == "number" and k > n then n = k end end return n end
"#;

/// dpm's Lua libraries compiled into the binary, so `require "dpml"` works from any
/// directory even where the source tree is absent. A file of the same name found on
/// `package.path` (e.g. an edited `lua/dpml.lua`) takes precedence.
const EMBEDDED_MODULES: &[(&str, &str)] = &[("dpml", include_str!("../../../lua/dpml.lua"))];

/// Where dpm's own Lua libraries (`dpml.lua`, the demos) are: `$DPM_LUA_DIR`, else the
/// `lua/` folder of the source tree this binary was built from.
fn lua_library_dir() -> String {
    std::env::var("DPM_LUA_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../lua").to_string())
}

/// Sets a worker up: creates its Lua state with the `dpm` table, installs the event
/// sink and runs the startup file. Errors come back as one line, `file:line: message`.
pub fn start_worker(worker: &Worker, startfile: &Path) -> Result<(), String> {
    let lua = Lua::new();
    let host = Host::new(worker.clone(), lua.clone());
    install(&lua, &host, startfile).map_err(|e| errors::error_line(&e))?;
    worker.set_sink(Rc::new(host::LuaSink(host.clone())));
    let name = startfile.display().to_string();
    let code = std::fs::read(startfile)
        .map_err(|e| format!("{name}: cannot read the startup file: {e}"))?;
    lua.load(&code[..])
        .set_name(format!("@{name}"))
        .exec()
        .map_err(|e| errors::error_line(&e))
}

use host::Host;

/// Appends a `package.searchers` entry that serves [`EMBEDDED_MODULES`].
fn install_embedded_searcher(lua: &Lua, package: &mlua::Table) -> mlua::Result<()> {
    let searchers: mlua::Table = package.get("searchers")?;
    let searcher = lua.create_function(|lua, name: String| {
        match EMBEDDED_MODULES.iter().find(|(module, _)| *module == name) {
            Some((module, source)) => {
                let loader = lua
                    .load(*source)
                    .set_name(format!("=[dpm embedded {module}.lua]"))
                    .into_function()?;
                Ok((
                    mlua::Value::Function(loader),
                    mlua::Value::String(lua.create_string(format!("embedded:{module}"))?),
                ))
            }
            None => Ok((
                mlua::Value::String(
                    lua.create_string(format!("\n\tno embedded dpm module '{name}'"))?,
                ),
                mlua::Value::Nil,
            )),
        }
    })?;
    searchers.push(searcher)?;
    Ok(())
}

fn install(lua: &Lua, host: &Rc<Host>, startfile: &Path) -> mlua::Result<()> {
    lua.load(COMPAT_PRELUDE).set_name("=dpm-compat").exec()?;
    let dir = startfile
        .parent()
        .map(|d| d.display().to_string())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| ".".into());
    let package: mlua::Table = lua.globals().get("package")?;
    let path: String = package.get("path")?;
    let lib = lua_library_dir();
    package.set(
        "path",
        format!("{dir}/?.lua;./lua/?.lua;./lua/lib/?.lua;{lib}/?.lua;{path}"),
    )?;
    install_embedded_searcher(lua, &package)?;
    let dpm = lua.create_table()?;
    constants::register(lua, &dpm)?;
    functions::register(lua, &dpm, host)?;
    packets::register(lua, &dpm, host)?;
    let h = host.clone();
    dpm.set(
        "new_timer",
        lua.create_function(move |_, ()| Ok(timer::TimerObject::new(h.clone())))?,
    )?;
    let h = host.clone();
    dpm.set(
        "stats",
        lua.create_function(move |lua, ()| {
            let t = lua.create_table()?;
            let relaxed = std::sync::atomic::Ordering::Relaxed;
            t.set("lua_calls", h.stats.lua_calls.load(relaxed))?;
            t.set("packets_decoded", h.stats.packets_decoded.load(relaxed))?;
            t.set("connections", h.worker.conn_count())?;
            t.set("worker", h.worker.index())?;
            // The same counters summed over every worker of the process.
            let sums = dpm_engine::shared::shared().totals();
            let total = lua.create_table()?;
            total.set("workers", sums.workers)?;
            total.set("lua_calls", sums.lua_calls)?;
            total.set("packets_decoded", sums.packets_decoded)?;
            total.set("connections", sums.connections)?;
            t.set("total", total)?;
            Ok(t)
        })?,
    )?;
    core_lib::register(lua)?;
    // The startup file's own path, so a startfile can find files next to it.
    dpm.set("startfile", startfile.display().to_string())?;
    lua.globals().set("dpm", dpm)?;
    Ok(())
}
