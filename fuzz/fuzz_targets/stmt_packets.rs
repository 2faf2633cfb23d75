//! Fuzzes the prepared-statement packets: prepare, prepare-OK, execute (with parameter
//! decoding), bulk execute, close, reset, fetch and send-long-data.
#![no_main]

use bytes::{Bytes, BytesMut};
use dpm_protocol::{
    ComStmtBulkExecute, ComStmtClose, ComStmtExecute, ComStmtFetch, ComStmtPrepare, ComStmtReset,
    ComStmtSendLongData, StmtPrepareOk,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let caps = u64::from_le_bytes(data[..8].try_into().unwrap());
    let num_params = data[8] as usize % 16;
    let payload = &data[9..];
    let b = Bytes::copy_from_slice(payload);
    let _ = StmtPrepareOk::decode(payload, caps);
    let _ = ComStmtClose::decode(payload);
    let _ = ComStmtReset::decode(payload);
    let _ = ComStmtFetch::decode(payload);
    let _ = ComStmtSendLongData::decode(&b);
    let _ = ComStmtPrepare::decode(&b);
    if let Ok(e) = ComStmtExecute::decode(&b, num_params, caps) {
        let _ = e.param_values(&e.param_types);
        e.encode(&mut BytesMut::new(), caps);
    }
    if let Ok(bulk) = ComStmtBulkExecute::decode(&b, num_params) {
        let _ = bulk.rows(&bulk.param_types);
        bulk.encode(&mut BytesMut::new());
    }
});
