//! Fuzzes the column-count and column-definition decoders.
#![no_main]

use bytes::{Bytes, BytesMut};
use dpm_protocol::{ColumnCount, ColumnDefinition41};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let caps = u64::from_le_bytes(data[..8].try_into().unwrap());
    let payload = &data[8..];
    let _ = ColumnCount::decode(payload, caps);
    if let Ok(c) = ColumnDefinition41::decode(&Bytes::copy_from_slice(payload), caps) {
        let _ = c.extended_metadata_entries();
        c.encode(&mut BytesMut::new(), caps);
    }
});
