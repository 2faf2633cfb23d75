//! MariaDB `COM_MULTI` ([`ComMulti`]): several command payloads in one packet
//! (`MARIADB_CLIENT_COM_MULTI`; removed from later MariaDB versions).
//!
//! `0xFE ‖ (int<lenenc> length ‖ command payload)*`. The server answers each embedded
//! command in turn.

use bytes::{BufMut, Bytes, BytesMut};

use crate::command::com;
use crate::error::Result;
use crate::lenenc::{get_lenenc_str_nonnull, put_lenenc_str};
use crate::reader::{expect_header, slice_of};

/// `COM_MULTI`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ComMulti {
    /// The embedded command payloads (each starting with its command byte).
    pub commands: Vec<Bytes>,
}

impl ComMulti {
    /// Decodes the payload.
    pub fn decode(payload: &Bytes) -> Result<Self> {
        const WHAT: &str = "COM_MULTI";
        let mut buf: &[u8] = payload;
        expect_header(&mut buf, com::MULTI, WHAT)?;
        let mut commands = Vec::new();
        while !buf.is_empty() {
            commands.push(slice_of(payload, get_lenenc_str_nonnull(&mut buf, WHAT)?));
        }
        Ok(ComMulti { commands })
    }

    /// Encodes the payload.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u8(com::MULTI);
        for c in &self.commands {
            put_lenenc_str(dst, c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;
    use proptest::prelude::*;

    #[test]
    fn fixture() {
        let wire = Bytes::from_static(b"\xfe\x09\x03SELECT 1\x01\x0e");
        let m = ComMulti::decode(&wire).unwrap();
        assert_eq!(
            m.commands,
            vec![
                Bytes::from_static(b"\x03SELECT 1"),
                Bytes::from_static(b"\x0e")
            ]
        );
        let mut out = BytesMut::new();
        m.encode(&mut out);
        assert_eq!(out.freeze(), wire);
        assert!(ComMulti::decode(&Bytes::from_static(b"\xfe\x05ab")).is_err());
    }

    proptest! {
        #[test]
        fn roundtrip(commands in proptest::collection::vec(arb_bytes(300), 0..5)) {
            let m = ComMulti { commands };
            let mut out = BytesMut::new();
            m.encode(&mut out);
            prop_assert_eq!(ComMulti::decode(&out.freeze()).unwrap(), m);
        }

        #[test]
        fn arbitrary_never_panics(data in arb_payload()) {
            let _ = ComMulti::decode(&Bytes::from(data));
        }
    }
}
