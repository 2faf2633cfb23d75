//! The proxy's own MySQL client: connections dpm opens to a backend with configured
//! credentials, outside any client session (mirroring statements to a second service,
//! monitoring a server with `SHOW SLAVE STATUS`, ...).
//!
//! [`BackendClient::connect`] logs in (`login.rs`), then [`BackendClient::command`] sends
//! one command and reads its complete response (`response.rs`), over the engine's one
//! socket type, `Transport` (via `wire.rs`). It is deliberately small:
//! text protocol only, `mysql_native_password` only, no TLS, no compression, one command
//! at a time. It is not `Send`: it lives on the worker thread that made it (a
//! current-thread runtime under a `LocalSet`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), dpm_engine::client::ClientError> {
//! use dpm_engine::client::{BackendClient, ClientOptions, Response};
//! use dpm_engine::service::ServerAddress;
//! let opts = ClientOptions {
//!     address: ServerAddress::Tcp("127.0.0.1".into(), 3306),
//!     user: "monitor".into(),
//!     password: "secret".into(),
//!     schema: None,
//!     connect_timeout: std::time::Duration::from_secs(3),
//! };
//! let mut client = BackendClient::connect(&opts).await?;
//! if let Response::Rows(sets) = client.query("SHOW SLAVE STATUS").await? {
//!     println!("{} rows", sets[0].rows.len());
//! }
//! # Ok(()) }
//! ```

mod error;
pub(crate) mod login;
pub(crate) mod response;
pub(crate) mod wire;

use std::time::Duration;

use bytes::Bytes;
use dpm_protocol::{com, response_shape, ResponseShape};

pub use error::ClientError;

use crate::connector::{connect, Target};
use crate::service::ServerAddress;
use response::{read_response, ResponseReader};
use wire::PacketStream;

/// Where and as whom to log in.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// The server.
    pub address: ServerAddress,
    /// Login user.
    pub user: String,
    /// Password (`mysql_native_password`); empty for none.
    pub password: String,
    /// Schema to select at login.
    pub schema: Option<String>,
    /// Bound on the whole connect and login.
    pub connect_timeout: Duration,
}

/// A command's complete response (all results of a multi-result response, folded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// An OK (the last one, when several results were all OKs; a bare EOF, which
    /// `COM_SET_OPTION` answers, is shown as an OK too).
    Ok {
        /// Rows changed.
        affected_rows: u64,
        /// `LAST_INSERT_ID()` after the statement.
        last_insert_id: u64,
        /// Server status flags.
        status: u16,
        /// Warning count.
        warnings: u16,
        /// The server's human-readable info (`Rows matched: ...`), possibly empty.
        info: Bytes,
    },
    /// An ERR. It wins over everything else in the response: results that came before it
    /// (of earlier statements or result sets) are dropped.
    Err {
        /// Error code (e.g. 1064 for a syntax error).
        code: u16,
        /// SQL state (`HY000` when the server sent none).
        sqlstate: [u8; 5],
        /// Message.
        message: String,
    },
    /// At least one result set; OKs between or after them (a `CALL`'s final OK) are not kept.
    Rows(Vec<ResultSet>),
}

/// One text-protocol result set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResultSet {
    /// Column names (the `AS` names), lossily decoded as UTF-8.
    pub columns: Vec<String>,
    /// Rows; `None` is SQL NULL. Values are the server's text, zero-copy slices of the packets.
    pub rows: Vec<Vec<Option<Bytes>>>,
    /// Status flags of the EOF that ended it.
    pub status: u16,
}

/// A response in short, read without keeping rows (see [`BackendClient::command_discard`]);
/// folded like [`Response`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResponseSummary {
    /// An OK (the last one).
    Ok {
        /// Rows changed.
        affected_rows: u64,
        /// Warning count.
        warnings: u16,
    },
    /// An ERR.
    Err {
        /// Error code.
        code: u16,
        /// SQL state.
        sqlstate: [u8; 5],
        /// Message.
        message: String,
    },
    /// Result sets.
    Rows {
        /// How many.
        result_sets: u32,
        /// Rows in all of them.
        rows: u64,
    },
}

/// One logged-in connection to a server.
///
/// Commands run one at a time (`&mut self`). If a command fails with an I/O or protocol
/// error, or its future is dropped before the response was read (a caller's timeout),
/// the connection is out of step with the server: every later command returns
/// [`ClientError::Closed`], and the caller should drop it and connect again.
pub struct BackendClient {
    stream: PacketStream,
    server_version: String,
    connection_id: u32,
    capabilities: u64,
    /// Set while a command is in flight, and left set if it did not finish.
    broken: bool,
}

impl BackendClient {
    /// Connects (TCP with TCP_NODELAY, or a unix socket) and logs in, all within
    /// `opts.connect_timeout`.
    pub async fn connect(opts: &ClientOptions) -> Result<BackendClient, ClientError> {
        let attempt = async {
            let transport = connect(&Target::from(&opts.address), None).await?;
            let mut stream = PacketStream::new(transport);
            let session = login::login(&mut stream, opts).await?;
            Ok(BackendClient {
                stream,
                server_version: session.server_version,
                connection_id: session.connection_id,
                capabilities: session.capabilities,
                broken: false,
            })
        };
        tokio::time::timeout(opts.connect_timeout, attempt)
            .await
            .unwrap_or(Err(ClientError::Timeout))
    }

    /// Sends one command (`payload` starts with the command byte: `0x03` + SQL for
    /// `COM_QUERY`, `0x02` + name for `COM_INIT_DB`, `0x0e` for `COM_PING`, ...) and reads
    /// its complete response, every result of a multi-result response included.
    ///
    /// Only commands answered with OK, ERR or text result sets are accepted; others
    /// (prepared statements, `COM_FIELD_LIST`, `COM_STATISTICS`, `COM_QUIT`,
    /// `COM_CHANGE_USER`, binlog dumps) are refused with [`ClientError::Protocol`]
    /// before anything is sent.
    pub async fn command(&mut self, payload: &[u8]) -> Result<Response, ClientError> {
        let mut reader = ResponseReader::new(self.capabilities, true);
        self.exchange(payload, &mut reader).await?;
        Ok(reader.into_response())
    }

    /// Like [`command`](Self::command), but rows are only counted, never decoded or kept:
    /// no allocation per row or column (for mirroring, where only the outcome matters).
    pub async fn command_discard(
        &mut self,
        payload: &[u8],
    ) -> Result<ResponseSummary, ClientError> {
        let mut reader = ResponseReader::new(self.capabilities, false);
        self.exchange(payload, &mut reader).await?;
        Ok(reader.into_summary())
    }

    /// Runs `sql` with `COM_QUERY`.
    pub async fn query(&mut self, sql: &str) -> Result<Response, ClientError> {
        let mut payload = Vec::with_capacity(1 + sql.len());
        payload.push(com::QUERY);
        payload.extend_from_slice(sql.as_bytes());
        self.command(&payload).await
    }

    /// The server's version string from its handshake (e.g. `5.5.5-10.11.6-MariaDB`).
    pub fn server_version(&self) -> &str {
        &self.server_version
    }

    /// The server's id for this connection (`CONNECTION_ID()`).
    pub fn connection_id(&self) -> u32 {
        self.connection_id
    }

    async fn exchange(
        &mut self,
        payload: &[u8],
        reader: &mut ResponseReader,
    ) -> Result<(), ClientError> {
        check_command(payload)?;
        if self.broken {
            return Err(ClientError::Closed);
        }
        // Cleared only once the whole response is read: an error or a dropped future
        // leaves it set (see the type's docs).
        self.broken = true;
        self.stream.reset_seq();
        self.stream.write(payload).await?;
        read_response(&mut self.stream, reader).await?;
        self.broken = false;
        Ok(())
    }
}

impl Drop for BackendClient {
    /// Says goodbye with `COM_QUIT` if the socket takes it at once, so the server ends the
    /// session cleanly instead of logging an aborted connection.
    fn drop(&mut self) {
        if !self.broken {
            self.stream.try_write_now(&[1, 0, 0, 0, com::QUIT]);
        }
    }
}

/// Refuses commands whose responses the reader does not follow.
fn check_command(payload: &[u8]) -> Result<(), ClientError> {
    let Some(&command) = payload.first() else {
        return Err(ClientError::Protocol("empty command".into()));
    };
    match (command, response_shape(command)) {
        (com::QUERY | com::PROCESS_INFO, _) | (_, ResponseShape::Simple) => Ok(()),
        _ => Err(ClientError::Protocol(format!(
            "{} is not supported by dpm's client",
            dpm_protocol::command_name(command)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_refuses_commands_it_cannot_read() {
        assert!(check_command(b"\x03SELECT 1").is_ok());
        assert!(check_command(b"\x0e").is_ok());
        assert!(check_command(b"\x02db").is_ok());
        for bad in [
            &b""[..],
            b"\x01",
            b"\x16SELECT 1",
            b"\x17\0\0\0\0",
            b"\x09",
            b"\x04t\0",
        ] {
            assert!(
                matches!(check_command(bad), Err(ClientError::Protocol(_))),
                "{bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn client_connect_refused_is_io() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let opts = ClientOptions {
            address: ServerAddress::Tcp("127.0.0.1".into(), port),
            user: "u".into(),
            password: String::new(),
            schema: None,
            connect_timeout: Duration::from_secs(5),
        };
        let e = BackendClient::connect(&opts).await.err().unwrap();
        assert!(matches!(e, ClientError::Io(_)), "{e}");
    }
}
