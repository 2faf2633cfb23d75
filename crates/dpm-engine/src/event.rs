//! Protocol events: the DPM state numbers a script registers callbacks on, and the
//! per-connection bitmask that tells the engine which of them have a callback.
//!
//! The numbering is the original DPM's (reference §4.2) so scripts written for it keep
//! working; a callback fires for the state a connection reaches *after* a packet was
//! received or sent.

use std::fmt;

/// A protocol state / callback event, numbered as in the original DPM.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Event(pub u8);

macro_rules! events {
    ($($name:ident = $val:expr, $text:expr;)*) => {
        impl Event {
            $(
                #[doc = concat!("`", stringify!($name), "` (", stringify!($val), "): ", $text, ".")]
                pub const $name: Event = Event($val);
            )*
            /// Every named event, in numeric order, with its Lua constant name.
            pub const ALL: &'static [(&'static str, Event)] = &[$((stringify!($name), Event::$name)),*];

            /// The human-readable internal name used in log lines (e.g. `Client connect`).
            pub fn label(self) -> &'static str {
                match self.0 {
                    $($val => $text,)*
                    _ => "Unknown state",
                }
            }
        }
    };
}

events! {
    MYS_CONNECT = 0, "Server connect";
    MYC_CONNECT = 1, "Client connect";
    MYS_SENT_HANDSHAKE = 2, "Server sent handshake";
    MYC_WAIT_HANDSHAKE = 3, "Client wait handshake";
    MYC_WAITING = 4, "Client waiting";
    MYS_WAITING = 5, "Server waiting";
    MYC_SENT_CMD = 6, "Client sent command";
    MYS_SENDING_FIELDS = 7, "Server sending fields";
    MYS_SENDING_ROWS = 8, "Server sending rows";
    MYS_WAIT_AUTH = 9, "Server waiting auth";
    MYS_SENDING_OK = 10, "Server sending OK";
    MYS_WAIT_CMD = 11, "Server waiting command";
    MYS_SENDING_RSET = 12, "Server sending resultset";
    MYC_WAIT_AUTH = 13, "Client waiting auth";
    MYS_SENDING_HANDSHAKE = 14, "Server sending handshake";
    MYS_RECV_ERR = 15, "Server got error";
    MY_CLOSING = 16, "Closing";
    MYS_SENDING_STATS = 17, "Server sending stats";
    MYS_GOT_CMD = 18, "Server got command";
    MYS_SENDING_EOF = 19, "Server sending eof";
    MYS_SENT_RSET = 20, "Server sent resultset";
    MYS_SENT_FIELDS = 21, "Server sent fields";
    MYS_AUTH_SWITCH = 22, "Server sent auth switch";
    MYS_AUTH_MORE_DATA = 23, "Server sent auth more data";
    MYC_AUTH_DATA = 24, "Client sent auth data";
    MYS_SENT_PREPARE_OK = 25, "Server sent prepare OK";
    MYS_SENDING_PARAMS = 26, "Server sending params";
    MYS_SENT_PARAMS = 27, "Server sent params";
    MYS_INFILE_REQUEST = 28, "Server requested local infile";
    MYC_INFILE_DATA = 29, "Client sent infile data";
    MYS_MORE_RESULTS = 30, "Server sent more results";
    MYS_PROGRESS = 31, "Server sent progress report";
}

impl Event {
    /// Number of callback slots per connection; registering a state at or above this is an error.
    pub const SLOTS: u8 = 64;

    /// This event's bit in an [`EventMask`].
    #[inline]
    pub const fn bit(self) -> u64 {
        1u64 << self.0
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
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

    /// True if some callback fires per packet (anything but connect and close).
    #[inline]
    pub const fn has_packet_events(self) -> bool {
        self.0 & !(Event::MYC_CONNECT.bit() | Event::MY_CLOSING.bit()) != 0
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
    fn numbering_matches_the_original() {
        assert_eq!(Event::MYC_CONNECT.0, 1);
        assert_eq!(Event::MY_CLOSING.0, 16);
        assert_eq!(Event::MYS_SENT_FIELDS.0, 21);
        assert_eq!(Event::MY_CLOSING.label(), "Closing");
        assert_eq!(Event::ALL.len(), 32);
        assert_eq!(Event::MYS_PROGRESS.0, 31);
    }

    #[test]
    fn verdict_codes() {
        assert_eq!(Verdict::from_code(None), Verdict::Forward);
        assert_eq!(Verdict::from_code(Some(1)), Verdict::Drop);
        assert_eq!(Verdict::from_code(Some(2)), Verdict::ForwardThenUnlink);
        assert_eq!(Verdict::from_code(Some(7)), Verdict::Drop);
    }
}
