//! Prepared-statement packets other than execute: `COM_STMT_PREPARE` ([`ComStmtPrepare`])
//! and its OK response ([`StmtPrepareOk`]), `COM_STMT_CLOSE`, `COM_STMT_RESET`,
//! `COM_STMT_FETCH` and `COM_STMT_SEND_LONG_DATA`.
//!
//! A prepare-OK is followed by `num_params` parameter definitions and `num_columns` column
//! definitions (each group ended by an EOF unless `CLIENT_DEPRECATE_EOF`).

use bytes::{BufMut, Bytes, BytesMut};

use crate::caps::CLIENT_OPTIONAL_RESULTSET_METADATA;
use crate::command::com;
use crate::error::Result;
use crate::reader::{expect_header, get_eof_str, get_u16, get_u32, get_u8, slice_of};

/// `COM_STMT_PREPARE`: `0x16 ‖ query (EOF)`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ComStmtPrepare {
    /// The SQL text with `?` placeholders.
    pub query: Bytes,
}

impl ComStmtPrepare {
    /// Decodes the payload.
    pub fn decode(payload: &Bytes) -> Result<Self> {
        let mut buf: &[u8] = payload;
        expect_header(&mut buf, com::STMT_PREPARE, "COM_STMT_PREPARE")?;
        Ok(ComStmtPrepare {
            query: slice_of(payload, get_eof_str(&mut buf)),
        })
    }

    /// Encodes the payload.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u8(com::STMT_PREPARE);
        dst.put_slice(&self.query);
    }
}

/// The successful response to `COM_STMT_PREPARE`.
///
/// ```text
/// int<1> 0x00 ‖ int<4> statement_id ‖ int<2> num_columns ‖ int<2> num_params
/// int<1> filler ‖ int<2> warnings ‖ int<1> metadata_follows (CLIENT_OPTIONAL_RESULTSET_METADATA)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StmtPrepareOk {
    /// Server-side statement id.
    pub statement_id: u32,
    /// Number of result columns.
    pub num_columns: u16,
    /// Number of `?` parameters.
    pub num_params: u16,
    /// Warning count (0 when the packet omits it).
    pub warnings: u16,
    /// MySQL `CLIENT_OPTIONAL_RESULTSET_METADATA`: whether definitions follow.
    pub metadata_follows: Option<bool>,
}

impl StmtPrepareOk {
    /// Decodes the payload (`caps`: the negotiated capabilities).
    pub fn decode(payload: &[u8], caps: u64) -> Result<Self> {
        const WHAT: &str = "COM_STMT_PREPARE OK";
        let mut buf = payload;
        expect_header(&mut buf, 0x00, WHAT)?;
        let statement_id = get_u32(&mut buf, WHAT)?;
        let num_columns = get_u16(&mut buf, WHAT)?;
        let num_params = get_u16(&mut buf, WHAT)?;
        let _filler = get_u8(&mut buf, WHAT)?;
        let warnings = if buf.is_empty() {
            0
        } else {
            get_u16(&mut buf, WHAT)?
        };
        let metadata_follows = if caps & CLIENT_OPTIONAL_RESULTSET_METADATA != 0 && !buf.is_empty()
        {
            Some(get_u8(&mut buf, WHAT)? != 0)
        } else {
            None
        };
        Ok(StmtPrepareOk {
            statement_id,
            num_columns,
            num_params,
            warnings,
            metadata_follows,
        })
    }

    /// Encodes the payload (12 bytes, plus the metadata flag when negotiated and set).
    pub fn encode(&self, dst: &mut BytesMut, caps: u64) {
        dst.put_u8(0x00);
        dst.put_u32_le(self.statement_id);
        dst.put_u16_le(self.num_columns);
        dst.put_u16_le(self.num_params);
        dst.put_u8(0);
        dst.put_u16_le(self.warnings);
        if caps & CLIENT_OPTIONAL_RESULTSET_METADATA != 0 {
            if let Some(f) = self.metadata_follows {
                dst.put_u8(f as u8);
            }
        }
    }
}

macro_rules! stmt_id_command {
    ($(#[$doc:meta])* $name:ident, $com:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name {
            /// The statement id from [`StmtPrepareOk`].
            pub statement_id: u32,
        }

        impl $name {
            /// Decodes the payload.
            pub fn decode(payload: &[u8]) -> Result<Self> {
                let mut buf = payload;
                expect_header(&mut buf, $com, $what)?;
                Ok($name {
                    statement_id: get_u32(&mut buf, $what)?,
                })
            }

            /// Encodes the payload.
            pub fn encode(&self, dst: &mut BytesMut) {
                dst.put_u8($com);
                dst.put_u32_le(self.statement_id);
            }
        }
    };
}

stmt_id_command!(
    /// `COM_STMT_CLOSE`: `0x19 ‖ int<4> statement_id`. The server sends no response.
    ComStmtClose,
    com::STMT_CLOSE,
    "COM_STMT_CLOSE"
);
stmt_id_command!(
    /// `COM_STMT_RESET`: `0x1A ‖ int<4> statement_id`. Answered with OK or ERR.
    ComStmtReset,
    com::STMT_RESET,
    "COM_STMT_RESET"
);

/// `COM_STMT_FETCH`: `0x1C ‖ int<4> statement_id ‖ int<4> num_rows`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ComStmtFetch {
    /// The statement id (with an open cursor).
    pub statement_id: u32,
    /// Maximum number of rows to return.
    pub num_rows: u32,
}

impl ComStmtFetch {
    /// Decodes the payload.
    pub fn decode(payload: &[u8]) -> Result<Self> {
        const WHAT: &str = "COM_STMT_FETCH";
        let mut buf = payload;
        expect_header(&mut buf, com::STMT_FETCH, WHAT)?;
        Ok(ComStmtFetch {
            statement_id: get_u32(&mut buf, WHAT)?,
            num_rows: get_u32(&mut buf, WHAT)?,
        })
    }

    /// Encodes the payload.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u8(com::STMT_FETCH);
        dst.put_u32_le(self.statement_id);
        dst.put_u32_le(self.num_rows);
    }
}

/// `COM_STMT_SEND_LONG_DATA`: `0x18 ‖ int<4> statement_id ‖ int<2> param_id ‖ data (EOF)`.
/// The server sends no response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ComStmtSendLongData {
    /// The statement id.
    pub statement_id: u32,
    /// Index of the parameter the data is appended to.
    pub param_id: u16,
    /// The chunk of data.
    pub data: Bytes,
}

impl ComStmtSendLongData {
    /// Decodes the payload.
    pub fn decode(payload: &Bytes) -> Result<Self> {
        const WHAT: &str = "COM_STMT_SEND_LONG_DATA";
        let mut buf: &[u8] = payload;
        expect_header(&mut buf, com::STMT_SEND_LONG_DATA, WHAT)?;
        let statement_id = get_u32(&mut buf, WHAT)?;
        let param_id = get_u16(&mut buf, WHAT)?;
        Ok(ComStmtSendLongData {
            statement_id,
            param_id,
            data: slice_of(payload, buf),
        })
    }

    /// Encodes the payload.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.reserve(7 + self.data.len());
        dst.put_u8(com::STMT_SEND_LONG_DATA);
        dst.put_u32_le(self.statement_id);
        dst.put_u16_le(self.param_id);
        dst.put_slice(&self.data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;
    use proptest::prelude::*;

    #[test]
    fn prepare_ok_doc_fixture() {
        // MySQL docs: prepare "SELECT CONCAT(?, ?) AS col1": id 1, 1 column, 2 params.
        let wire = b"\x00\x01\x00\x00\x00\x01\x00\x02\x00\x00\x00\x00";
        let ok = StmtPrepareOk::decode(wire, 0).unwrap();
        assert_eq!(
            (ok.statement_id, ok.num_columns, ok.num_params, ok.warnings),
            (1, 1, 2, 0)
        );
        let mut out = BytesMut::new();
        ok.encode(&mut out, 0);
        assert_eq!(&out[..], wire);
        // Old servers end after the filler.
        assert_eq!(StmtPrepareOk::decode(&wire[..10], 0).unwrap(), ok);
        assert!(StmtPrepareOk::decode(&wire[..9], 0).is_err());
    }

    #[test]
    fn simple_fixtures() {
        let p = ComStmtPrepare::decode(&Bytes::from_static(b"\x16SELECT ?")).unwrap();
        assert_eq!(&p.query[..], b"SELECT ?");
        assert_eq!(
            ComStmtClose::decode(b"\x19\x01\x00\x00\x00")
                .unwrap()
                .statement_id,
            1
        );
        assert!(ComStmtClose::decode(b"\x1a\x01\x00\x00\x00").is_err());
        assert!(ComStmtReset::decode(b"\x1a\x01\x00").is_err());
        let f = ComStmtFetch::decode(b"\x1c\x01\x00\x00\x00\x0a\x00\x00\x00").unwrap();
        assert_eq!(
            f,
            ComStmtFetch {
                statement_id: 1,
                num_rows: 10
            }
        );
        let l =
            ComStmtSendLongData::decode(&Bytes::from_static(b"\x18\x01\x00\x00\x00\x02\x00abc"))
                .unwrap();
        assert_eq!(
            (l.statement_id, l.param_id, &l.data[..]),
            (1, 2, &b"abc"[..])
        );
    }

    proptest! {
        #[test]
        fn prepare_ok_roundtrip(id in any::<u32>(), c in any::<u16>(), p in any::<u16>(), w in any::<u16>(), m in any::<bool>(), caps in arb_caps()) {
            let ok = StmtPrepareOk {
                statement_id: id, num_columns: c, num_params: p, warnings: w,
                metadata_follows: (caps & CLIENT_OPTIONAL_RESULTSET_METADATA != 0).then_some(m),
            };
            let mut out = BytesMut::new();
            ok.encode(&mut out, caps);
            prop_assert_eq!(StmtPrepareOk::decode(&out, caps).unwrap(), ok);
        }

        #[test]
        fn commands_roundtrip(id in any::<u32>(), n in any::<u32>(), pid in any::<u16>(), data in arb_bytes(100)) {
            let mut out = BytesMut::new();
            let c = ComStmtClose { statement_id: id };
            c.encode(&mut out);
            prop_assert_eq!(ComStmtClose::decode(&out).unwrap(), c);
            let mut out = BytesMut::new();
            let r = ComStmtReset { statement_id: id };
            r.encode(&mut out);
            prop_assert_eq!(ComStmtReset::decode(&out).unwrap(), r);
            let mut out = BytesMut::new();
            let f = ComStmtFetch { statement_id: id, num_rows: n };
            f.encode(&mut out);
            prop_assert_eq!(ComStmtFetch::decode(&out).unwrap(), f);
            let mut out = BytesMut::new();
            let l = ComStmtSendLongData { statement_id: id, param_id: pid, data: data.clone() };
            l.encode(&mut out);
            prop_assert_eq!(ComStmtSendLongData::decode(&out.freeze()).unwrap(), l);
            let mut out = BytesMut::new();
            let p = ComStmtPrepare { query: data };
            p.encode(&mut out);
            prop_assert_eq!(ComStmtPrepare::decode(&out.freeze()).unwrap(), p);
        }

        #[test]
        fn arbitrary_never_panics(data in arb_payload(), caps in any::<u64>()) {
            let _ = StmtPrepareOk::decode(&data, caps);
            let _ = ComStmtClose::decode(&data);
            let _ = ComStmtReset::decode(&data);
            let _ = ComStmtFetch::decode(&data);
            let b = Bytes::from(data);
            let _ = ComStmtSendLongData::decode(&b);
            let _ = ComStmtPrepare::decode(&b);
        }
    }
}
