//! Errors of the engine's control API (what a script can get wrong).

use crate::ConnId;

/// Why an engine operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Binding or configuring a listening socket failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// An address could not be parsed.
    #[error("invalid address '{0}'")]
    BadAddress(String),
    /// The connection does not exist or is closed.
    #[error("connection {0} is closed or unknown")]
    DeadConnection(ConnId),
    /// The connection is not of the kind the operation needs.
    #[error("connection {id} {problem}")]
    WrongKind {
        /// The connection.
        id: ConnId,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A setting contradicts one made before (another worker's startup file run).
    #[error("{0}")]
    Config(String),
}

/// An I/O error as client libraries print it in error 2003: `24 "Too many open files"`.
pub(crate) fn describe_os_error(error: &std::io::Error) -> String {
    match error.raw_os_error() {
        Some(code) => {
            let text = std::io::Error::from_raw_os_error(code).to_string();
            let text = text.split(" (os error").next().unwrap_or_default();
            format!("{code} \"{text}\"")
        }
        None => error.to_string(),
    }
}
