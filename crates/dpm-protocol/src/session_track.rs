//! Session state tracking entries carried in OK packets (`CLIENT_SESSION_TRACK` with
//! `SERVER_SESSION_STATE_CHANGED`).
//!
//! The OK packet's session-state field is a sequence of entries, each
//! `int<1> type ‖ string<lenenc> data`, where `data` is:
//!
//! | type | name                       | data                                   |
//! |------|----------------------------|----------------------------------------|
//! | 0    | SYSTEM_VARIABLES           | `string<lenenc> name ‖ string<lenenc> value` |
//! | 1    | SCHEMA                     | `string<lenenc> schema`                |
//! | 2    | STATE_CHANGE               | `string<lenenc> "1"`                   |
//! | 3    | GTIDS                      | `int<1> encoding ‖ string<lenenc> gtids` |
//! | 4    | TRANSACTION_CHARACTERISTICS| `string<lenenc> characteristics`       |
//! | 5    | TRANSACTION_STATE          | `string<lenenc> state`                 |

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{ProtocolError, Result};
use crate::lenenc::{get_lenenc_str_nonnull, lenenc_str_len, put_lenenc_int, put_lenenc_str};
use crate::reader::{expect_end, get_u8, slice_of};

/// Session-state entry types.
pub mod session_track_type {
    /// One tracked system variable changed.
    pub const SYSTEM_VARIABLES: u8 = 0;
    /// The default schema changed.
    pub const SCHEMA: u8 = 1;
    /// Some tracked session state changed.
    pub const STATE_CHANGE: u8 = 2;
    /// GTIDs of the last transaction.
    pub const GTIDS: u8 = 3;
    /// Transaction characteristics (as SQL statements).
    pub const TRANSACTION_CHARACTERISTICS: u8 = 4;
    /// Transaction state (8-character code).
    pub const TRANSACTION_STATE: u8 = 5;
}

use session_track_type as t;

const WHAT: &str = "session state";

/// One decoded session-state-tracking entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionStateChange {
    /// A tracked system variable was assigned.
    SystemVariable {
        /// Variable name.
        name: Bytes,
        /// New value, as text.
        value: Bytes,
    },
    /// The default schema changed.
    Schema {
        /// New schema name.
        name: Bytes,
    },
    /// Tracked session state changed; `tracked` is normally `"1"`.
    StateChange {
        /// The raw flag string.
        tracked: Bytes,
    },
    /// GTIDs of the transaction.
    Gtids {
        /// Encoding specification (0 = the GTID set as text).
        encoding: u8,
        /// The GTIDs.
        gtids: Bytes,
    },
    /// Transaction characteristics, as SQL that would re-create them.
    TransactionCharacteristics {
        /// The characteristics string.
        characteristics: Bytes,
    },
    /// Transaction state code.
    TransactionState {
        /// The state string.
        state: Bytes,
    },
    /// An entry type this crate does not know; data kept raw.
    Unknown {
        /// The type byte.
        kind: u8,
        /// The entry's data (inside its length prefix).
        data: Bytes,
    },
}

impl SessionStateChange {
    /// The entry's type byte.
    pub fn kind(&self) -> u8 {
        match self {
            SessionStateChange::SystemVariable { .. } => t::SYSTEM_VARIABLES,
            SessionStateChange::Schema { .. } => t::SCHEMA,
            SessionStateChange::StateChange { .. } => t::STATE_CHANGE,
            SessionStateChange::Gtids { .. } => t::GTIDS,
            SessionStateChange::TransactionCharacteristics { .. } => t::TRANSACTION_CHARACTERISTICS,
            SessionStateChange::TransactionState { .. } => t::TRANSACTION_STATE,
            SessionStateChange::Unknown { kind, .. } => *kind,
        }
    }

    fn decode_entry(payload: &Bytes, kind: u8, mut data: &[u8]) -> Result<Self> {
        let whole = data;
        let d = &mut data;
        let s = |x: &[u8]| slice_of(payload, x);
        let change = match kind {
            t::SYSTEM_VARIABLES => {
                let name = s(get_lenenc_str_nonnull(d, WHAT)?);
                let value = s(get_lenenc_str_nonnull(d, WHAT)?);
                SessionStateChange::SystemVariable { name, value }
            }
            t::SCHEMA => SessionStateChange::Schema {
                name: s(get_lenenc_str_nonnull(d, WHAT)?),
            },
            t::STATE_CHANGE => SessionStateChange::StateChange {
                tracked: s(get_lenenc_str_nonnull(d, WHAT)?),
            },
            t::GTIDS => {
                let encoding = get_u8(d, WHAT)?;
                let gtids = s(get_lenenc_str_nonnull(d, WHAT)?);
                SessionStateChange::Gtids { encoding, gtids }
            }
            t::TRANSACTION_CHARACTERISTICS => SessionStateChange::TransactionCharacteristics {
                characteristics: s(get_lenenc_str_nonnull(d, WHAT)?),
            },
            t::TRANSACTION_STATE => SessionStateChange::TransactionState {
                state: s(get_lenenc_str_nonnull(d, WHAT)?),
            },
            _ => {
                return Ok(SessionStateChange::Unknown {
                    kind,
                    data: s(whole),
                })
            }
        };
        expect_end(data, WHAT)?;
        Ok(change)
    }

    fn data_len(&self) -> usize {
        match self {
            SessionStateChange::SystemVariable { name, value } => {
                lenenc_str_len(name) + lenenc_str_len(value)
            }
            SessionStateChange::Schema { name: v }
            | SessionStateChange::StateChange { tracked: v }
            | SessionStateChange::TransactionCharacteristics { characteristics: v }
            | SessionStateChange::TransactionState { state: v } => lenenc_str_len(v),
            SessionStateChange::Gtids { gtids, .. } => 1 + lenenc_str_len(gtids),
            SessionStateChange::Unknown { data, .. } => data.len(),
        }
    }

    /// Appends this entry (type byte, length, data).
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u8(self.kind());
        put_lenenc_int(dst, self.data_len() as u64);
        match self {
            SessionStateChange::SystemVariable { name, value } => {
                put_lenenc_str(dst, name);
                put_lenenc_str(dst, value);
            }
            SessionStateChange::Schema { name: v }
            | SessionStateChange::StateChange { tracked: v }
            | SessionStateChange::TransactionCharacteristics { characteristics: v }
            | SessionStateChange::TransactionState { state: v } => put_lenenc_str(dst, v),
            SessionStateChange::Gtids { encoding, gtids } => {
                dst.put_u8(*encoding);
                put_lenenc_str(dst, gtids);
            }
            SessionStateChange::Unknown { data, .. } => dst.put_slice(data),
        }
    }
}

/// Decodes all entries of an OK packet's raw session-state field
/// ([`crate::OkPacket::session_state_changes`]); slices share `data`'s buffer.
pub fn decode_session_state(data: &Bytes) -> Result<Vec<SessionStateChange>> {
    let mut buf: &[u8] = data;
    let mut out = Vec::new();
    while !buf.is_empty() {
        let kind = get_u8(&mut buf, WHAT)?;
        let entry = get_lenenc_str_nonnull(&mut buf, WHAT)?;
        out.push(SessionStateChange::decode_entry(data, kind, entry)?);
    }
    Ok(out)
}

/// Encodes entries into the raw form stored in [`crate::OkPacket::session_state_changes`].
pub fn encode_session_state(changes: &[SessionStateChange]) -> Bytes {
    let mut dst = BytesMut::new();
    for c in changes {
        c.encode(&mut dst);
    }
    dst.freeze()
}

/// Finds the last schema change among `changes`, if any (handy after `USE db`).
pub fn changed_schema(changes: &[SessionStateChange]) -> Option<&Bytes> {
    changes.iter().rev().find_map(|c| match c {
        SessionStateChange::Schema { name } => Some(name),
        _ => None,
    })
}

impl TryFrom<&Bytes> for SessionStateChange {
    type Error = ProtocolError;
    /// Decodes exactly one entry.
    fn try_from(data: &Bytes) -> Result<Self> {
        let mut v = decode_session_state(data)?;
        if v.len() == 1 {
            Ok(v.remove(0))
        } else {
            Err(ProtocolError::malformed(WHAT, "expected exactly one entry"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;
    use proptest::prelude::*;

    #[test]
    fn mysql_doc_autocommit_fixture() {
        // SET autocommit = OFF with session_track_system_variables including autocommit.
        let raw = Bytes::from_static(b"\x00\x0f\x0aautocommit\x03OFF");
        let v = decode_session_state(&raw).unwrap();
        assert_eq!(
            v,
            vec![SessionStateChange::SystemVariable {
                name: Bytes::from_static(b"autocommit"),
                value: Bytes::from_static(b"OFF"),
            }]
        );
        assert_eq!(encode_session_state(&v), raw);
    }

    #[test]
    fn schema_gtids_state() {
        let raw = Bytes::from_static(
            b"\x01\x05\x04test\x02\x02\x011\x03\x06\x00\x043-a1\x05\x09\x08T_______\x09\x02hi",
        );
        let v = decode_session_state(&raw).unwrap();
        assert_eq!(v.len(), 5);
        assert_eq!(changed_schema(&v).map(|b| &b[..]), Some(&b"test"[..]));
        assert_eq!(
            v[2],
            SessionStateChange::Gtids {
                encoding: 0,
                gtids: Bytes::from_static(b"3-a1")
            }
        );
        assert_eq!(
            v[4],
            SessionStateChange::Unknown {
                kind: 9,
                data: Bytes::from_static(b"hi")
            }
        );
        assert_eq!(encode_session_state(&v), raw);
        assert_eq!(
            SessionStateChange::try_from(&Bytes::from_static(b"\x01\x05\x04test"))
                .unwrap()
                .kind(),
            1
        );
    }

    #[test]
    fn malformed() {
        for bad in [
            &b"\x01"[..],
            b"\x01\x05\x04tes",
            b"\x01\x06\x04testX",
            b"\x00\x02\x01a",
            b"\x03\x00",
        ] {
            assert!(
                decode_session_state(&Bytes::copy_from_slice(bad)).is_err(),
                "{bad:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn roundtrip(v in proptest::collection::vec(arb_session_change(), 0..6)) {
            let raw = encode_session_state(&v);
            prop_assert_eq!(decode_session_state(&raw).unwrap(), v);
        }

        #[test]
        fn arbitrary_never_panics(data in arb_payload()) {
            let _ = decode_session_state(&Bytes::from(data));
        }
    }
}
