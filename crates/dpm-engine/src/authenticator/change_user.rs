//! COM_CHANGE_USER in a session whose login dpm ran: dpm checks the new user itself
//! (against the nonce of its greeting, switching the client to the user's plugin when
//! needed) and gives the session a fresh server connection logged in with the account
//! mapped for that user — exactly the clean session a change of user promises. The old
//! server connection is closed. A refused change closes the client, as the server
//! would leave it unauthenticated.
//!
//! It runs in the client's reader task, which owns the client's input: the exchange
//! reads the client's packets directly, starting with what the reader had buffered.

use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use dpm_protocol::change_user::ComChangeUser;
use dpm_protocol::HandshakeResponse41;

use super::{backend_login, client_login, open_refusal, refuse, ProxyLogin};
use crate::client::wire::PacketStream;
use crate::conn::Conn;
use crate::worker::Worker;

/// Answers the COM_CHANGE_USER `payload` read from `client`; `unread` holds the bytes
/// the reader read after it. False when the client must be closed.
pub(crate) async fn change_user(
    worker: &Worker,
    client: &Rc<Conn>,
    payload: Bytes,
    unread: &mut BytesMut,
) -> bool {
    let Some(session) = client.session.borrow().clone() else {
        return false;
    };
    let (Some(pipeline), Some(login), Some(transport)) = (
        session.pipeline(),
        session.take_proxy_login(),
        client.transport.get(),
    ) else {
        return false;
    };
    let service = pipeline.service.shared.name.clone();
    let mut stream = PacketStream::new(transport);
    stream.resume(1, unread.split());
    if client.unsent() > 0 || client.tracker.borrow().pending_commands() > 1 {
        let refusal = client_login::Refusal::Error {
            code: 2014,
            state: *b"HY000",
            message: "Commands out of sync: COM_CHANGE_USER sent while a result is pending".into(),
        };
        refuse(worker, client, &mut stream, refusal).await;
        return false;
    }
    let caps = client.tracker.borrow().negotiated_caps();
    let Ok(request) = ComChangeUser::decode(&payload, caps) else {
        tracing::info!(
            client = client.id,
            "malformed COM_CHANGE_USER; closing the client"
        );
        return false;
    };
    let response = as_login(&login, request);
    // The old user's place is free before the new one is counted (a user at its limit
    // may change to itself).
    let ProxyLogin {
        slot,
        nonce,
        greeting_caps,
        ..
    } = login;
    drop(slot);
    let authenticated =
        match client_login::check(&mut stream, client, &service, &nonce, response).await {
            Ok(a) => a,
            Err(refusal) => {
                refuse(worker, client, &mut stream, refusal).await;
                return false;
            }
        };
    let server = pipeline.server();
    let user = authenticated.slot.user().clone();
    let credentials = user
        .spec
        .backend
        .clone()
        .or_else(|| server.credentials.clone());
    let Some(credentials) = credentials else {
        let e = crate::client::ClientError::Protocol("no backend credentials".into());
        let refusal = open_refusal(&server, backend_login::OpenError::Login(e));
        refuse(worker, client, &mut stream, refusal).await;
        return false;
    };
    let opened =
        backend_login::open_logged_in(worker, &server, &authenticated.response, &credentials).await;
    let backend_login::LoggedIn {
        backend,
        greeting,
        ok,
        unread: server_unread,
    } = match opened {
        Ok(done) => done,
        Err(e) => {
            refuse(worker, client, &mut stream, open_refusal(&server, e)).await;
            return false;
        }
    };
    if stream.write(&ok).await.is_err() {
        worker.close(backend.id);
        return false;
    }
    // The session moves to the new server connection; the old one is closed outside it.
    let old = session.backend();
    if worker.link(client.id, backend.id).is_err() {
        worker.close(backend.id);
        return false;
    }
    if let Some(old) = old {
        worker.close(old);
    }
    // Other backends (readwritesplit) hold the old user's session: they go too, and so
    // does the history of session commands (the new user's session starts clean).
    crate::session::backends::forget_all(worker, &session);
    if !pipeline.counted.replace(true) {
        // The session had lost its backend (readwritesplit): the new one counts now.
        server
            .sessions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    if pipeline.uses_several_backends() {
        session.backends.borrow_mut().started_on(&server);
    }
    let response = authenticated.response;
    let backend_caps = backend_login::capabilities(
        &greeting,
        &response,
        backend_login::is_tls_to_server(&backend),
    );
    // The new login's connection may be kept at the session's end, as a first login's.
    let pool = (server.pool.max > 0 && !pipeline.uses_several_backends()).then(|| {
        crate::session::pool::Ticket {
            key: crate::session::pool::Key::new(credentials.clone(), backend_caps, &response),
            greeting: Rc::new(greeting),
        }
    });
    client
        .tracker
        .borrow_mut()
        .logged_in(greeting_caps, response.capabilities);
    session
        .state
        .borrow_mut()
        .logged_in_by_dpm(&response, &ok, backend_caps);
    tracing::debug!(client = client.id, user = %user.spec.user, service, "COM_CHANGE_USER done by dpm");
    session.set_proxy_login(ProxyLogin {
        slot: authenticated.slot,
        response,
        nonce,
        greeting_caps,
        pool,
    });
    *unread = stream.take_unread();
    backend.pending_input.replace(server_unread);
    crate::forward::start_io(worker, &backend);
    true
}

/// The COM_CHANGE_USER as a login: the new user, proof, schema, collation and
/// attributes, with the capabilities of the session's login.
fn as_login(login: &ProxyLogin, request: ComChangeUser) -> HandshakeResponse41 {
    let first = &login.response;
    let character_set = request
        .character_set
        .map_or(first.character_set, |c| c as u8);
    let connect_attrs = if request.connect_attrs.is_empty() {
        first.connect_attrs.clone()
    } else {
        request.connect_attrs
    };
    let database = Some(request.database).filter(|d| !d.is_empty());
    let mut capabilities = first.capabilities;
    if database.is_some() {
        // The first login may have named no schema; this one does.
        capabilities |= dpm_protocol::caps::CLIENT_CONNECT_WITH_DB;
    }
    HandshakeResponse41 {
        capabilities,
        max_packet_size: first.max_packet_size,
        character_set,
        username: request.username,
        auth_response: request.auth_response,
        database,
        auth_plugin_name: request.auth_plugin_name,
        connect_attrs,
        zstd_compression_level: None,
    }
}
