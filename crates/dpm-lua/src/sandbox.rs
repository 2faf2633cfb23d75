//! The sandbox around a worker's Lua state: a CPU budget per burst, a memory limit, and
//! the standard functions that reach outside the process turned off.
//!
//! **CPU.** Every callback, filter, timer and task runs under an instruction budget per
//! *burst* — what it runs without waiting (a task that loops forever with `core.msleep`
//! never exceeds it; a loop that never waits does). A count hook fires every
//! [`STEP`] instructions; the count starts again whenever a Lua function is entered from
//! Rust and whenever a function that waits returns (`contexts::may_wait`'s guard). Past
//! the budget the running function fails with `exceeded its CPU budget`, logged with its
//! `file:line`; a client command whose callback failed that way is answered with an ERR.
//! The startup file's body and init functions are not counted (a loop there shows at
//! once).
//!
//! **Memory.** With `memory_mb`, the state's allocations are capped: an allocation past
//! the cap fails the function that made it (`not enough memory`) instead of growing the
//! process without bound; the state stays usable once its garbage is collected. Off by
//! default: with a cap, mlua runs every call that may allocate in a protected call (a
//! failing allocation becomes a Lua error instead of an abort), which costs about 1,000
//! instructions per callback — 5 % of a forwarded statement (BENCHMARKS.md).
//!
//! **Outside the process.** `os.execute`, `io.popen` and `os.tmpname` are off,
//! and writing files (`io.open` for writing, `io.output` with a name, `os.remove`,
//! `os.rename`) is allowed only under the directories of `write_paths`, unless the
//! startup file says `dpm.limits{ unsafe = true }`.
//!
//! `dpm.limits{ callback_instructions = …, memory_mb = …, unsafe = …, write_paths = {…} }`
//! sets them, in the startup file's body (each worker's state has its own).

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};

use mlua::{HookTriggers, Lua, Table, Value, VmState};

use crate::contexts::{self, Context};
use crate::errors::raise;

/// Instructions between two looks of the count hook.
pub const STEP: u32 = 10_000;
/// Default instructions a burst may run (a few hundred milliseconds of Lua).
pub const DEFAULT_INSTRUCTIONS: u64 = 100_000_000;

/// A state's limits and its running count.
struct Limits {
    instructions: Cell<u64>,
    used: Cell<u64>,
    /// The budget stopped a function since the last [`take_tripped`].
    tripped: Cell<bool>,
    unsafe_on: Cell<bool>,
    write_paths: RefCell<Vec<PathBuf>>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            instructions: Cell::new(DEFAULT_INSTRUCTIONS),
            used: Cell::new(0),
            tripped: Cell::new(false),
            unsafe_on: Cell::new(false),
            write_paths: RefCell::new(Vec::new()),
        }
    }
}

/// Puts a fresh state in the sandbox: the count hook and the outside-reaching functions
/// wrapped (a memory cap only when the startup file sets one).
pub fn install(lua: &Lua) -> mlua::Result<()> {
    lua.set_app_data(Limits::default());
    let hook = |lua: &Lua, debug: &mlua::Debug| -> mlua::Result<VmState> {
        let Some(limits) = lua.app_data_ref::<Limits>() else {
            return Ok(VmState::Continue);
        };
        if matches!(contexts::current(lua), Context::Body | Context::Init) {
            return Ok(VmState::Continue);
        }
        let used = limits.used.get() + u64::from(STEP);
        limits.used.set(used);
        if used <= limits.instructions.get() {
            return Ok(VmState::Continue);
        }
        limits.used.set(0);
        limits.tripped.set(true);
        let budget = limits.instructions.get();
        // Where the running function was stopped: the hook's own frame is that function.
        let source = debug.source();
        let place = match (source.short_src.as_deref(), debug.current_line()) {
            (Some(src), Some(line)) => format!("{src}:{line}: "),
            _ => String::new(),
        };
        Err(mlua::Error::RuntimeError(format!(
            "{place}exceeded its CPU budget ({budget} instructions without waiting; dpm.limits{{ callback_instructions = … }})"
        )))
    };
    let triggers = HookTriggers::new().every_nth_instruction(STEP);
    // The main thread (the body, plain calls) and every coroutine made from now on.
    lua.set_global_hook(triggers, hook)?;
    wrap_outside(lua)
}

/// A Lua function starts running, or resumes after a wait: its burst starts.
#[inline]
pub fn burst_starts(lua: &Lua) {
    if let Some(limits) = lua.app_data_ref::<Limits>() {
        limits.used.set(0);
    }
}

/// Notes that the sandbox stopped a function (it ran out of memory).
pub fn mark_tripped(lua: &Lua) {
    if let Some(limits) = lua.app_data_ref::<Limits>() {
        limits.tripped.set(true);
    }
}

/// True for an error that is, or wraps, a failed allocation.
pub fn is_memory_error(e: &mlua::Error) -> bool {
    match e {
        mlua::Error::MemoryError(_) => true,
        mlua::Error::CallbackError { cause, .. } | mlua::Error::WithContext { cause, .. } => {
            is_memory_error(cause)
        }
        _ => false,
    }
}

/// True (once) when the budget stopped a function since the last call.
pub fn take_tripped(lua: &Lua) -> bool {
    lua.app_data_ref::<Limits>()
        .is_some_and(|l| l.tripped.replace(false))
}

/// `dpm.limits{ … }`.
pub fn register(lua: &Lua, dpm: &Table) -> mlua::Result<()> {
    dpm.set(
        "limits",
        lua.create_function(|lua, options: Table| {
            contexts::in_body(lua, "dpm.limits")?;
            for pair in options.pairs::<String, Value>() {
                let (key, value) = pair?;
                let limits = lua.app_data_ref::<Limits>().ok_or_else(|| raise(lua, "no sandbox"))?;
                match (key.as_str(), value) {
                    ("callback_instructions", Value::Integer(n)) if n > 0 => {
                        limits.instructions.set(n as u64)
                    }
                    ("memory_mb", Value::Integer(n)) if n > 0 => {
                        drop(limits);
                        lua.set_memory_limit((n as usize) << 20)?;
                    }
                    ("unsafe", Value::Boolean(on)) => limits.unsafe_on.set(on),
                    ("write_paths", Value::Table(paths)) => {
                        let mut list = Vec::new();
                        for path in paths.sequence_values::<String>() {
                            list.push(PathBuf::from(path?));
                        }
                        *limits.write_paths.borrow_mut() = list;
                    }
                    (key @ ("callback_instructions" | "memory_mb"), v) => {
                        return Err(raise(lua, format!("dpm.limits: {key} must be a positive integer, not {v:?}")))
                    }
                    ("unsafe", v) => return Err(raise(lua, format!("dpm.limits: unsafe must be true or false, not {v:?}"))),
                    ("write_paths", v) => return Err(raise(lua, format!("dpm.limits: write_paths must be a list of directories, not {v:?}"))),
                    (other, _) => {
                        return Err(raise(
                            lua,
                            format!("dpm.limits: unknown limit '{other}' (callback_instructions, memory_mb, unsafe, write_paths)"),
                        ))
                    }
                }
            }
            Ok(())
        })?,
    )
}

/// May the script write `path`? (unsafe on, or under one of `write_paths`).
fn may_write(lua: &Lua, path: &str) -> bool {
    let Some(limits) = lua.app_data_ref::<Limits>() else {
        return true;
    };
    if limits.unsafe_on.get() {
        return true;
    }
    let path = absolute(Path::new(path));
    let allowed = limits.write_paths.borrow();
    allowed.iter().any(|dir| path.starts_with(absolute(dir)))
}

/// `path` made absolute and without `.`/`..` (lexically: the file may not exist yet).
fn absolute(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn unsafe_on(lua: &Lua) -> bool {
    lua.app_data_ref::<Limits>()
        .is_some_and(|l| l.unsafe_on.get())
}

/// Replaces the standard functions that reach outside the process with checked ones
/// that call the originals when allowed.
fn wrap_outside(lua: &Lua) -> mlua::Result<()> {
    let globals = lua.globals();
    let os: Table = globals.get("os")?;
    let io: Table = globals.get("io")?;
    for (table, lib, name) in [
        (&os, "os", "execute"),
        (&os, "os", "tmpname"),
        (&io, "io", "popen"),
    ] {
        let original: mlua::Function = table.get(name)?;
        let full = format!("{lib}.{name}");
        table.set(
            name,
            lua.create_function(move |lua, args: mlua::MultiValue| {
                if !unsafe_on(lua) {
                    return Err(raise(
                        lua,
                        format!("{full} is off in dpm (dpm.limits{{ unsafe = true }} turns it on)"),
                    ));
                }
                original.call::<mlua::MultiValue>(args)
            })?,
        )?;
    }
    // Writers: the path is the first argument; io.open writes only with a w, a or + mode.
    for (table, lib, name) in [
        (&io, "io", "open"),
        (&io, "io", "output"),
        (&os, "os", "remove"),
        (&os, "os", "rename"),
    ] {
        let original: mlua::Function = table.get(name)?;
        let full = format!("{lib}.{name}");
        table.set(
            name,
            lua.create_function(move |lua, args: mlua::MultiValue| {
                let mut targets = Vec::new();
                let path = args.front().and_then(|v| v.as_string()).map(|s| s.to_string_lossy());
                let writes = match full.as_str() {
                    "io.open" => args
                        .get(1)
                        .and_then(|m| m.as_string())
                        .is_some_and(|m| m.to_string_lossy().contains(['w', 'a', '+'])),
                    "io.output" => path.is_some(),
                    _ => true,
                };
                if writes {
                    targets.extend(path);
                    if full == "os.rename" {
                        targets.extend(args.get(1).and_then(|v| v.as_string()).map(|s| s.to_string_lossy()));
                    }
                }
                if let Some(refused) = targets.iter().find(|p| !may_write(lua, p)) {
                    return Err(raise(
                        lua,
                        format!("{full}: writing {refused} is off in dpm (dpm.limits{{ write_paths = {{ \"/dir\" }} }} allows a directory)"),
                    ));
                }
                original.call::<mlua::MultiValue>(args)
            })?,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandboxed() -> Lua {
        let lua = Lua::new();
        install(&lua).unwrap();
        let dpm = lua.create_table().unwrap();
        register(&lua, &dpm).unwrap();
        lua.globals().set("dpm", dpm).unwrap();
        lua
    }

    #[test]
    fn a_burst_past_its_budget_fails_and_the_next_starts_afresh() {
        let lua = sandboxed();
        contexts::enter(&lua, Context::Body);
        lua.load("dpm.limits{ callback_instructions = 200000 }")
            .exec()
            .unwrap();
        contexts::enter(&lua, Context::Running);
        let spin = lua
            .load("local n = 0 while true do n = n + 1 end")
            .into_function()
            .unwrap();
        let err = spin.call::<()>(()).unwrap_err().to_string();
        assert!(
            err.contains("exceeded its CPU budget (200000 instructions"),
            "{err}"
        );
        assert!(take_tripped(&lua) && !take_tripped(&lua));
        burst_starts(&lua);
        let short: i64 = lua
            .load("local n = 0 for i = 1, 1000 do n = n + i end return n")
            .eval()
            .unwrap();
        assert_eq!(short, 500500);
    }

    #[test]
    fn outside_functions_are_off_unless_allowed() {
        let lua = sandboxed();
        let dir = tempfile::tempdir().unwrap();
        let inside = dir.path().join("x.log");
        lua.globals()
            .set("inside", inside.display().to_string())
            .unwrap();
        let err = lua
            .load("os.execute('true')")
            .exec()
            .unwrap_err()
            .to_string();
        assert!(err.contains("os.execute is off in dpm"), "{err}");
        let err = lua
            .load("io.open(inside, 'w')")
            .exec()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("io.open: writing") && err.contains("is off in dpm"),
            "{err}"
        );
        // Reading is allowed.
        lua.load("assert(io.open('/etc/hostname', 'r') or true)")
            .exec()
            .unwrap();
        contexts::enter(&lua, Context::Body);
        lua.globals()
            .set("dir", dir.path().display().to_string())
            .unwrap();
        lua.load("dpm.limits{ write_paths = { dir } }")
            .exec()
            .unwrap();
        lua.load("local f = assert(io.open(inside, 'w')) f:write('ok') f:close()")
            .exec()
            .unwrap();
        assert_eq!(std::fs::read_to_string(&inside).unwrap(), "ok");
        let err = lua
            .load("os.remove(dir .. '/../escape')")
            .exec()
            .unwrap_err()
            .to_string();
        assert!(err.contains("is off in dpm"), "{err}");
        lua.load("dpm.limits{ unsafe = true }").exec().unwrap();
        lua.load("assert(os.execute('true'))").exec().unwrap();
        let err = lua
            .load("dpm.limits{ memory = 1 }")
            .exec()
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown limit 'memory'"), "{err}");
    }

    #[test]
    fn a_state_past_its_memory_cap_fails_the_allocation() {
        let lua = sandboxed();
        contexts::enter(&lua, Context::Body);
        lua.load("dpm.limits{ memory_mb = 8 }").exec().unwrap();
        contexts::enter(&lua, Context::Running);
        let err = lua
            .load("local t = {} for i = 1, 1e8 do t[i] = ('x'):rep(100) .. i end")
            .exec()
            .unwrap_err();
        assert!(matches!(err, mlua::Error::MemoryError(_)), "{err}");
        lua.gc_collect().unwrap();
        let ok: i64 = lua.load("return 1 + 1").eval().unwrap();
        assert_eq!(ok, 2, "the state is usable afterwards");
    }
}
