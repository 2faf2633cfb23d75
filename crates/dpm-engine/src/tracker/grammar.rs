//! The response grammar: which packet comes next on one connection. It owns the phase
//! (handshake, login, authentication, ready, tunnel), the negotiated capabilities and the
//! queue of commands awaiting a response, and classifies the first frame of every packet
//! against them: command response shapes, result sets, prepare, LOCAL INFILE,
//! multi-results, pipelined commands.
//!
//! It must not assign sequence ids (it only carries each queued command's
//! [`sequence::Reply`] for `sequence.rs`, without looking inside) nor name events:
//! its whole verdict on a packet is the [`Step`] it returns. It only sees first frames
//! (framing and continuations are `mod.rs`'s), never allocates except for the queue, and
//! must not panic on any input.

use std::collections::VecDeque;

use dpm_protocol::caps::{
    CLIENT_COMPRESS, CLIENT_DEPRECATE_EOF, CLIENT_OPTIONAL_RESULTSET_METADATA, CLIENT_PROTOCOL_41,
    CLIENT_SSL, CLIENT_ZSTD_COMPRESSION_ALGORITHM, MARIADB_CLIENT_CACHE_METADATA,
};
use dpm_protocol::command::{com, response_shape, ResponseShape};
use dpm_protocol::lenenc::get_lenenc_int;
use dpm_protocol::response::{is_eof_packet, ok_status, terminator_status};

use super::sequence;
use super::{EofStyle, PacketKind, Phase, TrackError};

pub(super) const SERVER_MORE_RESULTS_EXISTS: u16 = 0x0008;
const SERVER_STATUS_CURSOR_EXISTS: u16 = 0x0040;
/// Bit 0 of the capabilities: set by MySQL peers, clear on MariaDB ones, which then carry
/// extended capabilities in otherwise unused handshake bytes.
const CLIENT_MYSQL: u64 = 1;
/// Largest handshake response a client may send; anything bigger is an attack or garbage.
const MAX_AUTH_PACKET: usize = 1 << 20;

/// The grammar's verdict on one packet: all that sequence ids and event naming may know
/// about where the conversation is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Step {
    /// What the packet is.
    pub kind: PacketKind,
    /// The packet ended its command's whole response (or the login exchange).
    pub response_done: bool,
    /// The response is not done and the next server packet starts another result of a
    /// multi-result (the packet was an intermediate terminator).
    pub at_next_result: bool,
    /// The response is not done and is now at its rows (the packet ended the column
    /// definitions).
    pub in_rows: bool,
    /// The connection's phase after the packet.
    pub phase: Phase,
    /// A client packet: it was a command now awaiting a response.
    pub queued: bool,
    /// A client packet: it was a command that arrived while an earlier one still awaited
    /// (part of) its response.
    pub pipelined: bool,
}

/// Grammar of one command's response.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum RPhase {
    /// The next server packet starts the response or the next result of a multi-result.
    First,
    Columns {
        left: u64,
    },
    ColumnsEof,
    Rows,
    InfileData,
    InfileResult,
    PrepareParams {
        left: u64,
        columns: u64,
    },
    PrepareParamsEof {
        columns: u64,
    },
    PrepareColumns {
        left: u64,
    },
    PrepareColumnsEof,
    Auth,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    command: u8,
    phase: RPhase,
    /// The column definitions just ended under CLIENT_DEPRECATE_EOF, where no EOF follows them.
    columns_just_ended: bool,
    /// Where the response's sequence ids start (`sequence.rs`'s; carried, never read here).
    reply: sequence::Reply,
}

/// Phase, capabilities and the queue of commands awaiting a response.
#[derive(Debug)]
pub(super) struct Grammar {
    phase: Phase,
    server_caps: u64,
    client_caps: u64,
    /// Commands awaiting a response; the front one is being answered.
    pending: VecDeque<Pending>,
    /// Commands received so far (wrapping): lets the idle timeout see activity without a
    /// clock read per packet.
    commands: u32,
}

impl Grammar {
    pub(super) fn new() -> Grammar {
        Grammar {
            phase: Phase::AwaitHandshake,
            server_caps: 0,
            client_caps: 0,
            pending: VecDeque::new(),
            commands: 0,
        }
    }

    pub(super) fn pending_commands(&self) -> usize {
        self.pending.len()
    }

    pub(super) fn commands_received(&self) -> u32 {
        self.commands
    }

    pub(super) fn phase(&self) -> Phase {
        self.phase
    }

    pub(super) fn negotiated_caps(&self) -> u64 {
        self.server_caps & self.client_caps
    }

    pub(super) fn is_idle(&self) -> bool {
        self.phase == Phase::Ready && self.pending.is_empty()
    }

    pub(super) fn enter_tunnel(&mut self) {
        self.phase = Phase::Tunnel;
    }

    /// dpm ran the login itself (proxy-held users): the conversation starts ready for
    /// commands with these capabilities.
    pub(super) fn logged_in(&mut self, server_caps: u64, client_caps: u64) {
        self.server_caps = server_caps;
        self.client_caps = client_caps;
        self.phase = Phase::Ready;
        // A COM_CHANGE_USER dpm answered itself is not waiting for the server.
        self.pending.clear();
    }

    /// dpm itself answered an SSLRequest (TLS ends here, not end to end): the handshake
    /// response follows, now over TLS.
    pub(super) fn resume_login(&mut self) {
        if self.phase == Phase::Tunnel {
            self.phase = Phase::AwaitLogin;
        }
    }

    /// The reply of the command being answered (or to be answered next).
    pub(super) fn head_reply(&mut self) -> Option<&mut sequence::Reply> {
        self.pending.front_mut().map(|p| &mut p.reply)
    }

    /// True when the response to the command being answered has started.
    pub(super) fn head_started(&self) -> bool {
        self.pending.front().is_some_and(|p| p.reply.started())
    }

    /// The reply of the command queued last.
    pub(super) fn last_reply(&mut self) -> Option<&mut sequence::Reply> {
        self.pending.back_mut().map(|p| &mut p.reply)
    }

    /// See `Tracker::take_eof_style`.
    pub(super) fn take_eof_style(&mut self) -> EofStyle {
        if self.negotiated_caps() & CLIENT_DEPRECATE_EOF == 0 {
            return EofStyle::Classic;
        }
        match self.pending.front_mut() {
            Some(head) if head.columns_just_ended => {
                head.columns_just_ended = false;
                EofStyle::Omit
            }
            _ => EofStyle::OkAsEof,
        }
    }

    /// A step saying only `kind`, in the current phase.
    pub(super) fn step(&self, kind: PacketKind) -> Step {
        Step {
            kind,
            response_done: false,
            at_next_result: false,
            in_rows: false,
            phase: self.phase,
            queued: false,
            pipelined: false,
        }
    }

    /// Classifies the first frame of a packet travelling client → server.
    pub(super) fn client_packet(&mut self, p: &[u8]) -> Result<Step, TrackError> {
        let was_busy = !self.pending.is_empty();
        let queued = self.pending.len();
        let kind = self.client_kind(p)?;
        let mut step = self.step(kind);
        step.queued = self.pending.len() > queued;
        step.pipelined = matches!(kind, PacketKind::Command(_)) && was_busy;
        Ok(step)
    }

    fn client_kind(&mut self, p: &[u8]) -> Result<PacketKind, TrackError> {
        match self.phase {
            Phase::AwaitHandshake => Err(TrackError::ClientSpokeFirst),
            Phase::AwaitLogin => {
                if p.len() > MAX_AUTH_PACKET {
                    return Err(TrackError::OversizedAuth(p.len()));
                }
                if p.len() < 32 {
                    return Err(TrackError::BadLogin(p.len()));
                }
                let caps = u32::from_le_bytes([p[0], p[1], p[2], p[3]]) as u64;
                if caps & CLIENT_PROTOCOL_41 == 0 {
                    return Err(TrackError::BadLogin(p.len()));
                }
                let ext = if caps & CLIENT_MYSQL == 0 {
                    (u32::from_le_bytes([p[28], p[29], p[30], p[31]]) as u64) << 32
                } else {
                    0
                };
                self.client_caps = caps | ext;
                if p.len() == 32 && caps & CLIENT_SSL != 0 {
                    self.phase = Phase::Tunnel;
                    return Ok(PacketKind::SslRequest);
                }
                self.phase = Phase::Authenticating;
                Ok(PacketKind::HandshakeResponse)
            }
            Phase::Authenticating => {
                if p.len() > MAX_AUTH_PACKET {
                    return Err(TrackError::OversizedAuth(p.len()));
                }
                Ok(PacketKind::AuthData)
            }
            Phase::Tunnel => Ok(PacketKind::Other),
            Phase::Ready => {
                if let Some(head) = self.pending.front_mut() {
                    match head.phase {
                        RPhase::InfileData => {
                            if p.is_empty() {
                                head.phase = RPhase::InfileResult;
                            }
                            return Ok(PacketKind::InfileData);
                        }
                        RPhase::Auth => return Ok(PacketKind::AuthData),
                        _ => {}
                    }
                }
                let Some(&command) = p.first() else {
                    return Err(TrackError::EmptyCommand);
                };
                self.commands = self.commands.wrapping_add(1);
                let phase = match response_shape(command) {
                    ResponseShape::None => return Ok(PacketKind::Command(command)),
                    ResponseShape::Fetch | ResponseShape::Stream => RPhase::Rows,
                    ResponseShape::Auth => RPhase::Auth,
                    _ => RPhase::First,
                };
                self.pending.push_back(Pending {
                    command,
                    phase,
                    columns_just_ended: false,
                    reply: sequence::Reply::default(),
                });
                Ok(PacketKind::Command(command))
            }
        }
    }

    /// Classifies the first frame of a packet travelling server → client.
    pub(super) fn server_packet(&mut self, p: &[u8]) -> Step {
        let (kind, response_done) = self.server_kind(p);
        let head = self.pending.front().map(|h| h.phase);
        Step {
            response_done,
            at_next_result: !response_done && head == Some(RPhase::First),
            in_rows: !response_done && head == Some(RPhase::Rows),
            ..self.step(kind)
        }
    }

    fn server_kind(&mut self, p: &[u8]) -> (PacketKind, bool) {
        let first = p.first().copied();
        match self.phase {
            Phase::AwaitHandshake => {
                if first == Some(0xFF) {
                    return (PacketKind::Err, false);
                }
                self.server_caps = parse_handshake_caps(p);
                self.phase = Phase::AwaitLogin;
                (PacketKind::Handshake, false)
            }
            Phase::AwaitLogin => (PacketKind::Unsolicited, false),
            Phase::Authenticating => match first {
                Some(0x00) => {
                    self.phase = if self.negotiated_caps()
                        & (CLIENT_COMPRESS | CLIENT_ZSTD_COMPRESSION_ALGORITHM)
                        != 0
                    {
                        Phase::Tunnel
                    } else {
                        Phase::Ready
                    };
                    (PacketKind::Ok, true)
                }
                Some(0xFF) => {
                    self.phase = Phase::Ready;
                    (PacketKind::Err, true)
                }
                Some(0xFE) => (PacketKind::AuthSwitch, false),
                Some(0x01) => (PacketKind::AuthMoreData, false),
                _ => (PacketKind::Other, false),
            },
            Phase::Tunnel => (PacketKind::Other, false),
            Phase::Ready => self.response_packet(p),
        }
    }

    /// Advances the response grammar of the command at the head of the queue; returns the
    /// packet's kind and whether it ended the response.
    fn response_packet(&mut self, p: &[u8]) -> (PacketKind, bool) {
        let caps = self.negotiated_caps();
        let deprecate_eof = caps & CLIENT_DEPRECATE_EOF != 0;
        let Some(head) = self.pending.front_mut() else {
            return (PacketKind::Unsolicited, false);
        };
        head.columns_just_ended = false;
        let first = p.first().copied().unwrap_or(0);
        if first == 0xFF {
            if p.len() >= 3 && p[1] == 0xFF && p[2] == 0xFF {
                return (PacketKind::Progress, false);
            }
            self.pending.pop_front();
            return (PacketKind::Err, true);
        }
        let shape = response_shape(head.command);
        let is_end = is_eof_packet(p, deprecate_eof);
        let (kind, done) = match head.phase {
            RPhase::First => match shape {
                ResponseShape::Simple => (simple_kind(first), true),
                ResponseShape::Statistics => (PacketKind::Statistics, true),
                ResponseShape::FieldList => {
                    if is_end {
                        (end_kind(deprecate_eof), true)
                    } else {
                        (PacketKind::ColumnDef, false)
                    }
                }
                ResponseShape::Prepare => match prepare_counts(p) {
                    Some((0, 0)) | None => (PacketKind::PrepareOk, true),
                    Some((columns, params)) => {
                        head.phase = if params > 0 {
                            RPhase::PrepareParams {
                                left: params,
                                columns,
                            }
                        } else {
                            RPhase::PrepareColumns { left: columns }
                        };
                        (PacketKind::PrepareOk, false)
                    }
                },
                _ => match first {
                    0x00 | 0xFE => {
                        let more =
                            ok_status(p).is_some_and(|s| s & SERVER_MORE_RESULTS_EXISTS != 0);
                        (PacketKind::Ok, !more)
                    }
                    0xFB => {
                        head.phase = RPhase::InfileData;
                        (PacketKind::InfileRequest, false)
                    }
                    _ => {
                        let binary =
                            matches!(head.command, com::STMT_EXECUTE | com::STMT_BULK_EXECUTE);
                        let optional_meta = caps & CLIENT_OPTIONAL_RESULTSET_METADATA != 0
                            || (binary && caps & MARIADB_CLIENT_CACHE_METADATA != 0);
                        let (columns, metadata) = column_count(p, optional_meta);
                        head.phase = if metadata && columns > 0 {
                            RPhase::Columns { left: columns }
                        } else {
                            RPhase::Rows
                        };
                        (PacketKind::ResultSetHeader, false)
                    }
                },
            },
            RPhase::Columns { left } => {
                head.columns_just_ended = left == 1 && deprecate_eof;
                head.phase = match (left - 1, deprecate_eof) {
                    (0, true) => RPhase::Rows,
                    (0, false) => RPhase::ColumnsEof,
                    (left, _) => RPhase::Columns { left },
                };
                (PacketKind::ColumnDef, false)
            }
            RPhase::ColumnsEof => {
                let status = terminator_status(p, false).unwrap_or(0);
                if status & SERVER_STATUS_CURSOR_EXISTS != 0 && head.command == com::STMT_EXECUTE {
                    (PacketKind::Eof, true)
                } else {
                    head.phase = RPhase::Rows;
                    (PacketKind::Eof, false)
                }
            }
            RPhase::Rows => {
                if is_end {
                    let status = terminator_status(p, deprecate_eof).unwrap_or(0);
                    let more = status & SERVER_MORE_RESULTS_EXISTS != 0
                        && shape == ResponseShape::ResultSets;
                    head.phase = RPhase::First;
                    (end_kind(deprecate_eof), !more)
                } else if shape == ResponseShape::Stream {
                    (PacketKind::Other, false)
                } else {
                    (PacketKind::Row, false)
                }
            }
            RPhase::InfileData => (PacketKind::Unsolicited, false),
            RPhase::InfileResult => {
                let more = ok_status(p).is_some_and(|s| s & SERVER_MORE_RESULTS_EXISTS != 0);
                head.phase = RPhase::First;
                (simple_kind(first), !more)
            }
            RPhase::PrepareParams { left, columns } => {
                head.phase = match (left - 1, deprecate_eof) {
                    (0, false) => RPhase::PrepareParamsEof { columns },
                    (0, true) if columns > 0 => RPhase::PrepareColumns { left: columns },
                    (0, true) => RPhase::First,
                    (left, _) => RPhase::PrepareParams { left, columns },
                };
                let done = head.phase == RPhase::First;
                (PacketKind::ParamDef, done)
            }
            RPhase::PrepareParamsEof { columns } => {
                head.phase = if columns > 0 {
                    RPhase::PrepareColumns { left: columns }
                } else {
                    RPhase::First
                };
                (PacketKind::ParamsEof, columns == 0)
            }
            RPhase::PrepareColumns { left } => {
                head.phase = match (left - 1, deprecate_eof) {
                    (0, false) => RPhase::PrepareColumnsEof,
                    (0, true) => RPhase::First,
                    (left, _) => RPhase::PrepareColumns { left },
                };
                let done = head.phase == RPhase::First;
                (PacketKind::ColumnDef, done)
            }
            RPhase::PrepareColumnsEof => (PacketKind::Eof, true),
            RPhase::Auth => match first {
                0x00 => (PacketKind::Ok, true),
                0xFE => (PacketKind::AuthSwitch, false),
                0x01 => (PacketKind::AuthMoreData, false),
                _ => (PacketKind::Other, false),
            },
        };
        if done {
            self.pending.pop_front();
        }
        (kind, done)
    }
}

fn simple_kind(first: u8) -> PacketKind {
    match first {
        0x00 => PacketKind::Ok,
        0xFF => PacketKind::Err,
        0xFE => PacketKind::Eof,
        _ => PacketKind::Other,
    }
}

fn end_kind(deprecate_eof: bool) -> PacketKind {
    if deprecate_eof {
        PacketKind::Ok
    } else {
        PacketKind::Eof
    }
}

/// Column count of a result-set header and whether column definitions follow.
fn column_count(p: &[u8], optional_metadata: bool) -> (u64, bool) {
    let mut rest = p;
    let columns = get_lenenc_int(&mut rest).ok().flatten().unwrap_or(0);
    let metadata = !optional_metadata || rest.first().is_none_or(|&b| b != 0);
    (columns, metadata)
}

/// (columns, params) of a COM_STMT_PREPARE OK.
fn prepare_counts(p: &[u8]) -> Option<(u64, u64)> {
    if p.len() < 9 || p[0] != 0 {
        return None;
    }
    let columns = u16::from_le_bytes([p[5], p[6]]) as u64;
    let params = u16::from_le_bytes([p[7], p[8]]) as u64;
    Some((columns, params))
}

/// The full capability set a server greeting announces (MariaDB's extended bits included).
fn parse_handshake_caps(p: &[u8]) -> u64 {
    // protocol(1) version(NUL-terminated) thread(4) scramble(8) filler(1) caps_lo(2)
    // charset(1) status(2) caps_hi(2) auth_len(1) filler(6) mariadb_caps(4)
    let Some(nul) = p.iter().skip(1).position(|&b| b == 0) else {
        return 0;
    };
    let base = 1 + nul + 1 + 4 + 8 + 1;
    let get16 = |at: usize| {
        p.get(at..at + 2)
            .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]) as u64)
    };
    let lo = get16(base);
    let hi = get16(base + 5);
    let caps = lo | (hi << 16);
    let ext = if caps & CLIENT_MYSQL == 0 {
        p.get(base + 14..base + 18)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64)
    } else {
        0
    };
    caps | (ext << 32)
}
