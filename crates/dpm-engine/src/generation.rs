//! Generations of a worker's program: each run of the startup file (the first, and each
//! hot reload) is one generation, with its own [`EventSink`] (for dpm, its own Lua
//! state) and its own socket hooks.
//!
//! Every connection belongs to the generation whose code made it: a listener and the
//! backends a script opened to the one that ran the script, a client to its listener's,
//! a service's backends to their client's. Its events go to that generation's sink, so
//! a session started before a reload finishes on the code it started with.
//!
//! A reload makes a new generation *loading* next to the one *in force*: the new file
//! runs, binding new listeners but not accepting on them yet, and taking over the
//! sockets of listeners whose address the old file used too (the same socket, so no
//! client is refused). [`crate::Worker::commit_generation`] then puts it in force: its
//! listeners start accepting, the old listeners close, and the old generation
//! *retires*: once its last client closed, its remaining connections (idle backends)
//! are closed and its sink is told ([`EventSink::retired`]) so that it can let go of
//! its state. A load that failed anywhere is undone by
//! [`crate::Worker::abort_generation`]: everything it opened closes.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::conn::{Conn, Role};
use crate::listener::Listening;
use crate::shared::WorkerGauges;
use crate::sink::EventSink;
use crate::sockets::SocketHooks;
use crate::ConnId;

/// One run of the startup file on one worker (see the module docs).
pub struct Generation {
    /// 1 for the startup, then one more per reload.
    pub number: u64,
    sink: RefCell<Option<Rc<dyn EventSink>>>,
    socket_hooks: Cell<SocketHooks>,
    /// Clients open now.
    clients: Cell<usize>,
    /// Replaced by a newer generation: retires once its last client closed.
    retiring: Cell<bool>,
    /// Its remaining connections were closed and its sink told.
    retired: Cell<bool>,
    /// Listeners bound (or taken over) while it loaded: they accept once it is in force.
    pub(crate) waiting_listeners: RefCell<Vec<(Rc<Conn>, Rc<Listening>)>>,
    /// Runs the sample expressions of its program (`crate::pipeline::expr`).
    evaluator: RefCell<Option<Rc<dyn crate::pipeline::expr::Evaluator>>>,
    /// The worker's count of live generations (kept up to date by `Drop`).
    gauges: Arc<WorkerGauges>,
}

impl Generation {
    pub(crate) fn new(number: u64, gauges: Arc<WorkerGauges>) -> Rc<Generation> {
        gauges.generations.fetch_add(1, Ordering::Relaxed);
        Rc::new(Generation {
            number,
            sink: RefCell::new(None),
            socket_hooks: Cell::new(SocketHooks::default()),
            clients: Cell::new(0),
            retiring: Cell::new(false),
            retired: Cell::new(false),
            waiting_listeners: RefCell::new(Vec::new()),
            evaluator: RefCell::new(None),
            gauges,
        })
    }

    /// The receiver of its connections' events, until it retired.
    #[inline]
    pub(crate) fn sink(&self) -> Option<Rc<dyn EventSink>> {
        self.sink.borrow().clone()
    }

    pub(crate) fn set_sink(&self, sink: Rc<dyn EventSink>) {
        *self.sink.borrow_mut() = Some(sink);
    }

    pub(crate) fn evaluator(&self) -> Option<Rc<dyn crate::pipeline::expr::Evaluator>> {
        self.evaluator.borrow().clone()
    }

    pub(crate) fn set_evaluator(&self, evaluator: Rc<dyn crate::pipeline::expr::Evaluator>) {
        *self.evaluator.borrow_mut() = Some(evaluator);
    }

    pub(crate) fn socket_hooks(&self) -> SocketHooks {
        self.socket_hooks.get()
    }

    pub(crate) fn set_socket_hooks(&self, hooks: SocketHooks) {
        self.socket_hooks.set(hooks);
    }

    /// Clients open now.
    pub fn clients(&self) -> usize {
        self.clients.get()
    }

    pub(crate) fn client_opened(&self) {
        self.clients.set(self.clients.get() + 1);
    }

    /// A client closed: true if that was the last client of a retiring generation.
    pub(crate) fn client_closed(&self) -> bool {
        self.clients.set(self.clients.get().saturating_sub(1));
        self.clients.get() == 0 && self.retiring.get()
    }

    /// Marks it replaced: true if it has no client left (retire it now).
    pub(crate) fn start_retiring(&self) -> bool {
        self.retiring.set(true);
        self.clients.get() == 0
    }

    /// Marks it retired and hands out its sink, once.
    pub(crate) fn take_sink_to_retire(&self) -> Option<Rc<dyn EventSink>> {
        if self.retired.replace(true) {
            return None;
        }
        // The evaluator holds the program's state too.
        self.evaluator.borrow_mut().take();
        self.sink.borrow_mut().take()
    }

    /// True once it was replaced by a newer generation.
    pub fn is_retiring(&self) -> bool {
        self.retiring.get()
    }
}

impl Drop for Generation {
    fn drop(&mut self) {
        self.gauges.generations.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a reload does on one worker ([`crate::control::reload`] drives every worker
/// through these steps).
impl crate::Worker {
    /// The generation in force.
    pub fn current_generation(&self) -> Rc<Generation> {
        self.inner.current.borrow().clone()
    }

    /// Sets what runs the startup file (the runtime does, before the first run).
    pub(crate) fn set_loader(&self, loader: crate::worker::Loader) {
        *self.inner.loader.borrow_mut() = Some(loader);
    }

    /// Runs the startup file again in a new generation, next to the one in force (which
    /// goes on serving). On success the new generation waits for
    /// [`crate::Worker::commit_generation`]; on failure everything it opened is closed
    /// and the error (`FILE:LINE: message`) returned.
    pub fn load_generation(&self) -> Result<u64, String> {
        let loader = self.inner.loader.borrow().clone();
        let Some(loader) = loader else {
            return Err("this worker has no startup file to reload".to_string());
        };
        if self.is_draining() {
            return Err("dpm is shutting down: no reload".to_string());
        }
        if !crate::service::generations::loading() {
            // A worker that got to the request after the reload was given up (it did
            // not answer in time): loading now would define objects outside any reload.
            return Err("the reload was given up before this worker got to it".to_string());
        }
        if self.inner.loading.borrow().is_some() {
            return Err("a reload is already loading on this worker".to_string());
        }
        let number = self.current_generation().number + 1;
        let generation = Generation::new(number, self.inner.gauges.clone());
        *self.inner.loading.borrow_mut() = Some(generation.clone());
        match loader(&self.in_generation(generation)) {
            Ok(()) => Ok(number),
            Err(message) => {
                self.abort_generation();
                Err(message)
            }
        }
    }

    /// Puts the loaded generation in force: its listeners accept, the old listeners
    /// close (the sockets they shared stay open), new sessions get the new code, and the
    /// old generation retires once its last session ended. False if nothing was loaded.
    pub fn commit_generation(&self) -> bool {
        if self.is_draining() {
            // Shutting down: the new code would only start tasks nobody needs.
            self.abort_generation();
            return false;
        }
        let Some(new) = self.inner.loading.borrow_mut().take() else {
            return false;
        };
        let old = self.inner.current.replace(new.clone());
        let waiting: Vec<_> = new.waiting_listeners.borrow_mut().drain(..).collect();
        for (conn, listening) in waiting {
            crate::listener::spawn_accept_loop(self.in_generation(new.clone()), conn, listening);
        }
        for id in self.conns_of(&old, |role| matches!(role, Role::Listener(_))) {
            self.close(id);
        }
        if let Some(sink) = new.sink() {
            sink.activate();
        }
        if let Some(sink) = old.sink() {
            sink.deactivate();
        }
        tracing::info!(
            worker = self.index(),
            generation = new.number,
            "reload: generation {} in force; generation {} retires with its last session ({} open)",
            new.number,
            old.number,
            old.clients()
        );
        if old.start_retiring() {
            self.retire(&old);
        }
        true
    }

    /// Forgets the generation being loaded: closes what it opened and lets its state go.
    pub fn abort_generation(&self) {
        let Some(generation) = self.inner.loading.borrow_mut().take() else {
            return;
        };
        generation.waiting_listeners.borrow_mut().clear();
        generation.start_retiring();
        self.retire(&generation);
    }

    /// Retires a replaced generation without clients (or an abandoned load): once its
    /// program has no callback running (the last session's closing callback may still
    /// be using a backend), closes what is left of it (idle backends) and tells its sink,
    /// which lets its state go.
    pub(crate) fn retire(&self, generation: &Rc<Generation>) {
        if generation.clients() > 0 {
            return;
        }
        let Some(sink) = generation.take_sink_to_retire() else {
            // No program ever ran in it (its load failed before): only connections.
            for id in self.conns_of(generation, |_| true) {
                self.close(id);
            }
            return;
        };
        let worker = self.clone();
        let generation = generation.clone();
        tokio::task::spawn_local(async move {
            sink.idle().await;
            for id in worker.conns_of(&generation, |_| true) {
                worker.close(id);
            }
            tracing::info!(
                worker = worker.index(),
                generation = generation.number,
                "generation {} retired",
                generation.number
            );
            sink.retired();
        });
    }

    /// Counts a session the engine does not see (a raw TCP service's connection) as a
    /// client of this handle's generation while the guard lives: the generation does
    /// not retire before it ends.
    pub fn hold_session(&self) -> SessionHold {
        let generation = self.generation();
        generation.client_opened();
        SessionHold {
            worker: self.clone(),
            generation,
        }
    }

    /// The ids of `generation`'s open connections whose role passes `keep`.
    fn conns_of(&self, generation: &Rc<Generation>, keep: impl Fn(Role) -> bool) -> Vec<ConnId> {
        self.inner
            .conns
            .borrow()
            .values()
            .filter(|c| Rc::ptr_eq(&c.generation, generation) && keep(c.role))
            .map(|c| c.id)
            .collect()
    }
}

/// A session counted by [`crate::Worker::hold_session`], until dropped.
pub struct SessionHold {
    worker: crate::Worker,
    generation: Rc<Generation>,
}

impl Drop for SessionHold {
    fn drop(&mut self) {
        if self.generation.client_closed() {
            let worker = self.worker.clone();
            let generation = self.generation.clone();
            tokio::task::spawn_local(async move { worker.retire(&generation) });
        }
    }
}
