//! Protocol events: what just happened on a connection, in MySQL protocol terms, and the
//! per-connection bitmask that tells the engine which of them have a callback.
//!
//! The tracker raises an event after a packet was received on or written to a
//! connection (see `tracker::events`); the engine raises [`Event::ClientAccepted`] and
//! [`Event::Closing`] itself. Whoever programs the engine (the Lua layer) decides what an
//! event means to a script: dpm-lua maps these events to the original DPM's state
//! numbers. The engine knows nothing of that numbering.
//!
//! "Received" events carry the packet received; "got" events (`ClientGot…`,
//! `BackendGot…`) are raised after a packet was written to the connection.

/// One protocol event. Each variant is one bit of an [`EventMask`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[repr(u8)]
pub enum Event {
    /// A listener accepted a client (raised on the listener).
    ClientAccepted,
    /// A backend received the server's greeting (or the ERR a server sends instead of one).
    ServerGreeting,
    /// The server's greeting was written to a client.
    ClientGotGreeting,
    /// A client sent its login (the handshake response).
    ClientSentLogin,
    /// The client's login was written to a backend.
    BackendGotLogin,
    /// A server packet other than the greeting was written to a client (during
    /// authentication or after it).
    ClientGotServerPacket,
    /// A backend received an auth switch request (0xFE during authentication).
    AuthSwitch,
    /// A backend received auth-more-data (0x01 during authentication).
    AuthMoreData,
    /// A client sent further authentication data (auth switch response and the like).
    ClientAuthData,
    /// A client sent a command.
    ClientSentCommand,
    /// A client's command was written to a backend.
    BackendGotCommand,
    /// A backend received a result set header (the column count).
    ResultSetHeader,
    /// A backend received a column definition of a result set.
    ColumnDefinition,
    /// A backend received the EOF that ends a result set's column definitions.
    ColumnsEnded,
    /// A backend received a row of a result set.
    Row,
    /// A backend received the OK or EOF that ends one result of a multi-result
    /// response: another result follows.
    MoreResults,
    /// A backend received the last packet of a response (also the OK that ends
    /// authentication): the server waits for the next command.
    ResponseEnded,
    /// A backend received an ERR packet.
    ServerError,
    /// A backend received the OK of a `COM_STMT_PREPARE`.
    PrepareOk,
    /// A backend received a parameter definition of a prepared statement.
    ParamDefinition,
    /// A backend received the EOF that ends a prepared statement's parameter definitions.
    ParamsEnded,
    /// A backend received a LOCAL INFILE request (0xFB).
    InfileRequest,
    /// A client sent a packet of LOCAL INFILE data (or the empty packet ending it).
    ClientInfileData,
    /// A backend received a progress report (MariaDB).
    Progress,
    /// A connection is closing.
    Closing,
}

impl Event {
    /// Every event, in declaration (bit) order.
    pub const ALL: [Event; 25] = [
        Event::ClientAccepted,
        Event::ServerGreeting,
        Event::ClientGotGreeting,
        Event::ClientSentLogin,
        Event::BackendGotLogin,
        Event::ClientGotServerPacket,
        Event::AuthSwitch,
        Event::AuthMoreData,
        Event::ClientAuthData,
        Event::ClientSentCommand,
        Event::BackendGotCommand,
        Event::ResultSetHeader,
        Event::ColumnDefinition,
        Event::ColumnsEnded,
        Event::Row,
        Event::MoreResults,
        Event::ResponseEnded,
        Event::ServerError,
        Event::PrepareOk,
        Event::ParamDefinition,
        Event::ParamsEnded,
        Event::InfileRequest,
        Event::ClientInfileData,
        Event::Progress,
        Event::Closing,
    ];

    /// This event's bit in an [`EventMask`].
    #[inline]
    pub const fn bit(self) -> u64 {
        1u64 << self as u8
    }
}

/// Which events of one connection have a callback. Checking it costs one AND: an event
/// whose bit is clear never enters Lua and never decodes the packet.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct EventMask(pub u64);

impl EventMask {
    /// True if `event` has a callback.
    #[inline]
    pub const fn has(self, event: Event) -> bool {
        self.0 & event.bit() != 0
    }

    /// True if some callback fires per packet (anything but accept and close).
    #[inline]
    pub const fn has_packet_events(self) -> bool {
        self.0 & !(Event::ClientAccepted.bit() | Event::Closing.bit()) != 0
    }
}

/// What a callback for a received packet decided (reference §5.1).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Verdict {
    /// `DPM_OK` (0, also nil or any non-number): forward the packet to the linked partner.
    Forward,
    /// `DPM_NOPROXY` (1): swallow the packet.
    Drop,
    /// `DPM_FLUSH_DISCONNECT` (2): forward the packet, then unlink the pair.
    ForwardThenUnlink,
}

impl Verdict {
    /// Maps a numeric return code to a verdict; unknown numbers drop the packet, as in the original.
    pub fn from_code(code: Option<i64>) -> Verdict {
        match code {
            None | Some(0) => Verdict::Forward,
            Some(2) => Verdict::ForwardThenUnlink,
            Some(_) => Verdict::Drop,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_has_its_own_bit() {
        let mut seen = 0u64;
        for (i, event) in Event::ALL.into_iter().enumerate() {
            assert_eq!(
                event.bit(),
                1 << i,
                "{event:?} is out of order in Event::ALL"
            );
            seen |= event.bit();
        }
        assert_eq!(seen.count_ones() as usize, Event::ALL.len());
        let mask = EventMask(Event::Row.bit() | Event::Closing.bit());
        assert!(
            mask.has(Event::Row) && mask.has(Event::Closing) && !mask.has(Event::ResponseEnded)
        );
        assert!(mask.has_packet_events());
        assert!(!EventMask(Event::ClientAccepted.bit() | Event::Closing.bit()).has_packet_events());
    }

    #[test]
    fn verdict_codes() {
        assert_eq!(Verdict::from_code(None), Verdict::Forward);
        assert_eq!(Verdict::from_code(Some(1)), Verdict::Drop);
        assert_eq!(Verdict::from_code(Some(2)), Verdict::ForwardThenUnlink);
        assert_eq!(Verdict::from_code(Some(7)), Verdict::Drop);
    }
}
