//! Fuzzes the text-row decoder with an arbitrary column count.
#![no_main]

use bytes::{Bytes, BytesMut};
use dpm_protocol::TextRow;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&n, payload)) = data.split_first() else {
        return;
    };
    if let Ok(r) = TextRow::decode(&Bytes::copy_from_slice(payload), n as usize) {
        r.encode(&mut BytesMut::new());
    }
});
