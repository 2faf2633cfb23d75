//! `dpm.rset`: the result-set header (column count) and the "magic" accessors that pack
//! and parse rows against the fields a script added, reference §7.7.
//!
//! Fixed from the original: `remove_field` drops the right reference, `pack_row` maps nil
//! to SQL NULL, `parse_row_array` is 1-based, and length-encoded values of any size work.

use bytes::{Bytes, BytesMut};
use dpm_protocol::caps::MARIADB_CLIENT_CACHE_METADATA;
use dpm_protocol::lenenc::{get_lenenc_str, put_lenenc_opt_str};
use dpm_protocol::{ColumnCount, ProtocolError};
use mlua::{
    AnyUserData, IntoLuaMulti, Lua, MultiValue, Table, UserData, UserDataFields, UserDataMethods,
    Value,
};

use super::accessors::{self as acc, Codec, Lazy};
use super::field::FieldObject;
use super::row::RowObject;
use crate::errors::raise;

/// Most columns a script may declare (the original's cap; MySQL's limit is 4096).
pub const MAX_FIELDS: u64 = 32768;

impl Codec for ColumnCount {
    const WHAT: &'static str = "column count packet";
    const LAYOUT_CAPS: u64 = dpm_protocol::caps::CLIENT_OPTIONAL_RESULTSET_METADATA;
    /// MariaDB's `MARIADB_CLIENT_CACHE_METADATA` adds the metadata byte only to binary
    /// (prepared statement) result sets; this object is the text result set's header.
    fn decode(payload: &Bytes, caps: u64) -> Result<Self, ProtocolError> {
        ColumnCount::decode(payload, caps & !MARIADB_CLIENT_CACHE_METADATA)
    }
    fn encode(&self, dst: &mut BytesMut, caps: u64) {
        ColumnCount::encode(self, dst, caps & !MARIADB_CLIENT_CACHE_METADATA)
    }
}

/// The `dpm.rset` object.
pub struct RsetObject {
    pub(crate) packet: Lazy<ColumnCount>,
    /// The fields added with `add_field`, in order (references keep them alive).
    fields: Vec<AnyUserData>,
}

impl RsetObject {
    /// The header of `dpm.new_rset_pkt()`: no columns.
    pub fn new() -> Self {
        RsetObject {
            packet: Lazy::new(ColumnCount::default()),
            fields: Vec::new(),
        }
    }

    /// A column count received under `caps`.
    pub fn received(payload: Bytes, caps: u64) -> Self {
        RsetObject {
            packet: Lazy::received(payload, caps),
            fields: Vec::new(),
        }
    }

    fn field_count(&mut self, lua: &Lua) -> mlua::Result<u64> {
        Ok(self.packet.value(lua)?.count)
    }

    fn set_field_count(&mut self, lua: &Lua, count: u64) -> mlua::Result<()> {
        let packet = self.packet.value(lua)?;
        packet.count = count;
        if packet.metadata_follows.is_some() {
            packet.metadata_follows = Some(true);
        }
        self.packet.changed();
        Ok(())
    }
}

impl Default for RsetObject {
    fn default() -> Self {
        Self::new()
    }
}

/// `rset:field_count()` / `rset:field_count(n)`: a count above [`MAX_FIELDS`] is capped;
/// shrinking below the number of added fields drops the extra ones.
fn field_count(lua: &Lua, this: &mut RsetObject, args: &MultiValue) -> mlua::Result<MultiValue> {
    let Some(n) = args.front() else {
        return (this.field_count(lua)? as i64).into_lua_multi(lua);
    };
    let n = acc::integer(lua, n, "field_count")?;
    let n = u64::try_from(n)
        .map_err(|_| raise(lua, format!("field_count must not be negative, got {n}")))?;
    let n = n.min(MAX_FIELDS);
    this.set_field_count(lua, n)?;
    this.fields.truncate(n as usize);
    Ok(acc::none())
}

fn add_field(lua: &Lua, this: &mut RsetObject, args: &MultiValue) -> mlua::Result<MultiValue> {
    let field = match args.front() {
        Some(Value::UserData(ud)) if ud.is::<FieldObject>() => ud.clone(),
        other => {
            let got = other.map_or("nothing", acc::describe);
            return Err(raise(
                lua,
                format!("add_field needs a dpm.field object, got {got}"),
            ));
        }
    };
    if !field.borrow::<FieldObject>()?.initialized {
        return Err(raise(lua, "Must use initialized field object"));
    }
    if this.fields.len() as u64 >= MAX_FIELDS {
        return Err(raise(
            lua,
            format!("a result set holds at most {MAX_FIELDS} fields"),
        ));
    }
    this.fields.push(field);
    let total = this.fields.len() as u64;
    if this.field_count(lua)? < total {
        this.set_field_count(lua, total)?;
    }
    Ok(acc::none())
}

/// The row argument of `pack_row` / `parse_row_*`.
fn row_arg(lua: &Lua, value: Option<&Value>, method: &str) -> mlua::Result<AnyUserData> {
    match value {
        Some(Value::UserData(ud)) if ud.is::<RowObject>() => Ok(ud.clone()),
        other => {
            let got = other.map_or("nothing", acc::describe);
            Err(raise(
                lua,
                format!("{method} needs a dpm.row object as first argument, got {got}"),
            ))
        }
    }
}

/// One column value as text, by Lua's `tostring` rules (numbers as Lua prints them,
/// `__tostring` honoured); nil is SQL NULL.
fn column_text(lua: &Lua, value: &Value) -> mlua::Result<Option<Bytes>> {
    match value {
        Value::Nil => Ok(None),
        Value::String(s) => Ok(Some(Bytes::copy_from_slice(&s.as_bytes()))),
        Value::Integer(_) | Value::Number(_) => match lua.coerce_string(value.clone())? {
            Some(s) => Ok(Some(Bytes::copy_from_slice(&s.as_bytes()))),
            None => Ok(Some(Bytes::from(value.to_string()?))),
        },
        other => Ok(Some(Bytes::from(other.to_string()?))),
    }
}

fn pack_row(lua: &Lua, this: &mut RsetObject, args: &MultiValue) -> mlua::Result<MultiValue> {
    let row = row_arg(lua, args.front(), "pack_row")?;
    let count = this.field_count(lua)?;
    let values = args.len().saturating_sub(1);
    if values as u64 != count {
        return Err(raise(
            lua,
            format!("Number of provided columns does not match the field number: {count}"),
        ));
    }
    let mut dst = BytesMut::new();
    for value in args.iter().skip(1) {
        put_lenenc_opt_str(&mut dst, column_text(lua, value)?.as_deref());
    }
    row.borrow_mut::<RowObject>()?.payload = dst.freeze();
    Ok(acc::none())
}

/// Decodes one value per added field from `row`, calling `store(index, value)`.
fn parse_row(
    lua: &Lua,
    this: &RsetObject,
    args: &MultiValue,
    method: &str,
    mut store: impl FnMut(usize, &[u8]) -> mlua::Result<()>,
) -> mlua::Result<()> {
    let row = row_arg(lua, args.front(), method)?;
    let payload = row.borrow::<RowObject>()?.payload.clone();
    let mut buf: &[u8] = &payload;
    for i in 0..this.fields.len() {
        if buf.is_empty() {
            return Err(raise(lua, "There are more fields defined than row data!"));
        }
        match get_lenenc_str(&mut buf) {
            Ok(Some(value)) => store(i, value)?,
            Ok(None) => {}
            Err(ProtocolError::Truncated { .. }) => {
                return Err(raise(lua, "There are more fields defined than row data!"));
            }
            Err(e) => return Err(raise(lua, format!("cannot decode the row: {e}"))),
        }
    }
    Ok(())
}

fn parse_row_array(lua: &Lua, this: &RsetObject, args: &MultiValue) -> mlua::Result<Table> {
    let table = lua.create_table_with_capacity(this.fields.len(), 0)?;
    parse_row(lua, this, args, "parse_row_array", |i, value| {
        table.raw_set(i + 1, lua.create_string(value)?)
    })?;
    Ok(table)
}

fn parse_row_table(lua: &Lua, this: &RsetObject, args: &MultiValue) -> mlua::Result<Table> {
    let table = lua.create_table_with_capacity(0, this.fields.len())?;
    parse_row(lua, this, args, "parse_row_table", |i, value| {
        let name = this.fields[i].borrow_mut::<FieldObject>()?.name(lua)?;
        table.raw_set(lua.create_string(&name)?, lua.create_string(value)?)
    })?;
    Ok(table)
}

impl UserData for RsetObject {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field("__name", "dpm.rset");
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method_mut("field_count", |lua, this, args: MultiValue| {
            field_count(lua, this, &args)
        });
        methods.add_method_mut("add_field", |lua, this, args: MultiValue| {
            add_field(lua, this, &args)
        });
        methods.add_method_mut("remove_field", |_, this, _: MultiValue| {
            this.fields.pop();
            Ok(())
        });
        methods.add_method_mut("pack_row", |lua, this, args: MultiValue| {
            pack_row(lua, this, &args)
        });
        methods.add_method("parse_row_array", |lua, this, args: MultiValue| {
            parse_row_array(lua, this, &args)
        });
        methods.add_method("parse_row_table", |lua, this, args: MultiValue| {
            parse_row_table(lua, this, &args)
        });
    }
}
