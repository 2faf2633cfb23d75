//! `dpm.err`: the ERR packet, reference §7.5.
//!
//! Sent without the original's trailing NUL (§14.9). An ERR received without the `#`
//! SQL-state marker (errors sent before the greeting) reads as SQL state `HY000` and is
//! re-wired without a marker until a script sets one.

use bytes::{Bytes, BytesMut};
use dpm_protocol::{ErrPacket, ProtocolError};
use mlua::{MultiValue, UserData, UserDataFields, UserDataMethods};

use super::accessors::{self as acc, Codec, Lazy};
use crate::errors::raise;

/// Longest message a script may set (MySQL's `MYSQL_ERRMSG_SIZE` is 512 with the NUL).
const MAX_MESSAGE: usize = 511;

/// The SQL state reported when a packet carries none.
const GENERAL_SQLSTATE: &[u8; 5] = b"HY000";

impl Codec for ErrPacket {
    const WHAT: &'static str = "ERR packet";
    const LAYOUT_CAPS: u64 = 0;
    fn decode(payload: &Bytes, _caps: u64) -> Result<Self, ProtocolError> {
        ErrPacket::decode(payload)
    }
    fn encode(&self, dst: &mut BytesMut, _caps: u64) {
        ErrPacket::encode(self, dst)
    }
}

/// The `dpm.err` object.
pub struct ErrObject {
    pub(crate) packet: Lazy<ErrPacket>,
}

impl ErrObject {
    /// The ERR of `dpm.new_err_pkt()`: 1045, `28000`,
    /// `Access denied for user 'whatever'@'whatever'`.
    pub fn new() -> Self {
        ErrObject {
            packet: Lazy::new(ErrPacket::new(
                1045,
                *b"28000",
                Bytes::from_static(b"Access denied for user 'whatever'@'whatever'"),
            )),
        }
    }

    /// An ERR received under `caps`.
    pub fn received(payload: Bytes, caps: u64) -> Self {
        ErrObject {
            packet: Lazy::received(payload, caps),
        }
    }
}

impl Default for ErrObject {
    fn default() -> Self {
        Self::new()
    }
}

impl UserData for ErrObject {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field("__name", "dpm.err");
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("field_count", |lua, _, args: MultiValue| {
            acc::read_only(lua, &args)?;
            Ok(0xFF)
        });
        methods.add_method_mut("errnum", |lua, this, args: MultiValue| {
            acc::uint_field(lua, &mut this.packet, &args, "errnum", |p| &mut p.code)
        });
        methods.add_method_mut("sqlstate", |lua, this, args: MultiValue| {
            let p = this.packet.value(lua)?;
            match args.front() {
                None => acc::lua_bytes(lua, p.sql_state.as_ref().unwrap_or(GENERAL_SQLSTATE)),
                Some(v) => {
                    let s = acc::bytes_arg(lua, v, "sqlstate")?;
                    let state: [u8; 5] = s[..].try_into().map_err(|_| {
                        raise(
                            lua,
                            format!("sqlstate must be exactly 5 characters, got {}", s.len()),
                        )
                    })?;
                    p.sql_state = Some(state);
                    this.packet.changed();
                    Ok(acc::none())
                }
            }
        });
        methods.add_method_mut("message", |lua, this, args: MultiValue| {
            acc::bytes_field(
                lua,
                &mut this.packet,
                &args,
                |p| &mut p.message,
                |lua, v| {
                    let s = acc::bytes_arg(lua, v, "message")?;
                    if s.len() > MAX_MESSAGE {
                        return Err(raise(
                            lua,
                            format!(
                                "message is too long: {} bytes (at most {MAX_MESSAGE})",
                                s.len()
                            ),
                        ));
                    }
                    Ok(s)
                },
            )
        });
    }
}
