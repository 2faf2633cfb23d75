//! dpm as the server of a client's login (proxy-held users): the greeting with dpm's own
//! nonce, TLS after an SSLRequest, the user looked up, an auth switch when the client's
//! plugin is not the user's, and the proof checked per plugin — `mysql_native_password`,
//! `client_ed25519`, and `caching_sha2_password` with its fast path (a cache of
//! `SHA256(SHA256(password))` filled by full authentications) and full path (cleartext
//! over TLS, or RSA-encrypted on a plain connection).
//!
//! Nothing secret is logged or put in an error: not the hashes, not the nonce, not what
//! the client sent.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use bytes::{Bytes, BytesMut};
use dpm_auth::{caching_sha2, ed25519, native, Plugin, RsaKeyPair, StoredCredential};
use dpm_protocol::auth::{AuthSwitchRequest, CACHING_SHA2_REQUEST_PUBLIC_KEY};
use dpm_protocol::handshake_response::is_ssl_request;
use dpm_protocol::{HandshakeResponse41, HandshakeV10};

use super::users::{self, ProxyUser, UserSlot};
use crate::client::wire::PacketStream;
use crate::client::ClientError;
use crate::conn::Conn;
use crate::tls::TlsRole;
use crate::transport::Transport;

/// A client dpm let in.
pub(crate) struct Authenticated {
    /// The user, and its hold on one of the user's connections.
    pub slot: UserSlot,
    /// What the client asked for (schema, collation, capabilities, attributes).
    pub response: HandshakeResponse41,
}

/// Why a login did not succeed.
pub(crate) enum Refusal {
    /// Tell the client this (an ERR packet), then close it.
    Error {
        code: u16,
        state: [u8; 5],
        message: String,
    },
    /// The client went away or broke the protocol: close it (`why` is for the log).
    Gone(String),
}

impl From<ClientError> for Refusal {
    fn from(e: ClientError) -> Refusal {
        Refusal::Gone(e.to_string())
    }
}

/// MySQL's ER_ACCESS_DENIED_ERROR.
pub(crate) const ACCESS_DENIED: u16 = 1045;
/// MySQL's ER_TOO_MANY_USER_CONNECTIONS.
const TOO_MANY_USER_CONNECTIONS: u16 = 1203;

/// Nonce length of `mysql_native_password` and `caching_sha2_password`.
const NONCE_LEN: usize = 20;
/// Nonce length of `client_ed25519`.
const ED25519_NONCE_LEN: usize = 32;

/// The greeting dpm sends a client for a session on a server that greeted dpm with
/// `server`: the server's version, connection id, collation, status and capabilities
/// (without compression, which dpm does not terminate; with `CLIENT_SSL` exactly when
/// dpm offers TLS), and dpm's own nonce for `mysql_native_password`.
pub(crate) fn greeting_for(server: &HandshakeV10, offer_tls: bool) -> HandshakeV10 {
    use dpm_protocol::caps::{
        CLIENT_COMPRESS, CLIENT_PLUGIN_AUTH, CLIENT_SSL, CLIENT_ZSTD_COMPRESSION_ALGORITHM,
    };
    let mut capabilities =
        server.capabilities & !(CLIENT_COMPRESS | CLIENT_ZSTD_COMPRESSION_ALGORITHM | CLIENT_SSL);
    if offer_tls {
        capabilities |= CLIENT_SSL;
    }
    HandshakeV10 {
        protocol_version: 10,
        server_version: server.server_version.clone(),
        connection_id: server.connection_id,
        auth_plugin_data: Bytes::from(nonce(NONCE_LEN)),
        capabilities: capabilities | CLIENT_PLUGIN_AUTH,
        character_set: server.character_set,
        status_flags: server.status_flags,
        auth_plugin_name: Some(Bytes::from_static(Plugin::MysqlNativePassword.wire_name())),
    }
}

/// A fresh nonce of printable bytes (no NUL: it travels NUL-terminated).
fn nonce(len: usize) -> Vec<u8> {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..len).map(|_| rng.gen_range(0x21u8..0x7f)).collect()
}

/// Runs the login of `client` for `service` on `stream` (the client's transport, nothing
/// sent yet): greets it with `greeting` and checks what it proves.
pub(crate) async fn authenticate(
    stream: &mut PacketStream<&Transport>,
    client: &Conn,
    service: &str,
    greeting: &HandshakeV10,
) -> Result<Authenticated, Refusal> {
    let mut payload = BytesMut::new();
    greeting.encode(&mut payload);
    stream.write(&payload).await?;
    let mut packet = stream.read().await?;
    if is_ssl_request(&packet.payload) {
        let Some(TlsRole::Accept(tls)) = client.tls.get() else {
            return Err(Refusal::Gone("asked for TLS, which was not offered".into()));
        };
        let early = stream.take_unread();
        let connection = tls.accept().map_err(|e| Refusal::Gone(e.to_string()))?;
        stream
            .transport()
            .start_tls(connection, &early, Vec::new())
            .map_err(|e| Refusal::Gone(format!("TLS failed: {e}")))?;
        packet = stream.read().await?;
    }
    if crate::tls::plain_but_required(client) {
        let (code, message) = crate::tls::INSECURE_TRANSPORT;
        return Err(Refusal::Error {
            code,
            state: *b"HY000",
            message: message.into(),
        });
    }
    let response = HandshakeResponse41::decode(&packet.payload)
        .map_err(|e| Refusal::Gone(format!("bad handshake response: {e}")))?;
    check(stream, client, service, greeting.nonce(), response).await
}

/// Checks the login (or COM_CHANGE_USER) `response` of `client` against the users of
/// `service`; `nonce` is the one the client's proof was made with.
pub(crate) async fn check(
    stream: &mut PacketStream<&Transport>,
    client: &Conn,
    service: &str,
    nonce: &[u8],
    response: HandshakeResponse41,
) -> Result<Authenticated, Refusal> {
    let host = client_host(client);
    let name = String::from_utf8_lossy(&response.username).into_owned();
    let Some(user) = users::find(service, &response.username) else {
        tracing::info!(client = client.id, user = %name, %host, service, "login refused: no such user");
        return Err(access_denied(
            &name,
            &host,
            !response.auth_response.is_empty(),
        ));
    };
    let (proved, used_password) = prove(stream, client, &user, nonce, &response).await?;
    if !proved {
        tracing::info!(client = client.id, user = %name, %host, service, "login refused: wrong password");
        return Err(access_denied(&name, &host, used_password));
    }
    let Some(slot) = user.take_slot() else {
        tracing::info!(client = client.id, user = %name, service, "login refused: max_connections reached");
        return Err(Refusal::Error {
            code: TOO_MANY_USER_CONNECTIONS,
            state: *b"42000",
            message: format!(
                "User {name} already has more than 'max_user_connections' active connections"
            ),
        });
    };
    Ok(Authenticated { slot, response })
}

/// The host part of `'user'@'host'` in messages: the client's address, `localhost` for
/// loopback and unix sockets (as a server with name resolution says).
fn client_host(client: &Conn) -> String {
    let peer = client
        .transport
        .get()
        .and_then(|t| t.peer())
        .unwrap_or_default();
    match crate::transport::peer_ip(&peer) {
        "127.0.0.1" | "::1" | "localhost" | "" => "localhost".into(),
        ip => ip.to_string(),
    }
}

/// The server's own wording for a refused login.
pub(crate) fn access_denied(user: &str, host: &str, used_password: bool) -> Refusal {
    Refusal::Error {
        code: ACCESS_DENIED,
        state: *b"28000",
        message: format!(
            "Access denied for user '{user}'@'{host}' (using password: {})",
            if used_password { "YES" } else { "NO" }
        ),
    }
}

/// Checks what the client proves for `user`, switching it to the user's plugin first
/// when it answered with another. Returns (proved, a password was given).
async fn prove(
    stream: &mut PacketStream<&Transport>,
    client: &Conn,
    user: &Arc<ProxyUser>,
    greeting_nonce: &[u8],
    response: &HandshakeResponse41,
) -> Result<(bool, bool), Refusal> {
    let wanted = user.spec.plugin;
    // No plugin name: a pre-plugin client, native. An unknown name: none of ours.
    let client_plugin = match response.auth_plugin_name.as_deref() {
        None => Some(Plugin::MysqlNativePassword),
        Some(name) => Plugin::from_wire_name(name),
    };
    // The client's first proof counts only when it was made with the user's plugin over
    // the greeting's nonce: a client whose default plugin is not the greeting's sends
    // an empty answer and waits for a switch; ed25519 needs a 32-byte nonce.
    let first_counts = client_plugin == Some(wanted)
        && match wanted {
            Plugin::MysqlNativePassword => true,
            Plugin::CachingSha2Password => !response.auth_response.is_empty(),
            Plugin::ClientEd25519 => false,
        };
    let (nonce, token) = if first_counts {
        (greeting_nonce.to_vec(), response.auth_response.clone())
    } else {
        // As the servers do: the password plugins get the greeting's nonce again (a
        // client keeps it for COM_CHANGE_USER), ed25519 a fresh 32-byte one.
        let nonce = match wanted {
            Plugin::ClientEd25519 => nonce(ED25519_NONCE_LEN),
            _ => greeting_nonce.to_vec(),
        };
        let mut data = BytesMut::from(&nonce[..]);
        if wanted != Plugin::ClientEd25519 {
            data.extend_from_slice(&[0]);
        }
        let switch = AuthSwitchRequest {
            plugin_name: Bytes::from_static(wanted.wire_name()),
            plugin_data: data.freeze(),
        };
        let mut payload = BytesMut::new();
        switch.encode(&mut payload);
        stream.write(&payload).await?;
        (nonce, stream.read().await?.payload)
    };
    // As the servers say it: ed25519 always reads a signature (MariaDB reports a
    // password used whatever it holds); the others, when the proof is not empty.
    let used_password = wanted == Plugin::ClientEd25519 || !token.is_empty();
    let proved = match &user.spec.credential {
        StoredCredential::Native(hash) => native::verify(hash, &nonce, &token),
        StoredCredential::Ed25519(key) => ed25519::verify(key, &nonce, &token),
        StoredCredential::CachingSha2(hash) => {
            sha2_exchange(stream, client, user, hash, &nonce, &token).await?
        }
    };
    Ok((proved, used_password))
}

/// `SHA256(SHA256(password))` of users who passed full authentication, by (service,
/// user, stored hash): what the fast path checks against.
static SHA2_CACHE: LazyLock<Mutex<HashMap<CacheKey, [u8; 32]>>> = LazyLock::new(Default::default);

/// (service, user, stored hash): a user redefined with a new hash misses the cache.
type CacheKey = (String, String, String);

fn cache_key(user: &ProxyUser, hash: &caching_sha2::CachingSha2Hash) -> CacheKey {
    (
        user.spec.service.clone(),
        user.spec.user.clone(),
        hash.to_text(),
    )
}

/// `caching_sha2_password` after the client's scramble: the fast path when the cache
/// knows the user, else full authentication.
async fn sha2_exchange(
    stream: &mut PacketStream<&Transport>,
    client: &Conn,
    user: &ProxyUser,
    hash: &caching_sha2::CachingSha2Hash,
    nonce: &[u8],
    token: &[u8],
) -> Result<bool, Refusal> {
    const FAST_AUTH_SUCCESS: u8 = 0x03;
    const PERFORM_FULL_AUTH: u8 = 0x04;
    const MORE_DATA: u8 = 0x01;
    if token.is_empty() {
        return Ok(false); // an empty password: no stored hash matches it
    }
    let key = cache_key(user, hash);
    let cached = SHA2_CACHE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
        .copied();
    if let Some(digest2) = cached {
        if !caching_sha2::fast_verify(&digest2, nonce, token) {
            return Ok(false);
        }
        stream.write(&[MORE_DATA, FAST_AUTH_SUCCESS]).await?;
        return Ok(true);
    }
    stream.write(&[MORE_DATA, PERFORM_FULL_AUTH]).await?;
    let answer = stream.read().await?.payload;
    let password = if stream.transport().is_tls() {
        caching_sha2::cleartext_password(&answer).to_vec()
    } else {
        let keys = rsa_keys().await.map_err(|e| {
            tracing::error!(
                client = client.id,
                "caching_sha2_password full authentication impossible: {e}"
            );
            Refusal::Gone("no RSA key".into())
        })?;
        let ciphertext = if answer[..] == [CACHING_SHA2_REQUEST_PUBLIC_KEY] {
            let mut pem = vec![MORE_DATA];
            pem.extend_from_slice(keys.public_key_pem().as_bytes());
            stream.write(&pem).await?;
            stream.read().await?.payload
        } else {
            answer // encrypted with a public key the client already had
        };
        match keys.decrypt_password(&ciphertext, nonce) {
            Ok(p) => p,
            Err(_) => return Ok(false),
        }
    };
    if !hash.verify_password(&password) {
        return Ok(false);
    }
    SHA2_CACHE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, caching_sha2::digest2_from_password(&password));
    Ok(true)
}

/// Where the RSA key pair comes from: a PEM file given in the startup file, else one
/// generated when first needed.
static RSA_KEY_FILE: Mutex<Option<std::path::PathBuf>> = Mutex::new(None);
static RSA_KEYS: tokio::sync::OnceCell<Result<Arc<RsaKeyPair>, String>> =
    tokio::sync::OnceCell::const_new();

/// Uses the PEM private key at `path` for `caching_sha2_password` over plain
/// connections (read now, so that a bad file is a startup error). A reload's file has
/// its key checked but keeps the process's key pair: clients may hold its public key.
pub fn set_rsa_key_file(path: std::path::PathBuf) -> Result<(), String> {
    RsaKeyPair::from_pem_file(&path).map_err(|e| e.to_string())?;
    if !crate::service::generations::loading() {
        *RSA_KEY_FILE.lock().unwrap_or_else(|e| e.into_inner()) = Some(path);
    }
    Ok(())
}

/// The key pair, loaded or generated once (generation takes a while: off the worker).
async fn rsa_keys() -> Result<Arc<RsaKeyPair>, String> {
    RSA_KEYS
        .get_or_init(|| async {
            let file = RSA_KEY_FILE
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let made = tokio::task::spawn_blocking(move || match file {
                Some(path) => RsaKeyPair::from_pem_file(&path),
                None => {
                    tracing::info!("generating an RSA key pair for caching_sha2_password (give one with rsa_private_key to keep it across restarts)");
                    RsaKeyPair::generate()
                }
            })
            .await;
            match made {
                Ok(Ok(keys)) => Ok(Arc::new(keys)),
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        })
        .await
        .clone()
}
