//! `LOAD DATA LOCAL INFILE`: the server's request for a client file
//! ([`LocalInfileRequest`], `0xFB ‖ filename (EOF)`), sent in response to a `COM_QUERY`.
//!
//! The client then sends the file content as raw packets (no header byte, any size) and
//! ends it with an **empty packet** (payload length 0); the server answers with OK or ERR.
//! A client that refuses sends the empty packet at once. These data packets need no
//! decoder: their payload is the data.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::Result;
use crate::reader::{expect_header, get_eof_str, slice_of};

/// Header byte of a local-infile request (same value as the NULL marker).
pub const LOCAL_INFILE_HEADER: u8 = 0xFB;

/// True if `payload` is a local-infile request (only meaningful as a `COM_QUERY` response).
#[inline]
pub fn is_local_infile_request(payload: &[u8]) -> bool {
    payload.first() == Some(&LOCAL_INFILE_HEADER)
}

/// The server asks the client to send a local file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LocalInfileRequest {
    /// The file name given in the `LOAD DATA LOCAL INFILE` statement.
    pub filename: Bytes,
}

impl LocalInfileRequest {
    /// Decodes the payload.
    pub fn decode(payload: &Bytes) -> Result<Self> {
        let mut buf: &[u8] = payload;
        expect_header(&mut buf, LOCAL_INFILE_HEADER, "LOCAL INFILE request")?;
        Ok(LocalInfileRequest {
            filename: slice_of(payload, get_eof_str(&mut buf)),
        })
    }

    /// Encodes the payload.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u8(LOCAL_INFILE_HEADER);
        dst.put_slice(&self.filename);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;
    use proptest::prelude::*;

    #[test]
    fn fixture() {
        let wire = Bytes::from_static(b"\xfb/tmp/data.csv");
        assert!(is_local_infile_request(&wire));
        let r = LocalInfileRequest::decode(&wire).unwrap();
        assert_eq!(&r.filename[..], b"/tmp/data.csv");
        let mut out = BytesMut::new();
        r.encode(&mut out);
        assert_eq!(out.freeze(), wire);
        assert!(LocalInfileRequest::decode(&Bytes::from_static(b"\x00")).is_err());
    }

    proptest! {
        #[test]
        fn roundtrip(name in arb_bytes(100)) {
            let r = LocalInfileRequest { filename: name };
            let mut out = BytesMut::new();
            r.encode(&mut out);
            prop_assert_eq!(LocalInfileRequest::decode(&out.freeze()).unwrap(), r);
        }

        #[test]
        fn arbitrary_never_panics(data in arb_payload()) {
            let _ = LocalInfileRequest::decode(&Bytes::from(data));
        }
    }
}
