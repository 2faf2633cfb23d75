//! The per-connection protocol tracker: follows where one connection is in the MySQL
//! conversation by looking at packet headers and a few leading bytes only, assigns the
//! sequence id of every packet written to the connection, and names the DPM event
//! reached after each packet.
//!
//! Both kinds of connection run the same tracker. A *backend* connection receives
//! server packets and is sent client packets; a *client* connection receives client
//! packets and is sent server packets. Each side therefore sees the whole exchange,
//! whether its packets were forwarded from a partner or written by a script.
//!
//! It works on frames (one 4-byte header each): a frame of 0xFFFFFF payload bytes is
//! continued by the next frame in the same direction, and only a packet's first frame
//! is looked at. It never allocates except for the queue of pipelined commands.

use std::collections::VecDeque;

use dpm_protocol::caps::{
    CLIENT_COMPRESS, CLIENT_DEPRECATE_EOF, CLIENT_OPTIONAL_RESULTSET_METADATA, CLIENT_PROTOCOL_41,
    CLIENT_SSL, CLIENT_ZSTD_COMPRESSION_ALGORITHM, MARIADB_CLIENT_CACHE_METADATA,
};
use dpm_protocol::command::{com, response_shape, ResponseShape};
use dpm_protocol::frame::MAX_PAYLOAD_LEN;
use dpm_protocol::lenenc::get_lenenc_int;
use dpm_protocol::response::{is_eof_packet, ok_status, terminator_status};

use crate::event::Event;

const SERVER_MORE_RESULTS_EXISTS: u16 = 0x0008;
const SERVER_STATUS_CURSOR_EXISTS: u16 = 0x0040;
/// Bit 0 of the capabilities: set by MySQL peers, clear on MariaDB ones, which then carry
/// extended capabilities in otherwise unused handshake bytes.
const CLIENT_MYSQL: u64 = 1;
/// Largest handshake response a client may send; anything bigger is an attack or garbage.
const MAX_AUTH_PACKET: usize = 1 << 20;

/// Which kind of connection a tracker belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Side {
    /// An accepted client: receives client packets, is sent server packets.
    Client,
    /// An outbound connection to a server: receives server packets, is sent client packets.
    Backend,
}

/// What one packet is, as far as the tracker needs to know.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PacketKind {
    /// Server greeting (protocol 10).
    Handshake,
    /// The client's handshake response (login).
    HandshakeResponse,
    /// The truncated handshake response asking for TLS.
    SslRequest,
    /// Further authentication data from the client (auth switch response, infile …).
    AuthData,
    /// 0xFE auth switch request from the server.
    AuthSwitch,
    /// 0x01 auth-more-data from the server.
    AuthMoreData,
    /// A command from the client; the byte is the COM_* code.
    Command(u8),
    /// OK packet (also OK-as-EOF terminating a result under CLIENT_DEPRECATE_EOF).
    Ok,
    /// ERR packet.
    Err,
    /// MariaDB progress report (an 0xFF packet with code 0xFFFF); not an error.
    Progress,
    /// Classic EOF packet.
    Eof,
    /// Column-count packet starting a result set.
    ResultSetHeader,
    /// Column definition.
    ColumnDef,
    /// Parameter definition of a COM_STMT_PREPARE response.
    ParamDef,
    /// The EOF after the parameter definitions of a COM_STMT_PREPARE response.
    ParamsEof,
    /// Text or binary row.
    Row,
    /// 0xFB LOCAL INFILE request.
    InfileRequest,
    /// File contents sent by the client after a LOCAL INFILE request (empty = end).
    InfileData,
    /// COM_STMT_PREPARE OK.
    PrepareOk,
    /// The COM_STATISTICS text.
    Statistics,
    /// Any other server packet of a response (replication stream, unknown).
    Other,
    /// A frame continuing a packet of 16 MiB or more.
    Continuation,
    /// A packet that arrived when none was expected.
    Unsolicited,
}

/// Where the connection is in the conversation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Phase {
    /// Waiting for the server's greeting.
    AwaitHandshake,
    /// Greeting seen, waiting for the client's handshake response.
    AwaitLogin,
    /// Login sent; authentication packets go back and forth until OK or ERR.
    Authenticating,
    /// Authenticated: commands and responses.
    Ready,
    /// TLS or compression was negotiated end to end: bytes pass opaquely from now on.
    Tunnel,
}

/// The tracker's verdict on one frame.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FrameInfo {
    /// The packet's kind (for continuation frames: `Continuation`).
    pub kind: PacketKind,
    /// The DPM event reached after this packet, if it maps to one.
    pub event: Option<Event>,
    /// Another frame of the same packet follows.
    pub continued: bool,
    /// After this packet, the connection is an opaque tunnel (TLS/compression).
    pub starts_tunnel: bool,
}

/// A frame the tracker refuses: the connection that sent it must be closed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TrackError {
    /// The client sent bytes before the server greeting; MySQL is server-first.
    #[error("client sent data before the server handshake")]
    ClientSpokeFirst,
    /// The handshake response is not a protocol-4.1 login packet.
    #[error("malformed handshake response ({0} bytes)")]
    BadLogin(usize),
    /// The handshake response or an auth packet is unreasonably large.
    #[error("oversized authentication packet ({0} bytes)")]
    OversizedAuth(usize),
    /// An empty packet where a command was expected.
    #[error("empty command packet")]
    EmptyCommand,
    /// A logical packet grew beyond the configured maximum.
    #[error("packet larger than the {0}-byte limit")]
    TooLarge(usize),
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
    /// A packet of the response was already written to a client (for sequence ids).
    started: bool,
    /// The column definitions just ended under CLIENT_DEPRECATE_EOF, where no EOF follows them.
    columns_just_ended: bool,
    /// Sequence id of the response's first packet: one past the command's last frame.
    reply_seq: u8,
}

/// How an EOF packet written to a connection now must look, given what was negotiated
/// and where the response is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EofStyle {
    /// The classic 5-byte EOF.
    Classic,
    /// An OK packet with the 0xFE header (CLIENT_DEPRECATE_EOF).
    OkAsEof,
    /// Nothing: under CLIENT_DEPRECATE_EOF no EOF follows column definitions.
    Omit,
}

/// The protocol tracker of one connection (see the module docs).
#[derive(Debug)]
pub struct Tracker {
    side: Side,
    phase: Phase,
    server_caps: u64,
    client_caps: u64,
    /// Commands awaiting a response; the front one is being answered.
    pending: VecDeque<Pending>,
    /// Next frame from the server / from the client continues a packet.
    server_continues: bool,
    client_continues: bool,
    /// Bytes of the logical packet being received so far (for the size limit).
    rx_packet_len: usize,
    /// The packet being received is a command awaiting a response (its last frame's
    /// sequence id decides where the response's sequence ids start).
    rx_command: bool,
    max_packet: usize,
    /// Sequence id for the next frame written to this connection.
    tx_seq: u8,
    /// The last server packet looked at ended its command's whole response.
    response_done: bool,
    /// Commands received so far (wrapping): lets the idle timeout see activity
    /// without a clock read per packet.
    commands: u32,
}

impl Tracker {
    /// A tracker for a fresh connection; `max_packet` bounds received logical packets.
    pub fn new(side: Side, max_packet: usize) -> Tracker {
        Tracker {
            side,
            phase: Phase::AwaitHandshake,
            server_caps: 0,
            client_caps: 0,
            pending: VecDeque::new(),
            server_continues: false,
            client_continues: false,
            rx_packet_len: 0,
            rx_command: false,
            max_packet,
            tx_seq: 0,
            response_done: false,
            commands: 0,
        }
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Capabilities both sides agreed on (0 before the login was seen).
    pub fn negotiated_caps(&self) -> u64 {
        self.server_caps & self.client_caps
    }

    /// True while the conversation is opaque (TLS or compressed).
    pub fn is_tunnel(&self) -> bool {
        self.phase == Phase::Tunnel
    }

    /// True when the connection waits for the server greeting (nothing sent to a client yet).
    pub fn awaiting_handshake(&self) -> bool {
        self.phase == Phase::AwaitHandshake
    }

    /// True when no command is awaiting a response.
    pub fn is_idle(&self) -> bool {
        self.phase == Phase::Ready && self.pending.is_empty()
    }

    /// Commands received in the Ready phase so far (wrapping): a change means activity.
    pub fn commands_received(&self) -> u32 {
        self.commands
    }

    /// True when a response to the oldest pending command has started being written
    /// to this (client) connection: a packet written now would land inside it.
    pub fn response_started(&self) -> bool {
        self.pending.front().is_some_and(|head| head.started)
    }

    /// How an EOF written to this connection now must be encoded (for packets a
    /// script builds: the original always wrote classic EOFs, which clients that
    /// negotiated CLIENT_DEPRECATE_EOF reject).
    /// An `Omit` answer counts as the omitted EOF: the next EOF is the real one.
    pub fn take_eof_style(&mut self) -> EofStyle {
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

    /// Switches to opaque mode (the partner negotiated TLS or compression).
    pub fn enter_tunnel(&mut self) {
        self.phase = Phase::Tunnel;
    }

    /// Accounts for a frame received on this connection with sequence id `seq`.
    pub fn on_receive(&mut self, seq: u8, payload: &[u8]) -> Result<FrameInfo, TrackError> {
        let continued = payload.len() == MAX_PAYLOAD_LEN;
        let continuing = match self.side {
            Side::Client => std::mem::replace(&mut self.client_continues, continued),
            Side::Backend => std::mem::replace(&mut self.server_continues, continued),
        };
        self.rx_packet_len = if continuing {
            self.rx_packet_len + payload.len()
        } else {
            payload.len()
        };
        if self.rx_packet_len > self.max_packet {
            return Err(TrackError::TooLarge(self.max_packet));
        }
        if self.phase == Phase::Tunnel {
            return Ok(info(PacketKind::Other, None, continued));
        }
        if continuing {
            self.note_command_seq(seq);
            self.tx_seq = seq.wrapping_add(1);
            return Ok(info(PacketKind::Continuation, None, continued));
        }
        let mut out = match self.side {
            Side::Backend => {
                let kind = self.server_packet(payload);
                info(kind, self.backend_rx_event(kind), continued)
            }
            Side::Client => {
                let was_busy = !self.pending.is_empty();
                let queued = self.pending.len();
                let kind = self.client_packet(payload)?;
                self.rx_command = self.pending.len() > queued;
                self.note_command_seq(seq);
                let pipelined = matches!(kind, PacketKind::Command(_)) && was_busy;
                if pipelined {
                    // The response to an earlier command is still being written to this
                    // client: its sequence ids must not restart.
                    return Ok(info(kind, Some(Event::MYC_SENT_CMD), continued));
                }
                info(kind, client_rx_event(kind), continued)
            }
        };
        self.tx_seq = seq.wrapping_add(1);
        out.starts_tunnel = self.phase == Phase::Tunnel;
        Ok(out)
    }

    /// Accounts for a frame about to be written to this connection; returns the sequence
    /// id to put in its header and what the frame is.
    pub fn on_send(&mut self, payload: &[u8]) -> (u8, FrameInfo) {
        let continued = payload.len() == MAX_PAYLOAD_LEN;
        if self.phase == Phase::Tunnel {
            return (self.next_seq(), info(PacketKind::Other, None, continued));
        }
        let continuing = match self.side {
            Side::Client => std::mem::replace(&mut self.server_continues, continued),
            Side::Backend => std::mem::replace(&mut self.client_continues, continued),
        };
        if continuing {
            return (
                self.next_seq(),
                info(PacketKind::Continuation, None, continued),
            );
        }
        let (seq, kind) = match self.side {
            Side::Backend => {
                // Client packets sent to a server: commands restart the sequence at 0.
                let kind = self
                    .client_packet(payload)
                    .unwrap_or(PacketKind::Unsolicited);
                if matches!(kind, PacketKind::Command(_)) {
                    self.tx_seq = 0;
                }
                (self.next_seq(), kind)
            }
            Side::Client => {
                // Server packets sent to a client: a response starts at 1.
                if let Some(head) = self.pending.front_mut() {
                    if !head.started {
                        head.started = true;
                        self.tx_seq = head.reply_seq;
                    }
                }
                let kind = self.server_packet(payload);
                (self.next_seq(), kind)
            }
        };
        let event = match self.side {
            Side::Backend => backend_tx_event(kind),
            Side::Client => self.client_tx_event(kind),
        };
        let mut out = info(kind, event, continued);
        out.starts_tunnel = self.phase == Phase::Tunnel;
        (seq, out)
    }

    /// Remembers where the response to the command being received must start.
    fn note_command_seq(&mut self, seq: u8) {
        if self.rx_command {
            if let Some(last) = self.pending.back_mut() {
                last.reply_seq = seq.wrapping_add(1);
            }
        }
    }

    fn next_seq(&mut self) -> u8 {
        let seq = self.tx_seq;
        self.tx_seq = seq.wrapping_add(1);
        seq
    }

    /// Classifies the first frame of a packet travelling client → server.
    fn client_packet(&mut self, p: &[u8]) -> Result<PacketKind, TrackError> {
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
                    started: false,
                    columns_just_ended: false,
                    reply_seq: 1,
                });
                Ok(PacketKind::Command(command))
            }
        }
    }

    /// Classifies the first frame of a packet travelling server → client.
    fn server_packet(&mut self, p: &[u8]) -> PacketKind {
        self.response_done = false;
        let first = p.first().copied();
        match self.phase {
            Phase::AwaitHandshake => {
                if first == Some(0xFF) {
                    return PacketKind::Err;
                }
                self.server_caps = parse_handshake_caps(p);
                self.phase = Phase::AwaitLogin;
                PacketKind::Handshake
            }
            Phase::AwaitLogin => PacketKind::Unsolicited,
            Phase::Authenticating => match first {
                Some(0x00) => {
                    self.response_done = true;
                    self.phase = if self.negotiated_caps()
                        & (CLIENT_COMPRESS | CLIENT_ZSTD_COMPRESSION_ALGORITHM)
                        != 0
                    {
                        Phase::Tunnel
                    } else {
                        Phase::Ready
                    };
                    PacketKind::Ok
                }
                Some(0xFF) => {
                    self.response_done = true;
                    self.phase = Phase::Ready;
                    PacketKind::Err
                }
                Some(0xFE) => PacketKind::AuthSwitch,
                Some(0x01) => PacketKind::AuthMoreData,
                _ => PacketKind::Other,
            },
            Phase::Tunnel => PacketKind::Other,
            Phase::Ready => self.response_packet(p),
        }
    }

    /// Advances the response grammar of the command at the head of the queue.
    fn response_packet(&mut self, p: &[u8]) -> PacketKind {
        let caps = self.negotiated_caps();
        let deprecate_eof = caps & CLIENT_DEPRECATE_EOF != 0;
        self.response_done = false;
        let Some(head) = self.pending.front_mut() else {
            return PacketKind::Unsolicited;
        };
        head.columns_just_ended = false;
        let first = p.first().copied().unwrap_or(0);
        if first == 0xFF {
            if p.len() >= 3 && p[1] == 0xFF && p[2] == 0xFF {
                return PacketKind::Progress;
            }
            self.pending.pop_front();
            self.response_done = true;
            return PacketKind::Err;
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
        self.response_done = done;
        kind
    }

    fn backend_rx_event(&self, kind: PacketKind) -> Option<Event> {
        Some(match kind {
            PacketKind::Handshake => Event::MYS_WAIT_AUTH,
            PacketKind::Err => Event::MYS_RECV_ERR,
            PacketKind::AuthSwitch => Event::MYS_AUTH_SWITCH,
            PacketKind::AuthMoreData => Event::MYS_AUTH_MORE_DATA,
            PacketKind::Progress => Event::MYS_PROGRESS,
            _ if self.response_done => Event::MYS_WAIT_CMD,
            PacketKind::Ok | PacketKind::Eof if self.in_phase(RPhase::First) => {
                Event::MYS_MORE_RESULTS
            }
            PacketKind::PrepareOk => Event::MYS_SENT_PREPARE_OK,
            PacketKind::ParamDef => Event::MYS_SENDING_PARAMS,
            PacketKind::ParamsEof => Event::MYS_SENT_PARAMS,
            PacketKind::InfileRequest => Event::MYS_INFILE_REQUEST,
            PacketKind::ResultSetHeader => Event::MYS_SENT_RSET,
            PacketKind::ColumnDef => Event::MYS_SENDING_FIELDS,
            PacketKind::Eof if self.in_phase(RPhase::Rows) => Event::MYS_SENT_FIELDS,
            PacketKind::Row => Event::MYS_SENDING_ROWS,
            _ => return None,
        })
    }

    fn in_phase(&self, phase: RPhase) -> bool {
        self.pending.front().is_some_and(|h| h.phase == phase)
    }

    fn client_tx_event(&self, kind: PacketKind) -> Option<Event> {
        match kind {
            PacketKind::Handshake => Some(Event::MYC_WAIT_AUTH),
            PacketKind::Continuation | PacketKind::Other if self.phase == Phase::Tunnel => None,
            _ if self.phase == Phase::Ready || self.phase == Phase::Authenticating => {
                Some(Event::MYC_WAITING)
            }
            _ => None,
        }
    }
}

fn info(kind: PacketKind, event: Option<Event>, continued: bool) -> FrameInfo {
    FrameInfo {
        kind,
        event,
        continued,
        starts_tunnel: false,
    }
}

fn client_rx_event(kind: PacketKind) -> Option<Event> {
    match kind {
        PacketKind::HandshakeResponse => Some(Event::MYC_WAITING),
        PacketKind::Command(_) => Some(Event::MYC_SENT_CMD),
        PacketKind::AuthData => Some(Event::MYC_AUTH_DATA),
        PacketKind::InfileData => Some(Event::MYC_INFILE_DATA),
        _ => None,
    }
}

fn backend_tx_event(kind: PacketKind) -> Option<Event> {
    match kind {
        PacketKind::HandshakeResponse => Some(Event::MYS_SENDING_OK),
        PacketKind::Command(_) => Some(Event::MYS_GOT_CMD),
        _ => None,
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

#[cfg(test)]
mod tests;
