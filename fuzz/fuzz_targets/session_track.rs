//! Fuzzes the session-state-tracking decoder.
#![no_main]

use bytes::Bytes;
use dpm_protocol::{decode_session_state, encode_session_state};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = decode_session_state(&Bytes::copy_from_slice(data)) {
        let _ = encode_session_state(&v);
    }
});
