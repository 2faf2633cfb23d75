//! Fuzzes the initial handshake decoder (and re-encodes what it accepts).
#![no_main]

use bytes::{Bytes, BytesMut};
use dpm_protocol::HandshakeV10;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(hs) = HandshakeV10::decode(&Bytes::copy_from_slice(data)) {
        hs.encode(&mut BytesMut::new());
    }
});
