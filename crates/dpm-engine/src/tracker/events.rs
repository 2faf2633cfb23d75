//! Event naming: which protocol [`Event`] a packet raises, from the side, the direction
//! and the grammar's [`Step`] for the packet.
//!
//! Pure functions of a `Step` only: they must not look at the tracker, the grammar's
//! state or sequence ids, and must not change anything. What an event means to a script
//! (the DPM state numbers) is the Lua layer's business, not this module's.

use super::grammar::Step;
use super::{PacketKind, Phase};
use crate::event::Event;

/// A backend connection received a server packet.
pub(super) fn backend_received(step: &Step) -> Option<Event> {
    Some(match step.kind {
        PacketKind::Handshake => Event::ServerGreeting,
        PacketKind::Err => Event::ServerError,
        PacketKind::AuthSwitch => Event::AuthSwitch,
        PacketKind::AuthMoreData => Event::AuthMoreData,
        PacketKind::Progress => Event::Progress,
        _ if step.response_done => Event::ResponseEnded,
        PacketKind::Ok | PacketKind::Eof if step.at_next_result => Event::MoreResults,
        PacketKind::PrepareOk => Event::PrepareOk,
        PacketKind::ParamDef => Event::ParamDefinition,
        PacketKind::ParamsEof => Event::ParamsEnded,
        PacketKind::InfileRequest => Event::InfileRequest,
        PacketKind::ResultSetHeader => Event::ResultSetHeader,
        PacketKind::ColumnDef => Event::ColumnDefinition,
        PacketKind::Eof if step.in_rows => Event::ColumnsEnded,
        PacketKind::Row => Event::Row,
        _ => return None,
    })
}

/// A backend connection is sent a client packet.
pub(super) fn backend_sent(step: &Step) -> Option<Event> {
    match step.kind {
        PacketKind::HandshakeResponse => Some(Event::BackendGotLogin),
        PacketKind::Command(_) => Some(Event::BackendGotCommand),
        _ => None,
    }
}

/// A client connection received a client packet.
pub(super) fn client_received(step: &Step) -> Option<Event> {
    match step.kind {
        PacketKind::HandshakeResponse => Some(Event::ClientSentLogin),
        PacketKind::Command(_) => Some(Event::ClientSentCommand),
        PacketKind::AuthData => Some(Event::ClientAuthData),
        PacketKind::InfileData => Some(Event::ClientInfileData),
        _ => None,
    }
}

/// A client connection is sent a server packet.
pub(super) fn client_sent(step: &Step) -> Option<Event> {
    match step.kind {
        PacketKind::Handshake => Some(Event::ClientGotGreeting),
        PacketKind::Continuation | PacketKind::Other if step.phase == Phase::Tunnel => None,
        _ if step.phase == Phase::Ready || step.phase == Phase::Authenticating => {
            Some(Event::ClientGotServerPacket)
        }
        _ => None,
    }
}
