//! Proxy-held users: the authenticator of services whose users dpm knows itself
//! (`users`). For such a service dpm runs the whole login before any packet is
//! forwarded: it reads the chosen server's greeting, greets the client with dpm's own
//! nonce, checks the client's proof (`client_login`), logs in to the server with the
//! account mapped for it (`backend_login`), gives the client the server's OK, and only
//! then starts the two connections' readers in the command phase. Clients never learn
//! the servers' passwords, and servers never see the clients'.
//!
//! A failed login gets the server's wording (ERR 1045 "Access denied for user …") and
//! is slowed down when one address keeps failing (`throttle`).

pub(crate) mod backend_login;
mod change_user;
pub(crate) mod client_login;
mod throttle;
pub mod users;

use std::rc::Rc;
use std::sync::Arc;

use crate::client::wire::PacketStream;
use crate::conn::Conn;
use crate::service::Server;
use crate::worker::Worker;

pub(crate) use change_user::change_user;
pub use client_login::set_rsa_key_file;
pub use throttle::{set_login_throttle, LoginThrottle};
pub use users::{define_users, service_has_users, BackendCredentials, Secret, UserSpec};

/// A login dpm ran for a session: kept for the session's life (it holds one of the
/// user's connections, and a COM_CHANGE_USER is checked against its nonce).
pub(crate) struct ProxyLogin {
    pub slot: users::UserSlot,
    /// What the client asked for at login (capabilities, collation, attributes).
    pub response: dpm_protocol::HandshakeResponse41,
    /// The nonce of the greeting dpm sent the client.
    pub nonce: bytes::Bytes,
    /// The capabilities of that greeting.
    pub greeting_caps: u64,
    /// Gives the server connection back to its server's pool at the session's end.
    pub pool: Option<crate::session::pool::Ticket>,
}

impl std::fmt::Debug for ProxyLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the nonce or the client's proof.
        f.debug_struct("ProxyLogin")
            .field("user", &self.slot.user().spec.user)
            .finish()
    }
}

/// How a session's login ended.
pub(crate) enum LoginOutcome {
    /// Both sides are logged in; the trackers are in the command phase. (Boxed: the
    /// login is large, and once per session.)
    LoggedIn(Box<LoggedInSession>),
    /// The server could not be used (no greeting): the client was not greeted yet and
    /// another server may be tried.
    ServerFailed(String),
    /// The login failed; the client was told why (or is gone). Close both.
    Ended,
}

/// A session both sides of which dpm logged in.
pub(crate) struct LoggedInSession {
    pub login: ProxyLogin,
    /// The server connection: the fresh one the login started with, a kept one from the
    /// server's pool, or one opened after the client was in.
    pub backend: Rc<Conn>,
    /// The backend's reader and writer already run (a kept connection's do).
    pub backend_running: bool,
}

/// The server side a session's login starts from.
pub(crate) enum ServerSide<'a> {
    /// A fresh connection; its greeting is read first.
    Fresh(&'a Rc<Conn>),
    /// None yet: the server's pool may have one for the client once it is in
    /// (`crate::session::pool`); the client is greeted with this greeting of the server.
    Pool(Rc<dpm_protocol::HandshakeV10>),
}

/// Runs the login of `client` (a session of `service`) against `server`, from `side`.
/// See the module docs. Bounded by the connect timeout: a server (or client) that stalls
/// mid-login must not hold the backend, the task or a user's slot forever. `LoggedIn`
/// only if both connections are still open. With `pooling`, the login gets a ticket to
/// give its server connection back to the pool at its end.
pub(crate) async fn log_in_session(
    worker: &Worker,
    client: &Rc<Conn>,
    side: ServerSide<'_>,
    server: &Arc<Server>,
    service: &str,
    pooling: bool,
) -> LoginOutcome {
    let limit = worker.inner.config.connect_timeout;
    let login = run_login(worker, client, side, server, service, pooling);
    match tokio::time::timeout(limit, login).await {
        Ok(LoginOutcome::LoggedIn(done)) if client.closing.get() || done.backend.closing.get() => {
            worker.close(done.backend.id);
            LoginOutcome::Ended
        }
        Ok(outcome) => outcome,
        Err(_) => {
            tracing::info!(client = client.id, server = %server.name, "login did not finish within the connect timeout; closing");
            LoginOutcome::Ended
        }
    }
}

async fn run_login(
    worker: &Worker,
    client: &Rc<Conn>,
    side: ServerSide<'_>,
    server: &Arc<Server>,
    service: &str,
    pooling: bool,
) -> LoginOutcome {
    let Some(client_transport) = client.transport.get() else {
        return LoginOutcome::Ended;
    };
    // The server's greeting: read from the fresh connection, or the one the pool has.
    let (mut fresh, server_greeting) = match side {
        ServerSide::Fresh(backend) => {
            let Some(transport) = backend.transport.get() else {
                return LoginOutcome::Ended;
            };
            let mut stream = PacketStream::new(transport);
            match backend_login::read_greeting(&mut stream).await {
                Ok(g) => (Some((backend, stream)), Rc::new(g)),
                Err(e) => return LoginOutcome::ServerFailed(e),
            }
        }
        ServerSide::Pool(greeting) => (None, greeting),
    };
    let offer_tls = matches!(client.tls.get(), Some(crate::tls::TlsRole::Accept(_)));
    let greeting = client_login::greeting_for(&server_greeting, offer_tls);
    let mut client_stream = PacketStream::new(client_transport);
    let peer = client_transport.peer().unwrap_or_default();
    let throttle = throttle::current();
    let outcome = client_login::authenticate(&mut client_stream, client, service, &greeting).await;
    // Slows down guessing from one address: once it failed too often, every answer to
    // it waits — a success too, so that the delay tells nothing.
    if let Some(delay) = throttle.delay_for(&peer) {
        tracing::warn!(client = client.id, %peer, service, "repeated failed logins from {peer}: answering after {delay:?}");
        tokio::time::sleep(delay).await;
    }
    let authenticated = match outcome {
        Ok(a) => {
            throttle.succeeded(&peer);
            a
        }
        Err(refusal) => {
            if matches!(&refusal, client_login::Refusal::Error { code, .. } if *code == client_login::ACCESS_DENIED)
            {
                throttle.failed(&peer);
            }
            refuse(worker, client, &mut client_stream, refusal).await;
            if let Some((backend, stream)) = &mut fresh {
                quit_cleanly(stream, &server_greeting, server, backend).await;
            }
            return LoginOutcome::Ended;
        }
    };
    let user = authenticated.slot.user().clone();
    let Some(credentials) = user
        .spec
        .backend
        .clone()
        .or_else(|| server.credentials.clone())
    else {
        tracing::error!(service, server = %server.name, user = %user.spec.user, "no backend credentials: give the user backend_user/backend_password or the server backend_user/backend_password");
        let refusal = client_login::Refusal::Error {
            code: client_login::ACCESS_DENIED,
            state: *b"28000",
            message: format!(
                "Access denied: dpm has no credentials for server '{}' (see dpm's log)",
                server.name
            ),
        };
        refuse(worker, client, &mut client_stream, refusal).await;
        return LoginOutcome::Ended;
    };
    let response = &authenticated.response;
    let backend_caps =
        backend_login::capabilities(&server_greeting, response, server.tls.is_some());
    let key = crate::session::pool::Key::new(credentials.clone(), backend_caps, response);
    // The server side: the fresh connection logs in; else a kept one or a new one.
    let (backend, ok, backend_running) = match fresh {
        Some((backend, mut server_stream)) => {
            let tls = backend.tls.get();
            match backend_login::log_in(
                &mut server_stream,
                &server_greeting,
                response,
                &credentials,
                tls,
            )
            .await
            {
                Ok(ok) => {
                    backend
                        .tracker
                        .borrow_mut()
                        .logged_in(server_greeting.capabilities, backend_caps);
                    backend.pending_input.replace(server_stream.take_unread());
                    (backend.clone(), ok, false)
                }
                Err(e) => {
                    let refusal = server_refusal(server, &credentials.user, e);
                    refuse(worker, client, &mut client_stream, refusal).await;
                    return LoginOutcome::Ended;
                }
            }
        }
        None => match crate::session::pool::take(worker, server, &client.generation, &key) {
            Some(taken) => {
                tracing::debug!(client = client.id, conn = taken.backend.id, server = %server.name, "a kept server connection serves the session");
                (taken.backend, pooled_ok(taken.status, backend_caps), true)
            }
            None => {
                match backend_login::open_logged_in(worker, server, response, &credentials).await {
                    Ok(opened) => {
                        opened.backend.pending_input.replace(opened.unread);
                        (opened.backend, opened.ok, false)
                    }
                    Err(e) => {
                        refuse(worker, client, &mut client_stream, open_refusal(server, e)).await;
                        return LoginOutcome::Ended;
                    }
                }
            }
        },
    };
    if client_stream.write(&ok).await.is_err() {
        worker.close(backend.id);
        return LoginOutcome::Ended;
    }
    client
        .tracker
        .borrow_mut()
        .logged_in(greeting.capabilities, response.capabilities);
    if let Some(session) = client.session.borrow().as_ref() {
        session
            .state
            .borrow_mut()
            .logged_in_by_dpm(response, &ok, backend_caps);
    }
    // Whatever the client sent after its login is its reader's to handle.
    client.pending_input.replace(client_stream.take_unread());
    tracing::debug!(client = client.id, user = %user.spec.user, service, server = %server.name, "logged in by dpm");
    let pool = (pooling && server.pool.max > 0).then(|| crate::session::pool::Ticket {
        key,
        greeting: server_greeting,
    });
    LoginOutcome::LoggedIn(Box::new(LoggedInSession {
        login: ProxyLogin {
            slot: authenticated.slot,
            response: authenticated.response,
            nonce: greeting.auth_plugin_data.clone(),
            greeting_caps: greeting.capabilities,
            pool,
        },
        backend,
        backend_running,
    }))
}

/// The login OK a client gets when a kept connection serves it: what the server's
/// status was after the reset.
fn pooled_ok(status: u16, caps: u64) -> bytes::Bytes {
    let ok = dpm_protocol::OkPacket {
        status_flags: status,
        ..Default::default()
    };
    let mut payload = bytes::BytesMut::new();
    ok.encode(&mut payload, caps);
    payload.freeze()
}

/// What the client hears when dpm could not open a server connection for it after its
/// own login succeeded.
fn open_refusal(server: &Server, e: backend_login::OpenError) -> client_login::Refusal {
    match e {
        backend_login::OpenError::Connect(e) => {
            server.mark_down(&e.to_string());
            client_login::Refusal::Error {
                code: crate::connector::BACKEND_UNREACHABLE,
                state: *b"HY000",
                message: format!("Can't connect to server '{}' ({e})", server.name),
            }
        }
        backend_login::OpenError::Login(e) => server_refusal(server, "(mapped account)", e),
    }
}

/// What the client hears when dpm's login to the server failed: the server's own error
/// (code, SQLSTATE, message), except that a refused account (1045) does not name dpm's
/// backend account to the client (the log does); TLS to the server that failed or is
/// not offered is ERR 1429 with the reason, as in pass-through.
fn server_refusal(
    server: &Server,
    backend_user: &str,
    e: crate::client::ClientError,
) -> client_login::Refusal {
    use crate::client::ClientError;
    let unreachable = |message: String| {
        tracing::warn!(server = %server.name, "{message}");
        client_login::Refusal::Error {
            code: crate::connector::BACKEND_UNREACHABLE,
            state: *b"HY000",
            message,
        }
    };
    match e {
        ClientError::Auth {
            code,
            sql_state,
            message,
        } if code != 0 && code != client_login::ACCESS_DENIED => client_login::Refusal::Error {
            code,
            state: sql_state,
            message,
        },
        ClientError::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            unreachable(format!("TLS to server {} failed: {e}", server.address))
        }
        ClientError::Protocol(m) if m == backend_login::NO_TLS_OFFERED => unreachable(format!(
            "dpm must use TLS to server {}, which does not offer it",
            server.address
        )),
        other => {
            tracing::error!(server = %server.name, backend_user, "dpm's login to the server failed: {other}");
            client_login::Refusal::Error {
                code: client_login::ACCESS_DENIED,
                state: *b"28000",
                message: format!(
                    "Access denied: dpm could not log in to server '{}' (see dpm's log)",
                    server.name
                ),
            }
        }
    }
}

/// After a refused client, the server connection opened for it ends with a login and
/// COM_QUIT instead of a dropped handshake: servers count dropped handshakes against
/// the host (MariaDB blocks it after `max_connect_errors`), and all of dpm's sessions
/// come from one host. Needs the server's own `backend_user`; bounded to one second.
async fn quit_cleanly(
    stream: &mut PacketStream<&crate::transport::Transport>,
    greeting: &dpm_protocol::HandshakeV10,
    server: &Server,
    backend: &Conn,
) {
    use dpm_protocol::caps::{
        CLIENT_LONG_PASSWORD, CLIENT_PLUGIN_AUTH, CLIENT_PROTOCOL_41, CLIENT_SECURE_CONNECTION,
    };
    let Some(credentials) = &server.credentials else {
        return;
    };
    let minimal = dpm_protocol::HandshakeResponse41 {
        capabilities: CLIENT_LONG_PASSWORD
            | CLIENT_PROTOCOL_41
            | CLIENT_SECURE_CONNECTION
            | CLIENT_PLUGIN_AUTH,
        max_packet_size: 1 << 24,
        character_set: 45, // utf8mb4_general_ci
        ..Default::default()
    };
    let quit = async {
        backend_login::log_in(stream, greeting, &minimal, credentials, backend.tls.get()).await?;
        stream.reset_seq();
        stream.write(&[dpm_protocol::command::com::QUIT]).await
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), quit).await;
}

/// Tells a refused client why (when it is still there to hear it).
async fn refuse(
    worker: &Worker,
    client: &Conn,
    stream: &mut PacketStream<&crate::transport::Transport>,
    refusal: client_login::Refusal,
) {
    let why = crate::metrics::RefusedReason::LoginFailed;
    worker.metrics().client_refused(why);
    match refusal {
        client_login::Refusal::Error {
            code,
            state,
            message,
        } => {
            let mut payload = bytes::BytesMut::new();
            dpm_protocol::err::ErrPacket::new(code, state, message).encode(&mut payload);
            let _ = tokio::time::timeout(
                worker.inner.config.close_flush_timeout,
                stream.write(&payload),
            )
            .await;
        }
        client_login::Refusal::Gone(why) => {
            tracing::debug!(client = client.id, "login ended: {why}");
        }
    }
}
