//! `dpm.handshake`: the server greeting (protocol 10), reference §7.2.
//!
//! A greeting received from a server keeps every field, including the upper and MariaDB
//! extended capability bits and the auth plugin name, so re-wiring it after an edit
//! changes only what was edited (the original lost those, §14.6). One built with
//! `dpm.new_handshake_pkt()` offers `mysql_native_password`, which the proxy can check
//! with `dpm.check_pass`.

use bytes::{Bytes, BytesMut};
use dpm_protocol::caps::{
    CLIENT_CONNECT_WITH_DB, CLIENT_LONG_FLAG, CLIENT_LONG_PASSWORD, CLIENT_PLUGIN_AUTH,
    CLIENT_PROTOCOL_41, CLIENT_SECURE_CONNECTION, CLIENT_TRANSACTIONS,
};
use dpm_protocol::status::SERVER_STATUS_AUTOCOMMIT;
use dpm_protocol::{HandshakeV10, ProtocolError};
use mlua::{MultiValue, UserData, UserDataFields, UserDataMethods};
use rand::Rng;

use super::accessors::{self as acc, Codec, Lazy};

/// Capabilities of a greeting built by `dpm.new_handshake_pkt()` (and of a login built by
/// `dpm.new_auth_pkt()`): the original's 0xA20D plus `CLIENT_PLUGIN_AUTH`, so that modern
/// clients (MariaDB Connector/C, libmysqlclient 8) are told the plugin to use.
pub const DEFAULT_CAPS: u64 = CLIENT_LONG_PASSWORD
    | CLIENT_LONG_FLAG
    | CLIENT_CONNECT_WITH_DB
    | CLIENT_PROTOCOL_41
    | CLIENT_TRANSACTIONS
    | CLIENT_SECURE_CONNECTION
    | CLIENT_PLUGIN_AUTH;

/// Default collation of built packets: 33, `utf8_general_ci`. The original used 8
/// (latin1); clients today expect UTF-8 and show latin1 text from a UTF-8 source wrongly.
pub const DEFAULT_CHARSET: u8 = 33;

/// The auth plugin dpm's password helpers implement.
pub const NATIVE_PASSWORD: &[u8] = b"mysql_native_password";

/// Longest server version a script may set (MySQL's `SERVER_VERSION_LENGTH` is 60 with
/// the NUL).
const MAX_SERVER_VERSION: usize = 59;

impl Codec for HandshakeV10 {
    const WHAT: &'static str = "handshake packet";
    const LAYOUT_CAPS: u64 = 0;
    fn decode(payload: &Bytes, _caps: u64) -> Result<Self, ProtocolError> {
        HandshakeV10::decode(payload)
    }
    fn encode(&self, dst: &mut BytesMut, _caps: u64) {
        HandshakeV10::encode(self, dst)
    }
}

/// A fresh 20-byte nonce of printable bytes 33..=126 (never NUL, which would end the
/// second part on the wire).
pub fn random_nonce() -> Bytes {
    let mut rng = rand::thread_rng();
    (0..20)
        .map(|_| rng.gen_range(33u8..=126))
        .collect::<Vec<u8>>()
        .into()
}

/// The `dpm.handshake` object.
pub struct HandshakeObject {
    pub(crate) packet: Lazy<HandshakeV10>,
}

impl HandshakeObject {
    /// The greeting of `dpm.new_handshake_pkt()`: protocol 10, version `5.0.37` (the
    /// original's), thread id 1, collation 33, AUTOCOMMIT, [`DEFAULT_CAPS`], a random
    /// nonce and the `mysql_native_password` plugin.
    pub fn new() -> Self {
        HandshakeObject {
            packet: Lazy::new(HandshakeV10 {
                protocol_version: 10,
                server_version: Bytes::from_static(b"5.0.37"),
                connection_id: 1,
                auth_plugin_data: random_nonce(),
                capabilities: DEFAULT_CAPS,
                character_set: DEFAULT_CHARSET,
                status_flags: SERVER_STATUS_AUTOCOMMIT,
                auth_plugin_name: Some(Bytes::from_static(NATIVE_PASSWORD)),
            }),
        }
    }

    /// A greeting received under `caps`.
    pub fn received(payload: Bytes, caps: u64) -> Self {
        HandshakeObject {
            packet: Lazy::received(payload, caps),
        }
    }
}

impl Default for HandshakeObject {
    fn default() -> Self {
        Self::new()
    }
}

impl UserData for HandshakeObject {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field("__name", "dpm.handshake");
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method_mut("protocol_version", |lua, this, args: MultiValue| {
            acc::uint_field(lua, &mut this.packet, &args, "protocol_version", |p| {
                &mut p.protocol_version
            })
        });
        methods.add_method_mut("server_version", |lua, this, args: MultiValue| {
            acc::bytes_field(
                lua,
                &mut this.packet,
                &args,
                |p| &mut p.server_version,
                |lua, v| acc::cstring_arg(lua, v, "server_version", MAX_SERVER_VERSION),
            )
        });
        methods.add_method_mut("thread_id", |lua, this, args: MultiValue| {
            acc::uint_field(lua, &mut this.packet, &args, "thread_id", |p| {
                &mut p.connection_id
            })
        });
        methods.add_method_mut("scramble_buff", |lua, this, args: MultiValue| {
            acc::read_only(lua, &args)?;
            let p = this.packet.value(lua)?;
            acc::lua_bytes(lua, &p.auth_plugin_data)
        });
        methods.add_method_mut("server_capabilities", |lua, this, args: MultiValue| {
            acc::flag_field(lua, &mut this.packet, &args, "server_capabilities", |p| {
                &mut p.capabilities
            })
        });
        methods.add_method_mut("server_language", |lua, this, args: MultiValue| {
            acc::uint_field(lua, &mut this.packet, &args, "server_language", |p| {
                &mut p.character_set
            })
        });
        methods.add_method_mut("server_status", |lua, this, args: MultiValue| {
            acc::flag_field(lua, &mut this.packet, &args, "server_status", |p| {
                &mut p.status_flags
            })
        });
        methods.add_method_mut("auth_plugin_name", |lua, this, args: MultiValue| {
            acc::opt_bytes_field(
                lua,
                &mut this.packet,
                &args,
                |p| &mut p.auth_plugin_name,
                |lua, v| acc::cstring_arg(lua, v, "auth_plugin_name", 255),
            )
        });
    }
}
