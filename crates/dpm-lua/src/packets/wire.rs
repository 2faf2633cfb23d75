//! `dpm.wire_packet`, `dpm.check_pass` and `dpm.crypt_pass` (reference §3.1, §3.2, §8).
//!
//! `wire_packet` encodes a packet object for the capabilities the target connection
//! negotiated and hands it to the engine, which assigns the sequence id (0 for commands)
//! and splits large payloads. The object is not consumed: it can be edited and wired
//! again.

use bytes::Bytes;
use dpm_engine::tracker::EofStyle;
use dpm_engine::ConnId;
use dpm_protocol::scramble::{
    native_password_token, native_password_verify, parse_stored_hash_hex,
};
use mlua::{AnyUserData, Lua, UserDataRefMut, Value};

use super::accessors::{describe, effective_caps};
use super::auth::AuthObject;
use super::cmd::CmdObject;
use super::eof::EofObject;
use super::err::ErrObject;
use super::field::FieldObject;
use super::handshake::{HandshakeObject, NATIVE_PASSWORD};
use super::ok::OkObject;
use super::row::RowObject;
use super::rset::RsetObject;
use crate::errors::raise;
use crate::host::Host;

/// The payload of packet object `ud` for a connection that negotiated `caps` (0: nothing
/// yet). `eof_style` is asked only for a `dpm.eof`; `None` means "write nothing".
pub(crate) fn encode(
    lua: &Lua,
    ud: &AnyUserData,
    caps: u64,
    eof_style: impl FnOnce() -> EofStyle,
) -> mlua::Result<Option<Bytes>> {
    let caps = effective_caps(caps);
    if ud.is::<EofObject>() {
        return ud
            .borrow_mut::<EofObject>()?
            .payload(lua, caps, eof_style());
    }
    if ud.is::<RowObject>() {
        return Ok(Some(ud.borrow::<RowObject>()?.payload.clone()));
    }
    if ud.is::<FieldObject>() {
        return ud.borrow_mut::<FieldObject>()?.payload(lua, caps).map(Some);
    }
    macro_rules! lazy {
        ($($t:ty),*) => {$(
            if ud.is::<$t>() {
                return ud.borrow_mut::<$t>()?.packet.payload(lua, caps).map(Some);
            }
        )*};
    }
    lazy!(
        HandshakeObject,
        AuthObject,
        OkObject,
        ErrObject,
        CmdObject,
        RsetObject
    );
    Err(not_a_packet(lua, &Value::UserData(ud.clone())))
}

/// True when `ud` is one of the packet objects.
fn is_packet(ud: &AnyUserData) -> bool {
    ud.is::<HandshakeObject>()
        || ud.is::<AuthObject>()
        || ud.is::<OkObject>()
        || ud.is::<ErrObject>()
        || ud.is::<CmdObject>()
        || ud.is::<RsetObject>()
        || ud.is::<FieldObject>()
        || ud.is::<RowObject>()
        || ud.is::<EofObject>()
}

fn not_a_packet(lua: &Lua, value: &Value) -> mlua::Error {
    let got = match value {
        Value::UserData(ud) => ud
            .metatable()
            .and_then(|m| m.get::<String>("__name"))
            .unwrap_or_else(|_| "userdata".to_string()),
        other => describe(other).to_string(),
    };
    raise(lua, format!("Arg 2 must be a packet object (dpm.handshake, dpm.auth, dpm.ok, dpm.err, dpm.cmd, dpm.rset, dpm.field, dpm.row or dpm.eof), got {got}"))
}

/// `dpm.wire_packet(conn, pkt)`.
pub(crate) fn wire_packet(lua: &Lua, host: &Host, conn: Value, pkt: Value) -> mlua::Result<()> {
    let (id, _) = crate::functions::conn_arg(lua, &conn, "Arg 1")?;
    let ud = match &pkt {
        Value::UserData(ud) if is_packet(ud) => ud,
        _ => return Err(not_a_packet(lua, &pkt)),
    };
    if !host.worker.is_alive(id) {
        return Err(raise(lua, "Cannot write to invalid connection"));
    }
    let payload = encode(lua, ud, host.worker.negotiated_caps(id), || {
        host.worker.take_eof_style(id)
    })?;
    match payload {
        Some(payload) => write(lua, host, id, &payload),
        None => Ok(()),
    }
}

fn write(lua: &Lua, host: &Host, id: ConnId, payload: &[u8]) -> mlua::Result<()> {
    host.worker
        .wire(id, payload)
        .map_err(|_| raise(lua, "Cannot write to invalid connection"))
}

/// Borrows argument `n` as object type `T` named `name`.
fn object_arg<T: 'static>(
    lua: &Lua,
    value: &Value,
    n: u8,
    name: &str,
) -> mlua::Result<UserDataRefMut<T>> {
    match value {
        Value::UserData(ud) if ud.is::<T>() => ud.borrow_mut::<T>(),
        other => Err(raise(
            lua,
            format!("Arg {n} must be a {name} object, got {}", describe(other)),
        )),
    }
}

/// `dpm.check_pass(auth, handshake, stored_hash_hex)`: 0 when the login's scramble
/// matches the password whose `SHA1(SHA1(pw))` is given as 40 hex digits (either case,
/// with or without the leading `*`), 1 otherwise. An empty scramble never matches.
pub(crate) fn check_pass(
    lua: &Lua,
    auth: Value,
    handshake: Value,
    hash: Value,
) -> mlua::Result<i64> {
    let mut auth = object_arg::<AuthObject>(lua, &auth, 1, "dpm.auth")?;
    let mut handshake = object_arg::<HandshakeObject>(lua, &handshake, 2, "dpm.handshake")?;
    let stored = match &hash {
        Value::String(s) => s.to_str().ok().and_then(|s| parse_stored_hash_hex(&s)),
        _ => None,
    };
    let Some(stored) = stored else {
        return Err(raise(
            lua,
            "Arg 3 must be a password hash: 40 hex digits of SHA1(SHA1(password)), optionally after '*'",
        ));
    };
    let nonce = handshake.packet.value(lua)?.auth_plugin_data.clone();
    let token = &auth.packet.value(lua)?.auth_response;
    Ok(if native_password_verify(token, &nonce, &stored) {
        0
    } else {
        1
    })
}

/// `dpm.crypt_pass(auth, handshake, plaintext)`: stores the `mysql_native_password`
/// scramble of `plaintext` for the handshake's nonce in the login (empty for an empty
/// password, as MySQL clients send it) and names that plugin.
pub(crate) fn crypt_pass(
    lua: &Lua,
    auth: Value,
    handshake: Value,
    password: Value,
) -> mlua::Result<()> {
    let mut auth = object_arg::<AuthObject>(lua, &auth, 1, "dpm.auth")?;
    let mut handshake = object_arg::<HandshakeObject>(lua, &handshake, 2, "dpm.handshake")?;
    let password = match &password {
        Value::String(s) => s.as_bytes().to_vec(),
        other => {
            return Err(raise(
                lua,
                format!("Arg 3 must be a string, got {}", describe(other)),
            ))
        }
    };
    let nonce = handshake.packet.value(lua)?.auth_plugin_data.clone();
    let login = auth.packet.value(lua)?;
    login.auth_response = native_password_token(&password, &nonce).into();
    login.auth_plugin_name = Some(Bytes::from_static(NATIVE_PASSWORD));
    auth.packet.changed();
    Ok(())
}
