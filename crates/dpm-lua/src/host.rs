//! The per-worker Lua host: the Lua state, the worker it drives, the callback registry,
//! and the [`EventSink`] that turns engine events into Lua calls: each event is mapped to
//! its DPM state ([`State::of`]), which picks the callback and names it in error lines.
//!
//! Every callback runs as a Lua coroutine (`call_async`), so a callback may suspend on
//! an async dpm function; its connection waits, the worker goes on.
//!
//! A host is one generation of the worker's program (`dpm_engine::generation`): after a
//! hot reload the old host serves its own sessions while a new one serves new sessions.
//! Its [`Phase`] says where it is in that life; background work (tasks, timers, event
//! handlers, raw TCP accept loops) is spawned to end at a phase ([`Host::spawn_until`]).

use std::cell::Cell;
use std::future::Future;
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
    /// Where the host is in its life (see [`Phase`]).
    phase: tokio::sync::watch::Sender<Phase>,
    /// Lua calls running now (suspended coroutines included): the state is let go only
    /// when none is left.
    in_flight: Cell<usize>,
}

/// Where a host is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Its startup file is running (at startup, or in a reload not yet in force).
    Loading,
    /// In force: new clients are its own.
    Active,
    /// A reload replaced it: its registered tasks and raw TCP listeners stopped; its
    /// sessions go on.
    Replaced,
    /// Its last session ended: everything stops and the state is let go.
    Retired,
}

/// Counts a Lua call in flight for as long as it lives.
struct InFlight<'a>(&'a Cell<usize>);

impl<'a> InFlight<'a> {
    fn new(count: &'a Cell<usize>) -> InFlight<'a> {
        count.set(count.get() + 1);
        InFlight(count)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

impl Host {
    /// A host for `worker` around `lua`.
    pub fn new(worker: Worker, lua: Lua) -> Rc<Host> {
        let callbacks = Rc::new(CallbackRegistry::new(worker.clone()));
        Rc::new(Host {
            lua,
            worker,
            callbacks,
            phase: tokio::sync::watch::Sender::new(Phase::Loading),
            in_flight: Cell::new(0),
        })
    }

    /// Where the host is in its life.
    pub fn phase(&self) -> Phase {
        *self.phase.borrow()
    }

    /// Moves the host on to `phase` (never back).
    fn enter(&self, phase: Phase) {
        self.phase.send_if_modified(|now| {
            let later = phase > *now;
            if later {
                *now = phase;
            }
            later
        });
    }

    /// Runs `work` on the worker until it ends or the host reaches `until`, whichever
    /// comes first (dropping a suspended Lua call ends its coroutine).
    pub fn spawn_until(&self, until: Phase, work: impl Future<Output = ()> + 'static) {
        let mut phase = self.phase.subscribe();
        tokio::task::spawn_local(async move {
            tokio::select! {
                // The phase first: work that should have stopped does not start a step.
                biased;
                _ = phase.wait_for(|now| *now >= until) => {}
                _ = work => {}
            }
        });
    }

    /// Waits until the host's generation was put in force (at once if it was, even if
    /// a later reload replaced it since); false if it never will be (its load was
    /// abandoned): work its file set up while loading waits here, so that nothing of a
    /// new file runs before the switch, nor at all after a failed reload.
    pub async fn until_started(&self) -> bool {
        let mut phase = self.phase.subscribe();
        let reached = match phase.wait_for(|now| *now >= Phase::Active).await {
            Ok(now) => *now,
            Err(_) => return false,
        };
        reached != Phase::Retired
    }

    /// Its generation is in force: its registered tasks start.
    fn activate(self: &Rc<Self>) {
        self.enter(Phase::Active);
        crate::collect::publish(&self.lua, self.worker.index());
        if !dpm_engine::control::check::check_only() {
            // dpm --check: the tasks were registered (and their arguments checked), not run.
            crate::tasks::start_registered(self);
        }
    }

    /// Completes once no Lua call of the state is running (callbacks just spawned get
    /// their first poll, and count, before this looks).
    async fn idle(&self) {
        tokio::task::yield_now().await;
        while self.in_flight.get() > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Its last session ended (or its load was abandoned): stops everything still
    /// running and, once no Lua call is in flight any more (the closing callbacks of its
    /// last connections), lets go of the state: the callbacks, the globals and what Rust
    /// keeps for the state, so that the Lua functions that hold the host are collected
    /// and the state is closed.
    fn retire(self: &Rc<Self>) {
        self.enter(Phase::Retired);
        let host = self.clone();
        tokio::task::spawn_local(async move {
            host.idle().await;
            if let Err(e) = host.let_go() {
                tracing::warn!("a retired Lua state could not be cleared: {e}");
            }
        });
    }

    /// Clears what keeps the Lua functions of a retired state reachable.
    fn let_go(&self) -> mlua::Result<()> {
        self.callbacks.clear();
        crate::forget_app_data(&self.lua);
        let globals = self.lua.globals();
        if let Ok(package) = globals.get::<mlua::Table>("package") {
            if let Ok(loaded) = package.get::<mlua::Table>("loaded") {
                loaded.clear()?;
            }
        }
        globals.clear()?;
        self.lua.gc_collect()?;
        self.lua.gc_collect()
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
        let _in_flight = InFlight::new(&self.in_flight);
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
        let _in_flight = InFlight::new(&self.in_flight);
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

    fn activate(&self) {
        self.0.activate();
    }

    fn deactivate(&self) {
        self.0.enter(Phase::Replaced);
    }

    fn idle(&self) -> LocalBoxFuture<()> {
        let host = self.0.clone();
        Box::pin(async move { host.idle().await })
    }

    fn retired(&self) {
        self.0.retire();
    }
}
