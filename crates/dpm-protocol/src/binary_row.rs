//! Binary-protocol result rows ([`BinaryRow`]), sent for `COM_STMT_EXECUTE` and
//! `COM_STMT_FETCH`.
//!
//! ```text
//! int<1> 0x00
//! NULL bitmap: (column_count + 7 + 2) / 8 bytes, bit (i + 2) set when column i is NULL
//! values of the non-NULL columns, each encoded per its column type (see crate::value)
//! ```

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{ProtocolError, Result};
use crate::reader::{expect_end, expect_header, get_bytes};
use crate::value::{null_bitmap_get, null_bitmap_len, null_bitmap_of, BinaryValue};

/// Header byte of a binary row.
pub const BINARY_ROW_HEADER: u8 = 0x00;
/// Bit offset of the first column in a binary row's NULL bitmap.
pub const BINARY_ROW_NULL_OFFSET: usize = 2;

/// One row of a binary result set.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BinaryRow {
    /// One value per column, [`BinaryValue::Null`] for NULL.
    pub values: Vec<BinaryValue>,
}

impl BinaryRow {
    /// Decodes a row given the column types (from the column definitions), in order.
    /// Trailing bytes are an error.
    pub fn decode(payload: &Bytes, column_types: &[u8]) -> Result<Self> {
        const WHAT: &str = "binary row";
        let mut buf: &[u8] = payload;
        expect_header(&mut buf, BINARY_ROW_HEADER, WHAT)?;
        let bitmap_len = null_bitmap_len(column_types.len(), BINARY_ROW_NULL_OFFSET)
            .ok_or(ProtocolError::malformed(WHAT, "too many columns"))?;
        let bitmap = get_bytes(&mut buf, bitmap_len, WHAT)?;
        let mut values = Vec::with_capacity(column_types.len());
        for (i, &t) in column_types.iter().enumerate() {
            if null_bitmap_get(bitmap, i, BINARY_ROW_NULL_OFFSET) {
                values.push(BinaryValue::Null);
            } else {
                values.push(BinaryValue::decode(payload, &mut buf, t)?);
            }
        }
        expect_end(buf, WHAT)?;
        Ok(BinaryRow { values })
    }

    /// Encodes the payload: header, NULL bitmap from the `Null` values, then the values.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u8(BINARY_ROW_HEADER);
        dst.put_slice(&null_bitmap_of(&self.values, BINARY_ROW_NULL_OFFSET));
        for v in &self.values {
            v.encode(dst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::column_type as ct;
    use crate::test_util::*;
    use proptest::prelude::*;

    #[test]
    fn doc_fixture() {
        // MySQL docs: a row of (VAR_STRING "foo", LONGLONG NULL, ...) style example:
        // header, bitmap with column 1 NULL, "foo".
        let wire = Bytes::from_static(b"\x00\x08\x03foo");
        let r = BinaryRow::decode(&wire, &[ct::VAR_STRING, ct::LONGLONG]).unwrap();
        assert_eq!(
            r.values,
            vec![
                BinaryValue::Bytes(Bytes::from_static(b"foo")),
                BinaryValue::Null
            ]
        );
        let mut out = BytesMut::new();
        r.encode(&mut out);
        assert_eq!(out.freeze(), wire);
    }

    #[test]
    fn errors() {
        assert!(BinaryRow::decode(&Bytes::from_static(b"\x01\x00"), &[]).is_err());
        assert!(BinaryRow::decode(&Bytes::from_static(b"\x00"), &[ct::TINY]).is_err());
        assert!(BinaryRow::decode(&Bytes::from_static(b"\x00\x00\x01\x02"), &[ct::TINY]).is_err());
        assert!(BinaryRow::decode(&Bytes::from_static(b"\x00\x00\x01"), &[ct::TINY]).is_ok());
    }

    proptest! {
        #[test]
        fn roundtrip(typed in proptest::collection::vec(arb_typed_value_or_null(), 0..20)) {
            let (types, values): (Vec<u8>, Vec<BinaryValue>) = typed.into_iter().unzip();
            let r = BinaryRow { values };
            let mut out = BytesMut::new();
            r.encode(&mut out);
            prop_assert_eq!(BinaryRow::decode(&out.freeze(), &types).unwrap(), r);
        }

        #[test]
        fn arbitrary_never_panics(data in arb_payload(), types in proptest::collection::vec(any::<u8>(), 0..12)) {
            let _ = BinaryRow::decode(&Bytes::from(data), &types);
        }
    }
}
