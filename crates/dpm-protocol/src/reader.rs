//! Bounds-checked readers for the protocol's primitive types, working on a `&mut &[u8]` cursor.
//!
//! Every function advances the cursor past what it read and returns
//! [`ProtocolError::Truncated`] instead of panicking when the input is too short. The
//! `what` argument names the field for the error message.

use bytes::Bytes;

use crate::error::{ProtocolError, Result};

/// Takes `n` bytes off the front of `*buf`.
#[inline]
pub fn get_bytes<'a>(buf: &mut &'a [u8], n: usize, what: &'static str) -> Result<&'a [u8]> {
    if buf.len() < n {
        return Err(ProtocolError::truncated(what));
    }
    let (head, tail) = buf.split_at(n);
    *buf = tail;
    Ok(head)
}

/// Takes a fixed-size array off the front of `*buf`.
#[inline]
pub fn get_array<const N: usize>(buf: &mut &[u8], what: &'static str) -> Result<[u8; N]> {
    let bytes = get_bytes(buf, N, what)?;
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    Ok(out)
}

/// Reads one byte.
#[inline]
pub fn get_u8(buf: &mut &[u8], what: &'static str) -> Result<u8> {
    match buf.split_first() {
        Some((&b, rest)) => {
            *buf = rest;
            Ok(b)
        }
        None => Err(ProtocolError::truncated(what)),
    }
}

/// Reads a little-endian `u16`.
#[inline]
pub fn get_u16(buf: &mut &[u8], what: &'static str) -> Result<u16> {
    Ok(u16::from_le_bytes(get_array(buf, what)?))
}

/// Reads a little-endian 3-byte integer.
#[inline]
pub fn get_u24(buf: &mut &[u8], what: &'static str) -> Result<u32> {
    let [a, b, c] = get_array(buf, what)?;
    Ok(u32::from_le_bytes([a, b, c, 0]))
}

/// Reads a little-endian `u32`.
#[inline]
pub fn get_u32(buf: &mut &[u8], what: &'static str) -> Result<u32> {
    Ok(u32::from_le_bytes(get_array(buf, what)?))
}

/// Reads a little-endian 6-byte integer.
#[inline]
pub fn get_u48(buf: &mut &[u8], what: &'static str) -> Result<u64> {
    let [a, b, c, d, e, f] = get_array(buf, what)?;
    Ok(u64::from_le_bytes([a, b, c, d, e, f, 0, 0]))
}

/// Reads a little-endian `u64`.
#[inline]
pub fn get_u64(buf: &mut &[u8], what: &'static str) -> Result<u64> {
    Ok(u64::from_le_bytes(get_array(buf, what)?))
}

/// Reads a NUL-terminated string (without the NUL) and skips the terminator.
/// A missing terminator is an error.
#[inline]
pub fn get_nul_str<'a>(buf: &mut &'a [u8], what: &'static str) -> Result<&'a [u8]> {
    match buf.iter().position(|&b| b == 0) {
        Some(pos) => {
            let s = &buf[..pos];
            *buf = &buf[pos + 1..];
            Ok(s)
        }
        None => Err(ProtocolError::truncated(what)),
    }
}

/// Reads a string that ends at a NUL byte or at the end of the input, whichever comes first.
/// Some peers omit the terminator of the last string in a packet; this accepts both.
#[inline]
pub fn get_nul_or_eof_str<'a>(buf: &mut &'a [u8]) -> &'a [u8] {
    match buf.iter().position(|&b| b == 0) {
        Some(pos) => {
            let s = &buf[..pos];
            *buf = &buf[pos + 1..];
            s
        }
        None => std::mem::take(buf),
    }
}

/// Takes the rest of the input (a `string<EOF>`).
#[inline]
pub fn get_eof_str<'a>(buf: &mut &'a [u8]) -> &'a [u8] {
    std::mem::take(buf)
}

/// Turns a sub-slice of `payload` into a zero-copy [`Bytes`] handle.
///
/// `sub` must have been borrowed from `payload` (which is how every decoder in this crate
/// uses it); an empty `sub` is always accepted.
#[inline]
pub fn slice_of(payload: &Bytes, sub: &[u8]) -> Bytes {
    payload.slice_ref(sub)
}

/// Fails with [`ProtocolError::Malformed`] if `buf` still has bytes left.
#[inline]
pub fn expect_end(buf: &[u8], what: &'static str) -> Result<()> {
    if buf.is_empty() {
        Ok(())
    } else {
        Err(ProtocolError::malformed(what, "trailing bytes"))
    }
}

/// Reads the header byte of a payload and checks that it is `expected`.
#[inline]
pub fn expect_header(buf: &mut &[u8], expected: u8, what: &'static str) -> Result<()> {
    let found = get_u8(buf, what)?;
    if found == expected {
        Ok(())
    } else {
        Err(ProtocolError::UnexpectedHeader { what, found })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_ints() {
        let data = [1u8, 2, 3, 4, 5, 6, 7, 8, 9];
        let mut b = &data[..];
        assert_eq!(get_u8(&mut b, "x").unwrap(), 1);
        assert_eq!(get_u16(&mut b, "x").unwrap(), 0x0302);
        assert_eq!(get_u24(&mut b, "x").unwrap(), 0x060504);
        assert_eq!(get_u24(&mut b, "x").unwrap(), 0x090807);
        assert!(get_u8(&mut b, "x").is_err());
        let mut b = &data[..];
        assert_eq!(get_u64(&mut b, "x").unwrap(), 0x0807060504030201);
        assert_eq!(get_u32(&mut b, "x"), Err(ProtocolError::truncated("x")));
        let mut b = &data[..];
        assert_eq!(get_u48(&mut b, "x").unwrap(), 0x060504030201);
    }

    #[test]
    fn strings() {
        let mut b = &b"abc\0def"[..];
        assert_eq!(get_nul_str(&mut b, "s").unwrap(), b"abc");
        let mut c = b;
        assert!(get_nul_str(&mut c, "s").is_err());
        assert_eq!(get_nul_or_eof_str(&mut b), b"def");
        assert!(b.is_empty());
        let mut b = &b"x\0"[..];
        assert_eq!(get_nul_or_eof_str(&mut b), b"x");
        assert!(b.is_empty());
    }

    #[test]
    fn header_check() {
        let mut b = &[0xFEu8][..];
        assert_eq!(
            expect_header(&mut b, 0x00, "OK"),
            Err(ProtocolError::UnexpectedHeader {
                what: "OK",
                found: 0xFE
            })
        );
    }
}
