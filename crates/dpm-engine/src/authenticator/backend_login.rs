//! dpm logging in to a server on behalf of a client it authenticated itself: the
//! server's greeting is read first (its version and capabilities become the client's
//! greeting), then — once the client is in — dpm answers it with the client's
//! capabilities, collation, schema and connection attributes but the account mapped for
//! the server, over TLS when the server has TLS settings. The server's OK (status
//! flags, session-tracking data) is what the client gets as its own.

use std::rc::Rc;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use dpm_protocol::caps::{CLIENT_COMPRESS, CLIENT_SSL, CLIENT_ZSTD_COMPRESSION_ALGORITHM};
use dpm_protocol::{is_err_packet, ErrPacket, HandshakeResponse41, HandshakeV10};

use super::users::BackendCredentials;
use crate::client::login::{follow_auth, plugin_token, speaks};
use crate::client::wire::PacketStream;
use crate::client::ClientError;
use crate::conn::Conn;
use crate::service::Server;
use crate::tls::TlsRole;
use crate::transport::Transport;
use crate::worker::Worker;

/// Why a login stopped before it started: the server's greeting has no `CLIENT_SSL`.
pub(crate) const NO_TLS_OFFERED: &str = "the server does not offer TLS, which dpm must use with it";

/// Reads the server's greeting; a server that refuses at once (too many connections,
/// host blocked) answers with an ERR instead, returned as the error's text.
pub(crate) async fn read_greeting(
    stream: &mut PacketStream<&Transport>,
) -> Result<HandshakeV10, String> {
    let packet = stream.read().await.map_err(|e| e.to_string())?;
    if is_err_packet(&packet.payload) {
        return Err(match ErrPacket::decode(&packet.payload) {
            Ok(err) => format!(
                "the server refused the connection: {}",
                String::from_utf8_lossy(&err.message)
            ),
            Err(e) => format!("bad ERR packet: {e}"),
        });
    }
    HandshakeV10::decode(&packet.payload).map_err(|e| format!("bad greeting: {e}"))
}

/// Logs in to the server that sent `greeting`, for a client that asked for `client`,
/// with `credentials`. Returns the server's OK payload.
pub(crate) async fn log_in(
    stream: &mut PacketStream<&Transport>,
    greeting: &HandshakeV10,
    client: &HandshakeResponse41,
    credentials: &BackendCredentials,
    tls: Option<&TlsRole>,
) -> Result<Bytes, ClientError> {
    let tls_to_server = matches!(tls, Some(TlsRole::Connect { .. }));
    let capabilities = capabilities(greeting, client, tls_to_server);
    if let Some(TlsRole::Connect { tls, host }) = tls {
        if greeting.capabilities & CLIENT_SSL == 0 {
            return Err(ClientError::Protocol(NO_TLS_OFFERED.into()));
        }
        let request = HandshakeResponse41 {
            capabilities,
            max_packet_size: client.max_packet_size,
            character_set: client.character_set,
            ..Default::default()
        };
        let mut payload = BytesMut::new();
        request.ssl_request().encode(&mut payload);
        stream.write(&payload).await?;
        let connection = tls
            .connect(host)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        stream.transport().start_tls(connection, &[], Vec::new())?;
    }
    // Like libmysqlclient: start with the plugin the server announced when dpm speaks
    // it (an account on another one gets an auth switch).
    let plugin = greeting
        .auth_plugin_name
        .as_deref()
        .filter(|p| speaks(p))
        .unwrap_or(dpm_protocol::auth::MYSQL_NATIVE_PASSWORD)
        .to_vec();
    let password = credentials.password.expose();
    let response = HandshakeResponse41 {
        capabilities,
        max_packet_size: client.max_packet_size,
        character_set: client.character_set,
        username: Bytes::copy_from_slice(credentials.user.as_bytes()),
        auth_response: plugin_token(&plugin, password, greeting.nonce())?,
        database: client.database.clone(),
        auth_plugin_name: Some(Bytes::from(plugin.clone())),
        connect_attrs: client.connect_attrs.clone(),
        zstd_compression_level: None,
    };
    let mut payload = BytesMut::new();
    response.encode(&mut payload);
    stream.write(&payload).await?;
    follow_auth(stream, password, &plugin).await
}

/// The capabilities dpm logs in to the server with: what the client asked for and the
/// server offers, without compression (dpm does not terminate it), with `CLIENT_SSL`
/// exactly when dpm uses TLS with the server.
pub(crate) fn capabilities(
    greeting: &HandshakeV10,
    client: &HandshakeResponse41,
    tls_to_server: bool,
) -> u64 {
    let caps = client.capabilities
        & greeting.capabilities
        & !(CLIENT_COMPRESS | CLIENT_ZSTD_COMPRESSION_ALGORITHM | CLIENT_SSL);
    if tls_to_server {
        caps | CLIENT_SSL
    } else {
        caps
    }
}

/// True when dpm uses TLS with the server `backend` is connected to.
pub(crate) fn is_tls_to_server(backend: &Conn) -> bool {
    matches!(backend.tls.get(), Some(TlsRole::Connect { .. }))
}

/// Why a fresh backend for a session could not be had.
pub(crate) enum OpenError {
    /// The server could not be reached.
    Connect(std::io::Error),
    /// It was reached but the login failed (or timed out).
    Login(ClientError),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Connect(e) => write!(f, "{}", crate::error::describe_os_error(e)),
            OpenError::Login(e) => write!(f, "{e}"),
        }
    }
}

/// A server connection logged in on a client's behalf, its reader not started.
pub(crate) struct LoggedIn {
    /// The connection; its tracker is in the command phase.
    pub backend: Rc<Conn>,
    /// The server's greeting.
    pub greeting: HandshakeV10,
    /// The server's OK to the login.
    pub ok: Bytes,
    /// What the server sent after its OK (for the reader, or whoever reads next).
    pub unread: BytesMut,
}

/// Opens a connection to `server` and logs in with `credentials` for the client whose
/// login was `client` (its capabilities, collation, schema and attributes), all within
/// the connect timeout. On failure the connection is closed again.
pub(crate) async fn open_logged_in(
    worker: &Worker,
    server: &Arc<Server>,
    client: &HandshakeResponse41,
    credentials: &BackendCredentials,
) -> Result<LoggedIn, OpenError> {
    let timeout = worker.inner.config.connect_timeout;
    let backend = crate::service::start::connect(worker, server, timeout, false)
        .await
        .map_err(OpenError::Connect)?;
    let Some(transport) = backend.transport.get() else {
        worker.close(backend.id);
        return Err(OpenError::Login(ClientError::Protocol("closed".into())));
    };
    let mut stream = PacketStream::new(transport);
    let logged_in = tokio::time::timeout(timeout, async {
        let greeting = read_greeting(&mut stream)
            .await
            .map_err(ClientError::Protocol)?;
        let ok = log_in(
            &mut stream,
            &greeting,
            client,
            credentials,
            backend.tls.get(),
        )
        .await?;
        Ok::<_, ClientError>((greeting, ok))
    })
    .await
    .unwrap_or(Err(ClientError::Timeout));
    match logged_in {
        Ok((greeting, ok)) => {
            let caps = capabilities(&greeting, client, is_tls_to_server(&backend));
            backend
                .tracker
                .borrow_mut()
                .logged_in(greeting.capabilities, caps);
            let unread = stream.take_unread();
            Ok(LoggedIn {
                backend,
                greeting,
                ok,
                unread,
            })
        }
        Err(e) => {
            worker.close(backend.id);
            Err(OpenError::Login(e))
        }
    }
}
