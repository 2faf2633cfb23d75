//! Binary-protocol values ([`BinaryValue`]) as used in binary result rows and statement
//! parameters, their per-type wire encoding, and NULL-bitmap helpers.
//!
//! | column types                                   | encoding                       |
//! |------------------------------------------------|--------------------------------|
//! | TINY                                           | 1 byte                         |
//! | SHORT, YEAR                                    | 2 bytes LE                     |
//! | LONG, INT24                                    | 4 bytes LE                     |
//! | LONGLONG                                       | 8 bytes LE                     |
//! | FLOAT / DOUBLE                                 | IEEE 754, 4 / 8 bytes LE       |
//! | DATE, DATETIME, TIMESTAMP (+NEWDATE, *2)       | length 0/4/7/11 + fields       |
//! | TIME (+TIME2)                                  | length 0/8/12 + fields         |
//! | NULL                                           | nothing                        |
//! | everything else (strings, blobs, DECIMAL, JSON, BIT, ENUM, SET, GEOMETRY, ...) | `string<lenenc>` |
//!
//! Integers are kept as raw unsigned bits: signedness comes from the column's
//! `UNSIGNED_FLAG` (or the parameter's unsigned flag); see [`BinaryValue::as_i64`].

use bytes::{BufMut, Bytes, BytesMut};

use crate::column_type as ct;
use crate::error::{ProtocolError, Result};
use crate::lenenc::{get_lenenc_str_nonnull, put_lenenc_str};
use crate::reader::{get_array, get_u16, get_u32, get_u8, slice_of};

/// A calendar date and time, as in `DATE`, `DATETIME` and `TIMESTAMP` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DateTime {
    /// Year (0..=9999).
    pub year: u16,
    /// Month (0..=12; 0 in zero dates).
    pub month: u8,
    /// Day (0..=31).
    pub day: u8,
    /// Hour (0..=23).
    pub hour: u8,
    /// Minute (0..=59).
    pub minute: u8,
    /// Second (0..=59).
    pub second: u8,
    /// Microseconds (0..=999_999).
    pub microsecond: u32,
}

/// A duration, as in `TIME` values (which may be negative and exceed 24 hours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Time {
    /// True for a negative duration.
    pub negative: bool,
    /// Whole days.
    pub days: u32,
    /// Hours (0..=23).
    pub hours: u8,
    /// Minutes (0..=59).
    pub minutes: u8,
    /// Seconds (0..=59).
    pub seconds: u8,
    /// Microseconds (0..=999_999).
    pub microseconds: u32,
}

/// One binary-protocol value.
#[derive(Debug, Clone, PartialEq)]
pub enum BinaryValue {
    /// SQL NULL (flagged in the NULL bitmap; no bytes on the wire).
    Null,
    /// A 1-byte integer (`TINY`), raw bits.
    Int1(u8),
    /// A 2-byte integer (`SHORT`, `YEAR`), raw bits.
    Int2(u16),
    /// A 4-byte integer (`LONG`, `INT24`), raw bits.
    Int4(u32),
    /// An 8-byte integer (`LONGLONG`), raw bits.
    Int8(u64),
    /// A `FLOAT`.
    Float(f32),
    /// A `DOUBLE`.
    Double(f64),
    /// A `DATE`, `DATETIME` or `TIMESTAMP`.
    DateTime(DateTime),
    /// A `TIME`.
    Time(Time),
    /// Anything sent as a length-encoded string (text, blobs, decimals, JSON, ...).
    Bytes(Bytes),
}

/// The kind of binary encoding a column type uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryEncoding {
    /// No bytes (`MYSQL_TYPE_NULL`).
    Null,
    /// A fixed-size little-endian integer of this many bytes.
    Int(u8),
    /// A 4-byte float.
    Float,
    /// An 8-byte double.
    Double,
    /// A length-prefixed date-time.
    DateTime,
    /// A length-prefixed time.
    Time,
    /// A length-encoded string.
    LenencString,
}

/// How values of `column_type` are encoded in the binary protocol. Unknown types are
/// treated as length-encoded strings.
pub const fn binary_encoding(column_type: u8) -> BinaryEncoding {
    match column_type {
        ct::NULL => BinaryEncoding::Null,
        ct::TINY => BinaryEncoding::Int(1),
        ct::SHORT | ct::YEAR => BinaryEncoding::Int(2),
        ct::LONG | ct::INT24 => BinaryEncoding::Int(4),
        ct::LONGLONG => BinaryEncoding::Int(8),
        ct::FLOAT => BinaryEncoding::Float,
        ct::DOUBLE => BinaryEncoding::Double,
        ct::DATE | ct::DATETIME | ct::TIMESTAMP | ct::NEWDATE | ct::TIMESTAMP2 | ct::DATETIME2 => {
            BinaryEncoding::DateTime
        }
        ct::TIME | ct::TIME2 => BinaryEncoding::Time,
        _ => BinaryEncoding::LenencString,
    }
}

const WHAT: &str = "binary value";

impl BinaryValue {
    /// Reads one non-NULL value of `column_type` from `*buf`. Byte strings are zero-copy
    /// slices of `payload`, which `*buf` must borrow from.
    pub fn decode(payload: &Bytes, buf: &mut &[u8], column_type: u8) -> Result<Self> {
        Ok(match binary_encoding(column_type) {
            BinaryEncoding::Null => BinaryValue::Null,
            BinaryEncoding::Int(1) => BinaryValue::Int1(get_u8(buf, WHAT)?),
            BinaryEncoding::Int(2) => BinaryValue::Int2(get_u16(buf, WHAT)?),
            BinaryEncoding::Int(4) => BinaryValue::Int4(get_u32(buf, WHAT)?),
            BinaryEncoding::Int(_) => BinaryValue::Int8(u64::from_le_bytes(get_array(buf, WHAT)?)),
            BinaryEncoding::Float => BinaryValue::Float(f32::from_le_bytes(get_array(buf, WHAT)?)),
            BinaryEncoding::Double => {
                BinaryValue::Double(f64::from_le_bytes(get_array(buf, WHAT)?))
            }
            BinaryEncoding::DateTime => BinaryValue::DateTime(decode_datetime(buf)?),
            BinaryEncoding::Time => BinaryValue::Time(decode_time(buf)?),
            BinaryEncoding::LenencString => {
                BinaryValue::Bytes(slice_of(payload, get_lenenc_str_nonnull(buf, WHAT)?))
            }
        })
    }

    /// Skips one non-NULL value of `column_type` in `*buf` without building it.
    pub fn skip(buf: &mut &[u8], column_type: u8) -> Result<()> {
        match binary_encoding(column_type) {
            BinaryEncoding::Null => {}
            BinaryEncoding::Int(n) => {
                crate::reader::get_bytes(buf, n as usize, WHAT)?;
            }
            BinaryEncoding::Float => {
                crate::reader::get_bytes(buf, 4, WHAT)?;
            }
            BinaryEncoding::Double => {
                crate::reader::get_bytes(buf, 8, WHAT)?;
            }
            BinaryEncoding::DateTime => {
                decode_datetime(buf)?;
            }
            BinaryEncoding::Time => {
                decode_time(buf)?;
            }
            BinaryEncoding::LenencString => {
                get_lenenc_str_nonnull(buf, WHAT)?;
            }
        }
        Ok(())
    }

    /// Appends the value's wire form (nothing for `Null`). The variant decides the layout,
    /// so it must match the column type the peer expects. Date-times and times use the
    /// shortest length that holds them.
    pub fn encode(&self, dst: &mut BytesMut) {
        match self {
            BinaryValue::Null => {}
            BinaryValue::Int1(v) => dst.put_u8(*v),
            BinaryValue::Int2(v) => dst.put_u16_le(*v),
            BinaryValue::Int4(v) => dst.put_u32_le(*v),
            BinaryValue::Int8(v) => dst.put_u64_le(*v),
            BinaryValue::Float(v) => dst.put_f32_le(*v),
            BinaryValue::Double(v) => dst.put_f64_le(*v),
            BinaryValue::DateTime(d) => encode_datetime(dst, d),
            BinaryValue::Time(t) => encode_time(dst, t),
            BinaryValue::Bytes(b) => put_lenenc_str(dst, b),
        }
    }

    /// True for [`BinaryValue::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, BinaryValue::Null)
    }

    /// The integer value, sign-extended from its width unless `unsigned`. `None` for
    /// non-integers and for unsigned 8-byte values above `i64::MAX`.
    pub fn as_i64(&self, unsigned: bool) -> Option<i64> {
        Some(match *self {
            BinaryValue::Int1(v) if unsigned => v as i64,
            BinaryValue::Int1(v) => v as i8 as i64,
            BinaryValue::Int2(v) if unsigned => v as i64,
            BinaryValue::Int2(v) => v as i16 as i64,
            BinaryValue::Int4(v) if unsigned => v as i64,
            BinaryValue::Int4(v) => v as i32 as i64,
            BinaryValue::Int8(v) if unsigned => i64::try_from(v).ok()?,
            BinaryValue::Int8(v) => v as i64,
            _ => return None,
        })
    }

    /// A column type that encodes this value (for building statement parameters).
    pub fn natural_type(&self) -> u8 {
        match self {
            BinaryValue::Null => ct::NULL,
            BinaryValue::Int1(_) => ct::TINY,
            BinaryValue::Int2(_) => ct::SHORT,
            BinaryValue::Int4(_) => ct::LONG,
            BinaryValue::Int8(_) => ct::LONGLONG,
            BinaryValue::Float(_) => ct::FLOAT,
            BinaryValue::Double(_) => ct::DOUBLE,
            BinaryValue::DateTime(_) => ct::DATETIME,
            BinaryValue::Time(_) => ct::TIME,
            BinaryValue::Bytes(_) => ct::VAR_STRING,
        }
    }
}

fn decode_datetime(buf: &mut &[u8]) -> Result<DateTime> {
    let len = get_u8(buf, WHAT)?;
    let mut d = DateTime::default();
    if !matches!(len, 0 | 4 | 7 | 11) {
        return Err(ProtocolError::malformed(
            WHAT,
            "date-time length not 0, 4, 7 or 11",
        ));
    }
    if len >= 4 {
        d.year = get_u16(buf, WHAT)?;
        d.month = get_u8(buf, WHAT)?;
        d.day = get_u8(buf, WHAT)?;
    }
    if len >= 7 {
        d.hour = get_u8(buf, WHAT)?;
        d.minute = get_u8(buf, WHAT)?;
        d.second = get_u8(buf, WHAT)?;
    }
    if len == 11 {
        d.microsecond = get_u32(buf, WHAT)?;
    }
    Ok(d)
}

fn encode_datetime(dst: &mut BytesMut, d: &DateTime) {
    let len = if d.microsecond != 0 {
        11
    } else if d.hour != 0 || d.minute != 0 || d.second != 0 {
        7
    } else if d.year != 0 || d.month != 0 || d.day != 0 {
        4
    } else {
        0
    };
    dst.put_u8(len);
    if len >= 4 {
        dst.put_u16_le(d.year);
        dst.put_u8(d.month);
        dst.put_u8(d.day);
    }
    if len >= 7 {
        dst.put_u8(d.hour);
        dst.put_u8(d.minute);
        dst.put_u8(d.second);
    }
    if len == 11 {
        dst.put_u32_le(d.microsecond);
    }
}

fn decode_time(buf: &mut &[u8]) -> Result<Time> {
    let len = get_u8(buf, WHAT)?;
    let mut t = Time::default();
    if !matches!(len, 0 | 8 | 12) {
        return Err(ProtocolError::malformed(WHAT, "time length not 0, 8 or 12"));
    }
    if len >= 8 {
        t.negative = get_u8(buf, WHAT)? != 0;
        t.days = get_u32(buf, WHAT)?;
        t.hours = get_u8(buf, WHAT)?;
        t.minutes = get_u8(buf, WHAT)?;
        t.seconds = get_u8(buf, WHAT)?;
    }
    if len == 12 {
        t.microseconds = get_u32(buf, WHAT)?;
    }
    Ok(t)
}

fn encode_time(dst: &mut BytesMut, t: &Time) {
    let len = if t.microseconds != 0 {
        12
    } else if t.negative || t.days != 0 || t.hours != 0 || t.minutes != 0 || t.seconds != 0 {
        8
    } else {
        0
    };
    dst.put_u8(len);
    if len >= 8 {
        dst.put_u8(t.negative as u8);
        dst.put_u32_le(t.days);
        dst.put_u8(t.hours);
        dst.put_u8(t.minutes);
        dst.put_u8(t.seconds);
    }
    if len == 12 {
        dst.put_u32_le(t.microseconds);
    }
}

/// Length in bytes of a NULL bitmap for `count` values with a bit `offset` (2 for binary
/// rows, 0 for statement parameters). `None` on overflow.
#[inline]
pub const fn null_bitmap_len(count: usize, offset: usize) -> Option<usize> {
    match count.checked_add(offset + 7) {
        Some(n) => Some(n / 8),
        None => None,
    }
}

/// True if value `index` is flagged NULL in `bitmap` (bits past the end read as not NULL).
#[inline]
pub fn null_bitmap_get(bitmap: &[u8], index: usize, offset: usize) -> bool {
    let bit = index + offset;
    bitmap
        .get(bit / 8)
        .is_some_and(|b| b & (1 << (bit % 8)) != 0)
}

/// Flags value `index` as NULL in `bitmap` (ignored if out of range).
#[inline]
pub fn null_bitmap_set(bitmap: &mut [u8], index: usize, offset: usize) {
    let bit = index + offset;
    if let Some(b) = bitmap.get_mut(bit / 8) {
        *b |= 1 << (bit % 8);
    }
}

/// Builds the NULL bitmap of `values` with the given bit `offset`.
pub fn null_bitmap_of(values: &[BinaryValue], offset: usize) -> Vec<u8> {
    let mut bitmap = vec![0u8; (values.len() + offset).div_ceil(8)];
    for (i, v) in values.iter().enumerate() {
        if v.is_null() {
            null_bitmap_set(&mut bitmap, i, offset);
        }
    }
    bitmap
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;
    use proptest::prelude::*;

    fn enc(v: &BinaryValue) -> Vec<u8> {
        let mut d = BytesMut::new();
        v.encode(&mut d);
        d.to_vec()
    }

    #[test]
    fn doc_fixtures() {
        // MySQL docs: binary DATETIME 2010-10-17 19:27:30.000001.
        let dt = BinaryValue::DateTime(DateTime {
            year: 2010,
            month: 10,
            day: 17,
            hour: 19,
            minute: 27,
            second: 30,
            microsecond: 1,
        });
        assert_eq!(
            enc(&dt),
            [0x0b, 0xda, 0x07, 0x0a, 0x11, 0x13, 0x1b, 0x1e, 0x01, 0x00, 0x00, 0x00]
        );
        // MySQL docs: binary TIME -120d 19:27:30.000001.
        let t = BinaryValue::Time(Time {
            negative: true,
            days: 120,
            hours: 19,
            minutes: 27,
            seconds: 30,
            microseconds: 1,
        });
        assert_eq!(
            enc(&t),
            [0x0c, 0x01, 0x78, 0x00, 0x00, 0x00, 0x13, 0x1b, 0x1e, 0x01, 0x00, 0x00, 0x00]
        );
        assert_eq!(enc(&BinaryValue::DateTime(DateTime::default())), [0]);
        assert_eq!(
            enc(&BinaryValue::DateTime(DateTime {
                year: 2010,
                month: 10,
                day: 17,
                ..Default::default()
            })),
            [4, 0xda, 0x07, 10, 17]
        );
        assert_eq!(
            enc(&BinaryValue::Double(35.0)),
            [0, 0, 0, 0, 0, 0x80, 0x41, 0x40]
        );
        assert_eq!(
            enc(&BinaryValue::Bytes(Bytes::from_static(b"foo"))),
            b"\x03foo"
        );
        let p = Bytes::from_static(&[
            0x0b, 0xda, 0x07, 0x0a, 0x11, 0x13, 0x1b, 0x1e, 0x01, 0x00, 0x00, 0x00,
        ]);
        let mut b: &[u8] = &p;
        assert_eq!(BinaryValue::decode(&p, &mut b, ct::TIMESTAMP).unwrap(), dt);
    }

    #[test]
    fn bad_lengths() {
        let p = Bytes::from_static(&[5, 0, 0, 0, 0, 0]);
        assert!(BinaryValue::decode(&p, &mut &p[..], ct::DATE).is_err());
        assert!(BinaryValue::decode(&p, &mut &p[..], ct::TIME).is_err());
        assert!(BinaryValue::skip(&mut &p[..], ct::TIME).is_err());
        let p = Bytes::from_static(&[1, 2, 3]);
        assert!(BinaryValue::decode(&p, &mut &p[..], ct::LONG).is_err());
    }

    #[test]
    fn integers_and_bitmap() {
        assert_eq!(BinaryValue::Int1(0xFF).as_i64(false), Some(-1));
        assert_eq!(BinaryValue::Int1(0xFF).as_i64(true), Some(255));
        assert_eq!(BinaryValue::Int2(0x8000).as_i64(false), Some(-32768));
        assert_eq!(
            BinaryValue::Int4(u32::MAX).as_i64(true),
            Some(u32::MAX as i64)
        );
        assert_eq!(BinaryValue::Int8(u64::MAX).as_i64(true), None);
        assert_eq!(BinaryValue::Int8(u64::MAX).as_i64(false), Some(-1));
        assert_eq!(BinaryValue::Null.as_i64(false), None);
        assert_eq!(null_bitmap_len(1, 2), Some(1));
        assert_eq!(null_bitmap_len(6, 2), Some(1));
        assert_eq!(null_bitmap_len(7, 2), Some(2));
        assert_eq!(null_bitmap_len(usize::MAX, 2), None);
        let vals = [BinaryValue::Int1(1), BinaryValue::Null, BinaryValue::Null];
        let bm = null_bitmap_of(&vals, 2);
        assert_eq!(bm, [0b0001_1000]);
        assert!(null_bitmap_get(&bm, 1, 2));
        assert!(!null_bitmap_get(&bm, 0, 2));
        assert!(!null_bitmap_get(&bm, 100, 2));
    }

    proptest! {
        #[test]
        fn value_roundtrip((t, v) in arb_typed_value()) {
            let mut d = BytesMut::new();
            v.encode(&mut d);
            let p = d.freeze();
            let mut b: &[u8] = &p;
            let back = BinaryValue::decode(&p, &mut b, t).unwrap();
            prop_assert!(b.is_empty());
            prop_assert_eq!(back, v);
            let mut b: &[u8] = &p;
            BinaryValue::skip(&mut b, t).unwrap();
            prop_assert!(b.is_empty());
        }

        #[test]
        fn arbitrary_never_panics(data in arb_payload(), t in any::<u8>()) {
            let p = Bytes::from(data);
            let _ = BinaryValue::decode(&p, &mut &p[..], t);
            let _ = BinaryValue::skip(&mut &p[..], t);
        }
    }
}
