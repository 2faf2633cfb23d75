//! Fuzzes the `COM_CHANGE_USER` decoder.
#![no_main]

use bytes::{Bytes, BytesMut};
use dpm_protocol::ComChangeUser;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let caps = u64::from_le_bytes(data[..8].try_into().unwrap());
    if let Ok(c) = ComChangeUser::decode(&Bytes::copy_from_slice(&data[8..]), caps) {
        c.encode(&mut BytesMut::new(), caps);
    }
});
