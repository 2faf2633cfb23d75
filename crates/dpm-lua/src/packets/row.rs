//! `dpm.row`: a result row, or any packet dpm has no object for, kept as raw bytes
//! (reference §7.9). `dpm.rset` packs and parses rows; `row:raw()` (an extension) returns
//! the payload.

use bytes::Bytes;
use mlua::{MultiValue, UserData, UserDataFields, UserDataMethods};

use super::accessors as acc;

/// The `dpm.row` object.
#[derive(Default)]
pub struct RowObject {
    /// The payload: a text row (`string<lenenc>` per column, 0xFB for NULL) or raw bytes.
    pub(crate) payload: Bytes,
}

impl RowObject {
    /// An empty row, as `dpm.new_row_pkt()` returns, to be filled by `rset:pack_row`.
    pub fn new() -> Self {
        RowObject::default()
    }

    /// A packet received as is.
    pub fn received(payload: Bytes) -> Self {
        RowObject { payload }
    }
}

impl UserData for RowObject {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field("__name", "dpm.row");
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("raw", |lua, this, args: MultiValue| {
            acc::read_only(lua, &args)?;
            acc::lua_bytes(lua, &this.payload)
        });
    }
}
