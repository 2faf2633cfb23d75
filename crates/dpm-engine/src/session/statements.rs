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

use bytes::{Bytes, BytesMut};
use dpm_protocol::command::com;
use dpm_protocol::err::ErrPacket;
use dpm_protocol::param::ParamType;
use dpm_protocol::stmt::{ComStmtClose, StmtPrepareOk};
use dpm_protocol::stmt_execute::ComStmtExecute;

use crate::ConnId;

/// The statement id a MariaDB client sends to mean "the statement prepared last"
/// (direct execution: PREPARE and EXECUTE sent together). It is resolved to the client's
/// last statement and sent to each backend with that backend's own id: a backend opened
/// later has a different "last" statement.
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
    /// Parameters (every backend's answer says the same).
    params: u16,
    /// The backend that answers the client said OK (the statement exists for it).
    confirmed: bool,
    /// Each backend's id for it.
    copies: Vec<Handle>,
    /// Backends whose prepare failed before the client's backend answered.
    failed: Vec<ConnId>,
    /// The parameter types the client sent last, and how many times they changed: a
    /// backend whose copy saw fewer changes gets them again.
    types: Option<Vec<ParamType>>,
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
            com::STMT_BULK_EXECUTE => "mysqld_stmt_bulk_execute",
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

/// `payload` (a command naming a statement) with the statement id `id` written in.
fn with_id(payload: &Bytes, id: u32) -> Bytes {
    let mut out = BytesMut::from(&payload[..]);
    out[1..5].copy_from_slice(&id.to_le_bytes());
    out.freeze()
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

    /// True when the client has no statement open.
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
    /// a backend id to close on `conn`: its copy when the client no longer has the
    /// statement (its prepare failed on the client's backend meanwhile), or an older copy
    /// this one replaces (a prepare sent twice, after its first backend was lost).
    pub(crate) fn prepared_on(&mut self, id: u32, conn: ConnId, prepare_ok: &[u8]) -> Option<u32> {
        let ok = StmtPrepareOk::decode(prepare_ok, 0).ok()?;
        let Some(statement) = self.open.get_mut(&id) else {
            return Some(ok.statement_id);
        };
        statement.params = ok.num_params;
        let replaced = statement
            .copies
            .iter()
            .position(|c| c.conn == conn)
            .map(|at| statement.copies.swap_remove(at).id);
        statement.copies.push(Handle {
            conn,
            id: ok.statement_id,
            types_version: 0,
        });
        replaced.filter(|&old| old != ok.statement_id)
    }

    /// The backend that answers the client answered the prepare of `id` with its
    /// PREPARE OK `payload`: the answer is rewritten, in place, to carry the client's id.
    /// Returns a backend id to close there, as [`Statements::prepared_on`].
    pub(crate) fn prepared_for_client(
        &mut self,
        id: u32,
        conn: ConnId,
        payload: &mut [u8],
    ) -> Option<u32> {
        let close = self.prepared_on(id, conn, payload);
        if let Some(field) = payload.get_mut(1..5) {
            field.copy_from_slice(&id.to_le_bytes());
        }
        close
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

    /// The client closed statement `id` ([`LAST_PREPARED`] resolved): returns each
    /// backend's id for it, to close there.
    pub(crate) fn closed(&mut self, id: u32) -> Vec<(ConnId, u32)> {
        let Some(id) = self.resolve(id) else {
            return Vec::new();
        };
        if self.last == Some(id) {
            self.last = None;
        }
        let copies = self.open.remove(&id).map(|s| s.copies).unwrap_or_default();
        copies.into_iter().map(|c| (c.conn, c.id)).collect()
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
    /// command is returned as is. `caps`: the capabilities the client negotiated (an
    /// execute's layout depends on them).
    pub(crate) fn for_backend(
        &mut self,
        conn: ConnId,
        payload: &Bytes,
        caps: u64,
    ) -> Result<Bytes, Missing> {
        let Some(named) = statement_id(payload) else {
            return Ok(payload.clone());
        };
        let client_id = self.resolve(named).ok_or(Missing::Unknown(named))?;
        let statement = self
            .open
            .get_mut(&client_id)
            .ok_or(Missing::Unknown(named))?;
        let copy = statement
            .copies
            .iter_mut()
            .find(|c| c.conn == conn)
            .ok_or(Missing::NotThere(named))?;
        if payload[0] == com::STMT_EXECUTE {
            let params = usize::from(statement.params);
            if let Ok(mut execute) = ComStmtExecute::decode(payload, params, caps) {
                let mut rewrite = copy.id != named;
                if execute.new_params_bound {
                    if statement.types.as_ref() != Some(&execute.param_types) {
                        statement.types = Some(execute.param_types.clone());
                        statement.types_version += 1;
                    }
                    copy.types_version = statement.types_version;
                } else if copy.types_version != statement.types_version
                    && !execute.null_bitmap.is_empty()
                {
                    // This backend has not had the types the client bound last.
                    if let Some(types) = &statement.types {
                        execute.new_params_bound = true;
                        execute.param_types = types.clone();
                        rewrite = true;
                    }
                    copy.types_version = statement.types_version;
                }
                if !rewrite {
                    return Ok(payload.clone());
                }
                execute.statement_id = copy.id;
                let mut out = BytesMut::with_capacity(payload.len() + 4 * params);
                execute.encode(&mut out, caps);
                return Ok(out.freeze());
            }
        }
        Ok(if copy.id == named {
            payload.clone()
        } else {
            with_id(payload, copy.id)
        })
    }

    /// An execute as a transaction log keeps it: with the parameter types it relies on
    /// written in, so that it runs the same on a backend that had other types since.
    pub(crate) fn self_contained(&self, payload: &Bytes, caps: u64) -> Bytes {
        let found = statement_id(payload)
            .filter(|_| payload[0] == com::STMT_EXECUTE)
            .and_then(|id| self.resolve(id))
            .and_then(|id| self.open.get(&id));
        let Some(statement) = found else {
            return payload.clone();
        };
        let params = usize::from(statement.params);
        match (
            ComStmtExecute::decode(payload, params, caps),
            &statement.types,
        ) {
            (Ok(mut execute), Some(types))
                if !execute.new_params_bound && !execute.null_bitmap.is_empty() =>
            {
                execute.new_params_bound = true;
                execute.param_types = types.clone();
                let mut out = BytesMut::with_capacity(payload.len() + 4 * params);
                execute.encode(&mut out, caps);
                out.freeze()
            }
            _ => payload.clone(),
        }
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
pub(crate) fn close_command(id: u32) -> Bytes {
    let mut out = BytesMut::with_capacity(5);
    ComStmtClose { statement_id: id }.encode(&mut out);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpm_protocol::caps::CLIENT_QUERY_ATTRIBUTES;

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

    /// A session with statement 1 (`SELECT ?`) on backends 10 (the client's, id 7) and
    /// 11 (id 1).
    fn one_statement() -> (Statements, u32) {
        let mut s = Statements::default();
        let id = s.preparing(&Bytes::from_static(b"\x16SELECT ?"));
        let mut answer = prepare_ok(7, 1);
        assert_eq!(s.prepared_for_client(id, 10, &mut answer), None);
        assert_eq!(&answer[1..5], &id.to_le_bytes(), "the client sees its id");
        assert_eq!(s.prepared_on(id, 11, &prepare_ok(1, 1)), None);
        assert_eq!(s.answered(id, true), Answered::Prepared(vec![]));
        (s, id)
    }

    #[test]
    fn each_backend_gets_its_own_id_and_the_client_sees_dpms() {
        let (mut s, id) = one_statement();
        assert_eq!(id, 1);
        assert_eq!(s.sql(id), Some(&b"SELECT ?"[..]));
        assert_eq!(s.sql(LAST_PREPARED), Some(&b"SELECT ?"[..]));
        let types = [8u8, 0];
        let value = b"\x05\0\0\0\0\0\0\0";
        let first = execute(id, Some(&types), value);
        assert_eq!(
            s.for_backend(10, &first, 0).unwrap(),
            execute(7, Some(&types), value)
        );
        // Backend 11 never had the types: they are put back in; then not again.
        let later = execute(id, None, value);
        assert_eq!(
            s.for_backend(11, &later, 0).unwrap(),
            execute(1, Some(&types), value)
        );
        assert_eq!(
            s.for_backend(11, &later, 0).unwrap(),
            later,
            "same id there, types known"
        );
        assert_eq!(
            s.for_backend(10, &later, 0).unwrap(),
            execute(7, None, value)
        );
        assert_eq!(s.for_backend(12, &later, 0), Err(Missing::NotThere(1)));
        assert_eq!(
            s.for_backend(10, &execute(9, None, b""), 0),
            Err(Missing::Unknown(9))
        );
        let query = Bytes::from_static(b"\x03SELECT 1");
        assert_eq!(s.for_backend(10, &query, 0).unwrap(), query);
        s.backend_gone(10);
        assert_eq!(s.for_backend(10, &later, 0), Err(Missing::NotThere(1)));
        assert_eq!(s.closed(id), vec![(11, 1)]);
        assert_eq!(s.sql(id), None);
        assert_eq!(
            s.preparing(&Bytes::from_static(b"\x16SELECT 2")),
            2,
            "ids are not reused"
        );
    }

    #[test]
    fn direct_execution_is_resolved_to_each_backends_own_id_and_tracks_types() {
        let (mut s, _) = one_statement();
        let types = [3u8, 0];
        let value = b"\x05\0\0\0";
        let direct = execute(LAST_PREPARED, Some(&types), value);
        assert_eq!(
            s.for_backend(10, &direct, 0).unwrap(),
            execute(7, Some(&types), value)
        );
        // The types of the direct execute count: backend 11 gets them with a plain one.
        let again = execute(LAST_PREPARED, None, value);
        assert_eq!(
            s.for_backend(11, &again, 0).unwrap(),
            execute(1, Some(&types), value)
        );
        let close = Bytes::from(vec![com::STMT_CLOSE, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(s.for_backend(11, &close, 0).unwrap(), close_command(1));
        assert_eq!(s.closed(LAST_PREPARED).len(), 2);
        assert_eq!(
            s.for_backend(10, &again, 0),
            Err(Missing::Unknown(LAST_PREPARED)),
            "no statement prepared last"
        );
    }

    #[test]
    fn a_kept_execute_carries_the_types_it_relied_on() {
        let (mut s, id) = one_statement();
        let (t1, t2) = ([8u8, 0], [5u8, 0]);
        let value = b"\x05\0\0\0\0\0\0\0";
        s.for_backend(10, &execute(id, Some(&t1), value), 0)
            .unwrap();
        let plain = execute(id, None, value);
        let kept = s.self_contained(&plain, 0);
        assert_eq!(kept, execute(id, Some(&t1), value));
        s.for_backend(10, &execute(id, Some(&t2), value), 0)
            .unwrap();
        // Replayed later on backend 11, it runs with its own types, not the newer ones.
        assert_eq!(
            s.for_backend(11, &kept, 0).unwrap(),
            execute(1, Some(&t1), value)
        );
    }

    #[test]
    fn query_attributes_are_kept_in_their_place() {
        let (mut s, id) = one_statement();
        let caps = CLIENT_QUERY_ATTRIBUTES;
        let with_types = ComStmtExecute {
            statement_id: id,
            iteration_count: 1,
            parameter_count: Some(1),
            null_bitmap: Bytes::from_static(&[0]),
            new_params_bound: true,
            param_types: vec![ParamType {
                column_type: 8,
                flags: 0,
                name: Some(Bytes::from_static(b"")),
            }],
            values: Bytes::from_static(b"\x05\0\0\0\0\0\0\0"),
            ..Default::default()
        };
        let mut p = BytesMut::new();
        with_types.encode(&mut p, caps);
        s.for_backend(10, &p.freeze(), caps).unwrap();
        let mut plain = with_types.clone();
        plain.new_params_bound = false;
        plain.param_types.clear();
        let mut p = BytesMut::new();
        plain.encode(&mut p, caps);
        let sent = s.for_backend(11, &p.freeze(), caps).unwrap();
        let decoded = ComStmtExecute::decode(&sent, 1, caps).unwrap();
        assert_eq!(decoded.statement_id, 1);
        assert_eq!(decoded.param_types, with_types.param_types);
        assert_eq!(decoded.values, with_types.values);
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
        // Prepared twice on one backend (sent again after a loss): the first copy closes.
        assert_eq!(s.prepared_on(id, 13, &prepare_ok(4, 0)), None);
        assert_eq!(s.prepared_on(id, 13, &prepare_ok(5, 0)), Some(4));
        // The client's backend failed: the spares that prepared it close it.
        let id = s.preparing(&Bytes::from_static(b"\x16SELECT * FROM nowhere"));
        s.prepared_on(id, 11, &prepare_ok(4, 0));
        assert_eq!(s.answered(id, false), Answered::Failed(vec![(11, 4)]));
        assert_eq!(s.sql(id), None);
        // A spare whose OK comes after that closes its copy.
        assert_eq!(s.prepared_on(id, 12, &prepare_ok(9, 0)), Some(9));
        assert_eq!(&close_command(4)[..], &[com::STMT_CLOSE, 4, 0, 0, 0]);
    }
}
