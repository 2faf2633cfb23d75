//! The functions a `dpm bench` script sees, in the main thread's Lua state and in every
//! load thread's: hook registration (`client_socket`, `client_close`, `client_sendmsg`,
//! `client_recvmsg`, `client_recverr`), `workload(fn [, setup])`, the socket-option
//! functions shared with the proxy (`setsockopt`, `getsockopt`), the system-call helpers
//! (`sendmsg`, `recvmsg`, `errno`), `core.msleep`/`core.sleep`/`core.yield`, constants
//! (`MSG_*`, `EAGAIN`, `SOF_TIMESTAMPING_*`) and the `bench` table (`bench.thread`,
//! `bench.threads`, `bench.connections`, `bench.duration`).
//!
//! Registration only records the functions (in the state's [`Registered`]); a load
//! thread's runner reads them once the script reaches `run()`. In the main thread they
//! are checked (a hook must be a function) and otherwise unused: the main thread opens no
//! connection.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use mlua::{Function, Lua, Table, Value};

use dpm_lua::errors::raise;

/// What the script registered.
#[derive(Default)]
pub struct Registered {
    /// `client_socket` functions, in order.
    pub client_socket: Vec<Function>,
    /// `client_close` functions, in order.
    pub client_close: Vec<Function>,
    /// `client_sendmsg` (the last registered).
    pub sendmsg: Option<Function>,
    /// `client_recvmsg`.
    pub recvmsg: Option<Function>,
    /// `client_recverr`.
    pub recverr: Option<Function>,
    /// `workload(fn, setup)`.
    pub workload: Option<(Function, Option<Function>)>,
    /// `workload("oltp_point_select")`: a built-in by name.
    pub builtin: Option<String>,
}

/// The registry of a Lua state.
pub type Shared = Rc<RefCell<Registered>>;

/// Facts the script can read in `bench`.
#[derive(Clone, Copy, Debug)]
pub struct Facts {
    /// 0 in the main thread, 1..N in load threads.
    pub thread: usize,
    /// N.
    pub threads: usize,
    /// M.
    pub connections: usize,
    /// Seconds.
    pub duration: f64,
}

/// Installs everything; returns the registry the functions fill.
pub fn install(lua: &Lua, facts: Facts) -> mlua::Result<Shared> {
    let reg: Shared = Rc::new(RefCell::new(Registered::default()));
    let g = lua.globals();
    let hook = |name: &'static str, set: fn(&mut Registered, Function)| {
        let reg = reg.clone();
        lua.create_function(move |lua, f: Value| {
            let Value::Function(f) = f else {
                return Err(raise(lua, format!("{name}: the hook must be a function")));
            };
            set(&mut reg.borrow_mut(), f);
            Ok(())
        })
    };
    g.set(
        "client_socket",
        hook("client_socket", |r, f| r.client_socket.push(f))?,
    )?;
    g.set(
        "client_close",
        hook("client_close", |r, f| r.client_close.push(f))?,
    )?;
    g.set(
        "client_sendmsg",
        hook("client_sendmsg", |r, f| r.sendmsg = Some(f))?,
    )?;
    g.set(
        "client_recvmsg",
        hook("client_recvmsg", |r, f| r.recvmsg = Some(f))?,
    )?;
    g.set(
        "client_recverr",
        hook("client_recverr", |r, f| r.recverr = Some(f))?,
    )?;
    for name in [
        "server_socket",
        "server_close",
        "server_sendmsg",
        "server_recvmsg",
        "server_recverr",
    ] {
        g.set(
            name,
            lua.create_function(move |lua, _: Value| -> mlua::Result<()> {
                Err(raise(
                    lua,
                    format!("{name}: dpm bench runs clients only (the server is MySQL or MariaDB)"),
                ))
            })?,
        )?;
    }
    let r = reg.clone();
    g.set(
        "workload",
        lua.create_function(move |lua, (w, setup): (Value, Value)| {
            let setup = match setup {
                Value::Nil => None,
                Value::Function(f) => Some(f),
                other => {
                    return Err(raise(
                        lua,
                        format!("workload: setup must be a function, not a {}", other.type_name()),
                    ))
                }
            };
            let mut r = r.borrow_mut();
            match w {
                Value::Function(f) => r.workload = Some((f, setup)),
                Value::String(s) => {
                    let name = s.to_str()?.to_string();
                    if crate::oltp::Builtin::from_name(&name).is_none() {
                        return Err(raise(
                            lua,
                            format!("workload: no built-in workload '{name}' (oltp_point_select, oltp_read_only, oltp_read_write)"),
                        ));
                    }
                    r.builtin = Some(name);
                }
                other => {
                    return Err(raise(
                        lua,
                        format!("workload: give a function or a built-in's name, not a {}", other.type_name()),
                    ))
                }
            }
            Ok(())
        })?,
    )?;
    g.set(
        "setsockopt",
        dpm_lua::sockets::setsockopt_function(lua, "setsockopt")?,
    )?;
    g.set(
        "getsockopt",
        dpm_lua::sockets::getsockopt_function(lua, "getsockopt")?,
    )?;
    super::packet::register(lua, &g)?;
    constants(lua, &g)?;
    g.set("core", core_table(lua)?)?;
    let bench = lua.create_table()?;
    bench.set("thread", facts.thread)?;
    bench.set("threads", facts.threads)?;
    bench.set("connections", facts.connections)?;
    bench.set("duration", facts.duration)?;
    g.set("bench", bench)?;
    Ok(reg)
}

fn constants(lua: &Lua, g: &Table) -> mlua::Result<()> {
    let _ = lua;
    for (name, value) in [
        ("MSG_DONTWAIT", libc::MSG_DONTWAIT),
        ("MSG_PEEK", libc::MSG_PEEK),
        ("MSG_ERRQUEUE", libc::MSG_ERRQUEUE),
        ("MSG_NOSIGNAL", libc::MSG_NOSIGNAL),
        ("MSG_WAITALL", libc::MSG_WAITALL),
        ("EAGAIN", libc::EAGAIN),
        ("EINTR", libc::EINTR),
        ("SOL_SOCKET", libc::SOL_SOCKET),
        ("SCM_TIMESTAMPING", libc::SCM_TIMESTAMPING),
        (
            "SOF_TIMESTAMPING_TX_SOFTWARE",
            libc::SOF_TIMESTAMPING_TX_SOFTWARE as i32,
        ),
        (
            "SOF_TIMESTAMPING_TX_SCHED",
            libc::SOF_TIMESTAMPING_TX_SCHED as i32,
        ),
        (
            "SOF_TIMESTAMPING_TX_ACK",
            libc::SOF_TIMESTAMPING_TX_ACK as i32,
        ),
        (
            "SOF_TIMESTAMPING_SOFTWARE",
            libc::SOF_TIMESTAMPING_SOFTWARE as i32,
        ),
        (
            "SOF_TIMESTAMPING_OPT_ID",
            libc::SOF_TIMESTAMPING_OPT_ID as i32,
        ),
        (
            "SOF_TIMESTAMPING_OPT_TSONLY",
            libc::SOF_TIMESTAMPING_OPT_TSONLY as i32,
        ),
    ] {
        g.set(name, value)?;
    }
    Ok(())
}

/// `core.msleep(ms)`, `core.sleep(s)`, `core.yield()`: suspend the calling coroutine (a
/// hook or the workload), not the thread.
fn core_table(lua: &Lua) -> mlua::Result<Table> {
    let core = lua.create_table()?;
    core.set(
        "msleep",
        lua.create_async_function(|_, ms: u64| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(())
        })?,
    )?;
    core.set(
        "sleep",
        lua.create_async_function(|_, s: f64| async move {
            tokio::time::sleep(Duration::try_from_secs_f64(s.max(0.0)).unwrap_or_default()).await;
            Ok(())
        })?,
    )?;
    core.set(
        "yield",
        lua.create_async_function(|_, ()| async move {
            tokio::task::yield_now().await;
            Ok(())
        })?,
    )?;
    Ok(core)
}
