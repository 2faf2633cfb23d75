//! Packet framing: the 4-byte header, splitting payloads into 16 MiB frames and joining
//! continuation frames back into one logical packet.
//!
//! On the wire every frame is `int<3> payload_len ‖ int<1> seq ‖ payload`. A payload of
//! exactly [`MAX_PAYLOAD_LEN`] bytes means "continued in the next frame", so a logical packet
//! whose length is a multiple of `0xFFFFFF` ends with an empty frame.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{ProtocolError, Result};

/// Length of a frame header.
pub const HEADER_LEN: usize = 4;

/// Largest payload one frame can carry; a frame of this length is continued in the next one.
pub const MAX_PAYLOAD_LEN: usize = 0xFF_FFFF;

/// Default limit on a logical packet's payload for [`PacketDecoder`]: 1 GiB, the largest
/// `max_allowed_packet` MySQL and MariaDB accept.
pub const DEFAULT_MAX_PAYLOAD: usize = 1 << 30;

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PacketHeader {
    /// Length of this frame's payload (`0..=0xFFFFFF`).
    pub payload_len: usize,
    /// Sequence id of this frame.
    pub seq: u8,
}

impl PacketHeader {
    /// Parses the header at the start of `buf`; `None` if `buf` has fewer than 4 bytes.
    #[inline]
    pub fn parse(buf: &[u8]) -> Option<PacketHeader> {
        match buf {
            [a, b, c, seq, ..] => Some(PacketHeader {
                payload_len: u32::from_le_bytes([*a, *b, *c, 0]) as usize,
                seq: *seq,
            }),
            _ => None,
        }
    }

    /// The header as its 4 wire bytes. Only the low 24 bits of `payload_len` are kept.
    #[inline]
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        debug_assert!(self.payload_len <= MAX_PAYLOAD_LEN);
        let l = (self.payload_len as u32).to_le_bytes();
        [l[0], l[1], l[2], self.seq]
    }

    /// Writes the header into the first 4 bytes of `dst`.
    ///
    /// # Panics
    /// If `dst` is shorter than [`HEADER_LEN`] (a caller bug, not an input condition).
    #[inline]
    pub fn write(&self, dst: &mut [u8]) {
        dst[..HEADER_LEN].copy_from_slice(&self.to_bytes());
    }
}

/// Appends `payload` as one logical packet starting at sequence `seq`, split into
/// `0xFFFFFF`-byte frames (with a trailing empty frame when the length is an exact multiple
/// of `0xFFFFFF`). Returns the next sequence id.
pub fn encode_packet(dst: &mut BytesMut, seq: u8, payload: &[u8]) -> u8 {
    let frames = payload.len() / MAX_PAYLOAD_LEN + 1;
    dst.reserve(payload.len() + frames * HEADER_LEN);
    let mut seq = seq;
    let mut rest = payload;
    loop {
        let n = rest.len().min(MAX_PAYLOAD_LEN);
        dst.put_slice(
            &PacketHeader {
                payload_len: n,
                seq,
            }
            .to_bytes(),
        );
        dst.put_slice(&rest[..n]);
        rest = &rest[n..];
        seq = seq.wrapping_add(1);
        if n < MAX_PAYLOAD_LEN {
            return seq;
        }
    }
}

/// Appends one logical packet whose payload is written by `write_payload` directly into
/// `dst` (no intermediate buffer for the common case of a payload under 16 MiB).
/// Splits into frames like [`encode_packet`]. Returns the next sequence id.
pub fn encode_packet_with(
    dst: &mut BytesMut,
    seq: u8,
    write_payload: impl FnOnce(&mut BytesMut),
) -> u8 {
    let start = dst.len();
    dst.put_slice(&[0u8; HEADER_LEN]);
    write_payload(dst);
    let len = dst.len() - start - HEADER_LEN;
    if len < MAX_PAYLOAD_LEN {
        PacketHeader {
            payload_len: len,
            seq,
        }
        .write(&mut dst[start..]);
        return seq.wrapping_add(1);
    }
    // Rare: the payload needs several frames. Re-frame it.
    let payload = dst.split_off(start + HEADER_LEN);
    dst.truncate(start);
    encode_packet(dst, seq, &payload)
}

/// A logical packet: the joined payload and the sequence ids of its first and last frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Sequence id of the first frame.
    pub seq: u8,
    /// Sequence id of the last frame (equal to `seq` for single-frame packets). The next
    /// packet in the same exchange uses `last_seq.wrapping_add(1)`.
    pub last_seq: u8,
    /// The payload, continuation frames joined.
    pub payload: Bytes,
}

impl Packet {
    /// The sequence id the next packet of the same exchange must carry.
    #[inline]
    pub fn next_seq(&self) -> u8 {
        self.last_seq.wrapping_add(1)
    }

    /// Appends this packet, framed, to `dst` using its own `seq`. Returns the next sequence id.
    pub fn encode(&self, dst: &mut BytesMut) -> u8 {
        encode_packet(dst, self.seq, &self.payload)
    }
}

/// Incremental decoder: takes whole logical packets (joining continuation frames) off the
/// front of a buffer.
///
/// [`decode`](Self::decode) returns `Ok(None)` when the buffer does not yet hold a complete
/// packet (not an error). A single-frame packet is returned without copying
/// (`split_to().freeze()`); a multi-frame packet is joined into one new buffer.
/// The decoder enforces a maximum logical payload size and fails with
/// [`ProtocolError::TooLong`] as soon as the frame headers show the limit is exceeded,
/// before the data arrives. It also checks that continuation frames carry consecutive
/// sequence ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketDecoder {
    max_payload: usize,
}

impl Default for PacketDecoder {
    fn default() -> Self {
        PacketDecoder::new(DEFAULT_MAX_PAYLOAD)
    }
}

impl PacketDecoder {
    /// A decoder that rejects logical payloads longer than `max_payload` bytes.
    pub fn new(max_payload: usize) -> Self {
        PacketDecoder { max_payload }
    }

    /// The configured payload limit.
    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// Takes the next complete logical packet off the front of `src`, if there is one.
    ///
    /// On `Ok(None)` and on error, `src` is left untouched.
    #[inline]
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Packet>> {
        let Some(h) = PacketHeader::parse(src) else {
            return Ok(None);
        };
        if h.payload_len > self.max_payload {
            return Err(ProtocolError::TooLong {
                len: h.payload_len,
                max: self.max_payload,
            });
        }
        if h.payload_len < MAX_PAYLOAD_LEN {
            if src.len() < HEADER_LEN + h.payload_len {
                return Ok(None);
            }
            src.advance(HEADER_LEN);
            let payload = src.split_to(h.payload_len).freeze();
            return Ok(Some(Packet {
                seq: h.seq,
                last_seq: h.seq,
                payload,
            }));
        }
        self.decode_multi(src, h)
    }

    #[cold]
    fn decode_multi(&mut self, src: &mut BytesMut, first: PacketHeader) -> Result<Option<Packet>> {
        // Walk the frame headers without consuming anything until the last frame is present.
        let mut total = 0usize;
        let mut off = 0usize;
        let mut frames = 0usize;
        let mut expected = first.seq;
        let mut last_seq;
        loop {
            let Some(h) = PacketHeader::parse(&src[off..]) else {
                return Ok(None);
            };
            if h.seq != expected {
                return Err(ProtocolError::SequenceMismatch {
                    expected,
                    found: h.seq,
                });
            }
            total = total.saturating_add(h.payload_len);
            if total > self.max_payload {
                return Err(ProtocolError::TooLong {
                    len: total,
                    max: self.max_payload,
                });
            }
            let end = off + HEADER_LEN + h.payload_len;
            if src.len() < end {
                return Ok(None);
            }
            off = end;
            frames += 1;
            last_seq = h.seq;
            expected = h.seq.wrapping_add(1);
            if h.payload_len < MAX_PAYLOAD_LEN {
                break;
            }
        }
        let mut payload = BytesMut::with_capacity(total);
        for _ in 0..frames {
            // Headers were validated above.
            let len = PacketHeader::parse(src).map_or(0, |h| h.payload_len);
            src.advance(HEADER_LEN);
            payload.extend_from_slice(&src[..len]);
            src.advance(len);
        }
        Ok(Some(Packet {
            seq: first.seq,
            last_seq,
            payload: payload.freeze(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn header_parse_write() {
        assert_eq!(PacketHeader::parse(&[1, 2, 3]), None);
        let h = PacketHeader::parse(&[0x2C, 0x01, 0x00, 0x07, 0xAA]).unwrap();
        assert_eq!(
            h,
            PacketHeader {
                payload_len: 300,
                seq: 7
            }
        );
        let mut out = [0u8; 5];
        h.write(&mut out);
        assert_eq!(out, [0x2C, 0x01, 0x00, 0x07, 0x00]);
    }

    #[test]
    fn com_query_fixture() {
        // COM_QUERY "select @@version_comment limit 1" as sent by the mysql client.
        let wire = b"\x21\x00\x00\x00\x03select @@version_comment limit 1";
        let mut src = BytesMut::from(&wire[..]);
        let mut d = PacketDecoder::default();
        let p = d.decode(&mut src).unwrap().unwrap();
        assert_eq!(p.seq, 0);
        assert_eq!(p.last_seq, 0);
        assert_eq!(&p.payload[..], &wire[4..]);
        assert!(src.is_empty());
        let mut out = BytesMut::new();
        assert_eq!(encode_packet(&mut out, 0, &p.payload), 1);
        assert_eq!(&out[..], &wire[..]);
    }

    #[test]
    fn incomplete_then_complete() {
        let mut wire = BytesMut::new();
        encode_packet(&mut wire, 3, b"hello");
        encode_packet(&mut wire, 4, b"");
        let mut d = PacketDecoder::default();
        for cut in 0..9 {
            let mut src = BytesMut::from(&wire[..cut]);
            assert_eq!(d.decode(&mut src).unwrap(), None);
            assert_eq!(src.len(), cut);
        }
        let mut src = wire.clone();
        let a = d.decode(&mut src).unwrap().unwrap();
        assert_eq!((&a.payload[..], a.seq, a.next_seq()), (&b"hello"[..], 3, 4));
        let b = d.decode(&mut src).unwrap().unwrap();
        assert_eq!((&b.payload[..], b.seq), (&b""[..], 4));
        assert_eq!(d.decode(&mut src).unwrap(), None);
    }

    #[test]
    fn too_long_single_frame() {
        let mut wire = BytesMut::new();
        encode_packet(&mut wire, 0, &[0u8; 100]);
        let mut d = PacketDecoder::new(99);
        // Rejected from the header alone, before the payload arrives.
        let mut src = BytesMut::from(&wire[..4]);
        assert_eq!(
            d.decode(&mut src),
            Err(ProtocolError::TooLong { len: 100, max: 99 })
        );
        let mut d = PacketDecoder::new(100);
        assert!(d.decode(&mut wire).unwrap().is_some());
    }

    #[test]
    fn too_long_multi_frame_from_headers() {
        let mut d = PacketDecoder::new(MAX_PAYLOAD_LEN + 10);
        // First frame full, second frame announces 11 bytes: 0xFFFFFF + 11 > limit.
        let mut src = BytesMut::new();
        src.put_slice(&[0xFF, 0xFF, 0xFF, 0]);
        src.put_bytes(0, MAX_PAYLOAD_LEN);
        src.put_slice(&[11, 0, 0, 1]);
        assert_eq!(
            d.decode(&mut src),
            Err(ProtocolError::TooLong {
                len: MAX_PAYLOAD_LEN + 11,
                max: MAX_PAYLOAD_LEN + 10
            })
        );
    }

    #[test]
    fn sequence_mismatch_in_continuation() {
        let mut src = BytesMut::new();
        src.put_slice(&[0xFF, 0xFF, 0xFF, 5]);
        src.put_bytes(7, MAX_PAYLOAD_LEN);
        src.put_slice(&[1, 0, 0, 9, 1]);
        let mut d = PacketDecoder::default();
        assert_eq!(
            d.decode(&mut src),
            Err(ProtocolError::SequenceMismatch {
                expected: 6,
                found: 9
            })
        );
    }

    #[test]
    fn encode_with_matches_encode() {
        for len in [0usize, 1, 1000] {
            let payload = vec![0x5Au8; len];
            let mut a = BytesMut::new();
            let mut b = BytesMut::from(&b"prefix"[..]);
            let na = encode_packet(&mut a, 9, &payload);
            let nb = encode_packet_with(&mut b, 9, |d| d.put_slice(&payload));
            assert_eq!(na, nb);
            assert_eq!(&b[6..], &a[..]);
        }
    }

    #[test]
    fn encode_with_splits_large() {
        let len = MAX_PAYLOAD_LEN + 5;
        let mut a = BytesMut::new();
        let seq = encode_packet_with(&mut a, 254, |d| d.put_bytes(1, len));
        assert_eq!(seq, 0);
        assert_eq!(a.len(), len + 2 * HEADER_LEN);
        assert_eq!(&a[..4], &[0xFF, 0xFF, 0xFF, 254]);
        assert_eq!(
            &a[MAX_PAYLOAD_LEN + 4..MAX_PAYLOAD_LEN + 8],
            &[5, 0, 0, 255]
        );
    }

    fn big_payload(len: usize, seed: u8) -> Vec<u8> {
        // Cheap, non-constant content so misplaced bytes are detected.
        let mut v = vec![0u8; len];
        let step = seed | 1;
        let mut x = seed;
        for chunk in v.chunks_mut(4096) {
            chunk.fill(x);
            x = x.wrapping_add(step);
        }
        if let Some(last) = v.last_mut() {
            *last = seed ^ 0xA5;
        }
        v
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10))]

        /// Sizes around the 16 MiB frame boundary split into frames and join back.
        #[test]
        fn large_packets_split_and_join(
            len in prop::sample::select(vec![
                MAX_PAYLOAD_LEN - 1,
                MAX_PAYLOAD_LEN,
                MAX_PAYLOAD_LEN + 1,
                2 * MAX_PAYLOAD_LEN,
                2 * MAX_PAYLOAD_LEN + 3,
            ]),
            seq in any::<u8>(),
            seed in any::<u8>(),
            chunk in (1usize << 18)..(1 << 23),
        ) {
            let payload = big_payload(len, seed);
            let mut wire = BytesMut::new();
            let next = encode_packet(&mut wire, seq, &payload);
            let frames = len / MAX_PAYLOAD_LEN + 1;
            prop_assert_eq!(wire.len(), len + frames * HEADER_LEN);
            prop_assert_eq!(next, seq.wrapping_add(frames as u8));

            // Feed in chunks: Ok(None) until the final byte arrives.
            let mut d = PacketDecoder::default();
            let mut src = BytesMut::new();
            let mut fed = 0;
            let mut got = None;
            while fed < wire.len() {
                let n = chunk.min(wire.len() - fed);
                src.extend_from_slice(&wire[fed..fed + n]);
                fed += n;
                match d.decode(&mut src).unwrap() {
                    Some(p) => { prop_assert_eq!(fed, wire.len()); got = Some(p); }
                    None => prop_assert!(fed < wire.len()),
                }
            }
            let p = got.unwrap();
            prop_assert_eq!(p.seq, seq);
            prop_assert_eq!(p.last_seq, seq.wrapping_add(frames as u8 - 1));
            prop_assert!(p.payload[..] == payload[..]);
            prop_assert!(src.is_empty());
        }
    }

    proptest! {
        #[test]
        fn small_packets_roundtrip(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..6),
            seq in any::<u8>(),
        ) {
            let mut wire = BytesMut::new();
            let mut s = seq;
            for p in &payloads {
                s = encode_packet(&mut wire, s, p);
            }
            let mut d = PacketDecoder::default();
            let mut s = seq;
            for p in &payloads {
                let got = d.decode(&mut wire).unwrap().unwrap();
                prop_assert_eq!(got.seq, s);
                prop_assert_eq!(&got.payload[..], &p[..]);
                s = got.next_seq();
            }
            prop_assert!(wire.is_empty());
        }

        #[test]
        fn arbitrary_input_never_panics(
            data in proptest::collection::vec(any::<u8>(), 0..64),
            max in 0usize..100,
        ) {
            let mut src = BytesMut::from(&data[..]);
            let mut d = PacketDecoder::new(max);
            while let Ok(Some(_)) = d.decode(&mut src) {}
        }
    }
}
