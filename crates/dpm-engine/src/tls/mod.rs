//! TLS that dpm terminates, on either side and independently: towards clients (a
//! listener or service with a certificate) and towards servers (a backend with TLS
//! settings). The bytes are encrypted and decrypted in the transport
//! (`crate::transport`); this module owns the settings ([`settings`]) and the few login
//! packets dpm must change or answer so that each side negotiates its own TLS
//! (`login`).
//!
//! Without settings on either connection nothing here runs: a client and server that
//! negotiate TLS end to end get the opaque tunnel they always had.

mod login;
pub mod settings;

use std::sync::Arc;

pub(crate) use login::{
    deliver_login_packet, intercepts, offer_in_script_greeting, plain_but_required,
    refuse_if_insecure, report_failure, switch_client_to_tls, INSECURE_TRANSPORT,
};
pub use settings::{
    reload_all, ClientTls, ClientTlsOptions, MinVersion, ServerTls, ServerTlsOptions, TlsError,
};

/// The TLS a connection terminates.
#[derive(Debug, Clone)]
pub enum TlsRole {
    /// Offered to clients (a listener, and every client it accepted).
    Accept(Arc<ServerTls>),
    /// Used towards the server of a backend connection; `host` is the name connected to
    /// (the default name its certificate must carry).
    Connect { tls: Arc<ClientTls>, host: String },
}
