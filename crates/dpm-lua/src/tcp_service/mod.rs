//! Raw TCP services (the seed's `tcp-request content lua` actions): `dpm.listener(host,
//! port, { mode = "tcp" })` accepts connections that do not speak MySQL, and
//! `listener:register_action(fn)` serves each one: `fn(txn)` runs as its own coroutine
//! with the seed's txn object ([`txn`]) and channels ([`channel`]).
//!
//! Each worker binds the address (SO_REUSEPORT, like MySQL listeners) and serves the
//! connections the kernel gives it; an action that waits (for the client, for
//! `core.msleep`, for a cosocket) suspends only itself. Actions run in the runtime
//! context under the sandbox's CPU budget. When the action returns, what the response
//! channel still holds is written and the connection ends; an action that fails is
//! logged (`ERROR: tcp action: FILE:LINE: message`) and its connection is closed.
//!
//! The engine only binds the socket ([`dpm_engine::Worker::bind_raw_tcp`]): these
//! connections are not the engine's (no MySQL session, not in `dpm.stats()`), so they
//! live and die here.

pub mod channel;
pub mod txn;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use mlua::{Function, Lua, MultiValue, UserData, UserDataMethods, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::errors::raise;
use crate::host::Host;

/// A raw TCP listener's state, shared by its Lua object and its accept loop.
struct Listening {
    action: RefCell<Option<Function>>,
    closed: Cell<bool>,
    close_signal: Notify,
    port: u16,
}

/// The Lua object `dpm.listener(…, { mode = "tcp" })` returns.
pub struct RawListener(Rc<Listening>);

/// Binds `host:port` and starts accepting; the returned object takes the action.
pub fn listen(
    lua: &Lua,
    host: &Rc<Host>,
    addr: Option<&str>,
    port: u16,
) -> mlua::Result<MultiValue> {
    let socket = match host.worker.bind_raw_tcp(addr, port) {
        Ok(s) => s,
        Err(e) => {
            return Ok(MultiValue::from_vec(vec![
                Value::Nil,
                Value::String(lua.create_string(e.to_string())?),
            ]))
        }
    };
    let port = socket.local_addr().map_or(port, |a| a.port());
    let listening = Rc::new(Listening {
        action: RefCell::new(None),
        closed: Cell::new(false),
        close_signal: Notify::new(),
        port,
    });
    // It accepts once its state is in force, and stops when a reload replaces the state
    // (the next state's listener on the same address takes the socket over).
    let accepting = accept_loop(host.clone(), listening.clone(), socket);
    let h = host.clone();
    host.spawn_until(crate::host::Phase::Replaced, async move {
        if h.until_started().await {
            accepting.await;
        }
    });
    Ok(MultiValue::from_vec(vec![Value::UserData(
        lua.create_userdata(RawListener(listening))?,
    )]))
}

async fn accept_loop(host: Rc<Host>, listening: Rc<Listening>, socket: Rc<TcpListener>) {
    loop {
        let accepted = tokio::select! {
            r = socket.accept() => r,
            _ = listening.close_signal.notified() => break,
        };
        if listening.closed.get() || host.worker.is_draining() {
            break;
        }
        match accepted {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                // No action yet: the client is closed (dropped), as a MySQL listener
                // without MYC_CONNECT does.
                if let Some(action) = listening.action.borrow().clone() {
                    tokio::task::spawn_local(serve(host.clone(), action, stream));
                }
            }
            Err(e) => {
                // Out of descriptors, mostly: look again shortly instead of spinning.
                tracing::warn!(error = %e, "tcp service: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }
}

/// Serves one connection: runs the action as a coroutine, then ends the connection. It
/// counts as a session of its state's generation (a reload lets the state go only
/// after it).
async fn serve(host: Rc<Host>, action: Function, stream: TcpStream) {
    let _session = host.worker.hold_session();
    let txn = txn::Txn::new(channel::Client::new(stream), Default::default());
    let object = match host.lua.create_userdata(txn::TxnObject(txn.clone())) {
        Ok(o) => o,
        Err(e) => {
            tracing::error!("tcp service: cannot create the txn object: {e}");
            return;
        }
    };
    let failed = host.call_as(action, "tcp action", object).await.is_err();
    // The budget's verdict was for this action; no client command is waiting on it.
    let stopped = crate::sandbox::take_tripped(&host.lua);
    if failed || stopped {
        txn.client.close();
    } else {
        txn.end().await;
    }
}

impl UserData for RawListener {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("register_action", |lua, this, func: Value| match func {
            Value::Function(f) => {
                this.0.action.replace(Some(f));
                Ok(())
            }
            other => Err(raise(
                lua,
                format!(
                    "register_action: the argument must be a function, not a {}",
                    other.type_name()
                ),
            )),
        });
        methods.add_method("port", |_, this, ()| Ok(this.0.port));
        methods.add_method("alive", |_, this, ()| Ok(!this.0.closed.get()));
        methods.add_method("close", |_, this, ()| {
            // Connections being served go on; nobody new is accepted.
            if !this.0.closed.replace(true) {
                this.0.close_signal.notify_one();
            }
            Ok(())
        });
    }
}
