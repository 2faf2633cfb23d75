//! Connection attributes (`CLIENT_CONNECT_ATTRS`): a length-encoded total size followed by
//! key/value pairs of length-encoded strings. Used by the handshake response and
//! `COM_CHANGE_USER`.

use bytes::{Bytes, BytesMut};

use crate::error::Result;
use crate::lenenc::{
    get_lenenc_int_nonnull, get_lenenc_str_nonnull, lenenc_str_len, put_lenenc_int, put_lenenc_str,
};
use crate::reader::{get_bytes, slice_of};

/// Connection attributes as (key, value) pairs, in wire order.
pub type ConnectAttrs = Vec<(Bytes, Bytes)>;

const WHAT: &str = "connection attributes";

/// Reads a connection-attributes block from `*buf` (zero-copy slices of `payload`, which
/// `*buf` must borrow from).
pub fn decode_connect_attrs(payload: &Bytes, buf: &mut &[u8]) -> Result<ConnectAttrs> {
    let total = get_lenenc_int_nonnull(buf, WHAT)?;
    let total = usize::try_from(total).unwrap_or(usize::MAX);
    let mut block = get_bytes(buf, total, WHAT)?;
    let mut attrs = Vec::new();
    while !block.is_empty() {
        let k = get_lenenc_str_nonnull(&mut block, WHAT)?;
        let v = get_lenenc_str_nonnull(&mut block, WHAT)?;
        attrs.push((slice_of(payload, k), slice_of(payload, v)));
    }
    Ok(attrs)
}

/// Size in bytes of the attribute pairs, without the leading total-length prefix.
pub fn connect_attrs_len(attrs: &[(Bytes, Bytes)]) -> usize {
    attrs
        .iter()
        .map(|(k, v)| lenenc_str_len(k) + lenenc_str_len(v))
        .sum()
}

/// Appends a connection-attributes block (total length, then the pairs).
pub fn encode_connect_attrs(dst: &mut BytesMut, attrs: &[(Bytes, Bytes)]) {
    let len = connect_attrs_len(attrs);
    put_lenenc_int(dst, len as u64);
    dst.reserve(len);
    for (k, v) in attrs {
        put_lenenc_str(dst, k);
        put_lenenc_str(dst, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture() {
        let wire = Bytes::from_static(b"\x18\x03_os\x05Linux\x0c_client_name\x00tail");
        let mut buf: &[u8] = &wire;
        let attrs = decode_connect_attrs(&wire, &mut buf).unwrap();
        assert_eq!(buf, b"tail");
        assert_eq!(
            attrs,
            vec![
                (Bytes::from_static(b"_os"), Bytes::from_static(b"Linux")),
                (Bytes::from_static(b"_client_name"), Bytes::new()),
            ]
        );
        let mut out = BytesMut::new();
        encode_connect_attrs(&mut out, &attrs);
        assert_eq!(&out[..], &wire[..wire.len() - 4]);
    }

    #[test]
    fn errors() {
        for bad in [&b"\x05\x03_os"[..], b"\x02\x03_", b"\x01\xfb", b"\xff"] {
            let wire = Bytes::copy_from_slice(bad);
            let mut buf: &[u8] = &wire;
            assert!(decode_connect_attrs(&wire, &mut buf).is_err());
        }
    }
}
