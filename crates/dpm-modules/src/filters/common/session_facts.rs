//! What a filter reports about the session it serves: id, user, client address and
//! service, taken once when the session starts (the user is read live: COM_CHANGE_USER
//! changes it).

use bytes::Bytes;
use dpm_engine::pipeline::SessionRef;

/// A session as a filter's log lines describe it.
pub struct SessionFacts {
    /// The session's id.
    pub id: u64,
    /// The client's `ip:port` (or `localhost`).
    pub client: Option<String>,
    /// The service's name.
    pub service: String,
}

impl SessionFacts {
    /// The facts of `session`.
    pub fn of(session: &SessionRef) -> SessionFacts {
        SessionFacts {
            id: session.id(),
            client: session.client_address(),
            service: session.service_name().to_string(),
        }
    }

    /// The session's user as the client logged in (or changed to).
    pub fn user(session: &SessionRef) -> Option<Bytes> {
        session.session.state.borrow().user.clone()
    }
}
