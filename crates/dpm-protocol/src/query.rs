//! `COM_QUERY` ([`ComQuery`]), including MySQL 8 query attributes ([`QueryAttributes`],
//! `CLIENT_QUERY_ATTRIBUTES`).
//!
//! ```text
//! int<1> 0x03
//! if CLIENT_QUERY_ATTRIBUTES:
//!   int<lenenc> parameter_count ‖ int<lenenc> parameter_set_count (1)
//!   if parameter_count > 0:
//!     NULL bitmap ‖ int<1> new_params_bound (1)
//!     per parameter: int<1> type ‖ int<1> flags ‖ string<lenenc> name
//!     parameter values (binary protocol)
//! string<EOF> query
//! ```

use bytes::{BufMut, Bytes, BytesMut};

use crate::caps::CLIENT_QUERY_ATTRIBUTES;
use crate::command::com;
use crate::error::{ProtocolError, Result};
use crate::lenenc::{get_lenenc_int_nonnull, put_lenenc_int};
use crate::param::{
    decode_param_types, decode_param_values, encode_param_types, encode_param_values,
    skip_param_values, ParamType,
};
use crate::reader::{expect_header, get_bytes, get_eof_str, get_u8, slice_of};
use crate::value::{null_bitmap_len, BinaryValue};

const WHAT: &str = "COM_QUERY";

/// MySQL query attributes sent in front of the SQL text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryAttributes {
    /// Number of parameter sets, always 1.
    pub parameter_set_count: u64,
    /// NULL bitmap (bit offset 0); empty without attributes.
    pub null_bitmap: Bytes,
    /// The attributes' types and names.
    pub param_types: Vec<ParamType>,
    /// Raw binary values of the attributes.
    pub values: Bytes,
}

impl Default for QueryAttributes {
    fn default() -> Self {
        QueryAttributes {
            parameter_set_count: 1,
            null_bitmap: Bytes::new(),
            param_types: Vec::new(),
            values: Bytes::new(),
        }
    }
}

impl QueryAttributes {
    /// Builds attributes from `(name, value)` pairs (each typed by its natural type).
    pub fn new(attrs: &[(Bytes, BinaryValue)]) -> Self {
        if attrs.is_empty() {
            return QueryAttributes::default();
        }
        let values: Vec<BinaryValue> = attrs.iter().map(|(_, v)| v.clone()).collect();
        let (null_bitmap, values_raw) = encode_param_values(&values);
        QueryAttributes {
            parameter_set_count: 1,
            null_bitmap,
            param_types: attrs
                .iter()
                .map(|(n, v)| ParamType {
                    column_type: v.natural_type(),
                    flags: 0,
                    name: Some(n.clone()),
                })
                .collect(),
            values: values_raw,
        }
    }

    /// Decodes the attribute values.
    pub fn values(&self) -> Result<Vec<BinaryValue>> {
        decode_param_values(&self.values, &self.null_bitmap, &self.param_types)
    }
}

/// `COM_QUERY`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ComQuery {
    /// The SQL text.
    pub query: Bytes,
    /// Query attributes; `Some` iff `CLIENT_QUERY_ATTRIBUTES` is negotiated (when encoding,
    /// `None` with the capability writes an empty attribute block).
    pub attributes: Option<QueryAttributes>,
}

impl ComQuery {
    /// Decodes the payload with the negotiated capabilities.
    pub fn decode(payload: &Bytes, caps: u64) -> Result<Self> {
        let mut buf: &[u8] = payload;
        expect_header(&mut buf, com::QUERY, WHAT)?;
        let attributes = if caps & CLIENT_QUERY_ATTRIBUTES != 0 {
            let count = get_lenenc_int_nonnull(&mut buf, WHAT)?;
            let parameter_set_count = get_lenenc_int_nonnull(&mut buf, WHAT)?;
            let mut attrs = QueryAttributes {
                parameter_set_count,
                ..Default::default()
            };
            if count > 0 {
                let count = usize::try_from(count).map_err(|_| ProtocolError::truncated(WHAT))?;
                let bitmap_len = null_bitmap_len(count, 0).ok_or(ProtocolError::truncated(WHAT))?;
                let bitmap = get_bytes(&mut buf, bitmap_len, WHAT)?;
                if get_u8(&mut buf, WHAT)? != 1 {
                    return Err(ProtocolError::malformed(
                        WHAT,
                        "query attributes without types",
                    ));
                }
                attrs.null_bitmap = slice_of(payload, bitmap);
                attrs.param_types = decode_param_types(payload, &mut buf, count, true)?;
                let before = buf;
                skip_param_values(&mut buf, bitmap, &attrs.param_types)?;
                attrs.values = slice_of(payload, &before[..before.len() - buf.len()]);
            }
            Some(attrs)
        } else {
            None
        };
        Ok(ComQuery {
            query: slice_of(payload, get_eof_str(&mut buf)),
            attributes,
        })
    }

    /// Encodes the payload.
    pub fn encode(&self, dst: &mut BytesMut, caps: u64) {
        dst.reserve(1 + self.query.len());
        dst.put_u8(com::QUERY);
        if caps & CLIENT_QUERY_ATTRIBUTES != 0 {
            let default = QueryAttributes::default();
            let a = self.attributes.as_ref().unwrap_or(&default);
            put_lenenc_int(dst, a.param_types.len() as u64);
            put_lenenc_int(dst, a.parameter_set_count);
            if !a.param_types.is_empty() {
                dst.put_slice(&a.null_bitmap);
                dst.put_u8(1);
                encode_param_types(dst, &a.param_types, true);
                dst.put_slice(&a.values);
            }
        }
        dst.put_slice(&self.query);
    }

    /// A plain query (no attributes).
    pub fn new(query: impl Into<Bytes>) -> Self {
        ComQuery {
            query: query.into(),
            attributes: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::*;
    use crate::test_util::*;
    use proptest::prelude::*;

    #[test]
    fn fixtures() {
        let wire = Bytes::from_static(b"\x03select @@version_comment limit 1");
        let q = ComQuery::decode(&wire, CLIENT_PROTOCOL_41).unwrap();
        assert_eq!(&q.query[..], b"select @@version_comment limit 1");
        let mut out = BytesMut::new();
        q.encode(&mut out, CLIENT_PROTOCOL_41);
        assert_eq!(out.freeze(), wire);

        // MySQL 8 client with query attributes but none set.
        let caps = CLIENT_PROTOCOL_41 | CLIENT_QUERY_ATTRIBUTES;
        let wire = Bytes::from_static(b"\x03\x00\x01SELECT 1");
        let q = ComQuery::decode(&wire, caps).unwrap();
        assert_eq!(q.attributes, Some(QueryAttributes::default()));
        assert_eq!(&q.query[..], b"SELECT 1");
        let mut out = BytesMut::new();
        ComQuery::new(Bytes::from_static(b"SELECT 1")).encode(&mut out, caps);
        assert_eq!(out.freeze(), wire);

        // One attribute: traceid = "abc".
        let wire = Bytes::from_static(b"\x03\x01\x01\x00\x01\xfd\x00\x07traceid\x03abcSELECT 1");
        let q = ComQuery::decode(&wire, caps).unwrap();
        let a = q.attributes.as_ref().unwrap();
        assert_eq!(a.param_types[0].name.as_deref(), Some(&b"traceid"[..]));
        assert_eq!(
            a.values().unwrap(),
            vec![BinaryValue::Bytes(Bytes::from_static(b"abc"))]
        );
        assert_eq!(&q.query[..], b"SELECT 1");
        let built = QueryAttributes::new(&[(
            Bytes::from_static(b"traceid"),
            BinaryValue::Bytes(Bytes::from_static(b"abc")),
        )]);
        assert_eq!(&built, a);
        let mut out = BytesMut::new();
        q.encode(&mut out, caps);
        assert_eq!(out.freeze(), wire);

        assert!(ComQuery::decode(&Bytes::from_static(b"\x03\x01\x01\x00\x00"), caps).is_err());
        assert!(ComQuery::decode(&Bytes::from_static(b"\x16x"), 0).is_err());
    }

    proptest! {
        #[test]
        fn roundtrip((q, caps) in arb_com_query()) {
            let mut out = BytesMut::new();
            q.encode(&mut out, caps);
            prop_assert_eq!(ComQuery::decode(&out.freeze(), caps).unwrap(), q);
        }

        #[test]
        fn arbitrary_never_panics(data in arb_payload(), caps in any::<u64>()) {
            if let Ok(q) = ComQuery::decode(&Bytes::from(data), caps) {
                if let Some(a) = q.attributes { let _ = a.values(); }
            }
        }
    }
}
