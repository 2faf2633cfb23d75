//! DPM event naming: which event a connection reaches after a packet, from the side, the
//! direction and the grammar's [`Step`] for the packet.
//!
//! Pure functions of a `Step` only: they must not look at the tracker, the grammar's
//! state or sequence ids, and must not change anything, so that the naming can later move
//! out of the engine.

use super::grammar::Step;
use super::{PacketKind, Phase};
use crate::event::Event;

/// A backend connection received a server packet.
pub(super) fn backend_received(step: &Step) -> Option<Event> {
    Some(match step.kind {
        PacketKind::Handshake => Event::MYS_WAIT_AUTH,
        PacketKind::Err => Event::MYS_RECV_ERR,
        PacketKind::AuthSwitch => Event::MYS_AUTH_SWITCH,
        PacketKind::AuthMoreData => Event::MYS_AUTH_MORE_DATA,
        PacketKind::Progress => Event::MYS_PROGRESS,
        _ if step.response_done => Event::MYS_WAIT_CMD,
        PacketKind::Ok | PacketKind::Eof if step.at_next_result => Event::MYS_MORE_RESULTS,
        PacketKind::PrepareOk => Event::MYS_SENT_PREPARE_OK,
        PacketKind::ParamDef => Event::MYS_SENDING_PARAMS,
        PacketKind::ParamsEof => Event::MYS_SENT_PARAMS,
        PacketKind::InfileRequest => Event::MYS_INFILE_REQUEST,
        PacketKind::ResultSetHeader => Event::MYS_SENT_RSET,
        PacketKind::ColumnDef => Event::MYS_SENDING_FIELDS,
        PacketKind::Eof if step.in_rows => Event::MYS_SENT_FIELDS,
        PacketKind::Row => Event::MYS_SENDING_ROWS,
        _ => return None,
    })
}

/// A backend connection is sent a client packet.
pub(super) fn backend_sent(step: &Step) -> Option<Event> {
    match step.kind {
        PacketKind::HandshakeResponse => Some(Event::MYS_SENDING_OK),
        PacketKind::Command(_) => Some(Event::MYS_GOT_CMD),
        _ => None,
    }
}

/// A client connection received a client packet.
pub(super) fn client_received(step: &Step) -> Option<Event> {
    match step.kind {
        PacketKind::HandshakeResponse => Some(Event::MYC_WAITING),
        PacketKind::Command(_) => Some(Event::MYC_SENT_CMD),
        PacketKind::AuthData => Some(Event::MYC_AUTH_DATA),
        PacketKind::InfileData => Some(Event::MYC_INFILE_DATA),
        _ => None,
    }
}

/// A client connection is sent a server packet.
pub(super) fn client_sent(step: &Step) -> Option<Event> {
    match step.kind {
        PacketKind::Handshake => Some(Event::MYC_WAIT_AUTH),
        PacketKind::Continuation | PacketKind::Other if step.phase == Phase::Tunnel => None,
        _ if step.phase == Phase::Ready || step.phase == Phase::Authenticating => {
            Some(Event::MYC_WAITING)
        }
        _ => None,
    }
}
