//! The connection pool of a server (MaxScale's persistent connections: `persistpoolmax`,
//! `persistmaxtime` on `dpm.server`): when a session whose login dpm ran itself
//! (proxy-held users, `crate::authenticator`) ends, its server connection is reset and
//! kept on the worker instead of closed, and the next session of a client with the same
//! needs gets it without a connect, a TLS handshake or a login.
//!
//! Only such sessions pool: dpm logged their connection in with the account mapped for
//! the server, so any client of that account may use it. (A pass-through login is the
//! client's own account on the server; it is never kept.)
//!
//! A connection is kept only when nothing is under way on it: its session ended between
//! statements, the worker is not draining, and the pool of its server holds fewer than
//! `persistpoolmax` on this worker. The client's COM_QUIT is not forwarded to it
//! (`forward.rs`). Kept, it gets `COM_RESET_CONNECTION` (the server rolls back an open
//! transaction, drops temporary tables, user variables, prepared statements and locks,
//! resets session variables and restores the login's character set) and, when the login
//! named a schema, `COM_INIT_DB` of that schema (a reset keeps the current one). Its
//! reader reads the answers as for any unlinked backend and notes them here
//! ([`reset_answer`]); it is handed out only once both said OK. Its event callbacks are
//! off while it waits: scripts see neither the reset nor its answers.
//!
//! A new session takes a kept connection of the same worker, server and generation of
//! the startup file whose key matches its login: the account dpm logs in with, the
//! capabilities, the character set and the schema. Because a login's capabilities are
//! only known once the client answered the greeting, the client is greeted with the
//! greeting the kept connection's server sent (its version and capabilities, dpm's own
//! nonce) and, when no kept connection matches after all, dpm opens a new one then.
//!
//! A connection waits at most `persistmaxtime`; one the server closes meanwhile
//! (`wait_timeout`, a `KILL`) is simply gone from the pool.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dpm_protocol::command::com;
use dpm_protocol::HandshakeV10;

use crate::authenticator::BackendCredentials;
use crate::conn::Conn;
use crate::event::EventMask;
use crate::generation::Generation;
use crate::service::Server;
use crate::tracker::{FrameInfo, PacketKind, Phase};
use crate::worker::Worker;

/// Where a backend connection stands with the pool.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) enum PoolState {
    /// Not in a pool.
    #[default]
    Out,
    /// Kept, waiting for the answers to its reset (how many are still owed).
    Resetting { owed: u8, status: u16 },
    /// Kept and reset: the server's status flags after the reset.
    Ready { status: u16 },
    /// Its reset failed: it is closed at the next look.
    Failed,
}

/// What a kept connection must match for a session to take it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Key {
    /// The account dpm logged in with.
    credentials: BackendCredentials,
    /// The capabilities of that login.
    capabilities: u64,
    /// Its collation (a reset restores it).
    character_set: u8,
    /// The schema it was logged in to (a reset keeps the current one, so dpm sets it).
    schema: Option<Bytes>,
}

impl Key {
    /// The key of a login with `credentials`, `capabilities`, and the client's collation
    /// and schema.
    pub(crate) fn new(
        credentials: BackendCredentials,
        capabilities: u64,
        login: &dpm_protocol::HandshakeResponse41,
    ) -> Key {
        Key {
            credentials,
            capabilities,
            character_set: login.character_set,
            schema: login.database.clone().filter(|d| !d.is_empty()),
        }
    }
}

/// What a session keeps to give its connection back: its key and the server's greeting
/// (which greets the client of the session that takes it).
#[derive(Clone, Debug)]
pub(crate) struct Ticket {
    pub key: Key,
    pub greeting: Rc<HandshakeV10>,
}

/// One kept connection.
struct Kept {
    server: Arc<Server>,
    backend: Rc<Conn>,
    ticket: Ticket,
    /// Its event mask, off while it is kept.
    mask: EventMask,
    /// Tells this stay in the pool from a later one (for the expiry timer).
    stay: u64,
}

/// A worker's kept connections, every server's.
#[derive(Default)]
pub(crate) struct WorkerPool {
    kept: RefCell<Vec<Kept>>,
    stays: Cell<u64>,
}

impl WorkerPool {
    /// Drops the connections that closed (or whose reset failed) since the last look.
    fn sweep(&self, worker: &Worker) {
        let mut failed = Vec::new();
        self.kept.borrow_mut().retain(|k| {
            let gone = k.backend.closing.get() || k.backend.pool.get() == PoolState::Failed;
            if gone {
                k.server.pooled.fetch_sub(1, Ordering::Relaxed);
                failed.push(k.backend.id);
            }
            !gone
        });
        for id in failed {
            worker.close(id);
        }
    }
}

/// Offers the backend of a session that ended to its server's pool: true when it was
/// kept (the caller must not close it). See the module docs for when it is.
pub(crate) fn offer(
    worker: &Worker,
    ticket: &Ticket,
    server: &Arc<Server>,
    backend: &Rc<Conn>,
) -> bool {
    let settings = server.pool;
    if settings.max == 0
        || worker.inner.lifecycle.is_draining()
        || backend.closing.get()
        || backend.unsent() > 0
        || !backend.pending_input.borrow().is_empty()
        || backend.session.borrow().is_some()
    {
        return false;
    }
    {
        let tracker = backend.tracker.borrow();
        if tracker.phase() != Phase::Ready || !tracker.is_idle() {
            return false;
        }
    }
    let pool = &worker.inner.pool;
    pool.sweep(worker);
    let same_server = pool
        .kept
        .borrow()
        .iter()
        .filter(|k| Arc::ptr_eq(&k.server, server))
        .count();
    if same_server >= settings.max {
        return false;
    }
    let owed = if ticket.key.schema.is_some() { 2 } else { 1 };
    backend.pool.set(PoolState::Resetting { owed, status: 0 });
    let mask = backend.mask.replace(EventMask::default());
    crate::forward::write_packet(backend, &[com::RESET_CONNECTION]);
    if let Some(schema) = &ticket.key.schema {
        let mut init_db = Vec::with_capacity(1 + schema.len());
        init_db.push(com::INIT_DB);
        init_db.extend_from_slice(schema);
        crate::forward::write_packet(backend, &init_db);
    }
    let stay = pool.stays.get() + 1;
    pool.stays.set(stay);
    pool.kept.borrow_mut().push(Kept {
        server: server.clone(),
        backend: backend.clone(),
        ticket: ticket.clone(),
        mask,
        stay,
    });
    server.pooled.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(conn = backend.id, server = %server.name, "server connection kept for the next session");
    expire_after(worker, settings.max_time, stay);
    true
}

/// True when `session`'s client quitting now leaves `backend` to be kept: the session
/// keeps its server connection (`Session::keeps_backend`) and nothing is under way on it.
/// The COM_QUIT is then not forwarded and dpm closes the client.
pub(crate) fn keeps_at_quit(session: &crate::session::Session, backend: &Conn) -> bool {
    session.keeps_backend() && backend.tracker.borrow().is_idle()
}

/// Closes the connection of pool stay `stay` once it waited `limit`, if still kept.
fn expire_after(worker: &Worker, limit: Duration, stay: u64) {
    let worker = worker.clone();
    tokio::task::spawn_local(async move {
        tokio::time::sleep(limit).await;
        let pool = &worker.inner.pool;
        let expired = {
            let mut kept = pool.kept.borrow_mut();
            kept.iter()
                .position(|k| k.stay == stay)
                .map(|at| kept.swap_remove(at))
        };
        if let Some(k) = expired {
            k.server.pooled.fetch_sub(1, Ordering::Relaxed);
            tracing::debug!(conn = k.backend.id, server = %k.server.name, "kept server connection closed after persistmaxtime");
            worker.close(k.backend.id);
        }
    });
}

/// The greeting to greet a client of `server` with when the pool may serve its session
/// (it holds a connection of the client's generation): no connect needed for it.
pub(crate) fn greeting(
    worker: &Worker,
    server: &Arc<Server>,
    generation: &Rc<Generation>,
) -> Option<Rc<HandshakeV10>> {
    if server.pool.max == 0 {
        return None;
    }
    let pool = &worker.inner.pool;
    pool.sweep(worker);
    let kept = pool.kept.borrow();
    kept.iter()
        .find(|k| Arc::ptr_eq(&k.server, server) && Rc::ptr_eq(&k.backend.generation, generation))
        .map(|k| k.ticket.greeting.clone())
}

/// A kept connection handed to a session.
pub(crate) struct Taken {
    pub backend: Rc<Conn>,
    /// The server's status flags after the reset (the client's login OK carries them).
    pub status: u16,
}

/// Takes a reset connection to `server` of `generation` whose key is `key`, if one is
/// kept. Its event callbacks are back on; it is not linked yet.
pub(crate) fn take(
    worker: &Worker,
    server: &Arc<Server>,
    generation: &Rc<Generation>,
    key: &Key,
) -> Option<Taken> {
    let pool = &worker.inner.pool;
    pool.sweep(worker);
    let k = {
        let mut kept = pool.kept.borrow_mut();
        let at = kept.iter().position(|k| {
            Arc::ptr_eq(&k.server, server)
                && Rc::ptr_eq(&k.backend.generation, generation)
                && matches!(k.backend.pool.get(), PoolState::Ready { .. })
                && k.ticket.key == *key
        })?;
        kept.swap_remove(at)
    };
    let PoolState::Ready { status } = k.backend.pool.replace(PoolState::Out) else {
        unreachable!("only a ready connection is taken");
    };
    k.backend.mask.set(k.mask);
    server.pooled.fetch_sub(1, Ordering::Relaxed);
    server.pool_reuses.fetch_add(1, Ordering::Relaxed);
    Some(Taken {
        backend: k.backend,
        status,
    })
}

/// A packet a kept connection's server sent (its reader saw it, unlinked): the answers
/// to its reset. An error, or anything that is not an answer owed, fails it.
#[cold]
pub(crate) fn reset_answer(conn: &Conn, info: &FrameInfo, payload: &[u8]) {
    let next = match conn.pool.get() {
        PoolState::Resetting { owed, status } => match info.kind {
            PacketKind::Ok => {
                let status = dpm_protocol::response::ok_status(payload).unwrap_or(status);
                if owed > 1 {
                    PoolState::Resetting {
                        owed: owed - 1,
                        status,
                    }
                } else {
                    PoolState::Ready { status }
                }
            }
            _ => {
                tracing::info!(
                    conn = conn.id,
                    "the reset of a kept server connection failed; closing it"
                );
                PoolState::Failed
            }
        },
        PoolState::Out => return,
        PoolState::Ready { .. } | PoolState::Failed => PoolState::Failed,
    };
    conn.pool.set(next);
}
