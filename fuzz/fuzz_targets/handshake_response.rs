//! Fuzzes the handshake response and SSL request decoders.
#![no_main]

use bytes::{Bytes, BytesMut};
use dpm_protocol::{is_ssl_request, HandshakeResponse41, SslRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = is_ssl_request(data);
    let _ = SslRequest::decode(data);
    if let Ok(r) = HandshakeResponse41::decode(&Bytes::copy_from_slice(data)) {
        r.encode(&mut BytesMut::new());
    }
});
