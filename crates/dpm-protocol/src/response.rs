//! Generic server responses: [`OkPacket`], [`EofPacket`] and the allocation-free hot-path
//! classifiers ([`is_eof_packet`], [`terminator_status`], [`ok_status`], ...).
//! ERR packets live in [`crate::err`] and are re-exported here.
//!
//! ```text
//! OK:  int<1> 0x00 (0xFE when it replaces an EOF under CLIENT_DEPRECATE_EOF)
//!      int<lenenc> affected_rows ‖ int<lenenc> last_insert_id
//!      int<2> status_flags ‖ int<2> warnings            (CLIENT_PROTOCOL_41)
//!      int<2> status_flags                              (else if CLIENT_TRANSACTIONS)
//!      CLIENT_SESSION_TRACK: [string<lenenc> info [string<lenenc> session state
//!                             if SERVER_SESSION_STATE_CHANGED]] (absent when empty)
//!      else: string<EOF> info
//! EOF: int<1> 0xFE ‖ int<2> warnings ‖ int<2> status_flags   (CLIENT_PROTOCOL_41)
//! ```

use bytes::{BufMut, Bytes, BytesMut};

use crate::caps::{CLIENT_PROTOCOL_41, CLIENT_SESSION_TRACK, CLIENT_TRANSACTIONS};
use crate::error::{ProtocolError, Result};
use crate::frame::MAX_PAYLOAD_LEN;
use crate::lenenc::{
    get_lenenc_int_nonnull, get_lenenc_str_nonnull, put_lenenc_int, put_lenenc_str,
};
use crate::reader::{get_eof_str, get_u16, get_u8, slice_of};
use crate::session_track::{decode_session_state, SessionStateChange};
use crate::status::SERVER_SESSION_STATE_CHANGED;

pub use crate::err::{is_err_packet, is_progress_report, ErrPacket, ProgressReport, ERR_HEADER};

/// Header byte of an OK packet.
pub const OK_HEADER: u8 = 0x00;
/// Header byte of an EOF packet (and of an OK packet replacing an EOF).
pub const EOF_HEADER: u8 = 0xFE;

/// True if `payload` is an EOF-style terminator: `0xFE` and shorter than 9 bytes (classic
/// EOF), or, with `deprecate_eof` (`CLIENT_DEPRECATE_EOF` negotiated), `0xFE` and shorter
/// than `0xFFFFFF` (an OK packet with `0xFE` header). The length check tells it apart from a
/// text row whose first column starts with an 8-byte length prefix.
#[inline]
pub fn is_eof_packet(payload: &[u8], deprecate_eof: bool) -> bool {
    match payload.first() {
        Some(&EOF_HEADER) => {
            if deprecate_eof {
                payload.len() < MAX_PAYLOAD_LEN
            } else {
                payload.len() < 9
            }
        }
        _ => false,
    }
}

/// True if `payload` starts with the OK header `0x00` (use in contexts where an OK is
/// possible: command responses, not inside a result set).
#[inline]
pub fn is_ok_packet(payload: &[u8]) -> bool {
    payload.first() == Some(&OK_HEADER)
}

/// Reads a length-encoded integer at `*pos` without allocating; `None` on NULL/0xFF/short.
#[inline(always)]
fn skip_lenenc(payload: &[u8], pos: usize) -> Option<usize> {
    let first = *payload.get(pos)?;
    let len = match first {
        0..=0xFA => 1,
        0xFC => 3,
        0xFD => 4,
        0xFE => 9,
        _ => return None,
    };
    let end = pos.checked_add(len)?;
    (end <= payload.len()).then_some(end)
}

#[inline(always)]
fn u16_at(payload: &[u8], pos: usize) -> Option<u16> {
    match payload.get(pos..pos.checked_add(2)?)? {
        [a, b] => Some(u16::from_le_bytes([*a, *b])),
        _ => None,
    }
}

/// Status flags of an OK packet (header `0x00` or `0xFE`), read without decoding the rest.
/// Assumes `CLIENT_PROTOCOL_41`. `None` if the payload is not a well-formed OK prefix.
#[inline]
pub fn ok_status(payload: &[u8]) -> Option<u16> {
    match payload.first() {
        Some(&OK_HEADER) | Some(&EOF_HEADER) => {}
        _ => return None,
    }
    let pos = skip_lenenc(payload, 1)?;
    let pos = skip_lenenc(payload, pos)?;
    u16_at(payload, pos)
}

/// Status flags of a result-set terminator: a classic EOF (`0xFE`, 5 bytes: warnings then
/// status) or, with `deprecate_eof`, an OK-as-EOF (`0xFE`, OK layout). `None` if `payload`
/// is not such a terminator (including ERR packets). Assumes `CLIENT_PROTOCOL_41`.
///
/// A 5-byte `0xFE` packet is read as a classic EOF even with `deprecate_eof` (an OK is at
/// least 7 bytes), because servers still send those in a few places.
#[inline]
pub fn terminator_status(payload: &[u8], deprecate_eof: bool) -> Option<u16> {
    if !is_eof_packet(payload, deprecate_eof) {
        return None;
    }
    if payload.len() == 5 {
        return u16_at(payload, 3);
    }
    if deprecate_eof {
        ok_status(payload)
    } else {
        None
    }
}

/// An OK packet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OkPacket {
    /// `0x00`, or `0xFE` when the OK replaces an EOF under `CLIENT_DEPRECATE_EOF`.
    pub header: u8,
    /// Rows affected (or found, with `CLIENT_FOUND_ROWS`).
    pub affected_rows: u64,
    /// Last `AUTO_INCREMENT` id generated.
    pub last_insert_id: u64,
    /// Server status flags (zero when not sent).
    pub status_flags: u16,
    /// Warning count (zero when not sent).
    pub warnings: u16,
    /// Human-readable information (e.g. `Rows matched: 1  Changed: 1  Warnings: 0`).
    pub info: Bytes,
    /// Raw session-state-tracking data, present when `CLIENT_SESSION_TRACK` is negotiated and
    /// `SERVER_SESSION_STATE_CHANGED` is set. Decode it with [`OkPacket::session_state`].
    pub session_state_changes: Option<Bytes>,
}

impl OkPacket {
    /// Decodes an OK packet (header `0x00` or `0xFE`) using the negotiated capabilities.
    pub fn decode(payload: &Bytes, caps: u64) -> Result<Self> {
        const WHAT: &str = "OK packet";
        let mut buf: &[u8] = payload;
        let header = get_u8(&mut buf, WHAT)?;
        if header != OK_HEADER && header != EOF_HEADER {
            return Err(ProtocolError::UnexpectedHeader {
                what: WHAT,
                found: header,
            });
        }
        let affected_rows = get_lenenc_int_nonnull(&mut buf, WHAT)?;
        let last_insert_id = get_lenenc_int_nonnull(&mut buf, WHAT)?;
        let (status_flags, warnings) = if caps & CLIENT_PROTOCOL_41 != 0 {
            (get_u16(&mut buf, WHAT)?, get_u16(&mut buf, WHAT)?)
        } else if caps & CLIENT_TRANSACTIONS != 0 {
            (get_u16(&mut buf, WHAT)?, 0)
        } else {
            (0, 0)
        };
        let mut info = Bytes::new();
        let mut session_state_changes = None;
        if caps & CLIENT_SESSION_TRACK != 0 {
            if !buf.is_empty() {
                info = slice_of(payload, get_lenenc_str_nonnull(&mut buf, WHAT)?);
                if status_flags & SERVER_SESSION_STATE_CHANGED != 0 && !buf.is_empty() {
                    session_state_changes =
                        Some(slice_of(payload, get_lenenc_str_nonnull(&mut buf, WHAT)?));
                }
            }
        } else {
            info = slice_of(payload, get_eof_str(&mut buf));
        }
        Ok(OkPacket {
            header,
            affected_rows,
            last_insert_id,
            status_flags,
            warnings,
            info,
            session_state_changes,
        })
    }

    /// Encodes the payload for the negotiated capabilities. With `CLIENT_SESSION_TRACK`,
    /// the info string is omitted when empty and there is no session state to send (as the
    /// servers do); session state is written only when `SERVER_SESSION_STATE_CHANGED` is set.
    pub fn encode(&self, dst: &mut BytesMut, caps: u64) {
        dst.put_u8(self.header);
        put_lenenc_int(dst, self.affected_rows);
        put_lenenc_int(dst, self.last_insert_id);
        if caps & CLIENT_PROTOCOL_41 != 0 {
            dst.put_u16_le(self.status_flags);
            dst.put_u16_le(self.warnings);
        } else if caps & CLIENT_TRANSACTIONS != 0 {
            dst.put_u16_le(self.status_flags);
        }
        if caps & CLIENT_SESSION_TRACK != 0 {
            let state = self
                .session_state_changes
                .as_ref()
                .filter(|_| self.status_flags & SERVER_SESSION_STATE_CHANGED != 0);
            if state.is_some() || !self.info.is_empty() {
                put_lenenc_str(dst, &self.info);
            }
            if let Some(state) = state {
                put_lenenc_str(dst, state);
            }
        } else {
            dst.put_slice(&self.info);
        }
    }

    /// Decodes the session-state entries (empty when there are none).
    pub fn session_state(&self) -> Result<Vec<SessionStateChange>> {
        match &self.session_state_changes {
            Some(raw) => decode_session_state(raw),
            None => Ok(Vec::new()),
        }
    }

    /// True when this OK stands in for an EOF (header `0xFE`).
    pub fn is_eof_replacement(&self) -> bool {
        self.header == EOF_HEADER
    }
}

/// A classic EOF packet (used when `CLIENT_DEPRECATE_EOF` is not negotiated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EofPacket {
    /// Warning count.
    pub warnings: u16,
    /// Server status flags.
    pub status_flags: u16,
}

impl EofPacket {
    /// Decodes an EOF payload. With `CLIENT_PROTOCOL_41` it must hold warnings and status
    /// (5 bytes); without it, just the header. Payloads of 9 bytes or more are rejected
    /// (those are rows or OK packets).
    pub fn decode(payload: &[u8], caps: u64) -> Result<Self> {
        const WHAT: &str = "EOF packet";
        let mut buf = payload;
        let header = get_u8(&mut buf, WHAT)?;
        if header != EOF_HEADER {
            return Err(ProtocolError::UnexpectedHeader {
                what: WHAT,
                found: header,
            });
        }
        if payload.len() >= 9 {
            return Err(ProtocolError::malformed(WHAT, "too long for an EOF packet"));
        }
        if caps & CLIENT_PROTOCOL_41 == 0 {
            return Ok(EofPacket::default());
        }
        Ok(EofPacket {
            warnings: get_u16(&mut buf, WHAT)?,
            status_flags: get_u16(&mut buf, WHAT)?,
        })
    }

    /// Encodes the payload (5 bytes with `CLIENT_PROTOCOL_41`, else 1).
    pub fn encode(&self, dst: &mut BytesMut, caps: u64) {
        dst.put_u8(EOF_HEADER);
        if caps & CLIENT_PROTOCOL_41 != 0 {
            dst.put_u16_le(self.warnings);
            dst.put_u16_le(self.status_flags);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::*;
    use crate::status::*;
    use crate::test_util::*;
    use proptest::prelude::*;

    const CAPS41: u64 = CLIENT_PROTOCOL_41 | CLIENT_TRANSACTIONS;
    const CAPS_TRACK: u64 = CAPS41 | CLIENT_SESSION_TRACK | CLIENT_DEPRECATE_EOF;

    #[test]
    fn ok_doc_fixture() {
        // MySQL docs: OK with autocommit status.
        let wire = Bytes::from_static(b"\x00\x00\x00\x02\x00\x00\x00");
        let ok = OkPacket::decode(&wire, CAPS41).unwrap();
        assert_eq!(ok.status_flags, SERVER_STATUS_AUTOCOMMIT);
        assert_eq!(ok_status(&wire), Some(2));
        let mut out = BytesMut::new();
        ok.encode(&mut out, CAPS41);
        assert_eq!(out.freeze(), wire);
        let ok2 = OkPacket::decode(&wire, CAPS_TRACK).unwrap();
        assert_eq!(ok2, ok);
    }

    #[test]
    fn ok_with_info_and_session_state() {
        // MySQL docs: SET autocommit=OFF with session tracking.
        let wire = Bytes::from_static(
            b"\x00\x00\x00\x00\x40\x00\x00\x00\x11\x00\x0f\x0aautocommit\x03OFF",
        );
        let ok = OkPacket::decode(&wire, CAPS_TRACK).unwrap();
        assert_eq!(ok.status_flags, SERVER_SESSION_STATE_CHANGED);
        assert!(ok.info.is_empty());
        let st = ok.session_state().unwrap();
        assert_eq!(st.len(), 1);
        let mut out = BytesMut::new();
        ok.encode(&mut out, CAPS_TRACK);
        assert_eq!(out.freeze(), wire);

        // UPDATE with info, no session tracking: info is string<EOF>.
        let wire = Bytes::from_static(
            b"\x00\x01\x00\x22\x00\x00\x00(Rows matched: 1  Changed: 1  Warnings: 0",
        );
        let ok = OkPacket::decode(&wire, CAPS41).unwrap();
        assert_eq!(ok.affected_rows, 1);
        assert_eq!(ok.status_flags, 0x22);
        assert!(ok.info.starts_with(b"(Rows"));
    }

    #[test]
    fn ok_as_eof_and_large_values() {
        let ok = OkPacket {
            header: EOF_HEADER,
            affected_rows: 0x1_0000_0000,
            last_insert_id: 300,
            status_flags: SERVER_MORE_RESULTS_EXISTS | SERVER_STATUS_AUTOCOMMIT,
            warnings: 7,
            ..Default::default()
        };
        let mut out = BytesMut::new();
        ok.encode(&mut out, CAPS_TRACK);
        assert!(is_eof_packet(&out, true));
        assert!(!is_eof_packet(&out, false));
        assert_eq!(terminator_status(&out, true), Some(0x000A));
        assert_eq!(terminator_status(&out, false), None);
        assert_eq!(ok_status(&out), Some(0x000A));
        let back = OkPacket::decode(&out.freeze(), CAPS_TRACK).unwrap();
        assert!(back.is_eof_replacement());
        assert_eq!(back, ok);
    }

    #[test]
    fn eof_doc_fixture() {
        let wire = [0xFEu8, 0x00, 0x00, 0x02, 0x00];
        let e = EofPacket::decode(&wire, CAPS41).unwrap();
        assert_eq!(
            e,
            EofPacket {
                warnings: 0,
                status_flags: 2
            }
        );
        assert!(is_eof_packet(&wire, false));
        assert!(is_eof_packet(&wire, true));
        assert_eq!(terminator_status(&wire, false), Some(2));
        assert_eq!(terminator_status(&wire, true), Some(2));
        let mut out = BytesMut::new();
        e.encode(&mut out, CAPS41);
        assert_eq!(&out[..], &wire);
        assert_eq!(EofPacket::decode(&[0xFE], 0).unwrap(), EofPacket::default());
        assert!(EofPacket::decode(&[0xFE, 0], CAPS41).is_err());
        assert!(EofPacket::decode(&[0xFE; 9], CAPS41).is_err());
        assert!(EofPacket::decode(&[0x00; 5], CAPS41).is_err());
    }

    #[test]
    fn classifiers_on_non_terminators() {
        // A text row whose first value has an 8-byte length prefix starts with 0xFE.
        let mut row = vec![0xFE, 1, 0, 0, 0, 0, 0, 0, 0, b'x'];
        assert!(!is_eof_packet(&row, false));
        assert!(
            is_eof_packet(&row, true),
            "only the 0xFFFFFF rule applies here"
        );
        row.resize(MAX_PAYLOAD_LEN, 0);
        assert!(!is_eof_packet(&row, true));
        assert_eq!(terminator_status(&[0xFF, 0x10, 0x04], true), None);
        assert_eq!(terminator_status(&[], true), None);
        assert_eq!(terminator_status(&[0xFE], false), None);
        assert_eq!(ok_status(&[0x00, 0x00]), None);
        assert_eq!(ok_status(&[0x00, 0xFB, 0, 2, 0]), None);
        assert_eq!(ok_status(&[0x00, 0xFC, 1, 0, 0, 3, 0]), Some(3));
        assert_eq!(ok_status(&[0x01, 0, 0, 3, 0]), None);
        assert!(is_ok_packet(&[0]));
        assert!(!is_ok_packet(&[]));
    }

    #[test]
    fn ok_pre41() {
        let ok = OkPacket {
            affected_rows: 3,
            status_flags: 2,
            info: Bytes::from_static(b"hi"),
            ..Default::default()
        };
        for caps in [0, CLIENT_TRANSACTIONS] {
            let mut out = BytesMut::new();
            ok.encode(&mut out, caps);
            let back = OkPacket::decode(&out.freeze(), caps).unwrap();
            assert_eq!(back.affected_rows, 3);
            assert_eq!(back.info, ok.info);
            assert_eq!(back.status_flags, if caps == 0 { 0 } else { 2 });
        }
    }

    proptest! {
        #[test]
        fn ok_roundtrip((ok, caps) in arb_ok_packet()) {
            let mut out = BytesMut::new();
            ok.encode(&mut out, caps);
            if caps & CLIENT_PROTOCOL_41 != 0 {
                prop_assert_eq!(ok_status(&out), Some(ok.status_flags));
                if ok.header == EOF_HEADER {
                    prop_assert_eq!(terminator_status(&out, true), Some(ok.status_flags));
                }
            }
            prop_assert_eq!(OkPacket::decode(&out.freeze(), caps).unwrap(), ok);
        }

        #[test]
        fn eof_roundtrip(warnings in any::<u16>(), status_flags in any::<u16>()) {
            let e = EofPacket { warnings, status_flags };
            let mut out = BytesMut::new();
            e.encode(&mut out, CAPS41);
            prop_assert_eq!(terminator_status(&out, false), Some(status_flags));
            prop_assert_eq!(terminator_status(&out, true), Some(status_flags));
            prop_assert_eq!(EofPacket::decode(&out, CAPS41).unwrap(), e);
        }

        #[test]
        fn arbitrary_never_panics(data in arb_payload(), caps in any::<u64>(), d in any::<bool>()) {
            let _ = is_eof_packet(&data, d);
            let _ = terminator_status(&data, d);
            let _ = ok_status(&data);
            let _ = EofPacket::decode(&data, caps);
            if let Ok(ok) = OkPacket::decode(&Bytes::from(data), caps) {
                let _ = ok.session_state();
            }
        }
    }
}
