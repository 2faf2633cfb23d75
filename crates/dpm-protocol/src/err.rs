//! ERR packets ([`ErrPacket`]) and MariaDB progress reports ([`ProgressReport`]), which
//! share the `0xFF` header and use error code `0xFFFF`.
//!
//! ```text
//! ERR:      int<1> 0xFF ‖ int<2> code ‖ ['#' ‖ string[5] sql_state] ‖ string<EOF> message
//! progress: int<1> 0xFF ‖ int<2> 0xFFFF ‖ int<1> number of strings (1) ‖ int<1> stage
//!           ‖ int<1> max_stage ‖ int<3> progress (per-mille of a percent)
//!           ‖ string<lenenc> stage info
//! ```
//! Progress reports are only sent to clients that negotiated `MARIADB_CLIENT_PROGRESS`. They
//! are *not* terminators: they arrive in the middle of a command's response, which then
//! continues. A response tracker must check [`is_progress_report`] before treating a
//! `0xFF` packet as the end of a response.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{ProtocolError, Result};
use crate::lenenc::{get_lenenc_str_nonnull, put_lenenc_str};
use crate::reader::{expect_header, get_eof_str, get_u16, get_u24, get_u8, slice_of};
use crate::writer::put_u24;

/// Header byte of an ERR packet.
pub const ERR_HEADER: u8 = 0xFF;
/// Error code that marks a MariaDB progress report.
pub const PROGRESS_REPORT_CODE: u16 = 0xFFFF;

/// True if `payload` starts with the ERR header `0xFF` (progress reports included).
#[inline]
pub fn is_err_packet(payload: &[u8]) -> bool {
    payload.first() == Some(&ERR_HEADER)
}

/// True if `payload` is a MariaDB progress report (`0xFF` with code `0xFFFF`).
#[inline]
pub fn is_progress_report(payload: &[u8]) -> bool {
    matches!(payload, [ERR_HEADER, 0xFF, 0xFF, ..])
}

/// An ERR packet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ErrPacket {
    /// Error code (e.g. 1045 access denied, 1064 syntax error).
    pub code: u16,
    /// SQL state, present when the message is preceded by the `#` marker (always with
    /// `CLIENT_PROTOCOL_41`, never in errors sent before the handshake).
    pub sql_state: Option<[u8; 5]>,
    /// Human-readable message.
    pub message: Bytes,
}

impl ErrPacket {
    /// Decodes an ERR payload. The SQL state is recognised by its `#` marker, so no
    /// capabilities are needed. A progress report decodes as code `0xFFFF` with its body
    /// as the message; use [`is_progress_report`] / [`ProgressReport`] for those.
    pub fn decode(payload: &Bytes) -> Result<Self> {
        const WHAT: &str = "ERR packet";
        let mut buf: &[u8] = payload;
        expect_header(&mut buf, ERR_HEADER, WHAT)?;
        let code = get_u16(&mut buf, WHAT)?;
        let sql_state = match buf {
            [b'#', a, b, c, d, e, rest @ ..] => {
                buf = rest;
                Some([*a, *b, *c, *d, *e])
            }
            _ => None,
        };
        Ok(ErrPacket {
            code,
            sql_state,
            message: slice_of(payload, get_eof_str(&mut buf)),
        })
    }

    /// Encodes the payload (the `#` marker is written only when `sql_state` is `Some`).
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.reserve(9 + self.message.len());
        dst.put_u8(ERR_HEADER);
        dst.put_u16_le(self.code);
        if let Some(state) = &self.sql_state {
            dst.put_u8(b'#');
            dst.put_slice(state);
        }
        dst.put_slice(&self.message);
    }

    /// Builds an error with SQL state and message.
    pub fn new(code: u16, sql_state: [u8; 5], message: impl Into<Bytes>) -> Self {
        ErrPacket {
            code,
            sql_state: Some(sql_state),
            message: message.into(),
        }
    }

    /// True when this is a progress report's code.
    pub fn is_progress_report(&self) -> bool {
        self.code == PROGRESS_REPORT_CODE
    }

    /// The SQL state as a string slice (`None` when absent or not ASCII).
    pub fn sql_state_str(&self) -> Option<&str> {
        self.sql_state
            .as_ref()
            .and_then(|s| std::str::from_utf8(s).ok())
    }
}

/// A MariaDB progress report (an ERR packet with code `0xFFFF`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProgressReport {
    /// Current stage, 1-based.
    pub stage: u8,
    /// Number of stages.
    pub max_stage: u8,
    /// Progress within the stage in thousandths of a percent (0..=100_000).
    pub progress: u32,
    /// Stage description (e.g. `copy to tmp table`).
    pub info: Bytes,
}

impl ProgressReport {
    /// Decodes a progress report payload.
    pub fn decode(payload: &Bytes) -> Result<Self> {
        const WHAT: &str = "progress report";
        let mut buf: &[u8] = payload;
        expect_header(&mut buf, ERR_HEADER, WHAT)?;
        if get_u16(&mut buf, WHAT)? != PROGRESS_REPORT_CODE {
            return Err(ProtocolError::malformed(WHAT, "error code is not 0xFFFF"));
        }
        let _strings = get_u8(&mut buf, WHAT)?;
        let stage = get_u8(&mut buf, WHAT)?;
        let max_stage = get_u8(&mut buf, WHAT)?;
        let progress = get_u24(&mut buf, WHAT)?;
        let info = slice_of(payload, get_lenenc_str_nonnull(&mut buf, WHAT)?);
        Ok(ProgressReport {
            stage,
            max_stage,
            progress,
            info,
        })
    }

    /// Encodes the payload.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u8(ERR_HEADER);
        dst.put_u16_le(PROGRESS_REPORT_CODE);
        dst.put_u8(1);
        dst.put_u8(self.stage);
        dst.put_u8(self.max_stage);
        put_u24(dst, self.progress);
        put_lenenc_str(dst, &self.info);
    }

    /// Progress within the stage as a percentage.
    pub fn percent(&self) -> f64 {
        self.progress as f64 / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;
    use proptest::prelude::*;

    #[test]
    fn doc_fixture() {
        // MySQL docs: 1096 "No tables used".
        let wire = Bytes::from_static(b"\xff\x48\x04#HY000No tables used");
        let e = ErrPacket::decode(&wire).unwrap();
        assert_eq!(e.code, 1096);
        assert_eq!(e.sql_state_str(), Some("HY000"));
        assert_eq!(&e.message[..], b"No tables used");
        assert!(!is_progress_report(&wire));
        assert!(is_err_packet(&wire));
        let mut out = BytesMut::new();
        e.encode(&mut out);
        assert_eq!(out.freeze(), wire);
    }

    #[test]
    fn pre_handshake_error_without_state() {
        let wire = Bytes::from_static(b"\xff\x10\x04Too many connections");
        let e = ErrPacket::decode(&wire).unwrap();
        assert_eq!(e.code, 1040);
        assert_eq!(e.sql_state, None);
        let mut out = BytesMut::new();
        e.encode(&mut out);
        assert_eq!(out.freeze(), wire);
        assert!(ErrPacket::decode(&Bytes::from_static(b"\xff\x01")).is_err());
        assert!(ErrPacket::decode(&Bytes::from_static(b"\x00\x01\x02")).is_err());
        // A short '#' tail is part of the message.
        let e = ErrPacket::decode(&Bytes::from_static(b"\xff\x01\x00#HY")).unwrap();
        assert_eq!((e.sql_state, &e.message[..]), (None, &b"#HY"[..]));
    }

    #[test]
    fn progress_fixture() {
        // ALTER TABLE progress: stage 1 of 2, 45.5%, "copy to tmp table".
        let wire = Bytes::from_static(b"\xff\xff\xff\x01\x01\x02\xbc\xb1\x00\x11copy to tmp table");
        assert!(is_progress_report(&wire));
        let p = ProgressReport::decode(&wire).unwrap();
        assert_eq!((p.stage, p.max_stage, p.progress), (1, 2, 45_500));
        assert!((p.percent() - 45.5).abs() < 1e-9);
        assert_eq!(&p.info[..], b"copy to tmp table");
        let mut out = BytesMut::new();
        p.encode(&mut out);
        assert_eq!(out.freeze(), wire);
        assert!(ErrPacket::decode(&wire).unwrap().is_progress_report());
        assert!(ProgressReport::decode(&Bytes::from_static(b"\xff\x01\x00\x01")).is_err());
    }

    proptest! {
        #[test]
        fn err_roundtrip(e in arb_err_packet()) {
            let mut out = BytesMut::new();
            e.encode(&mut out);
            prop_assert_eq!(ErrPacket::decode(&out.freeze()).unwrap(), e);
        }

        #[test]
        fn progress_roundtrip(stage in any::<u8>(), max_stage in any::<u8>(), progress in 0u32..0x100_0000, info in arb_bytes(40)) {
            let p = ProgressReport { stage, max_stage, progress, info };
            let mut out = BytesMut::new();
            p.encode(&mut out);
            prop_assert!(is_progress_report(&out));
            prop_assert_eq!(ProgressReport::decode(&out.freeze()).unwrap(), p);
        }

        #[test]
        fn arbitrary_never_panics(data in arb_payload()) {
            let b = Bytes::from(data);
            let _ = ErrPacket::decode(&b).map(|e| e.sql_state_str().map(str::len));
            let _ = ProgressReport::decode(&b);
        }
    }
}
