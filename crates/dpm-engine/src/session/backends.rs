//! A session with more than one backend (readwritesplit): the backends it holds besides
//! the linked one ("spares"), the session commands that brought each to the session's
//! state, and switching the link from one backend to another.
//!
//! The client's packets go to the linked backend only. A spare is a member of the
//! session that is not linked: what it sends has no partner and is discarded as it is
//! read (`forward.rs`), after the tracker followed it. Spares receive only session
//! commands (SET, USE, PREPARE …, [`Route::SessionCommand`]), so every backend of the
//! session has the same session state; one whose answer is an error is marked diverged
//! and never linked again. A backend opened later replays the history of session
//! commands that succeeded before it is used; a session whose history overflowed opens
//! no new backend.
//!
//! [`Route::SessionCommand`]: crate::pipeline::Route::SessionCommand

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::Session;
use crate::authenticator::backend_login::{open_logged_in, LoggedIn};
use crate::client::response::{read_response, ResponseReader};
use crate::client::wire::PacketStream;
use crate::client::ResponseSummary;
use crate::conn::Conn;
use crate::pipeline::Pipeline;
use crate::service::Server;
use crate::worker::Worker;
use crate::ConnId;

/// A backend of the session that is not linked.
#[derive(Debug)]
struct Spare {
    server: Arc<Server>,
    conn: ConnId,
    /// A session command failed on it: its state is not the session's.
    diverged: bool,
}

/// The backends of a session beyond the linked one, and its session-command history.
#[derive(Debug, Default)]
pub struct Backends {
    spares: Vec<Spare>,
    /// The servers the session has a backend to, the linked one first (kept for the
    /// router, which is handed it with every request).
    open: Vec<Arc<Server>>,
    /// Session commands that succeeded, in order: replayed on every backend opened later.
    history: Vec<Bytes>,
    /// The history overflowed its limit: a new backend could not be given the session's
    /// state, so none is opened.
    history_lost: bool,
}

impl Backends {
    /// The servers the session has a backend to, the linked one first.
    pub fn open(&self) -> &[Arc<Server>] {
        &self.open
    }

    /// True when a backend opened now could be brought to the session's state.
    pub fn history_complete(&self) -> bool {
        !self.history_lost
    }

    /// The session's first backend is linked to `server`.
    pub(crate) fn started_on(&mut self, server: &Arc<Server>) {
        self.open.clear();
        self.open.push(server.clone());
    }

    fn refresh_open(&mut self, current: &Arc<Server>) {
        self.open.clear();
        self.open.push(current.clone());
        for s in &self.spares {
            if !s.diverged && !self.open.iter().any(|o| Arc::ptr_eq(o, &s.server)) {
                self.open.push(s.server.clone());
            }
        }
    }
}

/// Sends a session command to every spare of the session (their answers are discarded
/// by their readers).
pub(crate) fn send_to_spares(worker: &Worker, session: &Session, payload: &[u8]) {
    let backends = session.backends.borrow();
    for spare in backends.spares.iter().filter(|s| !s.diverged) {
        if let Some(conn) = worker.get(spare.conn) {
            crate::forward::write_packet(&conn, payload);
        }
    }
}

/// The linked backend answered a session command: on success it joins the history
/// (up to `limit` entries); on failure every spare, which ran it too, may now differ
/// and is retired.
pub(crate) fn session_command_done(
    worker: &Worker,
    session: &Session,
    payload: Bytes,
    succeeded: bool,
    limit: usize,
) {
    let mut backends = session.backends.borrow_mut();
    if !succeeded {
        for spare in &mut backends.spares {
            spare.diverged = true;
        }
        drop(backends);
        close_diverged(worker, session);
        return;
    }
    if backends.history.len() >= limit {
        if !backends.history_lost {
            tracing::info!(
                client = session.client,
                limit,
                "session-command history full: the session opens no further backends"
            );
        }
        backends.history_lost = true;
        backends.history.clear();
    } else if !backends.history_lost {
        backends.history.push(payload);
    }
}

/// A spare answered a session command with an error (seen by its reader).
pub(crate) fn spare_failed(session: &Session, conn: ConnId) {
    let mut backends = session.backends.borrow_mut();
    if let Some(spare) = backends.spares.iter_mut().find(|s| s.conn == conn) {
        tracing::warn!(client = session.client, server = %spare.server.name, "a session command failed on a spare backend: it is retired");
        spare.diverged = true;
    }
}

/// A spare of the session closed: it leaves the session. False if `conn` is not one.
pub(crate) fn spare_closed(session: &Session, conn: ConnId, current: Option<&Arc<Server>>) -> bool {
    let mut backends = session.backends.borrow_mut();
    let Some(at) = backends.spares.iter().position(|s| s.conn == conn) else {
        return false;
    };
    let spare = backends.spares.swap_remove(at);
    spare.server.sessions.fetch_sub(1, Ordering::Relaxed);
    if let Some(current) = current {
        backends.refresh_open(current);
    }
    true
}

/// Closes every spare (the session ends, or starts over after COM_CHANGE_USER) and
/// forgets the history.
pub(crate) fn forget_all(worker: &Worker, session: &Session) {
    let spares = {
        let mut backends = session.backends.borrow_mut();
        backends.history.clear();
        backends.history_lost = false;
        backends.open.truncate(1);
        std::mem::take(&mut backends.spares)
    };
    for spare in spares {
        spare.server.sessions.fetch_sub(1, Ordering::Relaxed);
        if let Some(conn) = worker.get(spare.conn) {
            conn.session.replace(None);
            worker.close(spare.conn);
        }
    }
}

fn close_diverged(worker: &Worker, session: &Session) {
    let gone: Vec<ConnId> = {
        let backends = session.backends.borrow();
        backends
            .spares
            .iter()
            .filter(|s| s.diverged)
            .map(|s| s.conn)
            .collect()
    };
    for id in gone {
        worker.close(id);
    }
}

/// Links the session to a backend on `server` instead of its current one, which stays
/// as a spare: once the client's earlier commands are answered, with a spare on that
/// server or a backend opened and brought to the session's state now.
pub(crate) async fn switch_to(
    worker: &Worker,
    client: &Rc<Conn>,
    session: &Rc<Session>,
    pipeline: &Pipeline,
    server: &Arc<Server>,
) -> Result<(), String> {
    crate::pipeline::await_earlier_responses(client).await;
    close_diverged(worker, session);
    let deadline = Instant::now() + worker.inner.config.connect_timeout;
    let spare = {
        let backends = session.backends.borrow();
        backends
            .spares
            .iter()
            .find(|s| Arc::ptr_eq(&s.server, server) && !s.diverged)
            .and_then(|s| worker.get(s.conn))
    };
    let backend = match spare {
        Some(conn) => conn,
        None => open(worker, session, server).await?,
    };
    // Session commands it is still running must be answered (and checked) first.
    while !backend.tracker.borrow().is_idle() && !backend.closing.get() {
        if Instant::now() >= deadline {
            return Err("the backend did not finish the session's commands in time".into());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let diverged = session
        .backends
        .borrow()
        .spares
        .iter()
        .any(|s| s.conn == backend.id && s.diverged);
    if backend.closing.get() || client.closing.get() || diverged {
        return Err("the backend failed a session command".into());
    }
    let old = session.backend.get();
    let old_server = pipeline.server();
    {
        let mut backends = session.backends.borrow_mut();
        backends.spares.retain(|s| s.conn != backend.id);
        if let Some(old) = old.filter(|&id| worker.get(id).is_some()) {
            backends.spares.push(Spare {
                server: old_server,
                conn: old,
                diverged: false,
            });
        }
        backends.refresh_open(server);
    }
    session.backend.set(Some(backend.id));
    pipeline.set_server(server.clone());
    pipeline.counted.set(true);
    client.remote_id.set(backend.id);
    backend.remote_id.set(client.id);
    client.drained.notify_waiters();
    Ok(())
}

/// Opens a backend to `server` for the session: logged in like the session's first
/// (dpm ran the client's login) and given the session's state by replaying the
/// history; it joins the session as a spare and starts reading.
async fn open(
    worker: &Worker,
    session: &Rc<Session>,
    server: &Arc<Server>,
) -> Result<Rc<Conn>, String> {
    let login = session.login.borrow().as_ref().map(|l| {
        let credentials = l.slot.user().spec.backend.clone();
        (l.response.clone(), credentials)
    });
    let Some((response, user_credentials)) = login else {
        return Err(
            "dpm did not run this client's login, so it cannot log in to another server for it"
                .into(),
        );
    };
    let Some(credentials) = user_credentials.or_else(|| server.credentials.clone()) else {
        return Err(format!(
            "no backend credentials for server '{}'",
            server.name
        ));
    };
    let history = {
        let backends = session.backends.borrow();
        if backends.history_lost {
            return Err("the session-command history overflowed".into());
        }
        backends.history.clone()
    };
    let LoggedIn {
        backend, unread, ..
    } = open_logged_in(worker, server, &response, &credentials)
        .await
        .map_err(|e| e.to_string())?;
    let caps = backend.tracker.borrow().negotiated_caps();
    let replayed = match backend.transport.get() {
        None => Err("closed".to_string()),
        Some(transport) => {
            let mut stream = PacketStream::new(transport);
            stream.resume(0, unread);
            let limit = worker.inner.config.connect_timeout;
            let replay = replay(&mut stream, &history, caps);
            match tokio::time::timeout(limit, replay).await {
                Ok(Ok(())) => Ok(stream.take_unread()),
                Ok(Err(e)) => Err(e),
                Err(_) => Err("replaying the session's commands timed out".into()),
            }
        }
    };
    let unread = match replayed {
        Ok(unread) => unread,
        Err(e) => {
            worker.close(backend.id);
            return Err(e);
        }
    };
    if session.pipeline().is_none() {
        worker.close(backend.id);
        return Err("the session ended".into());
    }
    backend.session.replace(Some(session.clone()));
    backend.pending_input.replace(unread);
    server.sessions.fetch_add(1, Ordering::Relaxed);
    server.total_sessions.fetch_add(1, Ordering::Relaxed);
    session.backends.borrow_mut().spares.push(Spare {
        server: server.clone(),
        conn: backend.id,
        diverged: false,
    });
    crate::forward::start_io(worker, &backend);
    tracing::debug!(client = session.client, server = %server.name, replayed = history.len(), "session opened a backend");
    Ok(backend)
}

/// Runs each session command of `history` on a fresh backend; all must succeed.
async fn replay(
    stream: &mut PacketStream<&crate::transport::Transport>,
    history: &[Bytes],
    caps: u64,
) -> Result<(), String> {
    for command in history {
        stream.reset_seq();
        stream.write(command).await.map_err(|e| e.to_string())?;
        let mut reader = ResponseReader::new(caps, false);
        read_response(stream, &mut reader)
            .await
            .map_err(|e| e.to_string())?;
        if let ResponseSummary::Err { code, message, .. } = reader.into_summary() {
            let sql = String::from_utf8_lossy(&command[1..command.len().min(80)]);
            return Err(format!("replaying `{sql}` failed there: {code} {message}"));
        }
    }
    Ok(())
}

/// The linked backend `lost` closed. A session of a router that uses several backends
/// may go on: when its client awaits no answer, or awaits one that has not started (the
/// request is then routed again, if the router says it can safely run twice). The router
/// is told (`handle_error`) and decides; one of the session's other backends (the
/// primary's first) is linked instead, or none (the next request opens one). False when
/// the session must end.
pub(crate) fn carry_on_without(
    worker: &Worker,
    session: &Rc<Session>,
    pipeline: &Rc<Pipeline>,
    lost: &Conn,
) -> bool {
    let Some(client) = worker.get(session.client) else {
        return false;
    };
    if !pipeline.uses_several_backends() || client.closing.get() {
        return false;
    }
    let in_flight = {
        let tracker = client.tracker.borrow();
        match (
            tracker.is_idle(),
            tracker.pending_commands(),
            tracker.response_started(),
        ) {
            (true, _, _) => None,
            (false, 1, false) => match pipeline.in_flight_request() {
                Some(request) => Some(request),
                None => return false,
            },
            _ => return false,
        }
    };
    let server = pipeline.server();
    let error = "the server closed the connection";
    let goes_on = pipeline
        .router
        .borrow_mut()
        .handle_error(&server, error, in_flight.as_deref());
    if !goes_on {
        return false;
    }
    server.sessions.fetch_sub(1, Ordering::Relaxed);
    pipeline.counted.set(false);
    let next = {
        let mut backends = session.backends.borrow_mut();
        let usable = |s: &Spare| {
            !s.diverged
                && worker
                    .get(s.conn)
                    .is_some_and(|c| !c.closing.get() && c.tracker.borrow().is_idle())
        };
        let pick = backends
            .spares
            .iter()
            .position(|s| usable(s) && s.server.role() == crate::service::ServerRole::Primary)
            .or_else(|| backends.spares.iter().position(usable));
        let next = pick.map(|at| backends.spares.swap_remove(at));
        if let Some(spare) = &next {
            backends.refresh_open(&spare.server);
        } else {
            backends.open.clear();
        }
        next
    };
    match &next {
        Some(spare) => {
            tracing::info!(client = client.id, lost = %server.name, now = %spare.server.name, backend = lost.id, "{error}; the session goes on with another of its backends");
            session.backend.set(Some(spare.conn));
            client.remote_id.set(spare.conn);
            if let Some(conn) = worker.get(spare.conn) {
                conn.remote_id.set(client.id);
            }
            pipeline.set_server(spare.server.clone());
            pipeline.counted.set(true);
            client.drained.notify_waiters();
        }
        None => {
            tracing::info!(client = client.id, lost = %server.name, backend = lost.id, "{error}; the session goes on and opens a backend for its next statement")
        }
    }
    if let Some(request) = in_flight {
        tracing::info!(client = client.id, lost = %server.name, "the statement it was running is routed again");
        let (worker, session, pipeline) = (worker.clone(), session.clone(), pipeline.clone());
        tokio::task::spawn_local(async move {
            crate::pipeline::route_again(&worker, &client, &session, &pipeline, request).await;
        });
    }
    true
}
