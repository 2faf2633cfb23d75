//! `COM_STMT_EXECUTE` ([`ComStmtExecute`]): run a prepared statement with binary parameters.
//!
//! ```text
//! int<1>  0x17 ‖ int<4> statement_id ‖ int<1> flags ‖ int<4> iteration_count (1)
//! if num_params > 0 || (CLIENT_QUERY_ATTRIBUTES && flags & PARAMETER_COUNT_AVAILABLE):
//!   int<lenenc> parameter_count                   (CLIENT_QUERY_ATTRIBUTES only)
//!   if parameter_count > 0:
//!     NULL bitmap, (parameter_count + 7) / 8 bytes, bit offset 0
//!     int<1> new_params_bound
//!     if new_params_bound: per parameter int<1> type ‖ int<1> flags
//!                          [‖ string<lenenc> name  (CLIENT_QUERY_ATTRIBUTES)]
//!     parameter values (binary protocol)
//! ```
//! Decoding needs the statement's parameter count (from [`crate::StmtPrepareOk`]). The
//! values are kept raw; decode them with [`ComStmtExecute::param_values`], which needs the
//! types: the packet's own when `new_params_bound`, otherwise those of the previous execute
//! of the same statement.

use bytes::{BufMut, Bytes, BytesMut};

use crate::caps::CLIENT_QUERY_ATTRIBUTES;
use crate::command::com;
use crate::error::{ProtocolError, Result};
use crate::lenenc::{get_lenenc_int_nonnull, put_lenenc_int};
use crate::param::{
    decode_param_types, decode_param_values, encode_param_types, encode_param_values, ParamType,
};
use crate::reader::{expect_header, get_bytes, get_u32, get_u8, slice_of};
use crate::value::{null_bitmap_len, BinaryValue};

/// Cursor flags of `COM_STMT_EXECUTE`.
pub mod cursor_type {
    /// No cursor.
    pub const NO_CURSOR: u8 = 0;
    /// Read-only cursor.
    pub const READ_ONLY: u8 = 1;
    /// Cursor for update.
    pub const FOR_UPDATE: u8 = 2;
    /// Scrollable cursor.
    pub const SCROLLABLE: u8 = 4;
    /// MySQL 8.0.26+: `parameter_count` is sent even when the statement has no parameters.
    pub const PARAMETER_COUNT_AVAILABLE: u8 = 8;
}

const WHAT: &str = "COM_STMT_EXECUTE";

/// `COM_STMT_EXECUTE`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ComStmtExecute {
    /// The statement id.
    pub statement_id: u32,
    /// Cursor flags, see [`cursor_type`].
    pub flags: u8,
    /// Iteration count, always 1.
    pub iteration_count: u32,
    /// The explicit parameter count sent with `CLIENT_QUERY_ATTRIBUTES` (statement
    /// parameters plus query attributes); `None` when not on the wire.
    pub parameter_count: Option<u64>,
    /// NULL bitmap (bit offset 0); empty when there are no parameters.
    pub null_bitmap: Bytes,
    /// Whether parameter types follow (the client must send them on the first execute).
    pub new_params_bound: bool,
    /// Parameter types, when `new_params_bound`.
    pub param_types: Vec<ParamType>,
    /// The raw parameter values section (zero-copy).
    pub values: Bytes,
}

impl ComStmtExecute {
    /// Decodes the payload, given the statement's parameter count and the negotiated
    /// capabilities.
    pub fn decode(payload: &Bytes, num_params: usize, caps: u64) -> Result<Self> {
        let mut buf: &[u8] = payload;
        expect_header(&mut buf, com::STMT_EXECUTE, WHAT)?;
        let statement_id = get_u32(&mut buf, WHAT)?;
        let flags = get_u8(&mut buf, WHAT)?;
        let iteration_count = get_u32(&mut buf, WHAT)?;
        let query_attrs = caps & CLIENT_QUERY_ATTRIBUTES != 0;
        let mut count = num_params as u64;
        let mut parameter_count = None;
        if query_attrs && (num_params > 0 || flags & cursor_type::PARAMETER_COUNT_AVAILABLE != 0) {
            count = get_lenenc_int_nonnull(&mut buf, WHAT)?;
            parameter_count = Some(count);
        }
        let mut out = ComStmtExecute {
            statement_id,
            flags,
            iteration_count,
            parameter_count,
            ..Default::default()
        };
        if count > 0 {
            let count = usize::try_from(count).map_err(|_| ProtocolError::truncated(WHAT))?;
            let bitmap_len = null_bitmap_len(count, 0).ok_or(ProtocolError::truncated(WHAT))?;
            out.null_bitmap = slice_of(payload, get_bytes(&mut buf, bitmap_len, WHAT)?);
            out.new_params_bound = match get_u8(&mut buf, WHAT)? {
                0 => false,
                1 => true,
                _ => {
                    return Err(ProtocolError::malformed(
                        WHAT,
                        "new_params_bound not 0 or 1",
                    ))
                }
            };
            if out.new_params_bound {
                out.param_types = decode_param_types(payload, &mut buf, count, query_attrs)?;
            }
        }
        out.values = slice_of(payload, buf);
        Ok(out)
    }

    /// Encodes the payload. `parameter_count` is written iff it is `Some` and
    /// `CLIENT_QUERY_ATTRIBUTES` is negotiated; the parameter block iff `null_bitmap` is
    /// non-empty.
    pub fn encode(&self, dst: &mut BytesMut, caps: u64) {
        let query_attrs = caps & CLIENT_QUERY_ATTRIBUTES != 0;
        dst.put_u8(com::STMT_EXECUTE);
        dst.put_u32_le(self.statement_id);
        dst.put_u8(self.flags);
        dst.put_u32_le(self.iteration_count);
        if let (true, Some(n)) = (query_attrs, self.parameter_count) {
            put_lenenc_int(dst, n);
        }
        if !self.null_bitmap.is_empty() {
            dst.put_slice(&self.null_bitmap);
            dst.put_u8(self.new_params_bound as u8);
            if self.new_params_bound {
                encode_param_types(dst, &self.param_types, query_attrs);
            }
        }
        dst.put_slice(&self.values);
    }

    /// Builds an execute with bound types and values (iteration count 1, no cursor).
    /// With `CLIENT_QUERY_ATTRIBUTES` in `caps`, the parameter count is set too.
    pub fn new(statement_id: u32, params: &[(ParamType, BinaryValue)], caps: u64) -> Self {
        let values: Vec<BinaryValue> = params.iter().map(|(_, v)| v.clone()).collect();
        let (null_bitmap, values) = if params.is_empty() {
            (Bytes::new(), Bytes::new())
        } else {
            encode_param_values(&values)
        };
        ComStmtExecute {
            statement_id,
            flags: cursor_type::NO_CURSOR,
            iteration_count: 1,
            parameter_count: (caps & CLIENT_QUERY_ATTRIBUTES != 0 && !params.is_empty())
                .then_some(params.len() as u64),
            null_bitmap,
            new_params_bound: !params.is_empty(),
            param_types: params.iter().map(|(t, _)| t.clone()).collect(),
            values,
        }
    }

    /// Decodes the parameter values with `types` (pass `&self.param_types` when
    /// `new_params_bound`, else the types remembered from the previous execute).
    pub fn param_values(&self, types: &[ParamType]) -> Result<Vec<BinaryValue>> {
        decode_param_values(&self.values, &self.null_bitmap, types)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::*;
    use crate::column_type as ct;
    use crate::test_util::*;
    use proptest::prelude::*;

    #[test]
    fn doc_fixture() {
        // MySQL docs: execute statement 1 with one LONGLONG param... adapted: two params,
        // a VAR_STRING "foo" and a NULL.
        let wire = Bytes::from_static(
            b"\x17\x01\x00\x00\x00\x00\x01\x00\x00\x00\x02\x01\xfd\x00\x08\x00\x03foo",
        );
        let e = ComStmtExecute::decode(&wire, 2, CLIENT_PROTOCOL_41).unwrap();
        assert_eq!(e.statement_id, 1);
        assert!(e.new_params_bound);
        assert_eq!(e.param_types.len(), 2);
        let vals = e.param_values(&e.param_types).unwrap();
        assert_eq!(
            vals,
            vec![
                BinaryValue::Bytes(Bytes::from_static(b"foo")),
                BinaryValue::Null
            ]
        );
        let mut out = BytesMut::new();
        e.encode(&mut out, CLIENT_PROTOCOL_41);
        assert_eq!(out.freeze(), wire);
        // Rebuilding from typed params gives the same bytes.
        let built = ComStmtExecute::new(
            1,
            &[
                (ParamType::new(ct::VAR_STRING, false), vals[0].clone()),
                (ParamType::new(ct::LONGLONG, false), BinaryValue::Null),
            ],
            CLIENT_PROTOCOL_41,
        );
        assert_eq!(built, e);
    }

    #[test]
    fn no_params_and_query_attributes() {
        let wire = Bytes::from_static(b"\x17\x05\x00\x00\x00\x00\x01\x00\x00\x00");
        let e = ComStmtExecute::decode(&wire, 0, CLIENT_PROTOCOL_41).unwrap();
        assert!(e.null_bitmap.is_empty() && e.values.is_empty());
        // MySQL 8 with query attributes and PARAMETER_COUNT_AVAILABLE, one attribute.
        let caps = CLIENT_PROTOCOL_41 | CLIENT_QUERY_ATTRIBUTES;
        let wire = Bytes::from_static(
            b"\x17\x05\x00\x00\x00\x08\x01\x00\x00\x00\x01\x00\x01\xfd\x00\x02id\x0242",
        );
        let e = ComStmtExecute::decode(&wire, 0, caps).unwrap();
        assert_eq!(e.parameter_count, Some(1));
        assert_eq!(e.param_types[0].name.as_deref(), Some(&b"id"[..]));
        assert_eq!(
            e.param_values(&e.param_types).unwrap(),
            vec![BinaryValue::Bytes(Bytes::from_static(b"42"))]
        );
        let mut out = BytesMut::new();
        e.encode(&mut out, caps);
        assert_eq!(out.freeze(), wire);
    }

    #[test]
    fn errors() {
        let bad_flag = Bytes::from_static(b"\x17\x01\x00\x00\x00\x00\x01\x00\x00\x00\x00\x07");
        assert!(ComStmtExecute::decode(&bad_flag, 1, 0).is_err());
        let short = Bytes::from_static(b"\x17\x01\x00\x00\x00\x00\x01\x00\x00\x00");
        assert!(ComStmtExecute::decode(&short, 1, 0).is_err());
        assert!(ComStmtExecute::decode(&short, usize::MAX, 0).is_err());
        let huge = Bytes::from_static(
            b"\x17\x01\x00\x00\x00\x08\x01\x00\x00\x00\xfe\xff\xff\xff\xff\xff\xff\xff\xff",
        );
        assert!(ComStmtExecute::decode(&huge, 0, CLIENT_QUERY_ATTRIBUTES).is_err());
    }

    proptest! {
        #[test]
        fn roundtrip((e, num_params, caps) in arb_stmt_execute()) {
            let mut out = BytesMut::new();
            e.encode(&mut out, caps);
            let back = ComStmtExecute::decode(&out.freeze(), num_params, caps).unwrap();
            prop_assert_eq!(&back, &e);
        }

        #[test]
        fn typed_roundtrip(params in proptest::collection::vec(arb_typed_value_or_null(), 0..8), caps in arb_caps()) {
            let params: Vec<(ParamType, BinaryValue)> = params
                .into_iter()
                .map(|(t, v)| {
                    let mut pt = ParamType::new(t, false);
                    if caps & CLIENT_QUERY_ATTRIBUTES != 0 { pt.name = Some(Bytes::new()); }
                    (pt, v)
                })
                .collect();
            let e = ComStmtExecute::new(9, &params, caps);
            let mut out = BytesMut::new();
            e.encode(&mut out, caps);
            let back = ComStmtExecute::decode(&out.freeze(), params.len(), caps).unwrap();
            let vals: Vec<BinaryValue> = params.iter().map(|(_, v)| v.clone()).collect();
            prop_assert_eq!(back.param_values(&back.param_types).unwrap(), vals);
        }

        #[test]
        fn arbitrary_never_panics(data in arb_payload(), n in 0usize..10, caps in any::<u64>()) {
            if let Ok(e) = ComStmtExecute::decode(&Bytes::from(data), n, caps) {
                let _ = e.param_values(&e.param_types);
            }
        }
    }
}
