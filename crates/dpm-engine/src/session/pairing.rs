//! Pairing and unpairing: `link`, `unlink` and what closing a connection does to its
//! session. The DPM API's quirks live here too: `remote_id` is the id of a connection's
//! last partner, kept after that partner closes (scripts clean up with it) and zeroed by
//! an explicit unlink.

use std::rc::Rc;

use crate::conn::{Conn, Role};
use crate::error::EngineError;
use crate::worker::Worker;
use crate::ConnId;

impl Worker {
    /// The linked partner of `conn`, if it is still open. Looked up on every read.
    #[inline]
    pub(crate) fn partner_of(&self, conn: &Conn) -> Option<Rc<Conn>> {
        let other = conn.session.borrow().as_ref()?.other_side(conn.id)?;
        self.get(other)
    }

    /// Links a client and a backend: from now on each packet read on one side is
    /// forwarded to the other unless a callback says otherwise. A backend linked to
    /// another client, or a backend the client was linked to, is unlinked first.
    pub fn link(&self, client: ConnId, backend: ConnId) -> Result<(), EngineError> {
        let c = self
            .get(client)
            .ok_or(EngineError::DeadConnection(client))?;
        let b = self
            .get(backend)
            .ok_or(EngineError::DeadConnection(backend))?;
        if c.role != Role::Client {
            return Err(EngineError::WrongKind {
                id: client,
                problem: "is not a client",
            });
        }
        if b.role != Role::Backend {
            return Err(EngineError::WrongKind {
                id: backend,
                problem: "is not a backend",
            });
        }
        let Some(session) = c.session.borrow().clone() else {
            return Err(EngineError::WrongKind {
                id: client,
                problem: "has no session",
            });
        };
        // The backend leaves the session it was in (its old client loses its partner) …
        if let Some(old) = b.session.take() {
            if old.backend.get() == Some(backend) && !Rc::ptr_eq(&old, &session) {
                old.backend.set(None);
            }
        }
        // … and the client's old backend loses its back-pointer instead of keeping a dangling one.
        if let Some(old_backend) = session
            .backend
            .get()
            .filter(|&id| id != backend)
            .and_then(|id| self.get(id))
        {
            old_backend.session.replace(None);
        }
        session.backend.set(Some(backend));
        b.session.replace(Some(session));
        c.remote_id.set(backend);
        b.remote_id.set(client);
        // A backend that became linked may hold unread data paused for lack of a partner.
        b.drained.notify_waiters();
        c.drained.notify_waiters();
        Ok(())
    }

    /// Unlinks `id` and its partner; both `remote_id`s become 0.
    pub fn unlink(&self, id: ConnId) -> Result<(), EngineError> {
        let conn = self.get(id).ok_or(EngineError::DeadConnection(id))?;
        let not_linked = EngineError::WrongKind {
            id,
            problem: "is not linked",
        };
        let session = conn.session.borrow().clone().ok_or(not_linked)?;
        let Some(partner) = session.other_side(id) else {
            return Err(EngineError::WrongKind {
                id,
                problem: "is not linked",
            });
        };
        let backend = session.backend.take().unwrap_or(partner);
        conn.remote_id.set(0);
        if let Some(p) = self.get(partner) {
            p.remote_id.set(0);
        }
        if let Some(b) = self.get(backend) {
            b.session.replace(None);
        }
        Ok(())
    }

    /// What closing `conn` does to its session: its partner is unlinked but stays open
    /// and keeps `remote_id` (the original's behaviour), and the closed connection's own
    /// `remote_id` is remembered until the script forgets it.
    pub(crate) fn leave_session_on_close(&self, conn: &Conn) {
        if !matches!(conn.role, Role::Listener(_)) {
            self.inner
                .closed_remote
                .borrow_mut()
                .insert(conn.id, conn.remote_id.get());
        }
        let Some(session) = conn.session.take() else {
            return;
        };
        let partner = session.other_side(conn.id).and_then(|p| self.get(p));
        // A client's login (proxy-held users) ends with it: the user's connection is
        // given back once its server connection was kept or closed.
        let login;
        if conn.role == Role::Client {
            login = session.take_proxy_login();
            if let Some(b) = &partner {
                b.session.replace(None);
            }
            session.backend.set(None);
            super::backends::forget_all(self, &session);
        } else if session.backend.get() == Some(conn.id) {
            session.backend.set(None);
            if let Some(pipeline) = session.pipeline() {
                if super::backends::carry_on_without(self, &session, &pipeline, conn) {
                    return;
                }
            }
            // Why a transaction kept for a replay is not replayed, for the client.
            let why = super::replay::why_not_replayed(&session);
            super::backends::forget_all(self, &session);
            if let Some(pipeline) = session.take_pipeline() {
                pipeline.close();
                if let Some(other) = partner {
                    self.end_service_session(conn, &other, &pipeline, why);
                }
            }
            return;
        } else {
            // A spare backend (readwritesplit): the session goes on without it.
            let current = session.pipeline().map(|p| p.server());
            super::backends::spare_closed(&session, conn.id, current.as_ref());
            return;
        }
        if let Some(pipeline) = session.take_pipeline() {
            // A service session owns its backend: the two close together, unless its
            // server keeps it for the next session.
            pipeline.close();
            if let Some(other) = partner {
                // (A session over several backends (readwritesplit) closes them all.)
                let ticket = login
                    .as_ref()
                    .and_then(|l| l.pool.as_ref())
                    .filter(|_| !pipeline.uses_several_backends());
                let kept =
                    ticket.is_some_and(|t| super::pool::offer(self, t, &pipeline.server(), &other));
                if !kept {
                    self.end_service_session(conn, &other, &pipeline, None);
                }
            }
            return;
        }
        if let Some(p) = partner {
            p.drained.notify_waiters();
        }
    }

    /// The other side of a service session whose `closed` side went away: a client's
    /// backend is closed; a backend's client is told (when a command awaits an answer)
    /// and closed. (Whether the session could go on without that backend was decided
    /// before, by `backends::carry_on_without`, with the router.)
    fn end_service_session(
        &self,
        closed: &Conn,
        other: &Rc<Conn>,
        pipeline: &crate::pipeline::Pipeline,
        detail: Option<&str>,
    ) {
        if closed.role == Role::Backend {
            let error = "the server closed the connection";
            // A client awaiting an answer (or its greeting) is told why none comes, unless
            // the answer has started (an ERR inside a result set would be misread); an
            // idle one (after COM_QUIT, say) is simply closed.
            let waiting = {
                let tracker = other.tracker.borrow();
                !tracker.is_idle() && !tracker.response_started()
            };
            if waiting {
                tracing::info!(
                    client = other.id,
                    service = %pipeline.service.shared.name,
                    server = %pipeline.server().name,
                    detail = detail.unwrap_or(""),
                    "{error}; closing the client"
                );
                let message = format!(
                    "Lost connection to server '{}' of service '{}': {error}{}",
                    pipeline.server().name,
                    pipeline.service.shared.name,
                    detail.map(|d| format!("; {d}")).unwrap_or_default()
                );
                crate::connector::send_error(
                    other,
                    crate::pipeline::LOST_BACKEND,
                    *b"08S01",
                    message,
                );
            }
        }
        self.close(other.id);
    }

    /// The id of the partner `id` is (or was last) linked to; 0 if none. Still answers
    /// after `id` closed, until [`Worker::forget`] (scripts clean up with it).
    pub fn remote_id(&self, id: ConnId) -> ConnId {
        match self.get(id) {
            Some(conn) => conn.remote_id.get(),
            None => self
                .inner
                .closed_remote
                .borrow()
                .get(&id)
                .copied()
                .unwrap_or(0),
        }
    }

    /// Drops what is remembered about a closed connection.
    pub fn forget(&self, id: ConnId) {
        self.inner.closed_remote.borrow_mut().remove(&id);
    }
}
