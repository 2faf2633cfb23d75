//! Fuzzes the remaining command decoders: query (with attributes), init db, field list,
//! set option, kill, multi, replication commands and local-infile requests.
#![no_main]

use bytes::{Bytes, BytesMut};
use dpm_protocol::{
    ComBinlogDump, ComBinlogDumpGtid, ComFieldList, ComInitDb, ComMulti, ComProcessKill, ComQuery,
    ComRegisterSlave, ComSetOption, Command, LocalInfileRequest,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let caps = u64::from_le_bytes(data[..8].try_into().unwrap());
    let payload = &data[8..];
    let b = Bytes::copy_from_slice(payload);
    if let Ok(q) = ComQuery::decode(&b, caps) {
        if let Some(a) = &q.attributes {
            let _ = a.values();
        }
        q.encode(&mut BytesMut::new(), caps);
    }
    let _ = Command::decode(&b);
    let _ = ComInitDb::decode(&b);
    let _ = ComFieldList::decode(&b);
    let _ = ComSetOption::decode(payload);
    let _ = ComProcessKill::decode(payload);
    let _ = ComMulti::decode(&b);
    let _ = ComBinlogDump::decode(&b);
    let _ = ComBinlogDumpGtid::decode(&b);
    let _ = ComRegisterSlave::decode(&b);
    let _ = LocalInfileRequest::decode(&b);
});
