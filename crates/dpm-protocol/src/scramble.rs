//! `mysql_native_password` hashing: the stored hash, the client's scramble and the
//! server-side verification, plus parsing of the `*HEX` stored-hash form.
//!
//! ```text
//! stage1      = SHA1(password)
//! stored_hash = SHA1(stage1)                                  ("*" + 40 hex in mysql.user)
//! token       = stage1 XOR SHA1(nonce[..20] ‖ stored_hash)   (sent by the client)
//! verify:       SHA1(token XOR SHA1(nonce ‖ stored_hash)) == stored_hash
//! ```
//! An empty password is sent as an empty token (not as the 20-byte value).

use sha1::{Digest, Sha1};

/// Length of a SHA1 digest and of a native-password token.
pub const SCRAMBLE_LEN: usize = 20;

fn sha1(parts: &[&[u8]]) -> [u8; 20] {
    let mut h = Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn nonce20(nonce: &[u8]) -> &[u8] {
    &nonce[..nonce.len().min(SCRAMBLE_LEN)]
}

/// `SHA1(password)`: the intermediate a proxy can recover from a verified token to log in
/// elsewhere with the same password.
pub fn native_password_stage1(password: &[u8]) -> [u8; 20] {
    sha1(&[password])
}

/// The stored hash `SHA1(SHA1(password))` (what `mysql.user` keeps after the `*`).
pub fn native_password_hash(password: &[u8]) -> [u8; 20] {
    sha1(&[&native_password_stage1(password)])
}

/// The client token `SHA1(pw) XOR SHA1(nonce[..20] ‖ SHA1(SHA1(pw)))`.
///
/// For an empty password the client must send an **empty** auth response instead; see
/// [`native_password_token`], which handles that.
pub fn native_password_scramble(password: &[u8], nonce: &[u8]) -> [u8; 20] {
    native_password_scramble_stage1(&native_password_stage1(password), nonce)
}

/// The client token computed from `stage1 = SHA1(password)` instead of the password.
pub fn native_password_scramble_stage1(stage1: &[u8; 20], nonce: &[u8]) -> [u8; 20] {
    let stored = sha1(&[stage1]);
    let mask = sha1(&[nonce20(nonce), &stored]);
    let mut out = [0u8; 20];
    for i in 0..20 {
        out[i] = stage1[i] ^ mask[i];
    }
    out
}

/// The auth response a client sends: empty for an empty password, else the 20-byte scramble.
pub fn native_password_token(password: &[u8], nonce: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        Vec::new()
    } else {
        native_password_scramble(password, nonce).to_vec()
    }
}

/// Recovers `SHA1(password)` from a client token and checks it against `stored_hash`.
/// `None` if the token is not 20 bytes or does not match.
pub fn native_password_recover_stage1(
    token: &[u8],
    nonce: &[u8],
    stored_hash: &[u8; 20],
) -> Option<[u8; 20]> {
    if token.len() != SCRAMBLE_LEN {
        return None;
    }
    let mask = sha1(&[nonce20(nonce), stored_hash]);
    let mut stage1 = [0u8; 20];
    for i in 0..20 {
        stage1[i] = token[i] ^ mask[i];
    }
    let candidate = sha1(&[&stage1]);
    // Constant-time comparison.
    let diff = candidate
        .iter()
        .zip(stored_hash.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    (diff == 0).then_some(stage1)
}

/// Server-side check of a client token against the stored hash. Returns `false` for an
/// empty token (accounts without a password have no stored hash; handle them separately).
pub fn native_password_verify(token: &[u8], nonce: &[u8], stored_hash: &[u8; 20]) -> bool {
    native_password_recover_stage1(token, nonce, stored_hash).is_some()
}

/// Parses a stored hash written as 40 hex digits (either case), with or without the
/// leading `*` of `mysql.user.authentication_string`.
pub fn parse_stored_hash_hex(s: &str) -> Option<[u8; 20]> {
    let hex = s.strip_prefix('*').unwrap_or(s).as_bytes();
    if hex.len() != 40 {
        return None;
    }
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let mut out = [0u8; 20];
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

/// Formats a stored hash the way MySQL shows it: `*` and 40 uppercase hex digits.
pub fn format_stored_hash(hash: &[u8; 20]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(41);
    s.push('*');
    for b in hash {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_stored_hashes() {
        assert_eq!(
            format_stored_hash(&native_password_hash(b"toast")),
            "*09A4298405EF045A61DB26DF8811FEA0E44A80FD"
        );
        assert_eq!(
            format_stored_hash(&native_password_hash(b"password")),
            "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"
        );
    }

    #[test]
    fn known_scramble_vector() {
        // Computed independently (Python hashlib) for password "toast" and this nonce.
        let nonce =
            b"\x3e\x52\x47\x5b\x3c\x6a\x5e\x7e\x5c\x28\x77\x23\x70\x4f\x6b\x38\x61\x3d\x5e\x4b";
        let token = native_password_scramble(b"toast", nonce);
        assert_eq!(token, TOAST_TOKEN);
        let stored = parse_stored_hash_hex("*09A4298405EF045A61DB26DF8811FEA0E44A80FD").unwrap();
        assert!(native_password_verify(&token, nonce, &stored));
        // A trailing NUL on the nonce (as in auth switch data) is ignored.
        let mut with_nul = nonce.to_vec();
        with_nul.push(0);
        assert!(native_password_verify(&token, &with_nul, &stored));
        assert_eq!(
            native_password_recover_stage1(&token, nonce, &stored),
            Some(native_password_stage1(b"toast"))
        );
        let mut bad = token;
        bad[0] ^= 1;
        assert!(!native_password_verify(&bad, nonce, &stored));
        assert!(!native_password_verify(&[], nonce, &stored));
        assert!(native_password_token(b"", nonce).is_empty());
        assert_eq!(native_password_token(b"toast", nonce), token.to_vec());
    }

    const TOAST_TOKEN: [u8; 20] = [
        0xbb, 0x65, 0xe5, 0xaf, 0x82, 0xfc, 0x0f, 0x8f, 0xd6, 0x61, 0xed, 0xf5, 0x68, 0x07, 0x22,
        0xb1, 0xae, 0x83, 0xdd, 0x36,
    ];

    #[test]
    fn hex_parsing() {
        let h = native_password_hash(b"toast");
        assert_eq!(
            parse_stored_hash_hex("09a4298405ef045a61db26df8811fea0e44a80fd"),
            Some(h)
        );
        assert_eq!(
            parse_stored_hash_hex("*09A4298405EF045A61DB26DF8811FEA0E44A80FD"),
            Some(h)
        );
        assert_eq!(
            parse_stored_hash_hex("*09A4298405EF045A61DB26DF8811FEA0E44A80F"),
            None
        );
        assert_eq!(
            parse_stored_hash_hex("*09A4298405EF045A61DB26DF8811FEA0E44A80FG"),
            None
        );
        assert_eq!(
            parse_stored_hash_hex("**09A4298405EF045A61DB26DF8811FEA0E44A80F"),
            None
        );
        assert_eq!(parse_stored_hash_hex(""), None);
        assert_eq!(
            parse_stored_hash_hex("é9A4298405EF045A61DB26DF8811FEA0E44A80F"),
            None
        );
    }

    proptest! {
        #[test]
        fn scramble_verifies(pw in proptest::collection::vec(any::<u8>(), 1..40), nonce in proptest::collection::vec(any::<u8>(), 20..=21)) {
            let stored = native_password_hash(&pw);
            let token = native_password_scramble(&pw, &nonce);
            prop_assert!(native_password_verify(&token, &nonce, &stored));
            prop_assert_eq!(parse_stored_hash_hex(&format_stored_hash(&stored)), Some(stored));
        }

        #[test]
        fn hex_never_panics(s in ".{0,45}") {
            let _ = parse_stored_hash_hex(&s);
        }
    }
}
