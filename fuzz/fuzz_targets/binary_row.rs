//! Fuzzes the binary-row decoder; the first byte gives the column count, the next bytes
//! the column types.
#![no_main]

use bytes::{Bytes, BytesMut};
use dpm_protocol::BinaryRow;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = (n as usize % 32).min(rest.len());
    let (types, payload) = rest.split_at(n);
    if let Ok(r) = BinaryRow::decode(&Bytes::copy_from_slice(payload), types) {
        r.encode(&mut BytesMut::new());
    }
});
