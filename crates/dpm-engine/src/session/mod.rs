//! Sessions: one client connection, the backend connection it is linked to, and the
//! session's state as the server reported it.
//!
//! This module is the one place that pairs connections and undoes pairings: linking and
//! unlinking (the DPM API's `proxy_connect`/`proxy_disconnect`), and what a close does to
//! the other side. Every client gets a session when it is accepted; a backend belongs to
//! the session it is linked into, or to none (a pooled or fresh backend). A session
//! serving a service also carries its pipeline (filters and router, `crate::pipeline`).

pub mod backends;
mod pairing;
pub(crate) mod pool;
pub mod replay;
pub mod state;
pub mod statements;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

pub use state::SessionState;

use crate::pipeline::Pipeline;
use crate::service::Server;
use crate::ConnId;

/// One client's session (see the module docs).
#[derive(Debug)]
pub struct Session {
    /// The client connection; the session's id is the client's id.
    pub client: ConnId,
    /// The backend the client is linked to (packets flow between the two).
    backend: Cell<Option<ConnId>>,
    /// What the server reported about the session (kept for service sessions only).
    pub state: RefCell<SessionState>,
    /// The filters and router of a session that serves a service.
    pipeline: RefCell<Option<Rc<Pipeline>>>,
    /// The login dpm ran itself (proxy-held users), until the session ends.
    login: RefCell<Option<crate::authenticator::ProxyLogin>>,
    /// Backends beyond the linked one and the session-command history (readwritesplit).
    pub backends: RefCell<backends::Backends>,
    /// The open transaction's statements, kept for a replay (`transaction_replay`).
    pub(crate) trx: RefCell<replay::TrxLog>,
    /// A transaction is being kept: the forwarding loop checksums the answers. (The
    /// transaction log knows it too; this copy is read per packet without a borrow.)
    pub(crate) recording: Cell<bool>,
    /// A lost transaction is being replayed: the client's next statement waits.
    pub(crate) replaying: Cell<bool>,
    /// The session is over (its transaction could not be replayed): the client's next
    /// statement gets this error and the client is closed.
    pub(crate) doomed: RefCell<Option<dpm_protocol::err::ErrPacket>>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("service", &self.service.shared.name)
            .field("server", &self.server().name)
            .finish()
    }
}

impl Session {
    /// A session for a freshly accepted client.
    pub fn new(client: ConnId) -> Session {
        Session {
            client,
            backend: Cell::new(None),
            state: RefCell::new(SessionState::default()),
            pipeline: RefCell::new(None),
            login: RefCell::new(None),
            backends: RefCell::default(),
            trx: RefCell::default(),
            recording: Cell::new(false),
            replaying: Cell::new(false),
            doomed: RefCell::new(None),
        }
    }

    /// The proxy-held user the client logged in as, if dpm ran its login.
    pub fn proxy_user(&self) -> Option<String> {
        self.login
            .borrow()
            .as_ref()
            .map(|l| l.slot.user().spec.user.clone())
    }

    /// The session's user as an operator sees it: the proxy-held user dpm logged in, else
    /// the one the client's login named (service sessions). Never panics: state being
    /// changed as it is asked gives `None` (the logger asks at any moment).
    pub fn user_name(&self) -> Option<String> {
        self.proxy_user().or_else(|| {
            let state = self.state.try_borrow().ok()?;
            let user = state.user.as_deref()?;
            Some(String::from_utf8_lossy(user).into_owned())
        })
    }

    /// True when dpm ran the client's login (and answers its COM_CHANGE_USER).
    #[inline]
    pub(crate) fn has_proxy_login(&self) -> bool {
        self.login.borrow().is_some()
    }

    /// Records the login dpm ran (see [`Session::proxy_user`]); returns the one it
    /// replaces.
    pub(crate) fn set_proxy_login(
        &self,
        login: crate::authenticator::ProxyLogin,
    ) -> Option<crate::authenticator::ProxyLogin> {
        self.login.replace(Some(login))
    }

    /// The login dpm ran, taken out (for a COM_CHANGE_USER, which puts one back).
    pub(crate) fn take_proxy_login(&self) -> Option<crate::authenticator::ProxyLogin> {
        self.login.take()
    }

    /// True when the session's server connection is to be kept for the next session
    /// when it ends (its server has a pool and dpm ran the login: `pool`).
    pub(crate) fn keeps_backend(&self) -> bool {
        self.login
            .borrow()
            .as_ref()
            .is_some_and(|l| l.pool.is_some())
    }

    /// The session's pipeline, if it serves a service.
    #[inline]
    pub fn pipeline(&self) -> Option<Rc<Pipeline>> {
        self.pipeline.borrow().clone()
    }

    /// Makes this a service session.
    pub(crate) fn set_pipeline(&self, pipeline: Rc<Pipeline>) {
        self.pipeline.replace(Some(pipeline));
    }

    /// Ends the service part of the session (once; later calls return `None`).
    pub(crate) fn take_pipeline(&self) -> Option<Rc<Pipeline>> {
        self.pipeline.take()
    }

    /// The server a service session's backend is connected to.
    pub fn server(&self) -> Option<Arc<Server>> {
        self.pipeline.borrow().as_ref().map(|p| p.server())
    }

    /// The linked backend, if any.
    pub fn backend(&self) -> Option<ConnId> {
        self.backend.get()
    }

    /// The connection on the other side from `conn` (a member of this session).
    #[inline]
    pub(crate) fn other_side(&self, conn: ConnId) -> Option<ConnId> {
        if conn == self.client {
            self.backend.get()
        } else if self.backend.get() == Some(conn) {
            Some(self.client)
        } else {
            None
        }
    }
}
