//! What the server told about a service session, kept as the packets go by: the status
//! flags of the last OK/EOF (in transaction, autocommit, more results), the current
//! schema (from the login, `COM_INIT_DB` once answered OK, or session tracking after
//! `USE`), the login user and the prepared statements the server handed out.
//!
//! It reads only the bytes the tracker already looked at (a packet's first bytes and an
//! OK/EOF's status field); the rare packets that change the schema or prepare a statement
//! are decoded further. It never decides anything: routers and filters read it, and the
//! admin API shows it (with the command running: since when, and its statement's first
//! [`STATEMENT_SHOWN`] bytes, copied into one buffer the session reuses).

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;
use dpm_protocol::caps::CLIENT_DEPRECATE_EOF;
use dpm_protocol::command::{com, response_shape, ResponseShape};
use dpm_protocol::response::{ok_status, terminator_status, OkPacket};

use crate::tracker::PacketKind;

/// Server status flag: a transaction is open.
pub const SERVER_STATUS_IN_TRANS: u16 = 0x0001;
/// Server status flag: autocommit is on.
pub const SERVER_STATUS_AUTOCOMMIT: u16 = 0x0002;
/// Server status flag: more results follow.
pub const SERVER_MORE_RESULTS_EXISTS: u16 = 0x0008;
/// Server status flag: the transaction is read-only.
pub const SERVER_STATUS_IN_TRANS_READONLY: u16 = 0x2000;
/// Server status flag: the OK carries session-state-tracking data.
const SERVER_SESSION_STATE_CHANGED: u16 = 0x4000;

/// How many bytes of the running statement a session keeps for the admin API.
pub const STATEMENT_SHOWN: usize = 1024;

/// The command a session is running (the oldest awaiting its response).
#[derive(Debug, Clone, Copy)]
pub struct Running<'a> {
    /// When the client sent it.
    pub since: Instant,
    /// Its command byte (0, COM_SLEEP, for a pipelined command behind another: not kept).
    pub command: u8,
    /// The first [`STATEMENT_SHOWN`] bytes of its SQL (a query or a prepare).
    pub statement: Option<&'a [u8]>,
}

/// A session's state as the server reported it.
#[derive(Debug, Default, Clone)]
pub struct SessionState {
    /// Status flags of the last OK or EOF the server sent (0 before the first).
    pub status: u16,
    /// The login user (from the client's handshake response).
    pub user: Option<Bytes>,
    /// The current schema: from the login, `COM_INIT_DB`, or session tracking after `USE`.
    pub schema: Option<Bytes>,
    /// Statement ids of the prepared statements open on the session's backend.
    pub prepared: Vec<u32>,
    /// One entry per command awaiting its response, oldest first (responses come in
    /// command order): the schema a `COM_INIT_DB` sets once the server agrees.
    awaiting: VecDeque<Option<Bytes>>,
    /// When the oldest command awaiting its response was sent (None: nothing awaited).
    running_since: Option<Instant>,
    /// That command's byte.
    running_command: u8,
    /// That command's statement, if it has one (reused: no allocation per statement
    /// once it has grown to the longest shown).
    running_statement: Vec<u8>,
    running_has_statement: bool,
    /// The running statement being counted under its query digest (`crate::digests`).
    pub digest: Option<crate::digests::Pending>,
}

impl SessionState {
    /// The login a client sent (forwarded, or answered by dpm itself): its user and schema.
    pub(crate) fn logged_in(
        &mut self,
        login: &dpm_protocol::handshake_response::HandshakeResponse41,
    ) {
        self.user = Some(login.username.clone());
        self.schema = login.database.clone().filter(|d| !d.is_empty());
    }

    /// A login (or COM_CHANGE_USER) dpm ran itself, ended by the server's `ok`: the
    /// user and schema asked for, the OK's status flags, and nothing awaited any more
    /// (the COM_CHANGE_USER dpm answered gets no response from the server).
    pub(crate) fn logged_in_by_dpm(
        &mut self,
        login: &dpm_protocol::handshake_response::HandshakeResponse41,
        ok: &[u8],
        caps: u64,
    ) {
        self.awaiting.clear();
        self.running_since = None;
        self.logged_in(login);
        let _ = self.server_packet(PacketKind::Ok, ok, caps, false);
    }

    /// True when a command awaits its response.
    pub fn is_running(&self) -> bool {
        self.running_since.is_some()
    }

    /// True while a transaction is open.
    pub fn in_transaction(&self) -> bool {
        self.status & SERVER_STATUS_IN_TRANS != 0
    }

    /// The command running, if a command awaits its response.
    pub fn running(&self) -> Option<Running<'_>> {
        Some(Running {
            since: self.running_since?,
            command: self.running_command,
            statement: self
                .running_has_statement
                .then_some(self.running_statement.as_slice()),
        })
    }

    /// Notes the command the session now runs.
    fn start_running(&mut self, command: u8, payload: &[u8]) {
        self.running_since = Some(Instant::now());
        self.running_command = command;
        self.running_has_statement = matches!(command, com::QUERY | com::STMT_PREPARE);
        self.running_statement.clear();
        if self.running_has_statement {
            let sql = payload.get(1..).unwrap_or_default();
            self.running_statement
                .extend_from_slice(&sql[..sql.len().min(STATEMENT_SHOWN)]);
        }
    }

    /// True when autocommit is on (as of the last OK/EOF).
    pub fn autocommit(&self) -> bool {
        self.status & SERVER_STATUS_AUTOCOMMIT != 0
    }

    /// Notes a packet the client sent: the login (user, schema) and each command (the
    /// ones that change the schema or the prepared statements, and every command that
    /// awaits a response, to pair it with its response).
    pub fn client_packet(&mut self, kind: PacketKind, payload: &[u8]) {
        match kind {
            PacketKind::HandshakeResponse => {
                let login = Bytes::copy_from_slice(payload);
                if let Ok(login) =
                    dpm_protocol::handshake_response::HandshakeResponse41::decode(&login)
                {
                    self.logged_in(&login);
                }
            }
            PacketKind::Command(command) => {
                match command {
                    com::STMT_CLOSE => {
                        if let Some(id) = statement_id(payload) {
                            self.prepared.retain(|&p| p != id);
                        }
                    }
                    com::RESET_CONNECTION | com::CHANGE_USER => self.prepared.clear(),
                    _ => {}
                }
                if response_shape(command) != ResponseShape::None {
                    let schema =
                        (command == com::INIT_DB).then(|| Bytes::copy_from_slice(&payload[1..]));
                    if self.awaiting.is_empty() {
                        self.start_running(command, payload);
                    }
                    self.awaiting.push_back(schema);
                }
            }
            _ => {}
        }
    }

    /// The pipeline answered the last command itself (it never reaches the server).
    pub fn answered_by_pipeline(&mut self, command: u8) {
        if response_shape(command) != ResponseShape::None {
            self.awaiting.pop_back();
            if self.awaiting.is_empty() {
                self.running_since = None;
            }
            // It never reaches a server: its digest entry gets no time, rows or error
            // (and the next command's must not be credited to it).
            self.digest = None;
        }
    }

    /// Notes a packet the server sent; `caps` are the negotiated capabilities and
    /// `ends_response` says the packet ends a command's whole response. Returns when the
    /// command whose response it ends was sent, if it was timed (for its latency). Of
    /// pipelined commands, the next one is timed from the end of the one before.
    pub fn server_packet(
        &mut self,
        kind: PacketKind,
        payload: &[u8],
        caps: u64,
        ends_response: bool,
    ) -> Option<Instant> {
        match kind {
            PacketKind::Ok => {
                if let Some(status) = ok_status(payload) {
                    self.status = status;
                    if status & SERVER_SESSION_STATE_CHANGED != 0 {
                        self.note_session_track(payload, caps);
                    }
                }
            }
            PacketKind::Eof => {
                let deprecate_eof = caps & CLIENT_DEPRECATE_EOF != 0;
                if let Some(status) = terminator_status(payload, deprecate_eof) {
                    self.status = status;
                }
            }
            PacketKind::PrepareOk => {
                if let Some(id) = statement_id(payload) {
                    self.prepared.push(id);
                }
            }
            _ => {}
        }
        if ends_response {
            if let (Some(Some(schema)), PacketKind::Ok) = (self.awaiting.pop_front(), kind) {
                self.schema = Some(schema);
            }
            let started = self.running_since;
            self.running_since = if self.awaiting.is_empty() {
                None
            } else {
                // A pipelined command is next: timed from here; which one it is and its
                // statement are not kept (only the oldest's are).
                self.running_command = 0;
                self.running_has_statement = false;
                Some(Instant::now())
            };
            return started;
        }
        None
    }

    /// Session tracking after `USE`: the schema the server reports.
    fn note_session_track(&mut self, payload: &[u8], caps: u64) {
        let Ok(ok) = OkPacket::decode(&Bytes::copy_from_slice(payload), caps) else {
            return;
        };
        if let Ok(changes) = ok.session_state() {
            if let Some(schema) = dpm_protocol::session_track::changed_schema(&changes) {
                self.schema = Some(schema.clone());
            }
        }
    }
}

/// The 4-byte statement id after the first byte (command or OK header).
fn statement_id(payload: &[u8]) -> Option<u32> {
    payload
        .get(1..5)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(status: u16) -> Vec<u8> {
        let mut p = vec![0, 0, 0];
        p.extend_from_slice(&status.to_le_bytes());
        p.extend_from_slice(&[0, 0]);
        p
    }

    #[test]
    fn status_schema_and_prepared_statements_follow_the_conversation() {
        let mut s = SessionState::default();
        let autocommit = ok(SERVER_STATUS_AUTOCOMMIT);
        s.server_packet(PacketKind::Ok, &autocommit, 0, true);
        assert!(s.autocommit() && !s.in_transaction());
        let in_trx = ok(SERVER_STATUS_IN_TRANS | SERVER_STATUS_AUTOCOMMIT);
        s.server_packet(PacketKind::Ok, &in_trx, 0, true);
        assert!(s.in_transaction());

        s.client_packet(PacketKind::Command(com::INIT_DB), b"\x02shop");
        assert_eq!(s.schema, None, "not before the server agreed");
        s.server_packet(PacketKind::Ok, &autocommit, 0, true);
        assert_eq!(s.schema.as_deref(), Some(&b"shop"[..]));
        s.client_packet(PacketKind::Command(com::INIT_DB), b"\x02nope");
        let refused = b"\xff\x19\x04#42000Unknown database";
        s.server_packet(PacketKind::Err, refused, 0, true);
        assert_eq!(
            s.schema.as_deref(),
            Some(&b"shop"[..]),
            "a refused USE changes nothing"
        );

        // Pipelined: a query's OK does not commit the COM_INIT_DB queued after it.
        s.client_packet(PacketKind::Command(com::QUERY), b"\x03DO 1");
        s.client_packet(PacketKind::Command(com::INIT_DB), b"\x02next");
        s.server_packet(PacketKind::Ok, &autocommit, 0, true);
        assert_eq!(s.schema.as_deref(), Some(&b"shop"[..]));
        s.server_packet(PacketKind::Ok, &autocommit, 0, true);
        assert_eq!(s.schema.as_deref(), Some(&b"next"[..]));
        // Answered by the pipeline: its entry goes, the next response pairs correctly.
        s.client_packet(PacketKind::Command(com::INIT_DB), b"\x02blocked");
        s.answered_by_pipeline(com::INIT_DB);
        s.client_packet(PacketKind::Command(com::PING), b"\x0e");
        s.server_packet(PacketKind::Ok, &autocommit, 0, true);
        assert_eq!(s.schema.as_deref(), Some(&b"next"[..]));

        let prepare_ok = |id: u8| [0, id, 0, 0, 0, 1, 0, 0, 0, 0];
        s.server_packet(PacketKind::PrepareOk, &prepare_ok(7), 0, false);
        s.server_packet(PacketKind::PrepareOk, &prepare_ok(8), 0, false);
        assert_eq!(s.prepared, vec![7, 8]);
        s.client_packet(
            PacketKind::Command(com::STMT_CLOSE),
            b"\x19\x07\x00\x00\x00",
        );
        assert_eq!(s.prepared, vec![8]);
        s.client_packet(PacketKind::Command(com::RESET_CONNECTION), b"\x1f");
        assert!(s.prepared.is_empty());
    }

    #[test]
    fn the_running_command_is_the_oldest_awaiting_its_response() {
        let mut s = SessionState::default();
        assert!(s.running().is_none());
        let long = format!("\x03SELECT '{}'", "x".repeat(3000));
        s.client_packet(PacketKind::Command(com::QUERY), long.as_bytes());
        let r = s.running().expect("a query runs");
        assert_eq!(r.command, com::QUERY);
        assert_eq!(r.statement.unwrap().len(), STATEMENT_SHOWN);
        assert!(r.statement.unwrap().starts_with(b"SELECT 'xxx"));
        let since = r.since;
        // Pipelined: the oldest stays the one shown until its response ends.
        s.client_packet(PacketKind::Command(com::PING), b"\x0e");
        assert_eq!(s.running().unwrap().since, since);
        s.server_packet(PacketKind::Ok, &ok(SERVER_STATUS_AUTOCOMMIT), 0, true);
        assert!(s.running().is_some(), "the ping still awaits its OK");
        s.server_packet(PacketKind::Ok, &ok(SERVER_STATUS_AUTOCOMMIT), 0, true);
        assert!(s.running().is_none());
        // A command without a response never runs; one answered by the pipeline ends.
        s.client_packet(
            PacketKind::Command(com::STMT_CLOSE),
            b"\x19\x01\x00\x00\x00",
        );
        assert!(s.running().is_none());
        s.client_packet(PacketKind::Command(com::PING), b"\x0e");
        assert_eq!(s.running().unwrap().statement, None);
        s.answered_by_pipeline(com::PING);
        assert!(s.running().is_none());
    }
}
