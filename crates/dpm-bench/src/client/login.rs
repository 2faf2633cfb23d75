//! Logging in: the server's greeting, the handshake response with the capabilities
//! sysbench's client library (libmariadb 3.3) asks for — so that the server does the
//! same work for both load generators — and the authentication exchange:
//! `mysql_native_password`, `caching_sha2_password` (fast path, and full authentication
//! with the server's RSA public key), `client_ed25519`, and auth switches between them.
//!
//! Capabilities: protocol 4.1, transactions, multi-statements and multi-results, plugin
//! auth, and MariaDB's `MARIADB_CLIENT_CACHE_METADATA` (an execute's answer skips the
//! column definitions the client kept from the prepare, as libmariadb negotiates). No
//! `CLIENT_DEPRECATE_EOF` (libmariadb does not ask for it either), no TLS, no compression.

use bytes::Bytes;
use dpm_protocol::auth::{
    AUTH_MORE_DATA_HEADER, AUTH_SWITCH_HEADER, CACHING_SHA2_PASSWORD, CLIENT_ED25519,
    MYSQL_NATIVE_PASSWORD,
};
use dpm_protocol::scramble::native_password_token;
use dpm_protocol::*;

use super::error::ClientError;
use super::io::Io;

/// `utf8mb4_general_ci`.
const CHARSET_UTF8MB4_GENERAL_CI: u8 = 45;

/// What this client asks for (the server's answer decides what is used).
const WANTED: u64 = CLIENT_LONG_FLAG
    | CLIENT_PROTOCOL_41
    | CLIENT_TRANSACTIONS
    | CLIENT_SECURE_CONNECTION
    | CLIENT_MULTI_STATEMENTS
    | CLIENT_MULTI_RESULTS
    | CLIENT_PS_MULTI_RESULTS
    | CLIENT_PLUGIN_AUTH
    | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
    | MARIADB_CLIENT_CACHE_METADATA;

/// Who to log in as.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    /// User name.
    pub user: String,
    /// Password (empty: none).
    pub password: String,
    /// Schema selected at login.
    pub database: Option<String>,
}

/// What the login settled.
pub(crate) struct Session {
    pub(crate) capabilities: u64,
    pub(crate) connection_id: u32,
}

/// Logs in on a fresh connection.
pub(crate) async fn login(io: &mut Io, creds: &Credentials) -> Result<Session, ClientError> {
    let (seq, start, end) = io.next_packet().await?;
    let greeting = Bytes::copy_from_slice(io.payload(start, end));
    if is_err_packet(&greeting) {
        return Err(server_error(&greeting));
    }
    let handshake = HandshakeV10::decode(&greeting)
        .map_err(|e| ClientError::decode("the server's greeting", e))?;
    let mut capabilities = WANTED & handshake.capabilities;
    if !handshake.is_mariadb() {
        capabilities &= !MARIADB_EXTENDED_CAPS_MASK;
    }
    if creds.database.is_some() {
        capabilities |= CLIENT_CONNECT_WITH_DB & handshake.capabilities;
    }
    if capabilities & CLIENT_PROTOCOL_41 == 0 {
        return Err(ClientError::Unsupported(
            "the server does not speak protocol 4.1".into(),
        ));
    }
    let default_plugin = handshake
        .auth_plugin_name
        .as_deref()
        .unwrap_or(MYSQL_NATIVE_PASSWORD);
    // Answer with the server's default plugin when this client speaks it (one round trip
    // less for caching_sha2_password accounts on MySQL 8), else with native.
    let plugin: &[u8] = if speaks(default_plugin) && default_plugin != CLIENT_ED25519 {
        default_plugin
    } else {
        MYSQL_NATIVE_PASSWORD
    };
    let response = HandshakeResponse41 {
        capabilities,
        max_packet_size: 1 << 30,
        character_set: CHARSET_UTF8MB4_GENERAL_CI,
        username: Bytes::copy_from_slice(creds.user.as_bytes()),
        auth_response: Bytes::from(token(plugin, &creds.password, handshake.nonce())?),
        database: creds
            .database
            .as_ref()
            .map(|d| Bytes::copy_from_slice(d.as_bytes())),
        auth_plugin_name: Some(Bytes::copy_from_slice(plugin)),
        ..Default::default()
    };
    let mut payload = bytes::BytesMut::new();
    response.encode(&mut payload);
    send(io, seq.wrapping_add(1), &payload).await?;
    follow_auth(
        io,
        &creds.password,
        plugin.to_vec(),
        handshake.nonce().to_vec(),
    )
    .await?;
    Ok(Session {
        capabilities,
        connection_id: handshake.connection_id,
    })
}

/// Answers auth switches and more-data requests until the server's OK.
async fn follow_auth(
    io: &mut Io,
    password: &str,
    mut plugin: Vec<u8>,
    mut nonce: Vec<u8>,
) -> Result<(), ClientError> {
    const REQUEST_PUBLIC_KEY: u8 = 0x02;
    const FAST_AUTH_SUCCESS: u8 = 0x03;
    const PERFORM_FULL_AUTH: u8 = 0x04;
    let mut switches = 0;
    loop {
        let (seq, start, end) = io.next_packet().await?;
        let payload = Bytes::copy_from_slice(io.payload(start, end));
        let next = seq.wrapping_add(1);
        if is_ok_packet(&payload) {
            return Ok(());
        }
        if is_err_packet(&payload) {
            return Err(server_error(&payload));
        }
        match (payload.first(), payload.get(1)) {
            (Some(&AUTH_SWITCH_HEADER), _) if switches < 2 => {
                switches += 1;
                let switch = AuthSwitchRequest::decode(&payload)
                    .map_err(|e| ClientError::decode("auth switch request", e))?;
                plugin = switch.plugin_name.to_vec();
                // client_ed25519's nonce is taken whole; the others lose their NUL.
                nonce = if plugin == CLIENT_ED25519 {
                    switch.plugin_data.to_vec()
                } else {
                    switch.nonce().to_vec()
                };
                send(io, next, &token(&plugin, password, &nonce)?).await?;
            }
            (Some(&AUTH_MORE_DATA_HEADER), Some(&FAST_AUTH_SUCCESS))
                if plugin == CACHING_SHA2_PASSWORD => {}
            (Some(&AUTH_MORE_DATA_HEADER), Some(&PERFORM_FULL_AUTH))
                if plugin == CACHING_SHA2_PASSWORD =>
            {
                send(io, next, &[REQUEST_PUBLIC_KEY]).await?;
                let (seq, start, end) = io.next_packet().await?;
                let key = io.payload(start, end);
                if key.first() != Some(&AUTH_MORE_DATA_HEADER) {
                    return Err(ClientError::Protocol(
                        "caching_sha2_password: no public key from the server".into(),
                    ));
                }
                let pem = String::from_utf8_lossy(&key[1..]).into_owned();
                let secret =
                    dpm_auth::caching_sha2::encrypt_password(&pem, password.as_bytes(), &nonce)
                        .map_err(|e| {
                            ClientError::Unsupported(format!("caching_sha2_password: {e}"))
                        })?;
                send(io, seq.wrapping_add(1), &secret).await?;
            }
            _ => {
                return Err(ClientError::Protocol(format!(
                    "unexpected packet during login (header {:#04x})",
                    payload.first().copied().unwrap_or(0)
                )))
            }
        }
    }
}

async fn send(io: &mut Io, seq: u8, payload: &[u8]) -> Result<(), ClientError> {
    io.begin_packet();
    io.wbuf.extend_from_slice(payload);
    io.finish_packet(0, seq)?;
    io.send().await
}

fn speaks(plugin: &[u8]) -> bool {
    matches!(
        plugin,
        MYSQL_NATIVE_PASSWORD | CACHING_SHA2_PASSWORD | CLIENT_ED25519
    )
}

fn token(plugin: &[u8], password: &str, nonce: &[u8]) -> Result<Vec<u8>, ClientError> {
    let password = password.as_bytes();
    Ok(match plugin {
        MYSQL_NATIVE_PASSWORD => native_password_token(password, nonce),
        CACHING_SHA2_PASSWORD => dpm_auth::caching_sha2::token(password, nonce),
        CLIENT_ED25519 => dpm_auth::ed25519::sign(password, nonce).to_vec(),
        other => {
            return Err(ClientError::Unsupported(format!(
                "the server asks for authentication plugin '{}'; dpm bench logs in with mysql_native_password, caching_sha2_password or client_ed25519",
                String::from_utf8_lossy(other)
            )))
        }
    })
}

/// An ERR payload as a [`ClientError::Server`].
pub(crate) fn server_error(payload: &[u8]) -> ClientError {
    match ErrPacket::decode(&Bytes::copy_from_slice(payload)) {
        Ok(err) => ClientError::Server {
            code: err.code,
            sqlstate: err.sql_state.unwrap_or(*b"HY000"),
            message: String::from_utf8_lossy(&err.message).into_owned(),
        },
        Err(e) => ClientError::decode("ERR packet", e),
    }
}
