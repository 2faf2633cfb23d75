//! Fuzzes the length-encoded integer and string readers.
#![no_main]

use dpm_protocol::lenenc::{get_lenenc_int, get_lenenc_str};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut buf = data;
    while let Ok(Some(_)) = get_lenenc_int(&mut buf) {}
    let mut buf = data;
    while !buf.is_empty() {
        if get_lenenc_str(&mut buf).is_err() {
            break;
        }
    }
});
