//! Length-encoded integers (`int<lenenc>`) and strings (`string<lenenc>`).
//!
//! | first byte | meaning                         |
//! |------------|---------------------------------|
//! | `< 0xFB`   | the value itself                |
//! | `0xFB`     | NULL (only meaningful in rows)  |
//! | `0xFC`     | a 2-byte little-endian value follows |
//! | `0xFD`     | a 3-byte value follows          |
//! | `0xFE`     | an 8-byte value follows         |
//! | `0xFF`     | invalid (an ERR packet header)  |

use bytes::{BufMut, BytesMut};

use crate::error::{ProtocolError, Result};

/// The first byte of a length-encoded NULL.
pub const NULL_MARKER: u8 = 0xFB;

const WHAT_INT: &str = "length-encoded integer";
const WHAT_STR: &str = "length-encoded string";

/// Number of bytes `v` takes as a length-encoded integer: 1, 3, 4 or 9.
#[inline]
pub const fn lenenc_int_len(v: u64) -> usize {
    if v < 0xFB {
        1
    } else if v <= 0xFFFF {
        3
    } else if v <= 0xFF_FFFF {
        4
    } else {
        9
    }
}

/// Number of bytes `s` takes as a length-encoded string (length prefix included).
#[inline]
pub const fn lenenc_str_len(s: &[u8]) -> usize {
    lenenc_int_len(s.len() as u64) + s.len()
}

/// Appends `v` as a length-encoded integer, in its shortest form.
#[inline]
pub fn put_lenenc_int(dst: &mut BytesMut, v: u64) {
    if v < 0xFB {
        dst.put_u8(v as u8);
    } else if v <= 0xFFFF {
        dst.put_u8(0xFC);
        dst.put_u16_le(v as u16);
    } else if v <= 0xFF_FFFF {
        dst.put_u8(0xFD);
        dst.put_slice(&(v as u32).to_le_bytes()[..3]);
    } else {
        dst.put_u8(0xFE);
        dst.put_u64_le(v);
    }
}

/// Appends `s` as a length-encoded string.
#[inline]
pub fn put_lenenc_str(dst: &mut BytesMut, s: &[u8]) {
    dst.reserve(lenenc_str_len(s));
    put_lenenc_int(dst, s.len() as u64);
    dst.put_slice(s);
}

/// Appends a length-encoded string, or the NULL marker for `None`.
#[inline]
pub fn put_lenenc_opt_str(dst: &mut BytesMut, s: Option<&[u8]>) {
    match s {
        Some(s) => put_lenenc_str(dst, s),
        None => dst.put_u8(NULL_MARKER),
    }
}

/// Reads a length-encoded integer from the front of `*buf`, advancing it.
///
/// Returns `Ok(None)` for the `0xFB` NULL marker. `0xFC` is followed by 2 bytes, `0xFD` by 3
/// and `0xFE` by 8; `0xFF` is an error. Non-minimal encodings are accepted.
#[inline]
pub fn get_lenenc_int(buf: &mut &[u8]) -> Result<Option<u64>> {
    let b = *buf;
    let (&first, rest) = b.split_first().ok_or(ProtocolError::truncated(WHAT_INT))?;
    let (v, used) = match first {
        0..=0xFA => (first as u64, 0),
        NULL_MARKER => {
            *buf = rest;
            return Ok(None);
        }
        0xFC => match rest {
            [a, b, ..] => (u16::from_le_bytes([*a, *b]) as u64, 2),
            _ => return Err(ProtocolError::truncated(WHAT_INT)),
        },
        0xFD => match rest {
            [a, b, c, ..] => (u32::from_le_bytes([*a, *b, *c, 0]) as u64, 3),
            _ => return Err(ProtocolError::truncated(WHAT_INT)),
        },
        0xFE => match rest.get(..8) {
            Some(s) => {
                let mut a = [0u8; 8];
                a.copy_from_slice(s);
                (u64::from_le_bytes(a), 8)
            }
            None => return Err(ProtocolError::truncated(WHAT_INT)),
        },
        0xFF => return Err(ProtocolError::malformed(WHAT_INT, "0xFF prefix")),
    };
    *buf = &rest[used..];
    Ok(Some(v))
}

/// Reads a length-encoded integer that must not be NULL.
#[inline]
pub fn get_lenenc_int_nonnull(buf: &mut &[u8], what: &'static str) -> Result<u64> {
    match get_lenenc_int(buf)? {
        Some(v) => Ok(v),
        None => Err(ProtocolError::malformed(what, "unexpected NULL")),
    }
}

/// Reads a length-encoded string (`None` for NULL), advancing `*buf`.
#[inline]
pub fn get_lenenc_str<'a>(buf: &mut &'a [u8]) -> Result<Option<&'a [u8]>> {
    let mut b = *buf;
    let Some(len) = get_lenenc_int(&mut b)? else {
        *buf = b;
        return Ok(None);
    };
    if (b.len() as u64) < len {
        return Err(ProtocolError::truncated(WHAT_STR));
    }
    let (s, rest) = b.split_at(len as usize);
    *buf = rest;
    Ok(Some(s))
}

/// Reads a length-encoded string that must not be NULL.
#[inline]
pub fn get_lenenc_str_nonnull<'a>(buf: &mut &'a [u8], what: &'static str) -> Result<&'a [u8]> {
    match get_lenenc_str(buf)? {
        Some(s) => Ok(s),
        None => Err(ProtocolError::malformed(what, "unexpected NULL")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc(v: u64) -> Vec<u8> {
        let mut b = BytesMut::new();
        put_lenenc_int(&mut b, v);
        b.to_vec()
    }

    #[test]
    fn known_encodings() {
        assert_eq!(enc(0), [0x00]);
        assert_eq!(enc(250), [0xFA]);
        assert_eq!(enc(251), [0xFC, 0xFB, 0x00]);
        assert_eq!(enc(0xFFFF), [0xFC, 0xFF, 0xFF]);
        assert_eq!(enc(0x1_0000), [0xFD, 0x00, 0x00, 0x01]);
        assert_eq!(enc(0xFF_FFFF), [0xFD, 0xFF, 0xFF, 0xFF]);
        assert_eq!(enc(0x100_0000), [0xFE, 0x00, 0x00, 0x00, 0x01, 0, 0, 0, 0]);
        assert_eq!(lenenc_int_len(250), 1);
        assert_eq!(lenenc_int_len(251), 3);
        assert_eq!(lenenc_int_len(0x1_0000), 4);
        assert_eq!(lenenc_int_len(u64::MAX), 9);
    }

    #[test]
    fn special_prefixes() {
        let mut b = &[0xFBu8, 0x01][..];
        assert_eq!(get_lenenc_int(&mut b), Ok(None));
        assert_eq!(b, [0x01]);
        let mut b = &[0xFFu8][..];
        assert!(matches!(
            get_lenenc_int(&mut b),
            Err(ProtocolError::Malformed { .. })
        ));
        for short in [
            &[0xFCu8, 1][..],
            &[0xFD, 1, 2],
            &[0xFE, 1, 2, 3, 4, 5, 6, 7],
            &[],
        ] {
            let mut b = short;
            assert!(matches!(
                get_lenenc_int(&mut b),
                Err(ProtocolError::Truncated { .. })
            ));
            assert_eq!(b, short, "cursor must not move on error");
        }
        // Non-minimal encodings are accepted.
        let mut b = &[0xFCu8, 0x05, 0x00][..];
        assert_eq!(get_lenenc_int(&mut b), Ok(Some(5)));
    }

    #[test]
    fn strings() {
        let mut d = BytesMut::new();
        put_lenenc_str(&mut d, b"def");
        put_lenenc_opt_str(&mut d, None);
        put_lenenc_str(&mut d, b"");
        assert_eq!(&d[..], b"\x03def\xFB\x00");
        let mut b = &d[..];
        assert_eq!(get_lenenc_str(&mut b), Ok(Some(&b"def"[..])));
        assert_eq!(get_lenenc_str(&mut b), Ok(None));
        assert_eq!(get_lenenc_str(&mut b), Ok(Some(&b""[..])));
        assert!(b.is_empty());
        let mut b = &b"\x05abc"[..];
        assert!(get_lenenc_str(&mut b).is_err());
        let mut b = &b"\xFB"[..];
        assert!(get_lenenc_str_nonnull(&mut b, "x").is_err());
    }

    proptest! {
        #[test]
        fn int_roundtrip(v in any::<u64>()) {
            let e = enc(v);
            prop_assert_eq!(e.len(), lenenc_int_len(v));
            let mut b = &e[..];
            prop_assert_eq!(get_lenenc_int(&mut b), Ok(Some(v)));
            prop_assert!(b.is_empty());
        }

        #[test]
        fn str_roundtrip(s in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut d = BytesMut::new();
            put_lenenc_str(&mut d, &s);
            prop_assert_eq!(d.len(), lenenc_str_len(&s));
            let mut b = &d[..];
            prop_assert_eq!(get_lenenc_str(&mut b), Ok(Some(&s[..])));
            prop_assert!(b.is_empty());
        }

        #[test]
        fn arbitrary_never_panics(data in proptest::collection::vec(any::<u8>(), 0..32)) {
            let mut b = &data[..];
            let _ = get_lenenc_int(&mut b);
            let mut b = &data[..];
            let _ = get_lenenc_str(&mut b);
        }
    }
}
