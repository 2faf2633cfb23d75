//! Query classifier: arbitrary bytes as SQL text and as command payloads must never panic,
//! and the invariants hold on every input: a lex error is `unknown` + `may_write`, the hash
//! is the digest's hash, `classify_command` agrees with `classify` for COM_QUERY/COM_STMT_PREPARE.
#![no_main]

use dpm_modules::classifier::{classify, classify_command, digest_hash, StatementType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let c = classify(data);
    assert_eq!(c.digest_hash, digest_hash(c.digest.as_bytes()));
    if c.lex_error {
        assert_eq!(c.kind, StatementType::Unknown);
        assert!(c.may_write);
    } else {
        assert_ne!(c.kind, StatementType::Unknown);
    }
    match data.first() {
        Some(0x03) | Some(0x16) => assert_eq!(classify_command(data), Some(classify(&data[1..]))),
        _ => assert_eq!(classify_command(data), None),
    }
});
