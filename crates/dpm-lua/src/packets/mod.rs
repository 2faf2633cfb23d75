//! Packet objects (reference §7): the Lua userdata a callback receives for a packet, and
//! the `dpm.new_*_pkt` constructors, `wire_packet`, `check_pass` and `crypt_pass`.
//!
//! One file per object type; [`accessors`] holds the calling convention they share and
//! [`wire`] the functions that take objects. Received packets are wrapped without being
//! decoded: an object decodes on its first accessor call and re-encodes only when a
//! field changed or the target connection needs another layout. Every wire format is
//! `dpm-protocol`'s; this module only maps it to Lua.

pub mod accessors;
pub mod auth;
pub mod cmd;
pub mod eof;
pub mod err;
pub mod field;
pub mod handshake;
pub mod ok;
pub mod row;
pub mod rset;
pub mod wire;

use std::rc::Rc;

use bytes::Bytes;
use dpm_engine::tracker::PacketKind;
use dpm_engine::Packet;
use dpm_engine::{ConnId, Event};
use dpm_protocol::response::{EOF_HEADER, ERR_HEADER, OK_HEADER};
use mlua::{IntoLua, Lua, Table, Value};

use crate::callbacks::PackageObject;
use crate::host::Host;

pub use auth::AuthObject;
pub use cmd::CmdObject;
pub use eof::EofObject;
pub use err::ErrObject;
pub use field::FieldObject;
pub use handshake::HandshakeObject;
pub use ok::OkObject;
pub use row::RowObject;
pub use rset::RsetObject;

/// Registers on the `dpm` table: new_handshake_pkt, new_auth_pkt, new_ok_pkt, new_err_pkt,
/// new_cmd_pkt, new_rset_pkt, new_field_pkt, new_row_pkt, new_eof_pkt, new_callback,
/// wire_packet(conn, pkt), check_pass(auth, handshake, hex_hash) and
/// crypt_pass(auth, handshake, plaintext).
pub fn register(lua: &Lua, dpm: &Table, host: &Rc<Host>) -> mlua::Result<()> {
    dpm.set(
        "new_handshake_pkt",
        lua.create_function(|_, ()| Ok(HandshakeObject::new()))?,
    )?;
    dpm.set(
        "new_auth_pkt",
        lua.create_function(|_, ()| Ok(AuthObject::new()))?,
    )?;
    dpm.set(
        "new_ok_pkt",
        lua.create_function(|_, ()| Ok(OkObject::new()))?,
    )?;
    dpm.set(
        "new_err_pkt",
        lua.create_function(|_, ()| Ok(ErrObject::new()))?,
    )?;
    dpm.set(
        "new_cmd_pkt",
        lua.create_function(|_, ()| Ok(CmdObject::new()))?,
    )?;
    dpm.set(
        "new_rset_pkt",
        lua.create_function(|_, ()| Ok(RsetObject::new()))?,
    )?;
    dpm.set(
        "new_field_pkt",
        lua.create_function(|_, ()| Ok(FieldObject::new()))?,
    )?;
    dpm.set(
        "new_row_pkt",
        lua.create_function(|_, ()| Ok(RowObject::new()))?,
    )?;
    dpm.set(
        "new_eof_pkt",
        lua.create_function(|_, ()| Ok(EofObject::new()))?,
    )?;
    let h = host.clone();
    dpm.set(
        "new_callback",
        lua.create_function(move |_, ()| {
            Ok(PackageObject {
                package: Default::default(),
                registry: h.callbacks.clone(),
            })
        })?,
    )?;
    let h = host.clone();
    dpm.set(
        "wire_packet",
        lua.create_function(move |lua, (conn, pkt): (Value, Value)| {
            wire::wire_packet(lua, &h, conn, pkt)
        })?,
    )?;
    dpm.set(
        "check_pass",
        lua.create_function(|lua, (auth, hs, hash): (Value, Value, Value)| {
            wire::check_pass(lua, auth, hs, hash)
        })?,
    )?;
    dpm.set(
        "crypt_pass",
        lua.create_function(|lua, (auth, hs, pw): (Value, Value, Value)| {
            wire::crypt_pass(lua, auth, hs, pw)
        })?,
    )?;
    Ok(())
}

/// The Lua object for a packet received on connection `conn` that raised `event` (the
/// payload is one whole logical packet). Nothing is decoded yet.
pub fn to_lua(host: &Host, conn: ConnId, event: Event, packet: Packet) -> mlua::Result<Value> {
    let caps = accessors::effective_caps(host.worker.negotiated_caps(conn));
    match packet.kind {
        // Under CLIENT_DEPRECATE_EOF a prepare response ends with its last definition,
        // which then raises ResponseEnded (MYS_WAIT_CMD): it is still a column definition.
        PacketKind::ColumnDef | PacketKind::ParamDef => {
            FieldObject::received(packet.payload, caps).into_lua(&host.lua)
        }
        // A COM_STMT_PREPARE OK (it ends the response when there are no parameters
        // and no columns) has no object of its own: its raw bytes.
        PacketKind::PrepareOk => RowObject::received(packet.payload).into_lua(&host.lua),
        _ => object_for(&host.lua, event, packet.payload, caps),
    }
}

/// Which object a packet becomes, by the event it raised (and, where the event allows
/// several packets, its first byte).
fn object_for(lua: &Lua, event: Event, payload: Bytes, caps: u64) -> mlua::Result<Value> {
    let first = payload.first().copied();
    match event {
        Event::ServerGreeting if first == Some(ERR_HEADER) => {
            ErrObject::received(payload, caps).into_lua(lua)
        }
        Event::ServerGreeting => HandshakeObject::received(payload, caps).into_lua(lua),
        // Both events of MYC_WAITING, as the original decoded by state.
        Event::ClientSentLogin | Event::ClientGotServerPacket => {
            AuthObject::received(payload, caps).into_lua(lua)
        }
        Event::ClientSentCommand => CmdObject::received(payload, caps).into_lua(lua),
        Event::ResultSetHeader => RsetObject::received(payload, caps).into_lua(lua),
        Event::ColumnDefinition | Event::ParamDefinition => {
            FieldObject::received(payload, caps).into_lua(lua)
        }
        Event::Row => RowObject::received(payload).into_lua(lua),
        Event::ColumnsEnded | Event::ParamsEnded => {
            EofObject::received(payload, caps).into_lua(lua)
        }
        Event::ServerError => ErrObject::received(payload, caps).into_lua(lua),
        Event::ResponseEnded | Event::MoreResults => match first {
            Some(OK_HEADER) => OkObject::received(payload, caps).into_lua(lua),
            // A classic EOF is 5 bytes; a longer 0xFE packet is an OK that ends a result
            // set under CLIENT_DEPRECATE_EOF.
            Some(EOF_HEADER) if payload.len() <= 5 => {
                EofObject::received(payload, caps).into_lua(lua)
            }
            Some(EOF_HEADER) => OkObject::received(payload, caps).into_lua(lua),
            // COM_STATISTICS text and anything else without an object.
            _ => RowObject::received(payload).into_lua(lua),
        },
        _ => RowObject::received(payload).into_lua(lua),
    }
}

#[cfg(test)]
mod tests;
