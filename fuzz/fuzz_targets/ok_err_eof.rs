//! Fuzzes OK / ERR / EOF / progress decoders and the hot-path classifiers.
#![no_main]

use bytes::{Bytes, BytesMut};
use dpm_protocol::{
    is_eof_packet, is_progress_report, ok_status, terminator_status, EofPacket, ErrPacket,
    OkPacket, ProgressReport,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let caps = u64::from_le_bytes(data[..8].try_into().unwrap());
    let payload = &data[8..];
    for d in [false, true] {
        let _ = is_eof_packet(payload, d);
        let _ = terminator_status(payload, d);
    }
    let _ = ok_status(payload);
    let _ = is_progress_report(payload);
    let _ = EofPacket::decode(payload, caps);
    let b = Bytes::copy_from_slice(payload);
    if let Ok(ok) = OkPacket::decode(&b, caps) {
        let _ = ok.session_state();
        ok.encode(&mut BytesMut::new(), caps);
    }
    if let Ok(e) = ErrPacket::decode(&b) {
        e.encode(&mut BytesMut::new());
    }
    let _ = ProgressReport::decode(&b);
});
