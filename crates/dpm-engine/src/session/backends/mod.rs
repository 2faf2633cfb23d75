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
//! no new backend. Binary prepared statements are prepared on every backend too, each
//! under its own id (`statements.rs` maps them).
//!
//! [`Route::SessionCommand`]: crate::pipeline::Route::SessionCommand

use std::collections::VecDeque;
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
use crate::tracker::PacketKind;
use crate::worker::Worker;
use crate::ConnId;

mod prepared;
use dpm_protocol::command::{response_shape, ResponseShape};
pub(crate) use prepared::{
    close_everywhere, for_backend, kept_form, show_client_id, statements_reset,
};

/// A backend of the session that is not linked.
#[derive(Debug)]
struct Spare {
    server: Arc<Server>,
    conn: ConnId,
    /// A session command failed on it: its state is not the session's.
    diverged: bool,
    /// What becomes of each answer it owes, oldest first.
    owed: VecDeque<Owed>,
}

/// What becomes of an answer a spare owes.
#[derive(Debug)]
enum Owed {
    /// A session command's: discarded (an error retires the spare).
    SessionCommand,
    /// A COM_STMT_PREPARE's, of the client's statement with this id: the spare's own
    /// id for it is noted.
    Prepare(u32),
    /// dpm's own query's: captured ([`query_spare`]).
    Capture(Rc<Capture>),
}

impl Spare {
    fn new(server: Arc<Server>, conn: ConnId) -> Spare {
        Spare {
            server,
            conn,
            diverged: false,
            owed: VecDeque::new(),
        }
    }
}

/// The answer to a query dpm ran itself on a spare, as its packets arrive.
#[derive(Debug, Default)]
struct Capture {
    payloads: std::cell::RefCell<Vec<Bytes>>,
    done: std::cell::Cell<bool>,
    /// The spare closed before the answer was complete.
    lost: std::cell::Cell<bool>,
    notify: tokio::sync::Notify,
}

/// The backends of a session beyond the linked one, and its session-command history.
#[derive(Debug, Default)]
pub struct Backends {
    spares: Vec<Spare>,
    /// The servers the session has a backend to, the linked one first (kept for the
    /// router, which is handed it with every request).
    open: Vec<Arc<Server>>,
    /// Session commands that succeeded, in order: replayed on every backend opened later.
    history: Vec<Kept>,
    /// The history overflowed its limit: a new backend could not be given the session's
    /// state, so none is opened.
    history_lost: bool,
    /// The binary prepared statements and each backend's id for them.
    statements: super::statements::Statements,
}

/// A session command of the history.
#[derive(Debug, Clone)]
struct Kept {
    payload: Bytes,
    /// A COM_STMT_PREPARE: the client's id for the statement (its COM_STMT_CLOSE takes
    /// it out of the history).
    statement: Option<u32>,
}

impl Backends {
    /// The servers the session has a backend to, the linked one first.
    pub fn open(&self) -> &[Arc<Server>] {
        &self.open
    }

    /// The session's binary prepared statements (sessions with several backends).
    pub fn statements(&self) -> &super::statements::Statements {
        &self.statements
    }

    pub(crate) fn statements_mut(&mut self) -> &mut super::statements::Statements {
        &mut self.statements
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

    /// The one server of a session whose router keeps one backend: `open` is only kept
    /// (and allocated) for routers that use several.
    pub fn single(&self) -> bool {
        self.open.is_empty()
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
/// by their readers). `statement`: it prepares the client's statement with this id. A
/// command naming a statement goes with each spare's id for it, to the spares that
/// have it.
pub(crate) fn send_to_spares(
    worker: &Worker,
    session: &Session,
    payload: &Bytes,
    statement: Option<u32>,
) {
    let answered = response_shape(payload[0]) != ResponseShape::None;
    let caps = prepared::client_caps(worker, session);
    let mut guard = session.backends.borrow_mut();
    let backends = &mut *guard;
    for spare in backends.spares.iter_mut().filter(|s| !s.diverged) {
        let Some(conn) = worker.get(spare.conn) else {
            continue;
        };
        let Ok(payload) = backends.statements.for_backend(spare.conn, payload, caps) else {
            continue;
        };
        if answered {
            spare.owed.push_back(match statement {
                Some(id) => Owed::Prepare(id),
                None => Owed::SessionCommand,
            });
        }
        crate::forward::write_packet(&conn, &payload);
    }
}

/// A packet from a spare (its reader passes every one here, in order): part of an
/// answer to discard — an error there means the spare no longer has the session's
/// state — or to capture. `ends`: the packet ends the answer.
pub(crate) fn spare_packet(
    session: &Session,
    spare_conn: &Conn,
    kind: PacketKind,
    payload: &[u8],
    ends: bool,
) {
    let conn = spare_conn.id;
    let mut guard = session.backends.borrow_mut();
    let backends = &mut *guard;
    let Some(spare) = backends.spares.iter_mut().find(|s| s.conn == conn) else {
        return;
    };
    let is_err = kind == PacketKind::Err;
    match spare.owed.front() {
        Some(Owed::Prepare(id)) if kind == PacketKind::PrepareOk => {
            if let Some(late) = backends.statements.prepared_on(*id, conn, payload) {
                // The client's prepare failed meanwhile: the statement is closed here too.
                let close = super::statements::close_command(late);
                crate::forward::write_packet(spare_conn, &close);
            }
        }
        Some(Owed::Prepare(id)) if is_err => {
            // Failing where the client's backend prepared it, the spare no longer
            // matches the session; if the client's fails too, nothing differs.
            let retire = backends.statements.failed_on(*id, conn) && !spare.diverged;
            if retire {
                tracing::warn!(client = session.client, server = %spare.server.name, "a prepared statement failed on a spare backend: it is retired");
                spare.diverged = true;
            }
        }
        Some(Owed::Capture(capture)) => {
            capture
                .payloads
                .borrow_mut()
                .push(Bytes::copy_from_slice(payload));
            if ends {
                capture.done.set(true);
                capture.notify.notify_one();
            }
        }
        Some(Owed::SessionCommand) if is_err && !spare.diverged => {
            tracing::warn!(client = session.client, server = %spare.server.name, "a session command failed on a spare backend: it is retired");
            spare.diverged = true;
        }
        _ => {}
    }
    if ends {
        spare.owed.pop_front();
    }
}

/// Runs `sql` on the session's spare `conn` (its answer is captured, not sent to the
/// client) and returns the first column of the first row (None: NULL, or no row).
async fn query_spare(
    worker: &Worker,
    session: &Session,
    conn: ConnId,
    sql: &str,
    limit: Duration,
) -> Result<Option<Bytes>, String> {
    let mut payload = Vec::with_capacity(sql.len() + 1);
    payload.push(dpm_protocol::command::com::QUERY);
    payload.extend_from_slice(sql.as_bytes());
    let packets = run_on_spare(worker, session, conn, &payload, limit).await?;
    let caps = worker
        .get(conn)
        .map(|b| b.tracker.borrow().negotiated_caps())
        .unwrap_or(0);
    let deprecate_eof = caps & dpm_protocol::caps::CLIENT_DEPRECATE_EOF != 0;
    first_value(&packets, deprecate_eof).map_err(|e| format!("`{sql}`: {e}"))
}

/// Sends the command `payload` to the session's spare `conn` and returns its answer's
/// packets (one payload per frame), captured instead of sent to the client.
pub(crate) async fn run_on_spare(
    worker: &Worker,
    session: &Session,
    conn: ConnId,
    payload: &[u8],
    limit: Duration,
) -> Result<Vec<Bytes>, String> {
    let what = || {
        let text = payload.get(1..payload.len().min(80)).unwrap_or_default();
        String::from_utf8_lossy(text).into_owned()
    };
    let backend = worker.get(conn).ok_or("the backend is gone")?;
    let capture = Rc::new(Capture::default());
    {
        let mut backends = session.backends.borrow_mut();
        let spare = backends
            .spares
            .iter_mut()
            .find(|s| s.conn == conn)
            .ok_or("not a spare backend")?;
        spare.owed.push_back(Owed::Capture(capture.clone()));
    }
    crate::forward::write_packet(&backend, payload);
    let wait = async {
        while !capture.done.get() {
            capture.notify.notified().await;
        }
    };
    tokio::time::timeout(limit, wait)
        .await
        .map_err(|_| format!("`{}` got no answer within {limit:?}", what()))?;
    if capture.lost.get() {
        return Err(format!(
            "the server closed the connection before answering `{}`",
            what()
        ));
    }
    Ok(capture.payloads.take())
}

/// The first column of the first row of a text response (`packets`: its payloads), in
/// either EOF style; None for NULL, no row, or an OK.
fn first_value(packets: &[Bytes], deprecate_eof: bool) -> Result<Option<Bytes>, String> {
    use dpm_protocol::lenenc::{get_lenenc_int, get_lenenc_str};
    let Some(head) = packets.first() else {
        return Err("no answer".into());
    };
    match head.first() {
        Some(0xFF) => {
            let err = dpm_protocol::err::ErrPacket::decode(head).map_err(|e| e.to_string())?;
            return Err(format!(
                "failed: {} {}",
                err.code,
                String::from_utf8_lossy(&err.message)
            ));
        }
        Some(0x00) => return Ok(None),
        _ => {}
    }
    let columns = get_lenenc_int(&mut &head[..])
        .ok()
        .flatten()
        .ok_or("a bad column count")? as usize;
    let row_at = 1 + columns + usize::from(!deprecate_eof);
    let Some(row) = packets.get(row_at) else {
        return Ok(None);
    };
    let terminator = row.first() == Some(&0xFE) && row.len() < 0xFF_FFFF;
    if terminator || row.first() == Some(&0xFF) {
        return Ok(None);
    }
    get_lenenc_str(&mut &row[..])
        .map(|v| v.map(Bytes::copy_from_slice))
        .map_err(|e| format!("a bad row: {e}"))
}

/// The linked backend answered a session command: on success it joins the history
/// (up to `limit` entries); on failure every spare, which ran it too, may now differ
/// and is retired. `statement`: it prepared the client's statement with this id — a
/// prepare that failed changed nothing (the spares that did prepare it close it again),
/// one that succeeded retires the spares where it failed.
pub(crate) fn session_command_done(
    worker: &Worker,
    session: &Session,
    payload: Bytes,
    succeeded: bool,
    limit: usize,
    statement: Option<u32>,
) {
    use super::statements::Answered;
    let mut backends = session.backends.borrow_mut();
    if let Some(id) = statement {
        match backends.statements.answered(id, succeeded) {
            Answered::Failed(copies) => {
                for (conn, backend_id) in copies {
                    if let Some(conn) = worker.get(conn) {
                        let close = super::statements::close_command(backend_id);
                        crate::forward::write_packet(&conn, &close);
                    }
                }
                return;
            }
            Answered::Prepared(failed) if !failed.is_empty() => {
                for spare in &mut backends.spares {
                    spare.diverged |= failed.contains(&spare.conn);
                }
                drop(backends);
                close_diverged(worker, session);
                backends = session.backends.borrow_mut();
            }
            Answered::Prepared(_) => {}
        }
    }
    if payload.first() == Some(&dpm_protocol::command::com::RESET_CONNECTION) && succeeded {
        drop(backends);
        prepared::statements_reset(session);
        backends = session.backends.borrow_mut();
    }
    if super::statements::names_statement(payload[0]) {
        // COM_STMT_RESET: it went to every backend with its own id; nothing to keep.
        return;
    }
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
        backends.history.push(Kept { payload, statement });
    }
}

/// A spare of the session closed: it leaves the session. False if `conn` is not one.
pub(crate) fn spare_closed(session: &Session, conn: ConnId, current: Option<&Arc<Server>>) -> bool {
    let mut backends = session.backends.borrow_mut();
    let Some(at) = backends.spares.iter().position(|s| s.conn == conn) else {
        return false;
    };
    let spare = backends.spares.swap_remove(at);
    backends.statements.backend_gone(conn);
    spare.server.sessions.fetch_sub(1, Ordering::Relaxed);
    // A query of dpm's waiting for its answer hears at once that none comes.
    for owed in &spare.owed {
        let Owed::Capture(capture) = owed else {
            continue;
        };
        capture.lost.set(true);
        capture.done.set(true);
        capture.notify.notify_one();
    }
    if let Some(current) = current {
        backends.refresh_open(current);
    }
    true
}

/// Closes every spare (the session ends, or starts over after COM_CHANGE_USER) and
/// forgets the history.
pub(crate) fn forget_all(worker: &Worker, session: &Session) {
    super::replay::forget(session);
    let spares = {
        let mut backends = session.backends.borrow_mut();
        backends.history.clear();
        backends.history_lost = false;
        backends.statements.clear();
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
    causal: Option<Duration>,
) -> Result<(), SwitchError> {
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
        None => open(worker, session, server)
            .await
            .map_err(SwitchError::Unusable)?,
    };
    // Session commands it is still running must be answered (and checked) first.
    while !backend.tracker.borrow().is_idle() && !backend.closing.get() {
        if Instant::now() >= deadline {
            return Err(SwitchError::Unusable(
                "the backend did not finish the session's commands in time".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    if let Some(limit) = causal {
        unlink(worker, session, pipeline);
        catch_up(worker, session, backend.id, limit).await?;
    }
    let diverged = session
        .backends
        .borrow()
        .spares
        .iter()
        .any(|s| s.conn == backend.id && s.diverged);
    if backend.closing.get() || client.closing.get() || diverged {
        return Err(SwitchError::Unusable(
            "the backend failed a session command".into(),
        ));
    }
    let old = session.backend.get();
    let old_server = pipeline.server();
    {
        let mut backends = session.backends.borrow_mut();
        backends.spares.retain(|s| s.conn != backend.id);
        if let Some(old) = old.filter(|&id| worker.get(id).is_some()) {
            backends.spares.push(Spare::new(old_server, old));
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

/// The primary, when the session is linked elsewhere, has a usable spare there, and no
/// transaction is open (a read-only one on a replica goes on where it is: the status of
/// the answer, which says whether a transaction is open, must come from there).
pub(crate) fn primary_elsewhere(session: &Session, pipeline: &Pipeline) -> Option<Arc<Server>> {
    use crate::service::ServerRole::Primary;
    let idle = {
        let state = session.state.borrow();
        !state.in_transaction() && state.autocommit()
    };
    if !idle || pipeline.server().role() == Primary {
        return None;
    }
    let backends = session.backends.borrow();
    backends
        .spares
        .iter()
        .find(|s| !s.diverged && s.server.role() == Primary && s.server.is_up())
        .map(|s| s.server.clone())
}

/// Why the session could not move to a server.
pub(crate) enum SwitchError {
    /// No backend there could be opened or given the session's state.
    Unusable(String),
    /// A causal read: the server had not applied the session's last write in time.
    NotCaughtUp(String),
}

/// Makes the linked backend a spare: the session has none linked until the next
/// switch, so that dpm's own queries can go to any of its backends.
pub(crate) fn unlink(worker: &Worker, session: &Session, pipeline: &Pipeline) {
    let Some(old) = session.backend.take() else {
        return;
    };
    pipeline.counted.set(false);
    if worker.get(old).is_some() {
        let server = pipeline.server();
        session
            .backends
            .borrow_mut()
            .spares
            .push(Spare::new(server, old));
    }
}

/// Waits until the spare `target` has applied the session's last write on the primary:
/// `@@last_gtid` of the session's backend on the primary, then `MASTER_GTID_WAIT` on
/// `target`, within `limit`. Nothing to wait for when the session has no backend on
/// the primary or wrote nothing there.
async fn catch_up(
    worker: &Worker,
    session: &Session,
    target: ConnId,
    limit: Duration,
) -> Result<(), SwitchError> {
    let primary = {
        let backends = session.backends.borrow();
        backends
            .spares
            .iter()
            .find(|s| {
                s.conn != target
                    && !s.diverged
                    && s.server.role() == crate::service::ServerRole::Primary
            })
            .map(|s| s.conn)
    };
    let Some(primary) = primary else {
        return Ok(());
    };
    let ask = worker.inner.config.connect_timeout;
    let gtid = query_spare(worker, session, primary, "SELECT @@last_gtid", ask)
        .await
        .map_err(SwitchError::NotCaughtUp)?;
    let Some(gtid) = gtid.filter(|g| !g.is_empty()) else {
        return Ok(());
    };
    // A GTID list is digits, '-' and ','; anything else is not put in a statement.
    if !gtid
        .iter()
        .all(|b| b.is_ascii_digit() || *b == b'-' || *b == b',')
    {
        return Err(SwitchError::NotCaughtUp(format!(
            "unexpected @@last_gtid {:?}",
            String::from_utf8_lossy(&gtid)
        )));
    }
    let gtid = String::from_utf8_lossy(&gtid);
    let sql = format!(
        "SELECT MASTER_GTID_WAIT('{gtid}', {:.3})",
        limit.as_secs_f64()
    );
    let waited = query_spare(worker, session, target, &sql, limit + ask)
        .await
        .map_err(SwitchError::NotCaughtUp)?;
    match waited.as_deref() {
        Some(b"0") => Ok(()),
        _ => Err(SwitchError::NotCaughtUp(format!(
            "it had not applied GTID {gtid} within {limit:?}"
        ))),
    }
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
                Ok(Ok(prepared)) => Ok((stream.take_unread(), prepared)),
                Ok(Err(e)) => Err(e),
                Err(_) => Err("replaying the session's commands timed out".into()),
            }
        }
    };
    let (unread, prepared) = match replayed {
        Ok(replayed) => replayed,
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
    {
        let mut backends = session.backends.borrow_mut();
        for (id, prepare_ok) in &prepared {
            backends.statements.prepared_on(*id, backend.id, prepare_ok);
        }
        backends.spares.push(Spare::new(server.clone(), backend.id));
    }
    crate::forward::start_io(worker, &backend);
    tracing::debug!(client = session.client, server = %server.name, replayed = history.len(), "session opened a backend");
    Ok(backend)
}

/// Runs each session command of `history` on a fresh backend; all must succeed.
/// Returns the PREPARE OKs of the client's statements it prepared (client id, answer).
async fn replay(
    stream: &mut PacketStream<&crate::transport::Transport>,
    history: &[Kept],
    caps: u64,
) -> Result<Vec<(u32, Bytes)>, String> {
    let mut prepared = Vec::new();
    for kept in history {
        let command = &kept.payload;
        stream.reset_seq();
        stream.write(command).await.map_err(|e| e.to_string())?;
        let failed = match kept.statement {
            Some(id) => match prepared::read_prepare_answer(stream, caps).await? {
                Ok(prepare_ok) => {
                    prepared.push((id, prepare_ok));
                    None
                }
                Err(err) => Some(err),
            },
            None => {
                let mut reader = ResponseReader::new(caps, false);
                read_response(stream, &mut reader)
                    .await
                    .map_err(|e| e.to_string())?;
                match reader.into_summary() {
                    ResponseSummary::Err { code, message, .. } => Some(format!("{code} {message}")),
                    _ => None,
                }
            }
        };
        if let Some(err) = failed {
            let sql = String::from_utf8_lossy(&command[1..command.len().min(80)]);
            return Err(format!("replaying `{sql}` failed there: {err}"));
        }
    }
    Ok(prepared)
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
    let in_transaction = {
        // What lived only on that backend is gone with it: an open transaction (also
        // an implicit one, autocommit off) unless it can be replayed. Prepared
        // statements live on every backend, and one opened later prepares them again —
        // unless the history overflowed. The client must hear it, so the session ends
        // with an error.
        let mut backends = session.backends.borrow_mut();
        backends.statements.backend_gone(lost.id);
        if !backends.statements.is_empty() && backends.history_lost {
            return false;
        }
        drop(backends);
        let state = session.state.borrow();
        // A kept transaction counts from its BEGIN on, before the server's OK says so.
        state.in_transaction() || !state.autocommit() || super::replay::recording(session)
    };
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
    // The server reset the connection with the request unread: it never ran it.
    let never_read = lost.reset_by_peer.get() && in_flight.is_some();
    if in_transaction {
        let cut = in_flight
            .as_ref()
            .filter(|_| super::replay::ending(session) && !never_read);
        if let Some(request) = cut {
            // Its COMMIT or ROLLBACK was in flight, maybe read: nothing to replay, the
            // session goes on (the answer says what is known).
            if !super::replay::end_cut(&client, session, pipeline, &server, request) {
                return false;
            }
            if pipeline.counted.replace(false) {
                server.sessions.fetch_sub(1, Ordering::Relaxed);
            }
            session.backends.borrow_mut().open.clear();
            return true;
        }
        if !super::replay::can_replay(session, pipeline, &server, never_read) {
            return false;
        }
        if pipeline.counted.replace(false) {
            server.sessions.fetch_sub(1, Ordering::Relaxed);
        }
        session.backends.borrow_mut().open.clear();
        tracing::info!(client = client.id, lost = %server.name, backend = lost.id, "{error} inside a transaction; replaying it");
        session.replaying.set(true);
        let (worker, session, pipeline) = (worker.clone(), session.clone(), pipeline.clone());
        tokio::task::spawn_local(super::replay::replay(
            worker, client, session, pipeline, in_flight,
        ));
        return true;
    }
    let never_read = lost.reset_by_peer.get() && in_flight.is_some();
    let goes_on =
        pipeline
            .router
            .borrow_mut()
            .handle_error(&server, error, in_flight.as_deref(), never_read);
    if !goes_on {
        return false;
    }
    if pipeline.counted.replace(false) {
        server.sessions.fetch_sub(1, Ordering::Relaxed);
    }
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

#[cfg(test)]
mod tests {
    use super::first_value;
    use bytes::Bytes;

    fn b(p: &[u8]) -> Bytes {
        Bytes::copy_from_slice(p)
    }

    #[test]
    fn the_first_value_of_a_text_answer_in_either_eof_style() {
        let column =
            b(b"\x03def\x00\x00\x00\x01a\x00\x0c\x21\x00\x00\x00\x00\xfd\x00\x00\x00\x00\x00");
        let eof = b(b"\xfe\x00\x00\x02\x00");
        let row = b(b"\x070-90-12");
        let classic = [
            b(b"\x01"),
            column.clone(),
            eof.clone(),
            row.clone(),
            eof.clone(),
        ];
        assert_eq!(first_value(&classic, false).unwrap(), Some(b(b"0-90-12")));
        let ok_eof = b(b"\xfe\x00\x00\x02\x00\x00\x00");
        let deprecated = [b(b"\x01"), column.clone(), row, ok_eof.clone()];
        assert_eq!(first_value(&deprecated, true).unwrap(), Some(b(b"0-90-12")));
        let null = [b(b"\x01"), column.clone(), b(b"\xfb"), ok_eof.clone()];
        assert_eq!(first_value(&null, true).unwrap(), None);
        let empty = [b(b"\x01"), column, ok_eof];
        assert_eq!(first_value(&empty, true).unwrap(), None);
        let err = [b(b"\xff\x15\x04#28000Access denied")];
        assert!(first_value(&err, true)
            .unwrap_err()
            .contains("1045 Access denied"));
        assert_eq!(
            first_value(&[b(b"\x00\x00\x00\x02\x00\x00\x00")], true).unwrap(),
            None
        );
    }
}
