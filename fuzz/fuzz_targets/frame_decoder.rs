//! Fuzzes `PacketDecoder` on arbitrary byte streams with an arbitrary payload limit.
#![no_main]

use bytes::BytesMut;
use dpm_protocol::{encode_packet, PacketDecoder, PacketHeader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (limit, stream) = match data.split_first() {
        Some((&l, rest)) => ((l as usize) << 4, rest),
        None => return,
    };
    let _ = PacketHeader::parse(stream);
    let mut d = PacketDecoder::new(if limit == 0 { usize::MAX } else { limit });
    let mut src = BytesMut::from(stream);
    let mut out = BytesMut::new();
    while let Ok(Some(p)) = d.decode(&mut src) {
        encode_packet(&mut out, p.seq, &p.payload);
    }
});
