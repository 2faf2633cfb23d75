//! dpm's engine: the data plane of the proxy.
//!
//! It owns workers (one OS thread and one single-threaded runtime each), listeners,
//! client and backend connections, the per-connection protocol tracker that follows the
//! MySQL conversation and names its events, forwarding between linked connections, and
//! the dispatch of events to an [`EventSink`].
//!
//! It must not know about Lua or any scripting language: scripts reach it through the
//! [`Worker`] control API (listen, connect, link, wire, close) and hear from it through
//! the [`EventSink`] trait. It decodes packets only as far as the state machine needs
//! (headers and a few leading bytes); full decoding is `dpm-protocol`'s job, on demand.
//!
//! Central types: [`Worker`] (a thread's connections), [`Event`]/[`EventMask`] (the protocol
//! events a callback can hook), [`tracker::Tracker`] (where a connection is in the protocol),
//! [`start_workers`] (the threads), [`shared`] (the only state workers share: counters,
//! maps, ACLs and published gauges), [`client::BackendClient`] (the proxy's own logged-in
//! connections to a backend, outside any client session).

pub mod authenticator;
pub mod client;
mod conn;
mod connector;
pub mod control;
pub mod digests;
mod error;
mod event;
mod forward;
pub mod generation;
mod lifecycle;
mod listener;
pub mod log_context;
pub mod metrics;
pub mod pipeline;
mod runtime;
pub mod service;
pub mod session;
pub mod shared;
mod sink;
pub mod sockets;
pub mod statement_kind;
pub mod tls;
pub mod tracker;
mod transport;
mod worker;

pub use conn::{ListenerKind, Role};
pub use error::EngineError;
pub use event::{Event, EventMask, Verdict};
pub use lifecycle::{LifecycleConfig, ListenerTimeouts};
pub use runtime::{start_workers, Workers};
pub use sink::{EventSink, LocalBoxFuture, Packet};
pub use transport::peer_ip;
pub use worker::{ConnInfo, Worker, WorkerConfig};

/// A connection id: unique across the process, starting at 1.
pub type ConnId = u64;
