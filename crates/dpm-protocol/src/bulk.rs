//! MariaDB `COM_STMT_BULK_EXECUTE` ([`ComStmtBulkExecute`]): execute a prepared statement
//! for many parameter sets in one packet (`MARIADB_CLIENT_STMT_BULK_OPERATIONS`).
//!
//! ```text
//! int<1> 0xFA ‖ int<4> statement_id ‖ int<2> bulk flags
//! if flags & SEND_TYPES_TO_SERVER: per parameter int<1> type ‖ int<1> flags
//! until the end: per row, per parameter: int<1> indicator [‖ binary value if NONE]
//! ```

use bytes::{BufMut, Bytes, BytesMut};

use crate::command::com;
use crate::error::{ProtocolError, Result};
use crate::param::{decode_param_types, encode_param_types, ParamType};
use crate::reader::{expect_header, get_u16, get_u32, get_u8, slice_of};
use crate::value::BinaryValue;

/// Bulk flag: return one result (affected rows, insert id) per parameter set
/// (`MARIADB_CLIENT_BULK_UNIT_RESULTS`).
pub const BULK_SEND_UNIT_RESULTS: u16 = 64;
/// Bulk flag: parameter types follow the flags.
pub const BULK_SEND_TYPES_TO_SERVER: u16 = 128;

/// Per-value indicators in bulk rows.
pub mod indicator {
    /// A value follows.
    pub const NONE: u8 = 0;
    /// The value is NULL.
    pub const NULL: u8 = 1;
    /// Use the column default.
    pub const DEFAULT: u8 = 2;
    /// Default for INSERT, ignored for UPDATE.
    pub const IGNORE: u8 = 3;
}

/// One value in a bulk row.
#[derive(Debug, Clone, PartialEq)]
pub enum BulkValue {
    /// An actual value (indicator NONE).
    Value(BinaryValue),
    /// NULL.
    Null,
    /// The column default.
    Default,
    /// Ignored (default for INSERT).
    Ignore,
}

/// `COM_STMT_BULK_EXECUTE`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ComStmtBulkExecute {
    /// The statement id.
    pub statement_id: u32,
    /// Bulk flags ([`BULK_SEND_TYPES_TO_SERVER`], [`BULK_SEND_UNIT_RESULTS`]).
    pub flags: u16,
    /// Parameter types (when `BULK_SEND_TYPES_TO_SERVER`).
    pub param_types: Vec<ParamType>,
    /// The raw rows section (zero-copy); decode with [`rows`](Self::rows).
    pub data: Bytes,
}

const WHAT: &str = "COM_STMT_BULK_EXECUTE";

impl ComStmtBulkExecute {
    /// Decodes the payload given the statement's parameter count.
    pub fn decode(payload: &Bytes, num_params: usize) -> Result<Self> {
        let mut buf: &[u8] = payload;
        expect_header(&mut buf, com::STMT_BULK_EXECUTE, WHAT)?;
        let statement_id = get_u32(&mut buf, WHAT)?;
        let flags = get_u16(&mut buf, WHAT)?;
        let param_types = if flags & BULK_SEND_TYPES_TO_SERVER != 0 {
            decode_param_types(payload, &mut buf, num_params, false)?
        } else {
            Vec::new()
        };
        Ok(ComStmtBulkExecute {
            statement_id,
            flags,
            param_types,
            data: slice_of(payload, buf),
        })
    }

    /// Encodes the payload (types written iff the flag is set).
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u8(com::STMT_BULK_EXECUTE);
        dst.put_u32_le(self.statement_id);
        dst.put_u16_le(self.flags);
        if self.flags & BULK_SEND_TYPES_TO_SERVER != 0 {
            encode_param_types(dst, &self.param_types, false);
        }
        dst.put_slice(&self.data);
    }

    /// Decodes the parameter rows with `types` (the packet's own when it sent them).
    pub fn rows(&self, types: &[ParamType]) -> Result<Vec<Vec<BulkValue>>> {
        let mut buf: &[u8] = &self.data;
        let mut rows = Vec::new();
        if types.is_empty() {
            return if buf.is_empty() {
                Ok(rows)
            } else {
                Err(ProtocolError::malformed(
                    WHAT,
                    "row data without parameters",
                ))
            };
        }
        while !buf.is_empty() {
            let mut row = Vec::with_capacity(types.len());
            for t in types {
                row.push(match get_u8(&mut buf, WHAT)? {
                    indicator::NONE => {
                        BulkValue::Value(BinaryValue::decode(&self.data, &mut buf, t.column_type)?)
                    }
                    indicator::NULL => BulkValue::Null,
                    indicator::DEFAULT => BulkValue::Default,
                    indicator::IGNORE => BulkValue::Ignore,
                    _ => return Err(ProtocolError::malformed(WHAT, "unknown indicator")),
                });
            }
            rows.push(row);
        }
        Ok(rows)
    }

    /// Encodes parameter rows into the raw form of [`data`](Self::data).
    pub fn encode_rows(rows: &[Vec<BulkValue>]) -> Bytes {
        let mut dst = BytesMut::new();
        for row in rows {
            for v in row {
                match v {
                    BulkValue::Value(v) => {
                        dst.put_u8(indicator::NONE);
                        v.encode(&mut dst);
                    }
                    BulkValue::Null => dst.put_u8(indicator::NULL),
                    BulkValue::Default => dst.put_u8(indicator::DEFAULT),
                    BulkValue::Ignore => dst.put_u8(indicator::IGNORE),
                }
            }
        }
        dst.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::column_type as ct;
    use crate::test_util::*;
    use proptest::prelude::*;

    #[test]
    fn fixture() {
        // INSERT INTO t VALUES (?, ?) with rows (1, 'a') and (NULL, DEFAULT).
        let wire = Bytes::from_static(
            b"\xfa\x07\x00\x00\x00\x80\x00\x03\x00\xfd\x00\x00\x01\x00\x00\x00\x00\x01a\x01\x02",
        );
        let b = ComStmtBulkExecute::decode(&wire, 2).unwrap();
        assert_eq!(b.statement_id, 7);
        assert_eq!(
            b.param_types,
            vec![
                ParamType::new(ct::LONG, false),
                ParamType::new(ct::VAR_STRING, false)
            ]
        );
        let rows = b.rows(&b.param_types).unwrap();
        assert_eq!(
            rows,
            vec![
                vec![
                    BulkValue::Value(BinaryValue::Int4(1)),
                    BulkValue::Value(BinaryValue::Bytes(Bytes::from_static(b"a")))
                ],
                vec![BulkValue::Null, BulkValue::Default],
            ]
        );
        assert_eq!(ComStmtBulkExecute::encode_rows(&rows), b.data);
        let mut out = BytesMut::new();
        b.encode(&mut out);
        assert_eq!(out.freeze(), wire);
        let bad = ComStmtBulkExecute {
            data: Bytes::from_static(b"\x07"),
            ..b.clone()
        };
        assert!(bad.rows(&b.param_types).is_err(), "unknown indicator");
        let short = ComStmtBulkExecute {
            data: Bytes::from_static(b"\x00\x01"),
            ..b.clone()
        };
        assert!(short.rows(&b.param_types).is_err(), "truncated value");
        assert!(b.rows(&[]).is_err());
    }

    proptest! {
        #[test]
        fn roundtrip(
            id in any::<u32>(),
            unit in any::<bool>(),
            typed in proptest::collection::vec(arb_typed_value(), 1..5),
            nrows in 0usize..4,
        ) {
            let types: Vec<ParamType> = typed.iter().map(|(t, _)| ParamType::new(*t, false)).collect();
            let rows: Vec<Vec<BulkValue>> = (0..nrows)
                .map(|i| typed.iter().enumerate().map(|(j, (_, v))| match (i + j) % 4 {
                    0 => BulkValue::Value(v.clone()),
                    1 => BulkValue::Null,
                    2 => BulkValue::Default,
                    _ => BulkValue::Ignore,
                }).collect())
                .collect();
            let b = ComStmtBulkExecute {
                statement_id: id,
                flags: BULK_SEND_TYPES_TO_SERVER | if unit { BULK_SEND_UNIT_RESULTS } else { 0 },
                param_types: types.clone(),
                data: ComStmtBulkExecute::encode_rows(&rows),
            };
            let mut out = BytesMut::new();
            b.encode(&mut out);
            let back = ComStmtBulkExecute::decode(&out.freeze(), types.len()).unwrap();
            prop_assert_eq!(&back, &b);
            prop_assert_eq!(back.rows(&types).unwrap(), rows);
        }

        #[test]
        fn arbitrary_never_panics(data in arb_payload(), n in 0usize..6) {
            if let Ok(b) = ComStmtBulkExecute::decode(&Bytes::from(data), n) {
                let _ = b.rows(&b.param_types);
            }
        }
    }
}
