//! Fuzzes the auth-phase packets: switch request, more data, next factor, switch response.
#![no_main]

use bytes::{Bytes, BytesMut};
use dpm_protocol::{AuthMoreData, AuthNextFactor, AuthSwitchRequest, AuthSwitchResponse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let b = Bytes::copy_from_slice(data);
    if let Ok(r) = AuthSwitchRequest::decode(&b) {
        let _ = r.nonce();
        r.encode(&mut BytesMut::new());
    }
    let _ = AuthMoreData::decode(&b);
    let _ = AuthNextFactor::decode(&b);
    let _ = AuthSwitchResponse::decode(&b);
});
