//! What can go wrong on a connection, with the error code a user sees: the server's own
//! code for an ERR packet, the client library's `CR_*` codes (as libmariadb numbers them)
//! for everything on this side, so that `--ignore-errors` lists them as sysbench does.

/// `CR_CONN_HOST_ERROR`: the connect failed.
pub const CR_CONN_HOST_ERROR: u16 = 2003;
/// `CR_SERVER_LOST`: the connection broke (reset, closed, an I/O error).
pub const CR_SERVER_LOST: u16 = 2013;
/// `CR_MALFORMED_PACKET`: the server sent something this client cannot read.
pub const CR_MALFORMED_PACKET: u16 = 2027;
/// `CR_AUTH_PLUGIN_CANNOT_LOAD`: a login plugin this client does not speak.
pub const CR_AUTH_PLUGIN_CANNOT_LOAD: u16 = 2059;

/// An error of one command or login.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an ERR packet.
    #[error("error {code} ({}): {message}", String::from_utf8_lossy(sqlstate))]
    Server {
        /// The server's error code.
        code: u16,
        /// SQLSTATE.
        sqlstate: [u8; 5],
        /// The server's message.
        message: String,
    },
    /// The TCP connect failed.
    #[error("error 2003: cannot connect to {target}: {source}")]
    Connect {
        /// `host:port`.
        target: String,
        /// Why.
        source: std::io::Error,
    },
    /// The connection broke.
    #[error("error 2013: lost connection to the server: {0}")]
    Lost(String),
    /// The server sent what this client cannot read.
    #[error("error 2027: {0}")]
    Protocol(String),
    /// Login needs something this client does not do.
    #[error("error 2059: {0}")]
    Unsupported(String),
    /// A packet hook (Lua) failed: `FILE:LINE: message`. Always fatal.
    #[error("{0}")]
    Hook(String),
}

impl ClientError {
    /// The error code `--ignore-errors` matches.
    pub fn code(&self) -> u16 {
        match self {
            ClientError::Server { code, .. } => *code,
            ClientError::Connect { .. } => CR_CONN_HOST_ERROR,
            ClientError::Lost(_) => CR_SERVER_LOST,
            ClientError::Protocol(_) => CR_MALFORMED_PACKET,
            ClientError::Unsupported(_) => CR_AUTH_PLUGIN_CANNOT_LOAD,
            ClientError::Hook(_) => 0,
        }
    }

    /// True when the connection cannot go on (everything but a server's ERR).
    pub fn breaks_connection(&self) -> bool {
        !matches!(self, ClientError::Server { .. })
    }

    pub(crate) fn decode(what: &str, e: dpm_protocol::ProtocolError) -> ClientError {
        ClientError::Protocol(format!("{what}: {e}"))
    }
}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        ClientError::Lost(e.to_string())
    }
}
