//! Why a proxy-originated connection failed ([`ClientError`]): every message is written
//! to be shown in a log line as-is.

/// A failure of [`super::BackendClient`]. An ERR the server answers a command with is not
/// an error here (it is a [`super::Response::Err`]); these are failures of the connection
/// itself, after which it should be dropped (except [`ClientError::Auth`], which only
/// happens while connecting).
#[derive(thiserror::Error, Debug)]
pub enum ClientError {
    /// The socket failed (connect refused, reset, unreachable, ...).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Connecting and logging in took longer than the connect timeout.
    #[error("connect timed out (no login within the connect timeout)")]
    Timeout,
    /// The server refused the login: its ERR code and message, or code 0 when the client
    /// cannot do what the server asks (an authentication plugin it does not implement).
    #[error("{}", auth_text(*code, message))]
    Auth {
        /// The server's error code (1045 for a wrong password), or 0.
        code: u16,
        /// The server's SQLSTATE (`HY000` when it sent none, or for code 0).
        sql_state: [u8; 5],
        /// The server's message, or the client's explanation.
        message: String,
    },
    /// The server sent something the protocol does not allow here.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The server closed the connection, or a previous command on it was interrupted
    /// (its response was left half-read, so the connection cannot be used again).
    #[error("connection closed")]
    Closed,
}

fn auth_text(code: u16, message: &str) -> String {
    if code == 0 {
        format!("login failed: {message}")
    } else {
        format!("login refused: error {code}: {message}")
    }
}

impl ClientError {
    /// A protocol error from a `dpm-protocol` decoder, naming what was being read.
    pub(crate) fn decode(what: &str, error: dpm_protocol::ProtocolError) -> ClientError {
        ClientError::Protocol(format!("bad {what}: {error}"))
    }
}
