//! Which session the code running on a worker thread works for, so that every log line
//! about a session can say whose it is (its id, client address and user) without the
//! data path paying for it.
//!
//! A connection's tasks (its reader and writer, the task that accepts and logs a client
//! in) are wrapped in [`SessionScoped`], which notes the connection's id in a
//! thread-local for the duration of each poll — two thread-local writes per poll, where a
//! `tracing` span entered per poll measured 6.7 % more instructions per statement. The
//! logger (the binary's) calls [`current_session`] only when it writes a line: it then
//! looks the connection up in the worker's table and finds its session as it is *now*
//! (a backend opened by a script and linked later logs as its session's from then on).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::conn::Role;
use crate::worker::Worker;
use crate::ConnId;

thread_local! {
    /// The connection whose task is being polled (0: none), and the session it belonged
    /// to when its task started (0: none).
    static CURRENT: Cell<(ConnId, ConnId)> = const { Cell::new((0, 0)) };
    /// This thread's worker, for looking sessions up.
    static WORKER: RefCell<Option<Worker>> = const { RefCell::new(None) };
}

/// Tells the logger which worker this thread runs (once, as the worker starts).
pub(crate) fn set_worker(worker: &Worker) {
    WORKER.with(|w| *w.borrow_mut() = Some(worker.clone()));
}

pin_project_lite::pin_project! {
    /// A future polled as the work of connection `conn` (see the module docs).
    pub(crate) struct SessionScoped<F> {
        conn: ConnId,
        session: ConnId,
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for SessionScoped<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let before = CURRENT.with(|c| c.replace((*this.conn, *this.session)));
        let polled = this.inner.poll(cx);
        CURRENT.with(|c| c.set(before));
        polled
    }
}

/// `future`, polled as the work of `conn` (and so of the session it belongs to when a
/// line is written).
pub(crate) fn scoped<F: Future>(conn: &crate::conn::Conn, future: F) -> SessionScoped<F> {
    let session = conn.session.borrow().as_ref().map_or(0, |s| s.client);
    SessionScoped {
        conn: conn.id,
        session,
        inner: future,
    }
}

/// What a log line says about the session it was written for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFacts {
    /// The session's id (its client connection's id).
    pub id: ConnId,
    /// The client's address, if the client is still there.
    pub client: Option<String>,
    /// Its user, once known (the login the client sent, or the proxy-held user).
    pub user: Option<String>,
}

/// The session the running code works for, if any (for the logger). Never panics: a table
/// that is being changed as the line is written gives the id alone.
pub fn current_session() -> Option<SessionFacts> {
    let (conn, at_spawn) = CURRENT.with(|c| c.get());
    if conn == 0 {
        return None;
    }
    let known = WORKER.with(|w| {
        let worker = w.try_borrow().ok()?;
        let conns = worker.as_ref()?.inner.conns.try_borrow().ok()?;
        let this = conns.get(&conn)?;
        // A client is its own session; a backend, its session's while it is linked.
        let id = match this.role {
            Role::Client => conn,
            _ => this.session.try_borrow().ok()?.as_ref()?.client,
        };
        let mut facts = SessionFacts {
            id,
            client: None,
            user: None,
        };
        let Some(client) = conns.get(&id).filter(|c| c.role == Role::Client) else {
            return Some(facts);
        };
        facts.client = client.transport.get().and_then(|t| t.peer());
        if let Some(session) = client.session.try_borrow().ok()?.as_ref() {
            facts.user = session.user_name();
        }
        Some(facts)
    });
    // Gone from the table (it is closing): the session it had when its task started.
    known.or_else(|| {
        (at_spawn != 0).then_some(SessionFacts {
            id: at_spawn,
            client: None,
            user: None,
        })
    })
}
