//! `dpm.auth`: the client's login (handshake response 4.1), reference §7.3.
//!
//! The scramble has no accessor: `dpm.crypt_pass` fills it, `dpm.check_pass` checks it.
//! Extensions over the original: `auth_plugin_name` and `connect_attrs`.

use bytes::{Bytes, BytesMut};
use dpm_protocol::caps::CLIENT_CONNECT_WITH_DB;
use dpm_protocol::{HandshakeResponse41, ProtocolError};
use mlua::{MultiValue, UserData, UserDataFields, UserDataMethods};

use super::accessors::{self as acc, Codec, Lazy};
use super::handshake::{DEFAULT_CAPS, DEFAULT_CHARSET, NATIVE_PASSWORD};

impl Codec for HandshakeResponse41 {
    const WHAT: &'static str = "login packet";
    const LAYOUT_CAPS: u64 = 0;
    fn decode(payload: &Bytes, _caps: u64) -> Result<Self, ProtocolError> {
        HandshakeResponse41::decode(payload)
    }
    /// The layout follows the login's own flags (that is what the server reads), with
    /// `CLIENT_CONNECT_WITH_DB` set exactly when a database is named, as clients do.
    fn encode(&self, dst: &mut BytesMut, _caps: u64) {
        let with_db = self.database.is_some();
        let capabilities = if with_db {
            self.capabilities | CLIENT_CONNECT_WITH_DB
        } else {
            self.capabilities & !CLIENT_CONNECT_WITH_DB
        };
        if capabilities == self.capabilities {
            HandshakeResponse41::encode(self, dst);
        } else {
            HandshakeResponse41 {
                capabilities,
                ..self.clone()
            }
            .encode(dst);
        }
    }
}

/// The `dpm.auth` object.
pub struct AuthObject {
    pub(crate) packet: Lazy<HandshakeResponse41>,
}

impl AuthObject {
    /// The login of `dpm.new_auth_pkt()`: the handshake's default flags, max packet
    /// 16 MiB, collation 33, user `root`, no database, no password until `crypt_pass`.
    pub fn new() -> Self {
        AuthObject {
            packet: Lazy::new(HandshakeResponse41 {
                capabilities: DEFAULT_CAPS,
                max_packet_size: 16_777_216,
                character_set: DEFAULT_CHARSET,
                username: Bytes::from_static(b"root"),
                auth_response: Bytes::new(),
                database: None,
                auth_plugin_name: Some(Bytes::from_static(NATIVE_PASSWORD)),
                connect_attrs: Vec::new(),
                zstd_compression_level: None,
            }),
        }
    }

    /// A login received under `caps`.
    pub fn received(payload: Bytes, caps: u64) -> Self {
        AuthObject {
            packet: Lazy::received(payload, caps),
        }
    }
}

impl Default for AuthObject {
    fn default() -> Self {
        Self::new()
    }
}

impl UserData for AuthObject {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field("__name", "dpm.auth");
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method_mut("client_flags", |lua, this, args: MultiValue| {
            acc::flag_field(lua, &mut this.packet, &args, "client_flags", |p| {
                &mut p.capabilities
            })
        });
        methods.add_method_mut("max_packet_size", |lua, this, args: MultiValue| {
            acc::uint_field(lua, &mut this.packet, &args, "max_packet_size", |p| {
                &mut p.max_packet_size
            })
        });
        methods.add_method_mut("charset_number", |lua, this, args: MultiValue| {
            acc::uint_field(lua, &mut this.packet, &args, "charset_number", |p| {
                &mut p.character_set
            })
        });
        methods.add_method_mut("user", |lua, this, args: MultiValue| {
            acc::bytes_field(
                lua,
                &mut this.packet,
                &args,
                |p| &mut p.username,
                |lua, v| acc::cstring_arg(lua, v, "user", usize::MAX),
            )
        });
        methods.add_method_mut("databasename", |lua, this, args: MultiValue| {
            acc::opt_bytes_field(
                lua,
                &mut this.packet,
                &args,
                |p| &mut p.database,
                |lua, v| acc::cstring_arg(lua, v, "databasename", usize::MAX),
            )
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
        methods.add_method_mut("connect_attrs", |lua, this, args: MultiValue| {
            acc::read_only(lua, &args)?;
            let p = this.packet.value(lua)?;
            let table = lua.create_table_with_capacity(0, p.connect_attrs.len())?;
            for (k, v) in &p.connect_attrs {
                table.raw_set(lua.create_string(k)?, lua.create_string(v)?)?;
            }
            Ok(MultiValue::from_iter([mlua::Value::Table(table)]))
        });
    }
}
