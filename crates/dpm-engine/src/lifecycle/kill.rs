//! Killing one session on an operator's request (the admin API's `DELETE
//! /v1/sessions/ID`, a server put into maintenance): the client hears what MariaDB's own
//! `KILL` tells it — ERR 1927, "Connection was killed" — and the session is closed with
//! its backend.

use bytes::BytesMut;
use dpm_protocol::err::ErrPacket;

use crate::conn::Role;
use crate::tracker::Phase;
use crate::worker::Worker;
use crate::ConnId;

/// MariaDB's ER_CONNECTION_KILLED.
const KILLED_CODE: u16 = 1927;
const KILLED_STATE: &[u8; 5] = b"70100";
const KILLED_MESSAGE: &str = "Connection was killed";

/// Kills client session `id` if it is this worker's: an idle client gets the ERR as the
/// answer to its next command, one waiting for a response that has not started gets it
/// as that response, one in the middle of a response (or in a tunnel) is just closed —
/// an ERR there would corrupt the result it is reading. True if the session was here.
pub(crate) fn kill(worker: &Worker, id: ConnId) -> bool {
    let Some(conn) = worker.get(id).filter(|c| c.role == Role::Client) else {
        return false;
    };
    let (phase, idle, started) = {
        let tracker = conn.tracker.borrow();
        (
            tracker.phase(),
            tracker.is_idle(),
            tracker.response_started(),
        )
    };
    match phase {
        Phase::Ready if idle => {
            super::send_unsolicited_err(&conn, KILLED_CODE, KILLED_STATE, KILLED_MESSAGE);
        }
        Phase::Ready if !started => {
            let err = ErrPacket {
                code: KILLED_CODE,
                sql_state: Some(*KILLED_STATE),
                message: KILLED_MESSAGE.into(),
            };
            let mut payload = BytesMut::new();
            err.encode(&mut payload);
            crate::forward::write_packet(&conn, &payload);
        }
        _ => {}
    }
    tracing::info!(session = id, "session killed by an operator");
    super::close_session(worker, id);
    true
}
