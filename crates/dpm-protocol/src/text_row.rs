//! Text-protocol result rows ([`TextRow`]): one `string<lenenc>` per column, `0xFB` for NULL.

use bytes::{Bytes, BytesMut};

use crate::error::{ProtocolError, Result};
use crate::lenenc::{get_lenenc_str, lenenc_str_len, put_lenenc_opt_str};
use crate::reader::{expect_end, slice_of};

/// One row of a text result set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TextRow {
    /// Column values as text (`None` for SQL NULL), zero-copy slices of the payload.
    pub values: Vec<Option<Bytes>>,
}

impl TextRow {
    /// Decodes a row of exactly `column_count` values; trailing bytes are an error.
    ///
    /// The caller must already know the packet is a row (not an EOF/OK/ERR terminator; see
    /// [`crate::is_eof_packet`]).
    pub fn decode(payload: &Bytes, column_count: usize) -> Result<Self> {
        const WHAT: &str = "text row";
        let mut buf: &[u8] = payload;
        // Every value takes at least one byte.
        if column_count > buf.len() {
            return Err(ProtocolError::truncated(WHAT));
        }
        let mut values = Vec::with_capacity(column_count);
        for _ in 0..column_count {
            values.push(get_lenenc_str(&mut buf)?.map(|v| slice_of(payload, v)));
        }
        expect_end(buf, WHAT)?;
        Ok(TextRow { values })
    }

    /// Encodes the payload.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.reserve(self.encoded_len());
        for v in &self.values {
            put_lenenc_opt_str(dst, v.as_deref());
        }
    }

    /// Length of the encoded payload.
    pub fn encoded_len(&self) -> usize {
        self.values
            .iter()
            .map(|v| v.as_deref().map_or(1, lenenc_str_len))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;
    use proptest::prelude::*;

    #[test]
    fn doc_fixture() {
        // MySQL docs: the row "MySQL Community Server (GPL)".
        let wire = Bytes::from_static(b"\x1cMySQL Community Server (GPL)");
        let r = TextRow::decode(&wire, 1).unwrap();
        assert_eq!(r.values, vec![Some(wire.slice(1..))]);
        let mut out = BytesMut::new();
        r.encode(&mut out);
        assert_eq!(out.freeze(), wire);
    }

    #[test]
    fn nulls_and_errors() {
        let wire = Bytes::from_static(b"\xfb\x011\x00");
        let r = TextRow::decode(&wire, 3).unwrap();
        assert_eq!(
            r.values,
            vec![None, Some(Bytes::from_static(b"1")), Some(Bytes::new())]
        );
        assert_eq!(r.encoded_len(), wire.len());
        assert!(TextRow::decode(&wire, 2).is_err(), "trailing bytes");
        assert!(TextRow::decode(&wire, 4).is_err(), "missing column");
        assert!(TextRow::decode(&wire, usize::MAX).is_err());
        assert!(TextRow::decode(&Bytes::from_static(b"\xff"), 1).is_err());
    }

    proptest! {
        #[test]
        fn roundtrip(values in proptest::collection::vec(proptest::option::of(arb_bytes(300)), 0..12)) {
            let r = TextRow { values };
            let mut out = BytesMut::new();
            r.encode(&mut out);
            prop_assert_eq!(out.len(), r.encoded_len());
            prop_assert_eq!(TextRow::decode(&out.freeze(), r.values.len()).unwrap(), r);
        }

        #[test]
        fn arbitrary_never_panics(data in arb_payload(), n in 0usize..20) {
            let _ = TextRow::decode(&Bytes::from(data), n);
        }
    }
}
