//! Binary prepared statements across the backends of a session: the glue between the
//! session's statement registry (`session::statements`, pure bookkeeping) and its
//! connections — rewriting what goes to a backend, the linked backend's PREPARE OK on its
//! way to the client, closing a statement everywhere, the statements every backend drops
//! at once (COM_RESET_CONNECTION, COM_CHANGE_USER), and reading a prepare's answer while
//! a new backend replays the history.

use bytes::Bytes;
use dpm_protocol::command::com;
use dpm_protocol::stmt::StmtPrepareOk;

use super::{Owed, Session};
use crate::client::wire::PacketStream;
use crate::conn::Conn;
use crate::session::statements::{close_command, names_statement, statement_id, Missing};
use crate::worker::Worker;
use crate::ConnId;

/// The capabilities the session's client negotiated (an execute's layout depends on them).
pub(super) fn client_caps(worker: &Worker, session: &Session) -> u64 {
    worker
        .get(session.client)
        .map_or(0, |c| c.tracker.borrow().negotiated_caps())
}

/// `payload` as backend `conn` of the session must get it: a command naming a prepared
/// statement carries that backend's id for it (sessions with several backends only).
pub(crate) fn for_backend(
    session: &Session,
    client: &Conn,
    conn: ConnId,
    payload: &Bytes,
) -> Result<Bytes, Missing> {
    if !names_statement(payload[0]) {
        return Ok(payload.clone());
    }
    let caps = client.tracker.borrow().negotiated_caps();
    session
        .backends
        .borrow_mut()
        .statements
        .for_backend(conn, payload, caps)
}

/// The form in which a transaction log keeps `payload`: an execute with the parameter
/// types it relies on written in (`Statements::self_contained`).
pub(crate) fn kept_form(session: &Session, client: &Conn, payload: &Bytes) -> Bytes {
    if payload.first() != Some(&com::STMT_EXECUTE) {
        return payload.clone();
    }
    let caps = client.tracker.borrow().negotiated_caps();
    session
        .backends
        .borrow()
        .statements
        .self_contained(payload, caps)
}

/// The linked backend `backend` answered the prepare of the client's statement `id`: its
/// PREPARE OK (`payload`) is rewritten in place to carry the client's id. A copy this
/// one replaces on that backend is closed there.
pub(crate) fn show_client_id(session: &Session, id: u32, backend: &Conn, payload: &mut [u8]) {
    let replaced = session
        .backends
        .borrow_mut()
        .statements
        .prepared_for_client(id, backend.id, payload);
    if let Some(old) = replaced {
        crate::forward::write_packet(backend, &close_command(old));
    }
}

/// The client's COM_STMT_CLOSE (`payload`): every backend of the session that has the
/// statement gets a close with its own id (the linked one as the client's command, so
/// that its callbacks see it), and a backend opened later will not prepare it.
pub(crate) async fn close_everywhere(
    worker: &Worker,
    client: &Conn,
    session: &Session,
    payload: &Bytes,
) {
    let Some(named) = statement_id(payload) else {
        return;
    };
    let copies = {
        let mut backends = session.backends.borrow_mut();
        if let Some(id) = backends.statements.resolve(named) {
            backends.history.retain(|k| k.statement != Some(id));
        }
        backends.statements.closed(named)
    };
    let linked = session.backend();
    for (conn, id) in copies {
        let Some(backend) = worker.get(conn) else {
            continue;
        };
        let close = close_command(id);
        if Some(conn) == linked {
            crate::forward::deliver(worker, client, &backend, &close).await;
        } else {
            crate::forward::write_packet(&backend, &close);
        }
    }
}

/// Every backend of the session dropped its prepared statements (a COM_RESET_CONNECTION
/// that succeeded): the registry and the history forget them, and an answer to a prepare
/// still on its way from a spare is only discarded (its id may name a new statement by
/// the time it is read).
pub(crate) fn statements_reset(session: &Session) {
    let mut backends = session.backends.borrow_mut();
    backends.statements.clear();
    backends.history.retain(|k| k.statement.is_none());
    for spare in &mut backends.spares {
        for owed in spare.owed.iter_mut() {
            if matches!(owed, Owed::Prepare(_)) {
                *owed = Owed::SessionCommand;
            }
        }
    }
}

/// Reads the answer to a COM_STMT_PREPARE: its PREPARE OK (the parameter and column
/// definitions that follow are read and dropped), or the server's error as text.
pub(super) async fn read_prepare_answer(
    stream: &mut PacketStream<&crate::transport::Transport>,
    caps: u64,
) -> Result<Result<Bytes, String>, String> {
    let head = stream.read().await.map_err(|e| e.to_string())?.payload;
    if head.first() == Some(&0xFF) {
        let err = dpm_protocol::err::ErrPacket::decode(&head).map_err(|e| e.to_string())?;
        let message = String::from_utf8_lossy(&err.message).into_owned();
        return Ok(Err(format!("{} {message}", err.code)));
    }
    let ok = StmtPrepareOk::decode(&head, caps).map_err(|e| e.to_string())?;
    if ok.metadata_follows == Some(false) {
        return Ok(Ok(head));
    }
    let eof = usize::from(caps & dpm_protocol::caps::CLIENT_DEPRECATE_EOF == 0);
    let groups = [usize::from(ok.num_params), usize::from(ok.num_columns)];
    for group in groups.into_iter().filter(|&n| n > 0) {
        for _ in 0..group + eof {
            stream.read().await.map_err(|e| e.to_string())?;
        }
    }
    Ok(Ok(head))
}
