//! The per-connection protocol tracker: follows where one connection is in the MySQL
//! conversation by looking at packet headers and a few leading bytes only, assigns the
//! sequence id of every packet written to the connection, and names the protocol
//! [`Event`] each packet raises.
//!
//! Both kinds of connection run the same tracker. A *backend* connection receives
//! server packets and is sent client packets; a *client* connection receives client
//! packets and is sent server packets. Each side therefore sees the whole exchange,
//! whether its packets were forwarded from a partner or written by a script.
//!
//! It works on frames (one 4-byte header each): a frame of 0xFFFFFF payload bytes is
//! continued by the next frame in the same direction, and only a packet's first frame
//! is looked at. It never allocates except for the queue of pipelined commands.
//!
//! This module owns the public types and the framing (which frame starts a packet, the
//! size limit, tunnels) and orchestrates three parts that must stay apart: `grammar`
//! (which packet comes next; its verdict on a packet is a `grammar::Step`), `sequence`
//! (the ids of written frames) and `events` (the event a packet raises, from the
//! `Step` alone). It must not classify packets, compute ids or name events itself.

use dpm_protocol::frame::MAX_PAYLOAD_LEN;

use crate::event::Event;

mod events;
mod grammar;
mod sequence;

use grammar::{Grammar, Step};
use sequence::Sequence;

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
    /// The protocol event this packet raises, if any.
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
    grammar: Grammar,
    seq: Sequence,
    /// Next frame from the server / from the client continues a packet.
    server_continues: bool,
    client_continues: bool,
    /// Bytes of the logical packet being received so far (for the size limit).
    rx_packet_len: usize,
    max_packet: usize,
}

impl Tracker {
    /// A tracker for a fresh connection; `max_packet` bounds received logical packets.
    pub fn new(side: Side, max_packet: usize) -> Tracker {
        Tracker {
            side,
            grammar: Grammar::new(),
            seq: Sequence::default(),
            server_continues: false,
            client_continues: false,
            rx_packet_len: 0,
            max_packet,
        }
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.grammar.phase()
    }

    /// Capabilities both sides agreed on (0 before the login was seen).
    pub fn negotiated_caps(&self) -> u64 {
        self.grammar.negotiated_caps()
    }

    /// True while the conversation is opaque (TLS or compressed).
    pub fn is_tunnel(&self) -> bool {
        self.phase() == Phase::Tunnel
    }

    /// True when the connection waits for the server greeting (nothing sent to a client yet).
    pub fn awaiting_handshake(&self) -> bool {
        self.phase() == Phase::AwaitHandshake
    }

    /// True when no command is awaiting a response.
    pub fn is_idle(&self) -> bool {
        self.grammar.is_idle()
    }

    /// Commands awaiting (the rest of) their response, the one being answered included.
    pub fn pending_commands(&self) -> usize {
        self.grammar.pending_commands()
    }

    /// Commands received in the Ready phase so far (wrapping): a change means activity.
    pub fn commands_received(&self) -> u32 {
        self.grammar.commands_received()
    }

    /// True when a response to the oldest pending command has started being written
    /// to this (client) connection: a packet written now would land inside it.
    pub fn response_started(&self) -> bool {
        self.grammar.head_started()
    }

    /// How an EOF written to this connection now must be encoded (for packets a
    /// script builds: the original always wrote classic EOFs, which clients that
    /// negotiated CLIENT_DEPRECATE_EOF reject).
    /// An `Omit` answer counts as the omitted EOF: the next EOF is the real one.
    pub fn take_eof_style(&mut self) -> EofStyle {
        self.grammar.take_eof_style()
    }

    /// Switches to opaque mode (the partner negotiated TLS or compression).
    pub fn enter_tunnel(&mut self) {
        self.grammar.enter_tunnel();
    }

    /// TLS is terminated by dpm on this connection: the SSLRequest just received (or
    /// sent) did not turn the conversation opaque; the login goes on in plaintext
    /// inside TLS.
    pub fn resume_after_tls(&mut self) {
        self.grammar.resume_login();
    }

    /// dpm ran the whole login itself (proxy-held users): the connection starts in the
    /// command phase with the capabilities the server offered and the client asked for.
    pub fn logged_in(&mut self, server_caps: u64, client_caps: u64) {
        self.grammar.logged_in(server_caps, client_caps);
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
        if self.is_tunnel() {
            return Ok(info(PacketKind::Other, None, continued));
        }
        if continuing {
            self.seq
                .received_continuation(seq, self.grammar.last_reply());
            return Ok(info(PacketKind::Continuation, None, continued));
        }
        let (step, event) = match self.side {
            Side::Backend => {
                let step = self.grammar.server_packet(payload);
                self.seq.received_server_packet(seq);
                (step, events::backend_received(&step))
            }
            Side::Client => {
                let step = self.grammar.client_packet(payload)?;
                self.seq
                    .received_client_packet(seq, &step, self.grammar.last_reply());
                (step, events::client_received(&step))
            }
        };
        Ok(frame_info(&step, event, continued))
    }

    /// Accounts for a frame about to be written to this connection; returns the sequence
    /// id to put in its header and what the frame is.
    pub fn on_send(&mut self, payload: &[u8]) -> (u8, FrameInfo) {
        let continued = payload.len() == MAX_PAYLOAD_LEN;
        if self.is_tunnel() {
            return (self.seq.next(), info(PacketKind::Other, None, continued));
        }
        let continuing = match self.side {
            Side::Client => std::mem::replace(&mut self.server_continues, continued),
            Side::Backend => std::mem::replace(&mut self.client_continues, continued),
        };
        if continuing {
            return (
                self.seq.next(),
                info(PacketKind::Continuation, None, continued),
            );
        }
        let (step, event) = match self.side {
            Side::Backend => {
                // Client packets sent to a server.
                let step = self
                    .grammar
                    .client_packet(payload)
                    .unwrap_or_else(|_| self.grammar.step(PacketKind::Unsolicited));
                self.seq.sending_client_packet(&step);
                (step, events::backend_sent(&step))
            }
            Side::Client => {
                // Server packets sent to a client.
                self.seq.sending_server_packet(self.grammar.head_reply());
                let step = self.grammar.server_packet(payload);
                (step, events::client_sent(&step))
            }
        };
        (self.seq.next(), frame_info(&step, event, continued))
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

/// The verdict on the first frame of a packet.
fn frame_info(step: &Step, event: Option<Event>, continued: bool) -> FrameInfo {
    FrameInfo {
        starts_tunnel: step.phase == Phase::Tunnel,
        ..info(step.kind, event, continued)
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod test_packets;
#[cfg(test)]
mod tests;
