//! `dpm.ok`: the OK packet, reference §7.4.
//!
//! Decoded with the connection's negotiated capabilities (the original read it one byte
//! off, §14.2/3) and encoded for the target's: status and warnings with the 4.1
//! protocol, the info string as a length-encoded string under session tracking, and
//! correct length-encoded integers for any value (§11).

use bytes::{Bytes, BytesMut};
use dpm_protocol::caps::{
    CLIENT_DEPRECATE_EOF, CLIENT_PROTOCOL_41, CLIENT_SESSION_TRACK, CLIENT_TRANSACTIONS,
};
use dpm_protocol::response::EOF_HEADER;
use dpm_protocol::status::SERVER_STATUS_AUTOCOMMIT;
use dpm_protocol::{EofPacket, OkPacket, ProtocolError};
use mlua::{MultiValue, UserData, UserDataFields, UserDataMethods};

use super::accessors::{self as acc, Codec, Lazy};

impl Codec for OkPacket {
    const WHAT: &'static str = "OK packet";
    const LAYOUT_CAPS: u64 =
        CLIENT_PROTOCOL_41 | CLIENT_TRANSACTIONS | CLIENT_SESSION_TRACK | CLIENT_DEPRECATE_EOF;
    fn decode(payload: &Bytes, caps: u64) -> Result<Self, ProtocolError> {
        OkPacket::decode(payload, caps)
    }
    /// An OK standing in for an EOF (header 0xFE) becomes a classic EOF for a target
    /// that did not negotiate `CLIENT_DEPRECATE_EOF`.
    fn encode(&self, dst: &mut BytesMut, caps: u64) {
        if self.header == EOF_HEADER && caps & CLIENT_DEPRECATE_EOF == 0 {
            EofPacket {
                warnings: self.warnings,
                status_flags: self.status_flags,
            }
            .encode(dst, caps);
        } else {
            OkPacket::encode(self, dst, caps);
        }
    }
}

/// The `dpm.ok` object.
pub struct OkObject {
    pub(crate) packet: Lazy<OkPacket>,
}

impl OkObject {
    /// The OK of `dpm.new_ok_pkt()`: all zero, status AUTOCOMMIT, no message.
    pub fn new() -> Self {
        OkObject {
            packet: Lazy::new(OkPacket {
                status_flags: SERVER_STATUS_AUTOCOMMIT,
                ..Default::default()
            }),
        }
    }

    /// An OK received under `caps`.
    pub fn received(payload: Bytes, caps: u64) -> Self {
        OkObject {
            packet: Lazy::received(payload, caps),
        }
    }
}

impl Default for OkObject {
    fn default() -> Self {
        Self::new()
    }
}

impl UserData for OkObject {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field("__name", "dpm.ok");
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        // The header byte: 0, or 0xFE for an OK that ends a result set under
        // CLIENT_DEPRECATE_EOF.
        methods.add_method_mut("field_count", |lua, this, args: MultiValue| {
            acc::uint_ro(lua, &mut this.packet, &args, |p| &mut p.header)
        });
        methods.add_method_mut("affected_rows", |lua, this, args: MultiValue| {
            acc::uint_field(lua, &mut this.packet, &args, "affected_rows", |p| {
                &mut p.affected_rows
            })
        });
        methods.add_method_mut("insert_id", |lua, this, args: MultiValue| {
            acc::uint_field(lua, &mut this.packet, &args, "insert_id", |p| {
                &mut p.last_insert_id
            })
        });
        methods.add_method_mut("server_status", |lua, this, args: MultiValue| {
            acc::flag_field(lua, &mut this.packet, &args, "server_status", |p| {
                &mut p.status_flags
            })
        });
        methods.add_method_mut("warning_count", |lua, this, args: MultiValue| {
            acc::uint_field(lua, &mut this.packet, &args, "warning_count", |p| {
                &mut p.warnings
            })
        });
        methods.add_method_mut("message", |lua, this, args: MultiValue| {
            acc::read_only(lua, &args)?;
            let p = this.packet.value(lua)?;
            acc::lua_bytes(lua, &p.info)
        });
    }
}
