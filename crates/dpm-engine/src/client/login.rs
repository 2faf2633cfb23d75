//! Logging in: reading the server's HandshakeV10, answering with a HandshakeResponse41
//! (`mysql_native_password`), following auth switches (to `mysql_native_password`,
//! `client_ed25519` or `caching_sha2_password`), and reading the final OK or ERR.
//! [`follow_auth`] and [`plugin_token`] serve dpm's logins on behalf of clients too
//! (`crate::authenticator`).
//!
//! The capabilities are deliberately few: no TLS, no compression, no
//! `CLIENT_DEPRECATE_EOF`, no session tracking, no MariaDB extensions, so that the
//! response reader ([`super::response`]) only has to know the classic grammar.

use bytes::{Bytes, BytesMut};
use dpm_protocol::auth::{
    AUTH_MORE_DATA_HEADER, AUTH_SWITCH_HEADER, CACHING_SHA2_PASSWORD, CLIENT_ED25519,
    MYSQL_NATIVE_PASSWORD,
};
use dpm_protocol::scramble::native_password_token;
use dpm_protocol::{
    is_err_packet, is_ok_packet, AuthSwitchRequest, ErrPacket, HandshakeResponse41, HandshakeV10,
    CLIENT_CONNECT_WITH_DB, CLIENT_LONG_PASSWORD, CLIENT_MULTI_RESULTS, CLIENT_PLUGIN_AUTH,
    CLIENT_PROTOCOL_41, CLIENT_PS_MULTI_RESULTS, CLIENT_SECURE_CONNECTION, CLIENT_TRANSACTIONS,
};

use super::error::ClientError;
use super::wire::PacketStream;
use super::ClientOptions;

/// `utf8mb4_general_ci`: known to every MariaDB and MySQL with utf8mb4 (224,
/// `utf8mb4_unicode_ci`, is fine too, but 45 is the one id both ship as a default).
const CHARSET_UTF8MB4_GENERAL_CI: u8 = 45;

/// Largest packet we tell the server we accept (the decoder's own limit, 1 GiB).
const MAX_PACKET_SIZE: u32 = 1 << 30;

/// What the server told us while logging in.
pub(crate) struct Session {
    pub(crate) server_version: String,
    pub(crate) connection_id: u32,
    /// The capabilities both sides have (what decoders must assume).
    pub(crate) capabilities: u64,
}

/// Logs in on a fresh connection.
pub(crate) async fn login(
    stream: &mut PacketStream,
    opts: &ClientOptions,
) -> Result<Session, ClientError> {
    let greeting = stream.read().await?;
    if is_err_packet(&greeting.payload) {
        // Refused before the handshake (too many connections, host blocked, ...).
        return Err(server_refusal(&greeting.payload));
    }
    let handshake = HandshakeV10::decode(&greeting.payload)
        .map_err(|e| ClientError::decode("initial handshake", e))?;
    if handshake.capabilities & CLIENT_PROTOCOL_41 == 0 {
        return Err(ClientError::Protocol(
            "the server does not speak protocol 4.1".into(),
        ));
    }

    let mut wanted = CLIENT_LONG_PASSWORD
        | CLIENT_PROTOCOL_41
        | CLIENT_SECURE_CONNECTION
        | CLIENT_PLUGIN_AUTH
        | CLIENT_TRANSACTIONS
        | CLIENT_MULTI_RESULTS
        | CLIENT_PS_MULTI_RESULTS;
    if opts.schema.is_some() {
        wanted |= CLIENT_CONNECT_WITH_DB;
    }
    // CLIENT_LONG_PASSWORD is bit 0, which MariaDB reads as CLIENT_MYSQL. A MariaDB server
    // clears it in its handshake, so it is clear here too and the server reads MariaDB
    // extended capabilities from our response: none, as we want none of them.
    let capabilities = wanted & handshake.capabilities;
    if let (Some(schema), false) = (&opts.schema, capabilities & CLIENT_CONNECT_WITH_DB != 0) {
        // Only ancient servers lack it; better to say so than to log in without the schema.
        return Err(ClientError::Protocol(format!(
            "the server cannot select schema '{schema}' at login"
        )));
    }

    // Like libmysqlclient, start with our one plugin whatever the server announced: an
    // account on another plugin makes the server send an AuthSwitchRequest.
    let response = HandshakeResponse41 {
        capabilities,
        max_packet_size: MAX_PACKET_SIZE,
        character_set: CHARSET_UTF8MB4_GENERAL_CI,
        username: Bytes::copy_from_slice(opts.user.as_bytes()),
        auth_response: token(&opts.password, handshake.nonce()),
        database: opts
            .schema
            .as_ref()
            .map(|s| Bytes::copy_from_slice(s.as_bytes())),
        auth_plugin_name: (capabilities & CLIENT_PLUGIN_AUTH != 0)
            .then(|| Bytes::from_static(MYSQL_NATIVE_PASSWORD)),
        ..Default::default()
    };
    let mut payload = BytesMut::new();
    response.encode(&mut payload);
    stream.write(&payload).await?;
    follow_auth(stream, &opts.password, MYSQL_NATIVE_PASSWORD).await?;
    Ok(Session {
        server_version: String::from_utf8_lossy(&handshake.server_version).into_owned(),
        connection_id: handshake.connection_id,
        capabilities,
    })
}

fn token(password: &str, nonce: &[u8]) -> Bytes {
    Bytes::from(native_password_token(password.as_bytes(), nonce))
}

/// True for the plugins [`plugin_token`] answers.
pub(crate) fn speaks(plugin: &[u8]) -> bool {
    matches!(
        plugin,
        MYSQL_NATIVE_PASSWORD | CLIENT_ED25519 | CACHING_SHA2_PASSWORD
    )
}

/// The auth response of `plugin` for `password` and the server's `nonce`; an error
/// for a plugin dpm does not speak.
pub(crate) fn plugin_token(
    plugin: &[u8],
    password: &str,
    nonce: &[u8],
) -> Result<Bytes, ClientError> {
    let password = password.as_bytes();
    Ok(Bytes::from(match plugin {
        MYSQL_NATIVE_PASSWORD => native_password_token(password, nonce),
        CLIENT_ED25519 => dpm_auth::ed25519::sign(password, nonce).to_vec(),
        CACHING_SHA2_PASSWORD => dpm_auth::caching_sha2::token(password, nonce),
        other => return Err(unsupported_plugin(other)),
    }))
}

/// After the handshake response (made with `plugin`): answers the server's auth
/// switches and more-data requests until its OK, whose payload is returned. A refusal
/// is [`ClientError::Auth`] with the server's code and message.
pub(crate) async fn follow_auth<T: std::borrow::Borrow<crate::transport::Transport>>(
    stream: &mut PacketStream<T>,
    password: &str,
    plugin: &[u8],
) -> Result<Bytes, ClientError> {
    const FAST_AUTH_SUCCESS: u8 = 0x03;
    const PERFORM_FULL_AUTH: u8 = 0x04;
    let mut plugin = plugin.to_vec();
    let mut switches = 0;
    loop {
        let packet = stream.read().await?;
        let payload = &packet.payload;
        if is_ok_packet(payload) {
            return Ok(packet.payload);
        }
        if is_err_packet(payload) {
            return Err(server_refusal(payload));
        }
        match (payload.first(), payload.get(1)) {
            (Some(&AUTH_SWITCH_HEADER), _) if switches < 2 => {
                switches += 1;
                let switch = AuthSwitchRequest::decode(payload)
                    .map_err(|e| ClientError::decode("auth switch request", e))?;
                plugin = switch.plugin_name.to_vec();
                // client_ed25519's 32-byte nonce is sent without a NUL and may end in a
                // zero byte: it is taken whole; the password plugins' lose their NUL.
                let nonce = if plugin == CLIENT_ED25519 {
                    &switch.plugin_data[..]
                } else {
                    switch.nonce()
                };
                stream
                    .write(&plugin_token(&plugin, password, nonce)?)
                    .await?;
            }
            (Some(&AUTH_MORE_DATA_HEADER), Some(&FAST_AUTH_SUCCESS))
                if plugin == CACHING_SHA2_PASSWORD => {}
            (Some(&AUTH_MORE_DATA_HEADER), Some(&PERFORM_FULL_AUTH))
                if plugin == CACHING_SHA2_PASSWORD =>
            {
                if !stream.transport().is_tls() {
                    return Err(ClientError::Auth {
                        code: 0,
                        sql_state: *b"HY000",
                        message: "the server wants caching_sha2_password full authentication, which dpm does only over TLS: give the server tls settings, or log in once with another client to fill the server's cache".into(),
                    });
                }
                let mut clear = password.as_bytes().to_vec();
                clear.push(0);
                stream.write(&clear).await?;
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

fn server_refusal(payload: &Bytes) -> ClientError {
    match ErrPacket::decode(payload) {
        Ok(err) => ClientError::Auth {
            code: err.code,
            sql_state: err.sql_state.unwrap_or(*b"HY000"),
            message: String::from_utf8_lossy(&err.message).into_owned(),
        },
        Err(e) => ClientError::decode("ERR packet", e),
    }
}

fn unsupported_plugin(name: &[u8]) -> ClientError {
    ClientError::Auth {
        code: 0,
        sql_state: *b"HY000",
        message: format!(
            "the server asks for authentication plugin '{}'; dpm logs in with mysql_native_password, client_ed25519 or caching_sha2_password",
            String::from_utf8_lossy(name)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::ServerAddress;
    use dpm_protocol::scramble::{native_password_hash, native_password_verify};
    use dpm_protocol::{
        encode_packet, OkPacket, PacketDecoder, CLIENT_DEPRECATE_EOF, CLIENT_SSL,
        MARIADB_CLIENT_PROGRESS,
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const NONCE: &[u8; 20] = b"abcdefghijklmnopqrst";
    const SWITCH_NONCE: &[u8; 20] = b"ABCDEFGHIJKLMNOPQRST";

    fn handshake(plugin: &'static [u8]) -> BytesMut {
        let mut b = BytesMut::new();
        HandshakeV10 {
            protocol_version: 10,
            server_version: Bytes::from_static(b"5.5.5-10.11.6-MariaDB"),
            connection_id: 42,
            auth_plugin_data: Bytes::from_static(NONCE),
            // Everything, so that the test sees what the client picks.
            capabilities: !dpm_protocol::CLIENT_MYSQL,
            character_set: 45,
            status_flags: 2,
            auth_plugin_name: Some(Bytes::from_static(plugin)),
        }
        .encode(&mut b);
        b
    }

    async fn read_packet(peer: &mut tokio::net::UnixStream) -> dpm_protocol::Packet {
        let mut buf = BytesMut::new();
        loop {
            if let Some(p) = PacketDecoder::default().decode(&mut buf).unwrap() {
                return p;
            }
            peer.read_buf(&mut buf).await.unwrap();
        }
    }

    async fn send(peer: &mut tokio::net::UnixStream, seq: u8, payload: &[u8]) {
        let mut wire = BytesMut::new();
        encode_packet(&mut wire, seq, payload);
        peer.write_all(&wire).await.unwrap();
    }

    fn opts(schema: Option<&str>) -> ClientOptions {
        ClientOptions {
            address: ServerAddress::Unix("/unused".into()),
            user: "bob".into(),
            password: "secret".into(),
            schema: schema.map(Into::into),
            connect_timeout: std::time::Duration::from_secs(5),
        }
    }

    /// A server whose default plugin is not ours switches the account to
    /// mysql_native_password with a fresh nonce; the client answers with that nonce.
    #[tokio::test]
    async fn login_follows_a_switch_to_native_password() {
        let (ours, mut peer) = tokio::net::UnixStream::pair().unwrap();
        let mut stream = PacketStream::new(crate::transport::Transport::unix(ours));
        let server = async {
            send(&mut peer, 0, &handshake(b"caching_sha2_password")).await;
            let p = read_packet(&mut peer).await;
            assert_eq!(p.seq, 1);
            let r = HandshakeResponse41::decode(&p.payload).unwrap();
            for unwanted in [CLIENT_DEPRECATE_EOF, CLIENT_SSL, MARIADB_CLIENT_PROGRESS] {
                assert_eq!(r.capabilities & unwanted, 0, "{unwanted:#x}");
            }
            assert_ne!(r.capabilities & CLIENT_CONNECT_WITH_DB, 0);
            assert_eq!(r.database.as_deref(), Some(&b"db1"[..]));
            assert_eq!(&r.username[..], b"bob");
            assert_eq!(r.character_set, 45);
            let stored = native_password_hash(b"secret");
            assert!(native_password_verify(&r.auth_response, NONCE, &stored));

            let mut switch = BytesMut::new();
            AuthSwitchRequest {
                plugin_name: Bytes::from_static(MYSQL_NATIVE_PASSWORD),
                plugin_data: Bytes::from([&SWITCH_NONCE[..], b"\0"].concat()),
            }
            .encode(&mut switch);
            send(&mut peer, 2, &switch).await;
            let p = read_packet(&mut peer).await;
            assert_eq!(p.seq, 3);
            assert!(native_password_verify(&p.payload, SWITCH_NONCE, &stored));
            let mut ok = BytesMut::new();
            OkPacket::default().encode(&mut ok, CLIENT_PROTOCOL_41);
            send(&mut peer, 4, &ok).await;
        };
        let opts = opts(Some("db1"));
        let (session, ()) = tokio::join!(login(&mut stream, &opts), server);
        let session = session.unwrap();
        assert_eq!(session.connection_id, 42);
        assert_eq!(session.server_version, "5.5.5-10.11.6-MariaDB");
    }

    #[tokio::test]
    async fn login_refuses_other_plugins_and_reports_server_errors() {
        let (ours, mut peer) = tokio::net::UnixStream::pair().unwrap();
        let mut stream = PacketStream::new(crate::transport::Transport::unix(ours));
        let server = async {
            send(&mut peer, 0, &handshake(b"mysql_native_password")).await;
            read_packet(&mut peer).await;
            // PAM's dialog: a plugin dpm does not speak.
            send(&mut peer, 2, b"\xfedialog\0nonce").await;
        };
        let options = opts(None);
        let (result, ()) = tokio::join!(login(&mut stream, &options), server);
        let e = result.err().unwrap();
        assert!(matches!(e, ClientError::Auth { code: 0, .. }), "{e:?}");
        assert!(e.to_string().contains("'dialog'"), "{e}");

        // Refused before the handshake: the ERR is the greeting.
        let (ours, mut peer) = tokio::net::UnixStream::pair().unwrap();
        let mut stream = PacketStream::new(crate::transport::Transport::unix(ours));
        let mut err = BytesMut::new();
        ErrPacket::new(1040, *b"08004", "Too many connections").encode(&mut err);
        send(&mut peer, 0, &err).await;
        let e = login(&mut stream, &opts(None)).await.err().unwrap();
        assert!(matches!(e, ClientError::Auth { code: 1040, .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "login refused: error 1040: Too many connections"
        );
    }
}
