//! Statement parameter metadata ([`ParamType`]) and the parameter block shared by
//! `COM_STMT_EXECUTE`, MySQL query attributes in `COM_QUERY`, and MariaDB's
//! `COM_STMT_BULK_EXECUTE`: NULL bitmap (bit offset 0), type list, binary values.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{ProtocolError, Result};
use crate::lenenc::{get_lenenc_str_nonnull, put_lenenc_str};
use crate::reader::{get_u8, slice_of};
use crate::value::{null_bitmap_get, null_bitmap_of, BinaryValue};

/// Parameter flag byte: the parameter is unsigned.
pub const PARAM_UNSIGNED: u8 = 0x80;

/// Type of one statement parameter as sent by the client: `int<1> type ‖ int<1> flags`,
/// plus a name with MySQL's `CLIENT_QUERY_ATTRIBUTES`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParamType {
    /// Column type code ([`crate::column_type`]).
    pub column_type: u8,
    /// Flags; [`PARAM_UNSIGNED`] marks unsigned integers.
    pub flags: u8,
    /// Parameter (attribute) name, present iff the packet carries names
    /// (`CLIENT_QUERY_ATTRIBUTES`).
    pub name: Option<Bytes>,
}

impl ParamType {
    /// An unnamed parameter type.
    pub fn new(column_type: u8, unsigned: bool) -> Self {
        ParamType {
            column_type,
            flags: if unsigned { PARAM_UNSIGNED } else { 0 },
            name: None,
        }
    }

    /// True when the unsigned flag is set.
    pub fn is_unsigned(&self) -> bool {
        self.flags & PARAM_UNSIGNED != 0
    }
}

/// Reads `count` parameter types (with names when `with_names`).
pub(crate) fn decode_param_types(
    payload: &Bytes,
    buf: &mut &[u8],
    count: usize,
    with_names: bool,
) -> Result<Vec<ParamType>> {
    const WHAT: &str = "parameter types";
    // Every type takes at least 2 bytes.
    if count > buf.len() / 2 {
        return Err(ProtocolError::truncated(WHAT));
    }
    let mut types = Vec::with_capacity(count);
    for _ in 0..count {
        let column_type = get_u8(buf, WHAT)?;
        let flags = get_u8(buf, WHAT)?;
        let name = if with_names {
            Some(slice_of(payload, get_lenenc_str_nonnull(buf, WHAT)?))
        } else {
            None
        };
        types.push(ParamType {
            column_type,
            flags,
            name,
        });
    }
    Ok(types)
}

/// Writes parameter types (names, empty when `None`, only when `with_names`).
pub(crate) fn encode_param_types(dst: &mut BytesMut, types: &[ParamType], with_names: bool) {
    for t in types {
        dst.put_u8(t.column_type);
        dst.put_u8(t.flags);
        if with_names {
            put_lenenc_str(dst, t.name.as_deref().unwrap_or_default());
        }
    }
}

/// Decodes the parameter values in `values` (the raw value section) for the given types,
/// using `null_bitmap` (bit offset 0) for NULLs. Byte strings share `values`' buffer.
pub fn decode_param_values(
    values: &Bytes,
    null_bitmap: &[u8],
    types: &[ParamType],
) -> Result<Vec<BinaryValue>> {
    let mut buf: &[u8] = values;
    let mut out = Vec::with_capacity(types.len());
    for (i, t) in types.iter().enumerate() {
        if null_bitmap_get(null_bitmap, i, 0) {
            out.push(BinaryValue::Null);
        } else {
            out.push(BinaryValue::decode(values, &mut buf, t.column_type)?);
        }
    }
    Ok(out)
}

/// Skips the values of `types` in `*buf` (to find what follows them).
pub(crate) fn skip_param_values(
    buf: &mut &[u8],
    null_bitmap: &[u8],
    types: &[ParamType],
) -> Result<()> {
    for (i, t) in types.iter().enumerate() {
        if !null_bitmap_get(null_bitmap, i, 0) {
            BinaryValue::skip(buf, t.column_type)?;
        }
    }
    Ok(())
}

/// Encodes parameter values: returns the NULL bitmap (offset 0) and the value section.
pub fn encode_param_values(values: &[BinaryValue]) -> (Bytes, Bytes) {
    let bitmap = null_bitmap_of(values, 0);
    let mut dst = BytesMut::new();
    for v in values {
        v.encode(&mut dst);
    }
    (Bytes::from(bitmap), dst.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::column_type as ct;

    #[test]
    fn values_roundtrip() {
        let vals = vec![
            BinaryValue::Int8(5),
            BinaryValue::Null,
            BinaryValue::Bytes(Bytes::from_static(b"x")),
        ];
        let types = [
            ParamType::new(ct::LONGLONG, true),
            ParamType::new(ct::NULL, false),
            ParamType::new(ct::VAR_STRING, false),
        ];
        assert!(types[0].is_unsigned());
        let (bitmap, values) = encode_param_values(&vals);
        assert_eq!(&bitmap[..], &[0b010]);
        assert_eq!(decode_param_values(&values, &bitmap, &types).unwrap(), vals);
        let mut b: &[u8] = &values;
        skip_param_values(&mut b, &bitmap, &types).unwrap();
        assert!(b.is_empty());
        assert!(decode_param_values(&values.slice(..3), &bitmap, &types).is_err());
    }

    #[test]
    fn types_roundtrip() {
        let types = vec![
            ParamType {
                column_type: 8,
                flags: 0x80,
                name: Some(Bytes::from_static(b"a")),
            },
            ParamType {
                column_type: 253,
                flags: 0,
                name: Some(Bytes::new()),
            },
        ];
        let mut d = BytesMut::new();
        encode_param_types(&mut d, &types, true);
        let p = d.freeze();
        let mut b: &[u8] = &p;
        assert_eq!(decode_param_types(&p, &mut b, 2, true).unwrap(), types);
        let mut b: &[u8] = &p;
        assert!(decode_param_types(&p, &mut b, 1000, false).is_err());
    }
}
