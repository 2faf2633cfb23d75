//! Lua bindings for dpm: the `dpm` module a startup file programs the proxy with.
//!
//! It owns the per-worker Lua state ([`host::Host`]), the `dpm` table (functions and
//! constants with the original DPM's names, values and argument orders), the
//! connection and packet objects, callback registration and package callback objects,
//! the DPM state numbering and its mapping to the engine's protocol events
//! ([`dpm_events`]), and the [`dpm_engine::EventSink`] that calls Lua when a registered
//! event fires.
//!
//! It must not know how bytes move: sockets, buffers and forwarding are the engine's;
//! it asks the engine through [`dpm_engine::Worker`] and answers through the sink.
//! Wire formats come from `dpm-protocol`.

pub mod admin;
pub mod callbacks;
pub mod collect;
pub mod conn_object;
pub mod constants;
pub mod contexts;
pub mod copy;
pub mod core_lib;
pub mod cosocket;
pub mod dpm_events;
pub mod errors;
pub mod fetches;
pub mod functions;
pub mod host;
pub mod nice;
pub mod packets;
pub mod sandbox;
pub mod services;
pub mod sockets;
pub mod startup_output;
pub mod tasks;
pub mod tcp_service;
pub mod timeouts;
pub mod timer;
pub mod tls_options;

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

/// `pcall` and `xpcall` that give the script a dpm function's error the way the original
/// DPM raised it: the string `file:line: message` (mlua would hand over an error object).
/// Other error values (strings, tables from `error{...}`) pass unchanged. The chunk gets
/// the Rust function that turns mlua's error object into that string.
const PCALL_PRELUDE: &str = r#"local unwrap = ...
local raw_pcall, raw_xpcall = pcall, xpcall
local function finish(ok, ...)
    if ok then return true, ... end
    return false, unwrap((...))
end
function pcall(f, ...) return finish(raw_pcall(f, ...)) end
function xpcall(f, handler, ...)
    return raw_xpcall(f, function(e) return handler(unwrap(e)) end, ...)
end
"#;

/// Installs [`PCALL_PRELUDE`].
fn install_pcall(lua: &Lua) -> mlua::Result<()> {
    let unwrap = lua.create_function(|lua, value: mlua::Value| {
        Ok(match value {
            mlua::Value::Error(e) => {
                mlua::Value::String(lua.create_string(errors::error_line(&e))?)
            }
            other => other,
        })
    })?;
    lua.load(PCALL_PRELUDE)
        .set_name("=dpm-pcall")
        .call::<()>(unwrap)
}

/// dpm's Lua libraries compiled into the binary, so `require "dpml"` works from any
/// directory even where the source tree is absent. A file of the same name found on
/// `package.path` (e.g. an edited `lua/dpml.lua`) takes precedence.
const EMBEDDED_MODULES: &[(&str, &str)] = &[("dpml", include_str!("../../../lua/dpml.lua"))];

/// Where dpm's own Lua libraries (`dpml.lua`, the demos) are: `$DPM_LUA_DIR`, else the
/// `lua/` folder of the source tree this binary was built from while it exists, else
/// where the Debian package installs them (a binary installed without its source tree:
/// `dpml` is embedded anyway).
fn lua_library_dir() -> String {
    if let Ok(dir) = std::env::var("DPM_LUA_DIR") {
        return dir;
    }
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/../../lua");
    if Path::new(source).is_dir() {
        source.to_string()
    } else {
        INSTALLED_LUA_DIR.to_string()
    }
}

/// Where the Debian package puts dpm's Lua files.
const INSTALLED_LUA_DIR: &str = "/usr/share/dpm/lua";

/// Runs the startup file on a worker, in a new Lua state with the `dpm` table, and
/// installs the state as the event sink of the worker handle's generation: at startup,
/// and again at each hot reload (then next to the state in force, which goes on serving
/// until the reload commits). The engine starts the state's registered tasks when its
/// generation is put in force. Errors come back as one line, `file:line: message`.
pub fn start_worker(worker: &Worker, startfile: &Path) -> Result<(), String> {
    let lua = Lua::new();
    let host = Host::new(worker.clone(), lua.clone());
    // The sink first: a state whose set-up fails is let go through it like any other.
    worker.set_sink(Rc::new(host::LuaSink(host.clone())));
    install(&lua, &host, startfile).map_err(|e| errors::error_line(&e))?;
    let name = startfile.display().to_string();
    let code = std::fs::read(startfile)
        .map_err(|e| format!("{name}: cannot read the startup file: {e}"))?;
    contexts::enter(&lua, contexts::Context::Body);
    lua.load(&code[..])
        .set_name(format!("@{name}"))
        .exec()
        .map_err(|e| errors::error_line(&e))?;
    tasks::run_inits(&host)?;
    contexts::enter(&lua, contexts::Context::Running);
    Ok(())
}

/// Drops what the modules of this crate keep for a Lua state outside it (a retired
/// state's, see [`host::Host`]): their Lua values would keep it alive.
fn forget_app_data(lua: &Lua) {
    lua.remove_app_data::<tasks::Pending>();
    lua.remove_app_data::<services::monitor::Handlers>();
    lua.remove_app_data::<Rc<services::lua_action::Actions>>();
    lua.remove_app_data::<collect::Marked>();
    lua.remove_app_data::<sockets::Hooks>();
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
    sandbox::install(lua)?;
    lua.load(COMPAT_PRELUDE).set_name("=dpm-compat").exec()?;
    install_pcall(lua)?;
    startup_output::install(lua, host.worker.index())?;
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
    services::register(lua, &dpm, host)?;
    sockets::register(lua, &dpm, host)?;
    sandbox::register(lua, &dpm)?;
    admin::register(lua, &dpm)?;
    collect::register(lua, &dpm, host)?;
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
            let mine = h.worker.gauges();
            t.set("lua_calls", mine.lua_calls.load(relaxed))?;
            t.set("packets_decoded", mine.packets_decoded.load(relaxed))?;
            t.set("pipeline_runs", mine.pipeline_runs.load(relaxed))?;
            t.set("connections", h.worker.conn_count())?;
            t.set("worker", h.worker.index())?;
            // Which run of the startup file this state is (1, then one more per hot
            // reload), and how many are alive on this worker.
            t.set("generation", h.worker.generation().number)?;
            t.set("generations", mine.generations.load(relaxed))?;
            // The same counters summed over every worker of the process.
            let sums = dpm_engine::shared::shared().totals();
            let total = lua.create_table()?;
            total.set("workers", sums.workers)?;
            total.set("lua_calls", sums.lua_calls)?;
            total.set("packets_decoded", sums.packets_decoded)?;
            total.set("connections", sums.connections)?;
            total.set("pipeline_runs", sums.pipeline_runs)?;
            t.set("total", total)?;
            Ok(t)
        })?,
    )?;
    let core = core_lib::register(lua)?;
    tasks::register(lua, &core, host)?;
    cosocket::register(lua, &core)?;
    services::lua_action::register(lua, &core, host)?;
    fetches::register(lua, &core, host)?;
    // The startup file's own path, so a startfile can find files next to it.
    dpm.set("startfile", startfile.display().to_string())?;
    lua.globals().set("dpm", dpm)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcall_gives_a_dpm_functions_error_as_the_original_string() {
        let lua = Lua::new();
        install_pcall(&lua).unwrap();
        let failing = lua
            .create_function(|lua, ()| -> mlua::Result<()> {
                Err(errors::raise(lua, "Arg 1 must be a connection object"))
            })
            .unwrap();
        lua.globals().set("failing", failing).unwrap();
        lua.load(
            r##"local ok, err = pcall(function() failing() end)
assert(not ok and type(err) == "string", type(err))
assert(err == "test:1: Arg 1 must be a connection object", err)
local _, handled = xpcall(function() failing() end, function(e) return "handled: " .. e end)
assert(handled == "handled: test:4: Arg 1 must be a connection object", handled)
local _, direct = pcall(failing)
assert(direct == "Arg 1 must be a connection object", direct)
local _, t = pcall(error, { code = 7 })
assert(type(t) == "table" and t.code == 7)
local _, s = pcall(error, "plain", 0)
assert(s == "plain")
assert(select("#", pcall(function() return 1, nil, 3 end)) == 4)
local co = coroutine.wrap(function() return pcall(function() coroutine.yield(5) return 6 end) end)
assert(co() == 5)
local ok2, six = co()
assert(ok2 == true and six == 6)"##,
        )
        .set_name("=test")
        .exec()
        .unwrap();
    }
}
