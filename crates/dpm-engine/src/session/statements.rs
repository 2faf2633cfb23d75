//! Binary prepared statements of a session with several backends (readwritesplit).
//!
//! COM_STMT_PREPARE is a session command: every backend of the session prepares the
//! statement (and a backend opened later does when it replays the history), and each
//! hands out its own statement id. The client sees one id per statement, assigned here
//! — backends number their statements independently, so no backend's id could serve as
//! the client's — and every command that names a statement (EXECUTE, BULK_EXECUTE,
//! FETCH, RESET, CLOSE, SEND_LONG_DATA) is rewritten for the backend it goes to.
//!
//! A client sends the parameter types with the first execute only (`new_params_bound`
//! = 1) and leaves them out afterwards; an execute that goes to a backend which has not
//! had the current types yet gets them put back in.
//!
//! Sessions of routers that keep one backend never get here: their ids are the server's
//! and pass untouched.

use std::collections::HashMap;

use bytes::{BufMut, Bytes, BytesMut};
use dpm_protocol::command::com;
use dpm_protocol::err::ErrPacket;

use crate::ConnId;

/// The statement id a MariaDB client sends to mean "the statement prepared last"
/// (direct execution: PREPARE and EXECUTE sent together). Each backend resolves it to
/// its own last statement, which is the same one: every backend prepares in order.
pub const LAST_PREPARED: u32 = u32::MAX;

/// The session's prepared statements by the id the client knows them by.
#[derive(Debug, Default)]
pub struct Statements {
    /// The last id handed out.
    last_id: u32,
    open: HashMap<u32, Statement>,
    /// The statement prepared last ([`LAST_PREPARED`]).
    last: Option<u32>,
}

#[derive(Debug)]
struct Statement {
    /// The COM_STMT_PREPARE payload (command byte first).
    prepare: Bytes,
    /// Parameters (from the first backend's answer).
    params: u16,
    /// The backend that answers the client said OK (the statement exists for it).
    confirmed: bool,
    /// Each backend's id for it.
    copies: Vec<Handle>,
    /// Backends whose prepare failed before the client's backend answered.
    failed: Vec<ConnId>,
    /// The parameter types the client sent last (2 bytes per parameter), and how many
    /// times they changed: a backend whose copy saw fewer changes gets them again.
    types: Option<Bytes>,
    types_version: u32,
}

#[derive(Debug, Clone)]
struct Handle {
    conn: ConnId,
    id: u32,
    types_version: u32,
}

/// Why a command naming a statement cannot go to a backend.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Missing {
    /// The client named no statement it has.
    Unknown(u32),
    /// The statement exists, but not on that backend.
    NotThere(u32),
}

impl Missing {
    /// The error the client gets (the server's own for an unknown statement).
    pub(crate) fn error(&self, command: u8) -> ErrPacket {
        let what = match command {
            com::STMT_FETCH => "mysqld_stmt_fetch",
            com::STMT_RESET => "mysqld_stmt_reset",
            _ => "mysqld_stmt_execute",
        };
        let message = match self {
            Missing::Unknown(id) => {
                format!("Unknown prepared statement handler ({id}) given to {what}")
            }
            Missing::NotThere(id) => format!(
                "Unknown prepared statement handler ({id}) given to {what}: the backend it was routed to lost it"
            ),
        };
        ErrPacket::new(1243, *b"HY000", message)
    }
}

/// True for the commands whose payload starts with a statement id (after the command byte).
#[inline]
pub(crate) fn names_statement(command: u8) -> bool {
    matches!(
        command,
        com::STMT_EXECUTE
            | com::STMT_BULK_EXECUTE
            | com::STMT_FETCH
            | com::STMT_RESET
            | com::STMT_CLOSE
            | com::STMT_SEND_LONG_DATA
    )
}

/// The statement id a command names (None if it names none, or is too short).
pub fn statement_id(payload: &[u8]) -> Option<u32> {
    let id = payload.get(1..5)?;
    names_statement(payload[0]).then(|| u32::from_le_bytes([id[0], id[1], id[2], id[3]]))
}

/// The statement id and parameter count of a COM_STMT_PREPARE OK.
fn prepare_ok_fields(payload: &[u8]) -> Option<(u32, u16)> {
    let p = payload.get(..9)?;
    (p[0] == 0).then(|| {
        (
            u32::from_le_bytes([p[1], p[2], p[3], p[4]]),
            u16::from_le_bytes([p[7], p[8]]),
        )
    })
}

impl Statements {
    /// The SQL text a statement was prepared from ([`LAST_PREPARED`]: the last one).
    pub fn sql(&self, id: u32) -> Option<&[u8]> {
        let id = self.resolve(id)?;
        self.open.get(&id).map(|s| &s.prepare[1..])
    }

    /// The client's id for a statement, [`LAST_PREPARED`] resolved.
    pub fn resolve(&self, id: u32) -> Option<u32> {
        if id == LAST_PREPARED {
            self.last
        } else {
            Some(id)
        }
    }

    /// How many statements the client has open.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// True when the client has none open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// A COM_STMT_PREPARE (`payload`) goes to the session's backends: the id the client
    /// will know the statement by.
    pub(crate) fn preparing(&mut self, payload: &Bytes) -> u32 {
        self.last_id = match self.last_id.wrapping_add(1) {
            0 | LAST_PREPARED => 1,
            id => id,
        };
        let id = self.last_id;
        self.open.insert(
            id,
            Statement {
                prepare: payload.clone(),
                params: 0,
                confirmed: false,
                copies: Vec::new(),
                failed: Vec::new(),
                types: None,
                types_version: 0,
            },
        );
        self.last = Some(id);
        id
    }

    /// Backend `conn` answered the prepare of statement `id` with `prepare_ok`. Returns
    /// the backend's id when the client no longer has the statement (its prepare failed
    /// on the client's backend meanwhile): it is to be closed there.
    pub(crate) fn prepared_on(&mut self, id: u32, conn: ConnId, prepare_ok: &[u8]) -> Option<u32> {
        let (backend_id, params) = prepare_ok_fields(prepare_ok)?;
        let Some(statement) = self.open.get_mut(&id) else {
            return Some(backend_id);
        };
        statement.params = params;
        statement.copies.retain(|c| c.conn != conn);
        statement.copies.push(Handle {
            conn,
            id: backend_id,
            types_version: 0,
        });
        None
    }

    /// The backend that answers the client answered the prepare of `id` with its
    /// PREPARE OK `payload`: the answer is rewritten, in place, to carry the client's id.
    pub(crate) fn prepared_for_client(&mut self, id: u32, conn: ConnId, payload: &mut [u8]) {
        self.prepared_on(id, conn, payload);
        if let Some(field) = payload.get_mut(1..5) {
            field.copy_from_slice(&id.to_le_bytes());
        }
    }

    /// The client's backend finished answering the prepare of `id`. On success, returns
    /// the backends whose own prepare failed (they no longer match the session); on
    /// failure the statement is forgotten and the backends that did prepare it are
    /// returned with their ids, to be closed there.
    pub(crate) fn answered(&mut self, id: u32, ok: bool) -> Answered {
        if !ok {
            let copies = self.open.remove(&id).map(|s| s.copies).unwrap_or_default();
            if self.last == Some(id) {
                self.last = None;
            }
            return Answered::Failed(copies.into_iter().map(|c| (c.conn, c.id)).collect());
        }
        match self.open.get_mut(&id) {
            Some(statement) => {
                statement.confirmed = true;
                Answered::Prepared(std::mem::take(&mut statement.failed))
            }
            None => Answered::Prepared(Vec::new()),
        }
    }

    /// Backend `conn` (not the client's) failed to prepare `id`. True when the client's
    /// backend already prepared it: `conn` no longer matches the session.
    pub(crate) fn failed_on(&mut self, id: u32, conn: ConnId) -> bool {
        match self.open.get_mut(&id) {
            Some(s) if s.confirmed => true,
            Some(s) => {
                s.failed.push(conn);
                false
            }
            None => false,
        }
    }

    /// The client closed statement `id`.
    pub(crate) fn closed(&mut self, id: u32) {
        self.open.remove(&id);
        if self.last == Some(id) {
            self.last = None;
        }
    }

    /// Backend `conn` left the session: its statements went with it.
    pub(crate) fn backend_gone(&mut self, conn: ConnId) {
        for statement in self.open.values_mut() {
            statement.copies.retain(|c| c.conn != conn);
        }
    }

    /// Every statement is gone (COM_RESET_CONNECTION, COM_CHANGE_USER).
    pub(crate) fn clear(&mut self) {
        self.open.clear();
        self.last = None;
    }

    /// `payload` as backend `conn` must get it: a command naming a statement carries
    /// that backend's id (and the parameter types, if it has not had them); any other
    /// command is returned as is.
    pub(crate) fn for_backend(&mut self, conn: ConnId, payload: &Bytes) -> Result<Bytes, Missing> {
        let Some(client_id) = statement_id(payload) else {
            return Ok(payload.clone());
        };
        if client_id == LAST_PREPARED {
            // Direct execution: every backend's last statement is this one.
            return Ok(payload.clone());
        }
        let statement = self
            .open
            .get_mut(&client_id)
            .ok_or(Missing::Unknown(client_id))?;
        let copy = statement
            .copies
            .iter_mut()
            .find(|c| c.conn == conn)
            .ok_or(Missing::NotThere(client_id))?;
        let mut types_in = None;
        if payload[0] == com::STMT_EXECUTE && statement.params > 0 {
            // id(4) flags(1) iterations(4), null bitmap, new_params_bound(1), types …
            let bound_at = 10 + usize::from(statement.params).div_ceil(8);
            let types_end = bound_at + 1 + 2 * usize::from(statement.params);
            match payload.get(bound_at) {
                Some(1) if payload.len() >= types_end => {
                    let types = &payload[bound_at + 1..types_end];
                    if statement.types.as_deref() != Some(types) {
                        statement.types = Some(Bytes::copy_from_slice(types));
                        statement.types_version += 1;
                    }
                    copy.types_version = statement.types_version;
                }
                Some(0) if copy.types_version != statement.types_version => {
                    types_in = statement.types.clone().map(|t| (bound_at, t));
                    copy.types_version = statement.types_version;
                }
                _ => {}
            }
        }
        if copy.id == client_id && types_in.is_none() {
            return Ok(payload.clone());
        }
        let mut out =
            BytesMut::with_capacity(payload.len() + types_in.as_ref().map_or(0, |t| t.1.len()));
        out.put_u8(payload[0]);
        out.put_u32_le(copy.id);
        match types_in {
            Some((bound_at, types)) => {
                out.extend_from_slice(&payload[5..bound_at]);
                out.put_u8(1);
                out.extend_from_slice(&types);
                out.extend_from_slice(&payload[bound_at + 1..]);
            }
            None => out.extend_from_slice(&payload[5..]),
        }
        Ok(out.freeze())
    }
}

/// The end of a prepare on the client's backend ([`Statements::answered`]).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Answered {
    /// It exists; these backends failed to prepare it.
    Prepared(Vec<ConnId>),
    /// It failed; these backends (and their ids) had prepared it.
    Failed(Vec<(ConnId, u32)>),
}

/// A COM_STMT_CLOSE of statement `id` (a backend's).
pub(crate) fn close_command(id: u32) -> [u8; 5] {
    let mut p = [com::STMT_CLOSE, 0, 0, 0, 0];
    p[1..].copy_from_slice(&id.to_le_bytes());
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepare_ok(id: u32, params: u16) -> Vec<u8> {
        let mut p = vec![0];
        p.extend_from_slice(&id.to_le_bytes());
        p.extend_from_slice(&1u16.to_le_bytes());
        p.extend_from_slice(&params.to_le_bytes());
        p.extend_from_slice(&[0, 0, 0]);
        p
    }

    fn execute(id: u32, bound: Option<&[u8]>, value: &[u8]) -> Bytes {
        let mut p = vec![com::STMT_EXECUTE];
        p.extend_from_slice(&id.to_le_bytes());
        p.extend_from_slice(&[0, 1, 0, 0, 0, 0]); // flags, iterations, bitmap (1 param)
        match bound {
            Some(types) => {
                p.push(1);
                p.extend_from_slice(types);
            }
            None => p.push(0),
        }
        p.extend_from_slice(value);
        Bytes::from(p)
    }

    #[test]
    fn each_backend_gets_its_own_id_and_the_client_sees_dpms() {
        let mut s = Statements::default();
        let prepare = Bytes::from_static(b"\x16SELECT ?");
        let id = s.preparing(&prepare);
        assert_eq!(id, 1);
        let mut answer = prepare_ok(7, 1);
        s.prepared_for_client(id, 10, &mut answer);
        assert_eq!(&answer[1..5], &1u32.to_le_bytes(), "the client sees its id");
        s.prepared_on(id, 11, &prepare_ok(1, 1));
        assert_eq!(s.answered(id, true), Answered::Prepared(vec![]));
        assert_eq!(s.sql(id), Some(&b"SELECT ?"[..]));
        assert_eq!(s.sql(LAST_PREPARED), Some(&b"SELECT ?"[..]));

        let types = [8u8, 0];
        let first = execute(id, Some(&types), b"\x05\0\0\0\0\0\0\0");
        assert_eq!(
            s.for_backend(10, &first).unwrap(),
            execute(7, Some(&types), b"\x05\0\0\0\0\0\0\0")
        );
        // Backend 11 never had the types: they are put back in; then not again.
        let later = execute(id, None, b"\x06\0\0\0\0\0\0\0");
        assert_eq!(
            s.for_backend(11, &later).unwrap(),
            execute(1, Some(&types), b"\x06\0\0\0\0\0\0\0")
        );
        assert_eq!(
            s.for_backend(11, &later).unwrap(),
            later,
            "same id there, types known"
        );
        assert_eq!(
            s.for_backend(10, &later).unwrap(),
            execute(7, None, b"\x06\0\0\0\0\0\0\0")
        );

        assert_eq!(s.for_backend(12, &later), Err(Missing::NotThere(1)));
        assert_eq!(
            s.for_backend(10, &execute(9, None, b"")),
            Err(Missing::Unknown(9))
        );
        let query = Bytes::from_static(b"\x03SELECT 1");
        assert_eq!(s.for_backend(10, &query).unwrap(), query);
        s.backend_gone(10);
        assert_eq!(s.for_backend(10, &later), Err(Missing::NotThere(1)));
        s.closed(id);
        assert_eq!(s.sql(id), None);
        assert_eq!(s.preparing(&prepare), 2, "ids are not reused");
    }

    #[test]
    fn a_prepare_that_fails_somewhere() {
        let mut s = Statements::default();
        let id = s.preparing(&Bytes::from_static(b"\x16SELECT * FROM t"));
        // A spare failed before the client's backend answered OK: it must be retired.
        assert!(!s.failed_on(id, 11));
        assert_eq!(s.answered(id, true), Answered::Prepared(vec![11]));
        assert!(
            s.failed_on(id, 12),
            "after the OK a failure is known at once"
        );
        // The client's backend failed: the spares that prepared it close it.
        let id = s.preparing(&Bytes::from_static(b"\x16SELECT * FROM nowhere"));
        s.prepared_on(id, 11, &prepare_ok(4, 0));
        assert_eq!(s.answered(id, false), Answered::Failed(vec![(11, 4)]));
        // A spare whose OK comes after that closes its copy.
        assert_eq!(s.prepared_on(id, 12, &prepare_ok(9, 0)), Some(9));
        assert_eq!(s.sql(id), None);
        assert_eq!(close_command(4), [com::STMT_CLOSE, 4, 0, 0, 0]);
    }
}
