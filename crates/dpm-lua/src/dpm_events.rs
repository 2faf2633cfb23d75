//! The original DPM's state numbering (reference §4.2): the `dpm.MYC_*`, `dpm.MYS_*` and
//! `dpm.MY_CLOSING` constants scripts register callbacks on, the labels Lua error lines
//! name them by, and the two-way mapping to the engine's protocol [`Event`]s.
//!
//! The engine raises events in protocol terms; this module is the only place that knows
//! which DPM state each one is. Every engine event is exactly one state ([`State::of`]);
//! a state is zero or more events ([`State::events`]): some states the original defined
//! never fire (registering them works, the callback just never runs), and
//! `MYC_WAITING` is both a client's login arriving and any later server packet written
//! to the client.

use dpm_engine::{Event, EventMask};

/// A DPM state number, as a script passes it to `register` (`dpm.MYC_SENT_CMD` …).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct State(pub u8);

macro_rules! states {
    ($($name:ident = $val:expr, $text:expr;)*) => {
        impl State {
            $(
                #[doc = concat!("`", stringify!($name), "` (", stringify!($val), "): ", $text, ".")]
                pub const $name: State = State($val);
            )*
            /// Every named state, in numeric order, with its Lua constant name.
            pub const ALL: &'static [(&'static str, State)] = &[$((stringify!($name), State::$name)),*];

            /// The name used in log lines (`ERROR: running callback 'Client connect': …`).
            pub fn label(self) -> &'static str {
                match self.0 {
                    $($val => $text,)*
                    _ => "Unknown state",
                }
            }
        }
    };
}

states! {
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

impl State {
    /// Number of callback slots per connection; registering a state at or above this is an error.
    pub const SLOTS: u8 = 64;

    /// The DPM state of an engine event.
    pub const fn of(event: Event) -> State {
        match event {
            Event::ClientAccepted => State::MYC_CONNECT,
            Event::ServerGreeting => State::MYS_WAIT_AUTH,
            Event::ClientGotGreeting => State::MYC_WAIT_AUTH,
            Event::ClientSentLogin | Event::ClientGotServerPacket => State::MYC_WAITING,
            Event::BackendGotLogin => State::MYS_SENDING_OK,
            Event::AuthSwitch => State::MYS_AUTH_SWITCH,
            Event::AuthMoreData => State::MYS_AUTH_MORE_DATA,
            Event::ClientAuthData => State::MYC_AUTH_DATA,
            Event::ClientSentCommand => State::MYC_SENT_CMD,
            Event::BackendGotCommand => State::MYS_GOT_CMD,
            Event::ResultSetHeader => State::MYS_SENT_RSET,
            Event::ColumnDefinition => State::MYS_SENDING_FIELDS,
            Event::ColumnsEnded => State::MYS_SENT_FIELDS,
            Event::Row => State::MYS_SENDING_ROWS,
            Event::MoreResults => State::MYS_MORE_RESULTS,
            Event::ResponseEnded => State::MYS_WAIT_CMD,
            Event::ServerError => State::MYS_RECV_ERR,
            Event::PrepareOk => State::MYS_SENT_PREPARE_OK,
            Event::ParamDefinition => State::MYS_SENDING_PARAMS,
            Event::ParamsEnded => State::MYS_SENT_PARAMS,
            Event::InfileRequest => State::MYS_INFILE_REQUEST,
            Event::ClientInfileData => State::MYC_INFILE_DATA,
            Event::Progress => State::MYS_PROGRESS,
            Event::Closing => State::MY_CLOSING,
        }
    }

    /// The engine events that reach this state (none for states that never fire). Where
    /// there are several, the one raised by a received packet comes first.
    pub fn events(self) -> &'static [Event] {
        match self {
            State::MYC_CONNECT => &[Event::ClientAccepted],
            State::MYS_WAIT_AUTH => &[Event::ServerGreeting],
            State::MYC_WAIT_AUTH => &[Event::ClientGotGreeting],
            State::MYC_WAITING => &[Event::ClientSentLogin, Event::ClientGotServerPacket],
            State::MYS_SENDING_OK => &[Event::BackendGotLogin],
            State::MYS_AUTH_SWITCH => &[Event::AuthSwitch],
            State::MYS_AUTH_MORE_DATA => &[Event::AuthMoreData],
            State::MYC_AUTH_DATA => &[Event::ClientAuthData],
            State::MYC_SENT_CMD => &[Event::ClientSentCommand],
            State::MYS_GOT_CMD => &[Event::BackendGotCommand],
            State::MYS_SENT_RSET => &[Event::ResultSetHeader],
            State::MYS_SENDING_FIELDS => &[Event::ColumnDefinition],
            State::MYS_SENT_FIELDS => &[Event::ColumnsEnded],
            State::MYS_SENDING_ROWS => &[Event::Row],
            State::MYS_MORE_RESULTS => &[Event::MoreResults],
            State::MYS_WAIT_CMD => &[Event::ResponseEnded],
            State::MYS_RECV_ERR => &[Event::ServerError],
            State::MYS_SENT_PREPARE_OK => &[Event::PrepareOk],
            State::MYS_SENDING_PARAMS => &[Event::ParamDefinition],
            State::MYS_SENT_PARAMS => &[Event::ParamsEnded],
            State::MYS_INFILE_REQUEST => &[Event::InfileRequest],
            State::MYC_INFILE_DATA => &[Event::ClientInfileData],
            State::MYS_PROGRESS => &[Event::Progress],
            State::MY_CLOSING => &[Event::Closing],
            _ => &[],
        }
    }

    /// The engine's mask bits of this state's events.
    pub fn mask(self) -> EventMask {
        EventMask(self.events().iter().fold(0, |m, e| m | e.bit()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering_matches_the_original() {
        assert_eq!(State::MYC_CONNECT.0, 1);
        assert_eq!(State::MY_CLOSING.0, 16);
        assert_eq!(State::MYS_SENT_FIELDS.0, 21);
        assert_eq!(State::MY_CLOSING.label(), "Closing");
        assert_eq!(State::ALL.len(), 32);
        assert_eq!(State::MYS_PROGRESS.0, 31);
    }

    #[test]
    fn labels_name_the_states_as_in_log_lines() {
        assert_eq!(State::MYC_SENT_CMD.label(), "Client sent command");
        assert_eq!(State::MYC_CONNECT.label(), "Client connect");
        assert_eq!(State(40).label(), "Unknown state");
    }

    #[test]
    fn the_mapping_goes_both_ways() {
        for event in Event::ALL {
            assert!(
                State::of(event).events().contains(&event),
                "{event:?} -> {:?}",
                State::of(event)
            );
        }
        let mut covered = 0u64;
        for (name, state) in State::ALL {
            for &event in state.events() {
                assert_eq!(State::of(event), *state, "{name}");
                assert_eq!(covered & event.bit(), 0, "{event:?} in two states");
                covered |= event.bit();
            }
        }
        assert_eq!(covered.count_ones() as usize, Event::ALL.len());
        // States the engine never raises register fine and never fire.
        assert_eq!(State::MYS_CONNECT.mask(), EventMask(0));
        assert_eq!(State(63).mask(), EventMask(0));
        assert!(State::MYC_WAITING.mask().has(Event::ClientSentLogin));
        assert!(State::MYC_WAITING.mask().has(Event::ClientGotServerPacket));
    }
}
