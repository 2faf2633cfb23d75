//! `dpm.field`: a column definition, reference §7.8.
//!
//! `field:name()` returns `(name, type)`; `field:name(str [, type])` rebuilds the
//! definition as the original did (catalog `def`, empty schema/table/org names, type
//! `MYSQL_TYPE_STRING` unless given). Extensions: `db`, `table`, `org_table`, `org_name`,
//! `charset`, `length`, `flags` and `decimals`. Definitions are encoded for the target
//! connection, with MariaDB's extended metadata when it negotiated it (§14.7).

use bytes::{Bytes, BytesMut};
use dpm_protocol::caps::MARIADB_CLIENT_EXTENDED_METADATA;
use dpm_protocol::column_flags::PRI_KEY_FLAG;
use dpm_protocol::{column_type, ColumnDefinition41, ProtocolError};
use mlua::{IntoLuaMulti, Lua, MultiValue, UserData, UserDataFields, UserDataMethods, Value};

use super::accessors::{self as acc, Codec, Lazy};
use super::handshake::DEFAULT_CHARSET;
use crate::errors::raise;

impl Codec for ColumnDefinition41 {
    const WHAT: &'static str = "column definition";
    const LAYOUT_CAPS: u64 = MARIADB_CLIENT_EXTENDED_METADATA;
    fn decode(payload: &Bytes, caps: u64) -> Result<Self, ProtocolError> {
        ColumnDefinition41::decode(payload, caps)
    }
    fn encode(&self, dst: &mut BytesMut, caps: u64) {
        ColumnDefinition41::encode(self, dst, caps)
    }
}

/// The `dpm.field` object.
pub struct FieldObject {
    pub(crate) packet: Lazy<ColumnDefinition41>,
    /// It came from the wire or had `:name()` set: it may be added to a result set and
    /// wired.
    pub(crate) initialized: bool,
}

impl FieldObject {
    /// The field of `dpm.new_field_pkt()`: collation 33 (utf8; the original's 63, binary,
    /// makes clients show the values as hex), length 32, flags PRI_KEY, no decimals, and
    /// no name until `:name()`.
    pub fn new() -> Self {
        FieldObject {
            packet: Lazy::new(ColumnDefinition41 {
                catalog: Bytes::from_static(b"def"),
                character_set: DEFAULT_CHARSET as u16,
                column_length: 32,
                column_type: column_type::STRING,
                flags: PRI_KEY_FLAG,
                ..Default::default()
            }),
            initialized: false,
        }
    }

    /// A column definition received under `caps`.
    pub fn received(payload: Bytes, caps: u64) -> Self {
        FieldObject {
            packet: Lazy::received(payload, caps),
            initialized: true,
        }
    }

    /// The column name (decoding the definition if needed).
    pub(crate) fn name(&mut self, lua: &Lua) -> mlua::Result<Bytes> {
        Ok(self.packet.value(lua)?.name.clone())
    }

    /// The payload for a connection that negotiated `caps`.
    pub(crate) fn payload(&mut self, lua: &Lua, caps: u64) -> mlua::Result<Bytes> {
        if !self.initialized {
            return Err(raise(
                lua,
                "Field has no name: call field:name() before wiring it",
            ));
        }
        self.packet.payload(lua, caps)
    }
}

impl Default for FieldObject {
    fn default() -> Self {
        Self::new()
    }
}

/// `field:name()` / `field:name(str [, type])`.
fn name_accessor(lua: &Lua, this: &mut FieldObject, args: &MultiValue) -> mlua::Result<MultiValue> {
    let Some(name) = args.front() else {
        let initialized = this.initialized;
        let def = this.packet.value(lua)?;
        let name = if initialized {
            Value::String(lua.create_string(&def.name)?)
        } else {
            Value::Nil
        };
        return (name, def.column_type as i64).into_lua_multi(lua);
    };
    let name = acc::bytes_arg(lua, name, "name")?;
    let column_type = match args.get(1) {
        None | Some(Value::Nil) => column_type::STRING,
        Some(v) => acc::uint_arg::<u8>(lua, v, "type")?,
    };
    let def = this.packet.value(lua)?;
    def.catalog = Bytes::from_static(b"def");
    def.schema = Bytes::new();
    def.table = Bytes::new();
    def.org_table = Bytes::new();
    def.org_name = Bytes::new();
    def.name = name;
    def.column_type = column_type;
    this.packet.changed();
    this.initialized = true;
    Ok(acc::none())
}

/// `field:flags()` → the 16-bit value, `field:flags(v)` sets it, `field:flags(FLAG, bool)`
/// sets or clears bits.
fn flags_accessor(
    lua: &Lua,
    this: &mut FieldObject,
    args: &MultiValue,
) -> mlua::Result<MultiValue> {
    if args.len() >= 2 {
        return acc::flag_field(lua, &mut this.packet, args, "flags", |p| &mut p.flags);
    }
    acc::uint_field(lua, &mut this.packet, args, "flags", |p| &mut p.flags)
}

impl UserData for FieldObject {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field("__name", "dpm.field");
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method_mut("name", |lua, this, args: MultiValue| {
            name_accessor(lua, this, &args)
        });
        methods.add_method("full", |_, _, _: MultiValue| Ok(()));
        methods.add_method_mut("db", |lua, this, args: MultiValue| {
            acc::bytes_field(
                lua,
                &mut this.packet,
                &args,
                |p| &mut p.schema,
                |lua, v| acc::bytes_arg(lua, v, "db"),
            )
        });
        methods.add_method_mut("table", |lua, this, args: MultiValue| {
            acc::bytes_field(
                lua,
                &mut this.packet,
                &args,
                |p| &mut p.table,
                |lua, v| acc::bytes_arg(lua, v, "table"),
            )
        });
        methods.add_method_mut("org_table", |lua, this, args: MultiValue| {
            acc::bytes_field(
                lua,
                &mut this.packet,
                &args,
                |p| &mut p.org_table,
                |lua, v| acc::bytes_arg(lua, v, "org_table"),
            )
        });
        methods.add_method_mut("org_name", |lua, this, args: MultiValue| {
            acc::bytes_field(
                lua,
                &mut this.packet,
                &args,
                |p| &mut p.org_name,
                |lua, v| acc::bytes_arg(lua, v, "org_name"),
            )
        });
        methods.add_method_mut("charset", |lua, this, args: MultiValue| {
            acc::uint_field(lua, &mut this.packet, &args, "charset", |p| {
                &mut p.character_set
            })
        });
        methods.add_method_mut("length", |lua, this, args: MultiValue| {
            acc::uint_field(lua, &mut this.packet, &args, "length", |p| {
                &mut p.column_length
            })
        });
        methods.add_method_mut("flags", |lua, this, args: MultiValue| {
            flags_accessor(lua, this, &args)
        });
        methods.add_method_mut("decimals", |lua, this, args: MultiValue| {
            acc::uint_field(lua, &mut this.packet, &args, "decimals", |p| {
                &mut p.decimals
            })
        });
    }
}
