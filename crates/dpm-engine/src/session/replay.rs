//! Transaction replay (readwritesplit's `transaction_replay`): while a session's
//! transaction is open on the primary, each statement is kept with a checksum of the
//! answer the client got. When the primary is lost mid-transaction, the statements are
//! run again on the new primary and each answer's checksum compared: all equal, the
//! session goes on (a statement that was in flight is sent again and its answer goes to
//! the client); any difference, or an error, ends the session with an ERR — never a
//! silent wrong answer. A COMMIT in flight is not replayed: whether it committed before
//! the primary died cannot be known, and running it twice could apply it twice.
//!
//! The checksum covers what a client relies on: rows (every byte), an OK's affected-row
//! count and insert id, an ERR's code, the column count; not column metadata, status
//! flags, warnings counts or session-tracking data, which may differ on another server
//! without changing the answer.

use std::collections::hash_map::DefaultHasher;
use std::hash::Hasher;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use dpm_protocol::err::ErrPacket;
use dpm_protocol::lenenc::get_lenenc_int;

use super::Session;
use crate::conn::Conn;
use crate::pipeline::{
    ask_router, Pipeline, Request, Route, TrxStep, MAX_ROUTE_WAIT, ROUTE_WAIT_STEP,
};
use crate::service::Server;
use crate::tracker::{PacketKind, Side, Tracker};
use crate::worker::Worker;

/// The open transaction's statements and the checksums of their answers.
#[derive(Debug, Default)]
pub struct TrxLog {
    /// Statements are being kept (a transaction on the primary is open).
    recording: bool,
    /// Its COMMIT/ROLLBACK was sent: the log ends with its answer.
    ending: bool,
    /// The transaction outgrew the limit: it cannot be replayed.
    overflowed: bool,
    entries: Vec<Entry>,
    size: usize,
    /// The checksum of the answer coming in now (the last entry's).
    live: Option<AnswerChecksum>,
}

#[derive(Debug)]
struct Entry {
    payload: Bytes,
    /// None until its answer is complete.
    checksum: Option<u64>,
}

impl TrxLog {
    /// True when a transaction is open and kept whole (it could be replayed), and no
    /// COMMIT/ROLLBACK of it is in flight.
    pub(crate) fn replayable(&self) -> bool {
        self.recording && !self.overflowed && !self.ending
    }
}

/// Keeps a statement routed with `step` (`limit`: the most bytes of statements a
/// transaction may keep). Returns whether its answer must be checksummed as it passes.
pub(crate) fn record(session: &Session, step: TrxStep, payload: &Bytes, limit: usize) {
    if limit == 0 || step == TrxStep::None {
        return;
    }
    let mut log = session.trx.borrow_mut();
    if step == TrxStep::Begin {
        *log = TrxLog {
            recording: true,
            ..TrxLog::default()
        };
    }
    if !log.recording {
        return;
    }
    if step == TrxStep::End {
        log.ending = true;
    }
    log.size += payload.len();
    if log.size > limit {
        if !log.overflowed {
            tracing::info!(
                client = session.client,
                limit,
                "the transaction outgrew transaction_replay_max_size: it cannot be replayed"
            );
        }
        log.overflowed = true;
        log.entries.clear();
    }
    if !log.overflowed {
        log.entries.push(Entry {
            payload: payload.clone(),
            checksum: None,
        });
    }
    log.live = Some(AnswerChecksum::default());
    session.recording.set(true);
}

/// A packet of the linked backend's answer while a transaction is kept (the forwarding
/// loop passes every one here while `Session::recording` is set).
pub(crate) fn answer_packet(session: &Session, kind: PacketKind, payload: &[u8], ends: bool) {
    let mut log = session.trx.borrow_mut();
    if let Some(live) = log.live.as_mut() {
        live.feed(kind, payload);
    }
    if !ends {
        return;
    }
    let checksum = log.live.take().map(AnswerChecksum::finish);
    if let (Some(last), Some(sum)) = (log.entries.last_mut(), checksum) {
        if last.checksum.is_none() {
            last.checksum = Some(sum);
        }
    }
    // The transaction is over when its COMMIT/ROLLBACK is answered, or when the server
    // says no transaction is open and autocommit is on (DDL commits implicitly).
    let over = {
        let state = session.state.borrow();
        !state.in_transaction() && state.autocommit()
    };
    if log.ending || over {
        *log = TrxLog::default();
        session.recording.set(false);
    }
}

/// Why the session's transaction, kept for a replay, is not replayed (None when no
/// transaction was kept).
pub(crate) fn why_not_replayed(session: &Session) -> Option<&'static str> {
    let log = session.trx.borrow();
    match (log.recording, log.ending, log.overflowed) {
        (false, _, _) => None,
        (true, true, _) => Some(
            "its COMMIT was in flight: whether the transaction committed cannot be known, so it is not replayed",
        ),
        (true, _, true) => {
            Some("the transaction outgrew transaction_replay_max_size and is not replayed")
        }
        (true, false, false) => Some("the transaction could not be replayed"),
    }
}

/// Forgets the transaction (the session ended it some other way, or starts over).
pub(crate) fn forget(session: &Session) {
    *session.trx.borrow_mut() = TrxLog::default();
    session.recording.set(false);
}

/// The checksum of one answer, fed packet by packet.
#[derive(Debug, Default)]
pub(crate) struct AnswerChecksum(DefaultHasher);

impl AnswerChecksum {
    pub(crate) fn feed(&mut self, kind: PacketKind, payload: &[u8]) {
        let h = &mut self.0;
        match kind {
            PacketKind::Row => {
                h.write_u8(1);
                h.write(payload);
            }
            PacketKind::Ok if payload.first() == Some(&0x00) => {
                let mut rest = &payload[1..];
                let affected = get_lenenc_int(&mut rest).ok().flatten().unwrap_or(0);
                let insert_id = get_lenenc_int(&mut rest).ok().flatten().unwrap_or(0);
                h.write_u8(2);
                h.write_u64(affected);
                h.write_u64(insert_id);
            }
            PacketKind::Err => {
                h.write_u8(3);
                h.write(payload.get(1..3).unwrap_or_default());
            }
            PacketKind::ResultSetHeader => {
                h.write_u8(4);
                h.write(payload);
            }
            _ => {}
        }
    }

    pub(crate) fn finish(self) -> u64 {
        self.0.finish()
    }
}

/// The checksum of a whole answer to `command` read elsewhere (`packets`: its payloads,
/// one per frame), its packets named by a tracker of their own.
fn checksum_of(command: &[u8], packets: &[Bytes], caps: u64) -> Result<u64, String> {
    let mut tracker = Tracker::new(Side::Backend, usize::MAX);
    tracker.logged_in(caps, caps);
    tracker.on_send(command);
    let mut sum = AnswerChecksum::default();
    for (i, p) in packets.iter().enumerate() {
        let info = tracker
            .on_receive((i + 1) as u8, p)
            .map_err(|e| e.to_string())?;
        sum.feed(info.kind, p);
    }
    Ok(sum.finish())
}

/// True when the kept transaction's COMMIT or ROLLBACK is in flight.
pub(crate) fn ending(session: &Session) -> bool {
    let log = session.trx.borrow();
    log.recording && log.ending
}

/// The primary `lost` died while the kept transaction's COMMIT or ROLLBACK (`request`)
/// was in flight. A ROLLBACK is answered OK: a server that dies rolls back. A COMMIT gets
/// ERR 1180 (ER_ERROR_DURING_COMMIT): whether it committed before the server died cannot
/// be known, and replaying it could apply it twice. Either way the session goes on
/// without the transaction (the next statement opens a backend on the new primary).
/// False when the router does not keep the session.
pub(crate) fn end_cut(
    client: &Conn,
    session: &Session,
    pipeline: &Pipeline,
    lost: &Arc<Server>,
    request: &Request,
) -> bool {
    if !pipeline.router.borrow_mut().replay_transaction(lost) {
        return false;
    }
    forget(session);
    crate::pipeline::reply_dropped(pipeline);
    {
        // The transaction is over either way; the backend that was to answer is gone.
        let mut state = session.state.borrow_mut();
        state.status &= !super::state::SERVER_STATUS_IN_TRANS;
        state.answered_by_pipeline(request.command);
    }
    let sql = request.sql().unwrap_or_default();
    let text = String::from_utf8_lossy(&sql[..sql.len().min(64)])
        .trim_start()
        .to_ascii_uppercase();
    if text.starts_with("ROLLBACK") {
        tracing::info!(client = client.id, lost = %lost.name, "the server died during ROLLBACK: answered OK (the transaction is rolled back)");
        crate::pipeline::write_ok(client, session);
    } else {
        tracing::info!(client = client.id, lost = %lost.name, "the server died during COMMIT: the client is told that it cannot be known whether it committed");
        let err = ErrPacket::new(
            ERROR_DURING_COMMIT,
            *b"HY000",
            format!("dpm: server '{}' was lost while the COMMIT was in flight: whether the transaction committed cannot be known, so it is not replayed", lost.name),
        );
        crate::pipeline::write_error(client, &err);
    }
    true
}

/// ER_ERROR_DURING_COMMIT.
const ERROR_DURING_COMMIT: u16 = 1180;

/// The session's linked backend on `lost` died mid-transaction: `true` when the
/// transaction can be replayed (it is kept whole, no COMMIT is in flight, the router
/// agrees). The replay then runs as its own task ([`replay`]).
pub(crate) fn can_replay(
    session: &Session,
    pipeline: &Pipeline,
    lost: &Arc<Server>,
    never_read: bool,
) -> bool {
    let replayable = {
        let log = session.trx.borrow();
        // A COMMIT in flight that the server never read did not commit: the transaction
        // is replayed and the COMMIT sent again.
        log.replayable() || (never_read && log.recording && log.ending && !log.overflowed)
    };
    replayable && pipeline.router.borrow_mut().replay_transaction(lost)
}

/// Replays the session's transaction on the primary the router names, then sends the
/// statement that was in flight, if any; or ends the session with an ERR.
pub(crate) async fn replay(
    worker: Worker,
    client: Rc<Conn>,
    session: Rc<Session>,
    pipeline: Rc<Pipeline>,
    in_flight: Option<Rc<Request>>,
) {
    let started = Instant::now();
    let outcome = replay_on_new_primary(&worker, &client, &session, &pipeline).await;
    session.replaying.set(false);
    if client.closing.get() {
        return;
    }
    match outcome {
        Ok((server, statements)) => {
            tracing::info!(client = client.id, server = %server.name, statements, took = ?started.elapsed(), "transaction replayed");
            let Some(request) = in_flight else {
                return;
            };
            if let Some(backend) = session.backend().and_then(|id| worker.get(id)) {
                let payload = match super::backends::for_backend(
                    &session,
                    &client,
                    backend.id,
                    &request.payload,
                ) {
                    Ok(payload) => payload,
                    Err(missing) => {
                        crate::pipeline::reply_dropped(&pipeline);
                        return crate::pipeline::write_error(
                            &client,
                            &missing.error(request.command),
                        );
                    }
                };
                session.trx.borrow_mut().live = Some(AnswerChecksum::default());
                crate::forward::deliver(&worker, &client, &backend, &payload).await;
            }
        }
        Err(why) => {
            tracing::warn!(
                client = client.id,
                "the transaction could not be replayed: {why}; closing the session"
            );
            forget(&session);
            let err = ErrPacket::new(
                REPLAY_FAILED,
                *b"70100",
                format!("dpm: the transaction was lost with its server and could not be replayed ({why}); the session is closed"),
            );
            if in_flight.is_some() {
                crate::pipeline::reply_dropped(&pipeline);
                crate::pipeline::write_error(&client, &err);
                worker.close(client.id);
            } else {
                // The client waits for nothing now: it hears at its next statement.
                session.doomed.replace(Some(err));
            }
        }
    }
}

/// Error a client gets when its transaction could not be replayed: the server's "connection
/// was killed" (ER_CONNECTION_KILLED), as the session is closed.
pub(crate) const REPLAY_FAILED: u16 = 1927;

/// Finds the new primary, gives the session a backend there and runs the kept
/// statements on it, comparing answers. Returns the server and how many statements ran.
async fn replay_on_new_primary(
    worker: &Worker,
    client: &Rc<Conn>,
    session: &Rc<Session>,
    pipeline: &Pipeline,
) -> Result<(Arc<Server>, usize), String> {
    use super::backends::{switch_to, unlink, SwitchError};
    let started = Instant::now();
    let mut tried = 0;
    let server = loop {
        let route = ask_router(session, pipeline, started.elapsed(), |router, context| {
            router.route_transaction_replay(context)
        });
        let server = match route {
            Ok(Route::To(server)) => server,
            Ok(Route::Wait) if started.elapsed() < MAX_ROUTE_WAIT => {
                tokio::time::sleep(ROUTE_WAIT_STEP).await;
                if client.closing.get() {
                    return Err("the client left".into());
                }
                continue;
            }
            Ok(_) => return Err("no primary took it in time".into()),
            Err(e) => return Err(String::from_utf8_lossy(&e.message).into_owned()),
        };
        match switch_to(worker, client, session, pipeline, &server, None).await {
            Ok(()) => break server,
            Err(SwitchError::Unusable(why) | SwitchError::NotCaughtUp(why)) => {
                // The monitor may not have seen the old primary go yet: the router
                // avoids the server and names another, or waits for the promotion.
                tried += 1;
                if tried >= MAX_SERVERS_TRIED {
                    return Err(format!("server '{}': {why}", server.name));
                }
                pipeline.router.borrow_mut().open_failed(&server, &why);
            }
        }
    };
    let Some(backend) = session.backend() else {
        return Err("no backend".into());
    };
    // The statements run on it as a spare: their answers are dpm's, not the client's.
    unlink(worker, session, pipeline);
    let entries: Vec<(Bytes, u64)> = session
        .trx
        .borrow()
        .entries
        .iter()
        .filter_map(|e| e.checksum.map(|c| (e.payload.clone(), c)))
        .collect();
    let caps = worker
        .get(backend)
        .map(|b| b.tracker.borrow().negotiated_caps())
        .unwrap_or(0);
    let limit = worker.inner.config.connect_timeout;
    for (payload, expected) in &entries {
        // An execute goes with the new backend's id for its statement.
        let payload =
            super::backends::for_backend(session, client, backend, payload).map_err(|missing| {
                String::from_utf8_lossy(&missing.error(payload[0]).message).into_owned()
            })?;
        let packets =
            super::backends::run_on_spare(worker, session, backend, &payload, limit).await?;
        let got = checksum_of(&payload, &packets, caps)?;
        if got != *expected {
            let sql = String::from_utf8_lossy(&payload[1..payload.len().min(80)]).into_owned();
            return Err(format!(
                "`{sql}` answered differently on server '{}'",
                server.name
            ));
        }
    }
    let relinked = switch_to(worker, client, session, pipeline, &server, None).await;
    if let Err(SwitchError::Unusable(why) | SwitchError::NotCaughtUp(why)) = relinked {
        return Err(format!("server '{}': {why}", server.name));
    }
    Ok((server, entries.len()))
}

/// How many servers a replay tries to open a backend on before it gives up.
const MAX_SERVERS_TRIED: usize = 8;

/// Whether the forwarding loop must checksum the linked backend's packets.
#[inline]
pub(crate) fn recording(session: &Session) -> bool {
    session.recording.get()
}
