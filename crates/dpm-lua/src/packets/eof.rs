//! `dpm.eof`: the EOF packet that ends column definitions and rows, reference §7.10.
//!
//! What a wired EOF looks like depends on the target connection (see
//! `dpm_engine::tracker::EofStyle`): a classic 5-byte EOF, an OK with the 0xFE header
//! under `CLIENT_DEPRECATE_EOF`, or nothing at all where that capability drops the EOF
//! after column definitions. A received OK-as-EOF also becomes a `dpm.eof` where the
//! protocol state says "EOF", with its warnings and status.

use bytes::{Bytes, BytesMut};
use dpm_engine::tracker::EofStyle;
use dpm_protocol::caps::{CLIENT_DEPRECATE_EOF, CLIENT_PROTOCOL_41};
use dpm_protocol::response::EOF_HEADER;
use dpm_protocol::{EofPacket, OkPacket, ProtocolError};
use mlua::{Lua, MultiValue, UserData, UserDataFields, UserDataMethods};

use super::accessors::{self as acc, Codec, Lazy};

/// Longest classic EOF payload (header, warnings, status).
const CLASSIC_EOF_LEN: usize = 5;

impl Codec for EofPacket {
    const WHAT: &'static str = "EOF packet";
    const LAYOUT_CAPS: u64 = CLIENT_PROTOCOL_41 | CLIENT_DEPRECATE_EOF;
    fn decode(payload: &Bytes, caps: u64) -> Result<Self, ProtocolError> {
        if payload.len() <= CLASSIC_EOF_LEN {
            EofPacket::decode(payload, caps)
        } else {
            let ok = OkPacket::decode(payload, caps | CLIENT_PROTOCOL_41)?;
            Ok(EofPacket {
                warnings: ok.warnings,
                status_flags: ok.status_flags,
            })
        }
    }
    fn encode(&self, dst: &mut BytesMut, caps: u64) {
        EofPacket::encode(self, dst, caps)
    }
}

/// The `dpm.eof` object.
pub struct EofObject {
    pub(crate) packet: Lazy<EofPacket>,
}

impl EofObject {
    /// The EOF of `dpm.new_eof_pkt()`: no warnings, status 0 (as the original: not even
    /// AUTOCOMMIT).
    pub fn new() -> Self {
        EofObject {
            packet: Lazy::new(EofPacket::default()),
        }
    }

    /// An EOF (or OK-as-EOF) received under `caps`.
    pub fn received(payload: Bytes, caps: u64) -> Self {
        EofObject {
            packet: Lazy::received(payload, caps),
        }
    }

    /// The payload to write in `style` to a connection that negotiated `caps`; `None`
    /// when nothing must be written.
    pub(crate) fn payload(
        &mut self,
        lua: &Lua,
        caps: u64,
        style: EofStyle,
    ) -> mlua::Result<Option<Bytes>> {
        match style {
            EofStyle::Omit => Ok(None),
            EofStyle::Classic => self
                .packet
                .payload(lua, caps & !CLIENT_DEPRECATE_EOF)
                .map(Some),
            EofStyle::OkAsEof => {
                let eof = *self.packet.value(lua)?;
                let ok = OkPacket {
                    header: EOF_HEADER,
                    status_flags: eof.status_flags,
                    warnings: eof.warnings,
                    ..Default::default()
                };
                let mut dst = BytesMut::new();
                ok.encode(&mut dst, caps | CLIENT_PROTOCOL_41);
                Ok(Some(dst.freeze()))
            }
        }
    }
}

impl Default for EofObject {
    fn default() -> Self {
        Self::new()
    }
}

impl UserData for EofObject {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field("__name", "dpm.eof");
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method_mut("warning_count", |lua, this, args: MultiValue| {
            acc::uint_field(lua, &mut this.packet, &args, "warning_count", |p| {
                &mut p.warnings
            })
        });
        methods.add_method_mut("server_status", |lua, this, args: MultiValue| {
            acc::flag_field(lua, &mut this.packet, &args, "server_status", |p| {
                &mut p.status_flags
            })
        });
    }
}
