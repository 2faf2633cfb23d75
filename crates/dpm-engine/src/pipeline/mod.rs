//! The pipeline a service session's traffic flows through:
//!
//! ```text
//! client ─▶ DPM callbacks ─▶ filter 1 … filter N ─▶ router ─▶ backend
//! client ◀─ DPM callbacks ◀─ filter 1 … filter N ◀─ router ◀─ backend
//! ```
//!
//! Stage 0 is the connection's DPM callbacks (the `EventSink`), which see every packet
//! they registered for and may drop it. Then each filter that asked for requests sees a
//! whole client command ([`Request`]) and answers with an [`Action`]; the router sends
//! what is left to a backend. Replies flow back: each filter that asked for replies sees
//! a [`Reply`] when a response is complete, in reverse order (upstream), right after the
//! response's last packet was queued to the client (before it, when a DPM callback must
//! see that packet first).
//!
//! Nothing here is entered for a session whose chain asked for nothing: [`Interest`] is
//! the union of the chain's wishes, and the forwarding loop stops only where it says.

mod chain;
pub mod expr;
mod types;

pub(crate) use chain::{
    ask_router, await_earlier_responses, note_reply_packet, note_request_sent, reply_dropped,
    route_again, run_reply, run_request, wanted, write_error, write_ok, LOST_BACKEND,
    MAX_ROUTE_WAIT, ROUTE_WAIT_STEP,
};
pub use chain::{Pipeline, ReplyEnd};
pub use types::{
    sql_of, Action, Decision, Filter, FilterSession, Interest, Reply, ReplyKind, ReplyPacket,
    Request, Route, RouteContext, Router, RouterSession, SessionRef, Step, TrxStep,
};
