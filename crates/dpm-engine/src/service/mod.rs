//! Services: what a listener serves above raw DPM callbacks — a router, an ordered filter
//! chain and a set of servers — the servers themselves, the module declarations and
//! options they are made of, and how a service session gets its backend.

mod filters;
pub mod generations;
mod module;
mod monitoring;
mod options;
mod server;
#[allow(clippy::module_inception)]
mod service;
pub(crate) mod start;

pub use filters::{
    define_filter, filter_names, reload_filters, reopen_and_reload_all, reopen_logs,
    FilterDefinition,
};
pub use module::{Maturity, ModuleInfo, ModuleType, OptionKind, OptionSpec};
pub use monitoring::{
    define_monitor, monitors, raise_server_event, server_events, Monitor, ServerEvent,
    ServerEventKind,
};
pub use options::{OptionValue, Options};
pub use server::{AdminState, PoolSettings, Server, ServerAddress, ServerRole, RETRY_AFTER};
pub use service::{
    define_server, define_service, defined_service, find_service, servers, services, Service,
    WorkerService,
};
pub(crate) use start::start_session;
