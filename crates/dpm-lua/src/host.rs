//! The per-worker Lua host: the Lua state, the worker it drives, the callback registry,
//! and the [`EventSink`] that turns engine events into Lua calls: each event is mapped to
//! its DPM state ([`State::of`]), which picks the callback and names it in error lines.
//!
//! Every callback runs as a Lua coroutine (`call_async`), so a callback may suspend on
//! an async dpm function; its connection waits, the worker goes on.

use std::rc::Rc;

use dpm_engine::shared::WorkerGauges;
use dpm_engine::{ConnId, Event, EventSink, LocalBoxFuture, Packet, Role, Verdict, Worker};
use mlua::{Function, IntoLuaMulti, Lua, Value};

use crate::callbacks::CallbackRegistry;
use crate::conn_object::ConnObject;
use crate::dpm_events::State;
use crate::errors::error_line;

/// One worker's Lua world.
pub struct Host {
    /// The worker's Lua state.
    pub lua: Lua,
    /// The engine side.
    pub worker: Worker,
    /// Callbacks of every connection of this worker.
    pub callbacks: Rc<CallbackRegistry>,
}

impl Host {
    /// A host for `worker` around `lua`.
    pub fn new(worker: Worker, lua: Lua) -> Rc<Host> {
        let callbacks = Rc::new(CallbackRegistry::new(worker.clone()));
        Rc::new(Host {
            lua,
            worker,
            callbacks,
        })
    }

    /// `conn:remote_id()`, which survives the connection's close.
    pub fn remote_id(&self, id: ConnId) -> ConnId {
        self.worker.remote_id(id)
    }

    /// Builds the Lua object of a received packet (counted in `dpm.stats()`).
    fn decode(&self, conn: ConnId, event: Event, packet: Packet) -> mlua::Result<Value> {
        WorkerGauges::bump(&self.worker.gauges().packets_decoded);
        crate::packets::to_lua(self, conn, event, packet)
    }

    /// Creates the one `dpm.conn` object of a connection.
    pub fn conn_object(self: &Rc<Self>, id: ConnId, role: Role) -> mlua::Result<mlua::AnyUserData> {
        self.lua.create_userdata(ConnObject {
            id,
            role,
            host: self.clone(),
        })
    }

    /// Runs a callback as a coroutine. A Lua error is logged as `file:line: message`
    /// and yields `None`, which callers treat as `DPM_OK` (as the original did).
    pub async fn call(
        &self,
        func: Function,
        state: State,
        args: impl IntoLuaMulti,
    ) -> Option<Value> {
        // The callback's name is formatted only when it fails: a callback runs per
        // statement, and an allocation per call would be paid for nothing.
        let what = || format!("running callback '{}'", state.label());
        self.call_named(func, what, args).await.ok()
    }

    /// Runs `func` as a coroutine; a Lua error is logged as `ERROR: <what>: file:line: msg`
    /// and returned as that one line.
    pub async fn call_as(
        &self,
        func: Function,
        what: &str,
        args: impl IntoLuaMulti,
    ) -> Result<Value, String> {
        self.call_named(func, || what.to_string(), args).await
    }

    /// [`Host::call_as`] with the name made only if the call fails.
    async fn call_named(
        &self,
        func: Function,
        what: impl FnOnce() -> String,
        args: impl IntoLuaMulti,
    ) -> Result<Value, String> {
        WorkerGauges::bump(&self.worker.gauges().lua_calls);
        crate::sandbox::burst_starts(&self.lua);
        let started = std::time::Instant::now();
        let result = func.call_async::<Value>(args).await;
        let failed = matches!(&result, Err(e) if !crate::errors::is_action_end(e));
        self.worker.metrics().lua_call(started.elapsed(), failed);
        match result {
            Ok(value) => Ok(value),
            // An action that closed its transaction ended as it asked to.
            Err(e) if crate::errors::is_action_end(&e) => Ok(Value::Nil),
            Err(e) => Err(self.failed(&what(), &e)),
        }
    }

    /// Like [`Host::call_as`] but a plain call, not a coroutine: for functions declared
    /// never to yield (about 80 ns against 450 for a coroutine, warm). A yield fails as
    /// "attempt to yield from outside a coroutine".
    pub fn call_sync_as(
        &self,
        func: &Function,
        what: &str,
        args: impl IntoLuaMulti,
    ) -> Result<Value, String> {
        WorkerGauges::bump(&self.worker.gauges().lua_calls);
        crate::sandbox::burst_starts(&self.lua);
        let started = std::time::Instant::now();
        let result = func.call::<Value>(args);
        self.worker
            .metrics()
            .lua_call(started.elapsed(), result.is_err());
        result.map_err(|e| self.failed(what, &e))
    }

    /// Logs a failed call; one that ran out of memory counts as stopped by the sandbox.
    fn failed(&self, what: &str, e: &mlua::Error) -> String {
        if crate::sandbox::is_memory_error(e) {
            crate::sandbox::mark_tripped(&self.lua);
        }
        log_error(what, e)
    }
}

/// Logs a Lua error as `ERROR: <what>: file:line: msg` and returns the one line.
fn log_error(what: &str, e: &mlua::Error) -> String {
    let line = error_line(e);
    tracing::error!("ERROR: {what}: {line}");
    line
}

/// The engine's view of a [`Host`].
pub struct LuaSink(pub Rc<Host>);

impl EventSink for LuaSink {
    fn accepted(&self, listener: ConnId, client: ConnId) -> LocalBoxFuture<()> {
        let host = self.0.clone();
        Box::pin(async move {
            let Some(func) = host.callbacks.lookup(listener, State::MYC_CONNECT) else {
                host.worker.close(client);
                return;
            };
            match host.conn_object(client, Role::Client) {
                Ok(object) => {
                    host.call(func, State::MYC_CONNECT, (object, listener, listener))
                        .await;
                }
                Err(e) => {
                    tracing::error!("cannot create the client object: {e}");
                    host.worker.close(client);
                }
            }
        })
    }

    fn packet(
        &self,
        conn: ConnId,
        event: Event,
        packet: Option<Packet>,
    ) -> LocalBoxFuture<Verdict> {
        let host = self.0.clone();
        Box::pin(async move {
            let state = State::of(event);
            let Some(func) = host.callbacks.lookup(conn, state) else {
                return Verdict::Forward;
            };
            let result = match packet {
                Some(packet) => match host.decode(conn, event, packet) {
                    Ok(object) => host.call(func, state, (object, conn)).await,
                    Err(e) => {
                        tracing::error!(
                            "ERROR: running callback '{}': cannot decode the packet: {e}",
                            state.label()
                        );
                        None
                    }
                },
                None => host.call(func, state, conn).await,
            };
            if crate::sandbox::take_tripped(&host.lua) && state == State::MYC_SENT_CMD {
                // The sandbox stopped the callback: its client hears it, the command
                // goes no further.
                let err = dpm_protocol::err::ErrPacket::new(
                    1105,
                    *b"HY000",
                    "dpm: a Lua callback for this command was stopped: it exceeded its CPU budget or memory limit (see dpm's log)",
                );
                let mut payload = bytes::BytesMut::new();
                err.encode(&mut payload);
                let _ = host.worker.wire(conn, &payload);
                return Verdict::Drop;
            }
            let code = match result {
                Some(Value::Integer(n)) => Some(n),
                Some(Value::Number(n)) => Some(n as i64),
                _ => None,
            };
            Verdict::from_code(code)
        })
    }

    fn closing(&self, conn: ConnId) -> LocalBoxFuture<()> {
        let host = self.0.clone();
        Box::pin(async move {
            if let Some(func) = host.callbacks.lookup(conn, State::MY_CLOSING) {
                host.call(func, State::MY_CLOSING, conn).await;
            }
            host.callbacks.forget(conn);
        })
    }

    fn socket_hook(
        &self,
        hook: dpm_engine::sockets::SocketHook,
        fd: std::os::fd::RawFd,
        addr: &dpm_engine::sockets::SocketAddress,
    ) {
        crate::sockets::run(&self.0, hook, fd, addr);
    }
}
