//! Result-set metadata: the column-count packet ([`ColumnCount`]) and column definitions
//! ([`ColumnDefinition41`]).
//!
//! ```text
//! column count: int<lenenc> count
//!               int<1> metadata_follows  (MARIADB_CLIENT_CACHE_METADATA or
//!                                         CLIENT_OPTIONAL_RESULTSET_METADATA)
//! column definition:
//!   string<lenenc> catalog ("def") ‖ schema ‖ table ‖ org_table ‖ name ‖ org_name
//!   string<lenenc> extended metadata          (MARIADB_CLIENT_EXTENDED_METADATA)
//!   int<lenenc> length of fixed fields (0x0C)
//!   int<2> character_set ‖ int<4> column_length ‖ int<1> type ‖ int<2> flags
//!   int<1> decimals ‖ int<2> filler
//!   string<lenenc> default value               (COM_FIELD_LIST responses only)
//! ```

use bytes::{BufMut, Bytes, BytesMut};

use crate::caps::{
    CLIENT_OPTIONAL_RESULTSET_METADATA, MARIADB_CLIENT_CACHE_METADATA,
    MARIADB_CLIENT_EXTENDED_METADATA,
};
use crate::error::{ProtocolError, Result};
use crate::lenenc::{
    get_lenenc_int_nonnull, get_lenenc_str, get_lenenc_str_nonnull, put_lenenc_int,
    put_lenenc_opt_str, put_lenenc_str,
};
use crate::reader::{get_bytes, get_u16, get_u32, get_u8, slice_of};

/// True when the column-count packet carries a `metadata_follows` byte under `caps`.
#[inline]
pub fn has_metadata_flag(caps: u64) -> bool {
    caps & (MARIADB_CLIENT_CACHE_METADATA | CLIENT_OPTIONAL_RESULTSET_METADATA) != 0
}

/// The first packet of a result set: the number of columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ColumnCount {
    /// Number of columns.
    pub count: u64,
    /// Whether column definitions follow: present when MariaDB's
    /// `MARIADB_CLIENT_CACHE_METADATA` or MySQL's `CLIENT_OPTIONAL_RESULTSET_METADATA` is
    /// negotiated. `Some(false)` means the definitions are skipped (the client cached them).
    pub metadata_follows: Option<bool>,
}

impl ColumnCount {
    /// Decodes a column-count payload.
    ///
    /// The caller must already know the response is a result set (the first byte is not
    /// `0x00` OK, `0xFF` ERR or `0xFB` LOCAL INFILE).
    pub fn decode(payload: &[u8], caps: u64) -> Result<Self> {
        const WHAT: &str = "column count";
        let mut buf = payload;
        let count = get_lenenc_int_nonnull(&mut buf, WHAT)?;
        let metadata_follows = if has_metadata_flag(caps) {
            Some(get_u8(&mut buf, WHAT)? != 0)
        } else {
            None
        };
        Ok(ColumnCount {
            count,
            metadata_follows,
        })
    }

    /// Encodes the payload. With a metadata capability, `None` is written as "follows".
    pub fn encode(&self, dst: &mut BytesMut, caps: u64) {
        put_lenenc_int(dst, self.count);
        if has_metadata_flag(caps) {
            dst.put_u8(self.metadata_follows.unwrap_or(true) as u8);
        }
    }

    /// True unless the server said the column definitions are skipped.
    pub fn has_metadata(&self) -> bool {
        self.metadata_follows.unwrap_or(true)
    }
}

/// Types of entries in MariaDB's extended column metadata.
pub mod extended_metadata_type {
    /// Data type name (e.g. `json`, `uuid`, `inet6`, `point`).
    pub const TYPE_NAME: u8 = 0;
    /// Format name.
    pub const FORMAT_NAME: u8 = 1;
}

/// One column definition (`Protocol::ColumnDefinition41`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ColumnDefinition41 {
    /// Catalog, always `def`.
    pub catalog: Bytes,
    /// Schema of the table.
    pub schema: Bytes,
    /// Table alias.
    pub table: Bytes,
    /// Physical table name.
    pub org_table: Bytes,
    /// Column alias.
    pub name: Bytes,
    /// Physical column name.
    pub org_name: Bytes,
    /// MariaDB extended metadata, raw (entries of `int<1> type ‖ string<lenenc> value`),
    /// present iff `MARIADB_CLIENT_EXTENDED_METADATA`; see
    /// [`extended_metadata_entries`](Self::extended_metadata_entries).
    pub extended_metadata: Option<Bytes>,
    /// Collation id of the column.
    pub character_set: u16,
    /// Maximum display length of the column.
    pub column_length: u32,
    /// Column type, one of [`crate::column_type`].
    pub column_type: u8,
    /// Column flags, see [`crate::column_flags`].
    pub flags: u16,
    /// Number of decimals (0x00 for integers and static strings, 0x1F for dynamic strings,
    /// double and float, 0x00..0x51 for decimals).
    pub decimals: u8,
    /// Default value, only in `COM_FIELD_LIST` responses: `Some(None)` for a NULL default,
    /// `Some(Some(v))` for a value, `None` when absent (all other responses).
    pub default_value: Option<Option<Bytes>>,
}

impl ColumnDefinition41 {
    /// Decodes a column definition payload. `caps` decides whether MariaDB extended metadata
    /// is present; a trailing default value (COM_FIELD_LIST) is detected from the length.
    pub fn decode(payload: &Bytes, caps: u64) -> Result<Self> {
        const WHAT: &str = "column definition";
        let mut buf: &[u8] = payload;
        let mut s =
            || -> Result<Bytes> { Ok(slice_of(payload, get_lenenc_str_nonnull(&mut buf, WHAT)?)) };
        let catalog = s()?;
        let schema = s()?;
        let table = s()?;
        let org_table = s()?;
        let name = s()?;
        let org_name = s()?;
        let extended_metadata = if caps & MARIADB_CLIENT_EXTENDED_METADATA != 0 {
            Some(s()?)
        } else {
            None
        };
        let fixed_len = get_lenenc_int_nonnull(&mut buf, WHAT)?;
        if fixed_len < 12 {
            return Err(ProtocolError::malformed(
                WHAT,
                "fixed-length fields shorter than 12",
            ));
        }
        let mut fixed = get_bytes(&mut buf, fixed_len.min(usize::MAX as u64) as usize, WHAT)?;
        let character_set = get_u16(&mut fixed, WHAT)?;
        let column_length = get_u32(&mut fixed, WHAT)?;
        let column_type = get_u8(&mut fixed, WHAT)?;
        let flags = get_u16(&mut fixed, WHAT)?;
        let decimals = get_u8(&mut fixed, WHAT)?;
        let default_value = if buf.is_empty() {
            None
        } else {
            Some(get_lenenc_str(&mut buf)?.map(|v| slice_of(payload, v)))
        };
        Ok(ColumnDefinition41 {
            catalog,
            schema,
            table,
            org_table,
            name,
            org_name,
            extended_metadata,
            character_set,
            column_length,
            column_type,
            flags,
            decimals,
            default_value,
        })
    }

    /// Encodes the payload. Extended metadata is written iff
    /// `MARIADB_CLIENT_EXTENDED_METADATA` is in `caps` (empty when `None`).
    pub fn encode(&self, dst: &mut BytesMut, caps: u64) {
        for s in [
            &self.catalog,
            &self.schema,
            &self.table,
            &self.org_table,
            &self.name,
            &self.org_name,
        ] {
            put_lenenc_str(dst, s);
        }
        if caps & MARIADB_CLIENT_EXTENDED_METADATA != 0 {
            put_lenenc_str(dst, self.extended_metadata.as_deref().unwrap_or_default());
        }
        dst.put_u8(0x0C);
        dst.put_u16_le(self.character_set);
        dst.put_u32_le(self.column_length);
        dst.put_u8(self.column_type);
        dst.put_u16_le(self.flags);
        dst.put_u8(self.decimals);
        dst.put_u16_le(0);
        if let Some(default) = &self.default_value {
            put_lenenc_opt_str(dst, default.as_deref());
        }
    }

    /// Decodes the MariaDB extended metadata entries as `(type, value)` pairs
    /// (see [`extended_metadata_type`]); empty when there is none.
    pub fn extended_metadata_entries(&self) -> Result<Vec<(u8, Bytes)>> {
        const WHAT: &str = "extended metadata";
        let Some(raw) = &self.extended_metadata else {
            return Ok(Vec::new());
        };
        let mut buf: &[u8] = raw;
        let mut out = Vec::new();
        while !buf.is_empty() {
            let kind = get_u8(&mut buf, WHAT)?;
            let v = get_lenenc_str_nonnull(&mut buf, WHAT)?;
            out.push((kind, slice_of(raw, v)));
        }
        Ok(out)
    }

    /// Builds the raw extended metadata from `(type, value)` pairs.
    pub fn encode_extended_metadata(entries: &[(u8, Bytes)]) -> Bytes {
        let mut dst = BytesMut::new();
        for (kind, v) in entries {
            dst.put_u8(*kind);
            put_lenenc_str(&mut dst, v);
        }
        dst.freeze()
    }

    /// True when the `UNSIGNED_FLAG` is set.
    pub fn is_unsigned(&self) -> bool {
        self.flags & crate::column_flags::UNSIGNED_FLAG != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::*;
    use crate::column_type;
    use crate::test_util::*;
    use proptest::prelude::*;

    /// `select @@version_comment limit 1`: the column definition from the MySQL docs.
    const DOC_COLDEF: &[u8] = b"\x03def\x00\x00\x00\x11@@version_comment\x00\x0c\x08\x00\x1c\x00\x00\x00\xfd\x00\x00\x1f\x00\x00";

    #[test]
    fn doc_fixture() {
        let wire = Bytes::from_static(DOC_COLDEF);
        let c = ColumnDefinition41::decode(&wire, CLIENT_PROTOCOL_41).unwrap();
        assert_eq!(&c.catalog[..], b"def");
        assert_eq!(&c.name[..], b"@@version_comment");
        assert_eq!(c.character_set, 8);
        assert_eq!(c.column_length, 28);
        assert_eq!(c.column_type, column_type::VAR_STRING);
        assert_eq!(c.decimals, 0x1F);
        assert_eq!(c.default_value, None);
        let mut out = BytesMut::new();
        c.encode(&mut out, CLIENT_PROTOCOL_41);
        assert_eq!(out.freeze(), wire);
    }

    #[test]
    fn mariadb_extended_and_field_list_default() {
        let mut c = ColumnDefinition41::decode(&Bytes::from_static(DOC_COLDEF), 0).unwrap();
        c.extended_metadata = Some(ColumnDefinition41::encode_extended_metadata(&[(
            extended_metadata_type::TYPE_NAME,
            Bytes::from_static(b"json"),
        )]));
        c.default_value = Some(None);
        let caps = MARIADB_CLIENT_EXTENDED_METADATA;
        let mut out = BytesMut::new();
        c.encode(&mut out, caps);
        assert_eq!(*out.last().unwrap(), 0xFB);
        let back = ColumnDefinition41::decode(&out.freeze(), caps).unwrap();
        assert_eq!(back, c);
        assert_eq!(
            back.extended_metadata_entries().unwrap(),
            vec![(0, Bytes::from_static(b"json"))]
        );
    }

    #[test]
    fn column_count_fixture() {
        assert_eq!(
            ColumnCount::decode(&[0x01], 0).unwrap(),
            ColumnCount {
                count: 1,
                metadata_follows: None
            }
        );
        let c = ColumnCount::decode(&[0x03, 0x00], MARIADB_CLIENT_CACHE_METADATA).unwrap();
        assert_eq!(
            c,
            ColumnCount {
                count: 3,
                metadata_follows: Some(false)
            }
        );
        assert!(!c.has_metadata());
        assert!(ColumnCount::decode(&[0x03], CLIENT_OPTIONAL_RESULTSET_METADATA).is_err());
        assert!(ColumnCount::decode(&[0xFB], 0).is_err());
        assert!(ColumnCount::decode(&[], 0).is_err());
    }

    #[test]
    fn malformed() {
        let mut bad = DOC_COLDEF.to_vec();
        bad[26] = 0x0B; // fixed-length < 12
        assert!(ColumnDefinition41::decode(&Bytes::from(bad), 0).is_err());
        for cut in 0..DOC_COLDEF.len() {
            assert!(
                ColumnDefinition41::decode(&Bytes::copy_from_slice(&DOC_COLDEF[..cut]), 0).is_err()
            );
        }
    }

    proptest! {
        #[test]
        fn coldef_roundtrip((c, caps) in arb_column_definition()) {
            let mut out = BytesMut::new();
            c.encode(&mut out, caps);
            prop_assert_eq!(ColumnDefinition41::decode(&out.freeze(), caps).unwrap(), c);
        }

        #[test]
        fn count_roundtrip(count in any::<u64>(), follows in any::<bool>(), caps in arb_caps()) {
            let c = ColumnCount { count, metadata_follows: has_metadata_flag(caps).then_some(follows) };
            let mut out = BytesMut::new();
            c.encode(&mut out, caps);
            prop_assert_eq!(ColumnCount::decode(&out, caps).unwrap(), c);
        }

        #[test]
        fn arbitrary_never_panics(data in arb_payload(), caps in any::<u64>()) {
            let _ = ColumnCount::decode(&data, caps);
            if let Ok(c) = ColumnDefinition41::decode(&Bytes::from(data), caps) {
                let _ = c.extended_metadata_entries();
            }
        }
    }
}
