//! The login packets dpm changes when it terminates TLS on a side, so that each side
//! negotiates its own TLS:
//!
//! * the server's greeting, on its way to the client, offers `CLIENT_SSL` exactly when
//!   dpm has a certificate for clients (and never when dpm talks TLS to the server but
//!   cannot offer it to the client);
//! * a client's SSLRequest is answered by dpm (never forwarded): the client's transport
//!   switches to TLS and its handshake response follows inside it;
//! * the handshake response, on its way to the server, is preceded by dpm's own
//!   SSLRequest when dpm talks TLS to the server (the server's transport switches), and
//!   carries `CLIENT_SSL` only then. A listener that requires TLS refuses a plain
//!   client's response with ERR 3159, as MySQL does.
//!
//! Sequence ids need nothing here: each side's tracker numbers its own packets, so a
//! side with one SSLRequest more than the other is renumbered like any forwarded packet.

use bytes::{Bytes, BytesMut};
use dpm_protocol::caps::CLIENT_SSL;
use dpm_protocol::handshake_response::SSL_REQUEST_LEN;

use super::TlsRole;
use crate::conn::{Conn, Role};
use crate::tracker::PacketKind;
use crate::worker::Worker;

/// True when a login packet read on `conn` (going to `target`) needs dpm's TLS handling.
/// Only login packet kinds are looked at, so the data path pays one comparison.
#[inline]
pub(crate) fn intercepts(conn: &Conn, target: Option<&Conn>, kind: PacketKind) -> bool {
    matches!(
        kind,
        PacketKind::Handshake | PacketKind::SslRequest | PacketKind::HandshakeResponse
    ) && (conn.tls.get().is_some() || target.is_some_and(|t| t.tls.get().is_some()))
}

/// A client sent an SSLRequest: dpm answers it. `rest` holds what was read after it
/// (the start of the TLS handshake); it is taken. False if the client must be closed.
pub(crate) fn switch_client_to_tls(conn: &Conn, rest: &mut BytesMut) -> bool {
    let Some(TlsRole::Accept(tls)) = conn.tls.get() else {
        // The greeting dpm forwarded did not offer TLS.
        tracing::info!(
            client = conn.id,
            "client asked for TLS, which was not offered; closing it"
        );
        return false;
    };
    conn.tracker.borrow_mut().resume_after_tls();
    let early = rest.split();
    let started = tls.accept().map_err(|e| e.to_string()).and_then(|c| {
        let transport = conn.transport.get().ok_or("no socket")?;
        transport
            .start_tls(c, &early, Vec::new())
            .map_err(|e| e.to_string())
    });
    match started {
        Ok(()) => {
            tracing::debug!(client = conn.id, "client switched to TLS");
            if conn.transport.get().is_some_and(|t| t.has_pending_output()) {
                // The handshake's first flight did not fit the socket: the writer sends
                // the rest.
                conn.out_ready.notify_one();
            }
            true
        }
        Err(e) => {
            tracing::info!(
                client = conn.id,
                "TLS with the client failed: {e}; closing it"
            );
            false
        }
    }
}

/// A client's handshake response on a listener that requires TLS, sent in plain: the
/// client gets ERR 3159, as from MySQL, and is closed (whether its login was to be
/// relayed or answered by a script). True when refused.
pub(crate) fn refuse_if_insecure(worker: &Worker, client: &Conn) -> bool {
    if !plain_but_required(client) {
        return false;
    }
    tracing::info!(
        client = client.id,
        "plain client refused: the listener requires TLS"
    );
    let (code, message) = INSECURE_TRANSPORT;
    crate::connector::send_error(client, code, *b"HY000", message.into());
    worker.close(client.id);
    true
}

/// MySQL's ER_SECURE_TRANSPORT_REQUIRED and its message.
pub(crate) const INSECURE_TRANSPORT: (u16, &str) = (
    3159,
    "Connections using insecure transport are prohibited while --require_secure_transport=ON.",
);

/// True when `client`'s listener requires TLS and the client logs in without it.
pub(crate) fn plain_but_required(client: &Conn) -> bool {
    let required = matches!(client.tls.get(), Some(TlsRole::Accept(tls)) if tls.options.require);
    required && !client.transport.get().is_some_and(|t| t.is_tls())
}

/// A greeting a script writes to a client of a listener with TLS offers it, as a
/// relayed one does.
pub(crate) fn offer_in_script_greeting(client: &Conn, payload: &mut [u8]) {
    if matches!(client.tls.get(), Some(TlsRole::Accept(_)))
        && client.tracker.borrow().awaiting_handshake()
    {
        if let Some(at) = greeting_caps_offset(payload) {
            set_bit(&mut payload[at + 1], SSL_BIT_HIGH, true);
        }
    }
}

/// Delivers a greeting (backend → client) or handshake response (client → backend) with
/// the changes of the module docs, then runs the "sent" callback as `deliver` does.
pub(crate) async fn deliver_login_packet(worker: &Worker, from: &Conn, to: &Conn, payload: Bytes) {
    let mut packet = BytesMut::from(&payload[..]);
    match from.role {
        Role::Backend => {
            if !adjust_greeting(worker, from, to, &mut packet) {
                return;
            }
        }
        _ => {
            if !prepare_response(worker, from, to, &mut packet) {
                return;
            }
        }
    }
    crate::forward::deliver(worker, from, to, &packet).await;
}

/// The greeting's `CLIENT_SSL` bit follows what dpm offers the client. False (and both
/// sides closed) when dpm must use TLS towards a server that does not offer it.
fn adjust_greeting(
    worker: &Worker,
    backend: &Conn,
    client: &Conn,
    greeting: &mut BytesMut,
) -> bool {
    let Some(at) = greeting_caps_offset(greeting) else {
        return true; // not a greeting dpm understands: forwarded as it is
    };
    let offered = greeting[at + 1] & SSL_BIT_HIGH != 0;
    if matches!(backend.tls.get(), Some(TlsRole::Connect { .. })) && !offered {
        let message = format!(
            "dpm must use TLS to server {}, which does not offer it",
            backend.target
        );
        refuse_both(worker, client, backend, message);
        return false;
    }
    let offer = matches!(client.tls.get(), Some(TlsRole::Accept(_)));
    set_bit(&mut greeting[at + 1], SSL_BIT_HIGH, offer);
    true
}

/// `CLIENT_SSL` (0x0800) is bit 3 of the capabilities' second byte.
const SSL_BIT_HIGH: u8 = (CLIENT_SSL >> 8) as u8;

fn set_bit(byte: &mut u8, bit: u8, on: bool) {
    if on {
        *byte |= bit;
    } else {
        *byte &= !bit;
    }
}

/// Where the lower capability bytes of a protocol-10 greeting are.
fn greeting_caps_offset(greeting: &[u8]) -> Option<usize> {
    if greeting.first() != Some(&10) {
        return None;
    }
    let nul = greeting[1..].iter().position(|&b| b == 0)? + 1;
    // version NUL, connection id (4), scramble part 1 (8), filler (1)
    let at = nul + 1 + 4 + 8 + 1;
    (greeting.len() >= at + 2).then_some(at)
}

/// Checks a client's handshake response against the listener's `require` and, when dpm
/// talks TLS to the server, sends dpm's own SSLRequest and switches the backend's
/// transport. False (the client closed) when the login cannot go on.
fn prepare_response(
    worker: &Worker,
    client: &Conn,
    backend: &Conn,
    response: &mut BytesMut,
) -> bool {
    if response.len() < SSL_REQUEST_LEN {
        return true; // the tracker already refused short responses; nothing to change
    }
    let Some(TlsRole::Connect { tls, host }) = backend.tls.get() else {
        set_bit(&mut response[1], SSL_BIT_HIGH, false);
        return true;
    };
    set_bit(&mut response[1], SSL_BIT_HIGH, true);
    crate::forward::write_packet(backend, &response[..SSL_REQUEST_LEN]);
    backend.tracker.borrow_mut().resume_after_tls();
    // The SSLRequest must reach the server in plain before any TLS record.
    let unsent = backend.out.borrow_mut().split().to_vec();
    let started = tls.connect(host).map_err(|e| e.to_string()).and_then(|c| {
        let transport = backend.transport.get().ok_or("no socket")?;
        transport
            .start_tls(c, &[], unsent)
            .map_err(|e| e.to_string())
    });
    if let Err(e) = started {
        let message = format!("TLS to server {} failed: {e}", backend.target);
        refuse_both(worker, client, backend, message);
        return false;
    }
    backend.out_ready.notify_one();
    true
}

/// A TLS error ended `conn` (a bad certificate, a failed handshake, a corrupt record):
/// said in the log, and — when a server's TLS failed during the login — to the client
/// waiting for that login, which is closed.
pub(crate) fn report_failure(worker: &Worker, conn: &Conn, error: &std::io::Error) {
    match conn.role {
        Role::Backend => {
            let message = format!("TLS to server {} failed: {error}", conn.target);
            tracing::warn!(backend = conn.id, "{message}");
            if let Some(client) = worker.partner_of(conn) {
                let logging_in = client.tracker.borrow().phase() != crate::tracker::Phase::Ready;
                if logging_in {
                    crate::connector::send_error(
                        &client,
                        crate::connector::BACKEND_UNREACHABLE,
                        *b"HY000",
                        message,
                    );
                    worker.close(client.id);
                }
            }
        }
        _ => {
            tracing::info!(client = conn.id, peer = %conn.target, "TLS with the client failed: {error}")
        }
    }
}

/// The login cannot go on because of TLS towards the server: said in the log and to the
/// client (ERR 1429, as for an unreachable server), and both sides closed.
fn refuse_both(worker: &Worker, client: &Conn, backend: &Conn, message: String) {
    tracing::warn!(backend = backend.id, "{message}");
    crate::connector::send_error(
        client,
        crate::connector::BACKEND_UNREACHABLE,
        *b"HY000",
        message,
    );
    worker.close(client.id);
    worker.close(backend.id);
}
