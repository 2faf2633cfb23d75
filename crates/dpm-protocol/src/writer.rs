//! Small writers for the protocol's primitive types that `bytes::BufMut` lacks.

use bytes::{BufMut, BytesMut};

/// Appends a little-endian 3-byte integer (the upper byte of `v` is ignored).
#[inline]
pub fn put_u24(dst: &mut BytesMut, v: u32) {
    dst.put_slice(&v.to_le_bytes()[..3]);
}

/// Appends a little-endian 6-byte integer (the upper two bytes of `v` are ignored).
#[inline]
pub fn put_u48(dst: &mut BytesMut, v: u64) {
    dst.put_slice(&v.to_le_bytes()[..6]);
}

/// Appends `s` followed by a NUL terminator. `s` should not itself contain a NUL byte.
#[inline]
pub fn put_nul_str(dst: &mut BytesMut, s: &[u8]) {
    dst.reserve(s.len() + 1);
    dst.put_slice(s);
    dst.put_u8(0);
}

/// Appends `n` zero bytes.
#[inline]
pub fn put_zeros(dst: &mut BytesMut, n: usize) {
    dst.put_bytes(0, n);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes() {
        let mut b = BytesMut::new();
        put_u24(&mut b, 0x00AB_CDEF);
        put_u48(&mut b, 0x0102_0304_0506);
        put_nul_str(&mut b, b"hi");
        put_zeros(&mut b, 2);
        assert_eq!(
            &b[..],
            &[0xEF, 0xCD, 0xAB, 6, 5, 4, 3, 2, 1, b'h', b'i', 0, 0, 0]
        );
    }
}
