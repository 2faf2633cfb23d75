//! `mysql_native_password` as a stored credential: parsing the `*HEX` hash an operator
//! writes (MySQL's and MariaDB's `authentication_string`), checking a client's token
//! against it, the client's token for logging in to a backend, and making the hash text
//! from a password.
//!
//! The hashing itself lives in [`dpm_protocol::scramble`]; this module only wraps it with
//! the strict text form and this crate's errors.

use dpm_protocol::scramble::{
    format_stored_hash, native_password_hash, native_password_token, native_password_verify,
    parse_stored_hash_hex,
};

use crate::AuthError;

/// Length of the stored hash `SHA1(SHA1(password))`.
pub const HASH_LEN: usize = 20;

/// Parses a `password_hash` for `mysql_native_password`: `*` followed by 40 hex digits
/// (either case), exactly as MySQL's `PASSWORD()` or `SHOW CREATE USER` prints it. Returns
/// the 20-byte stored hash `SHA1(SHA1(password))`.
pub fn parse_hash(text: &str) -> Result<[u8; HASH_LEN], AuthError> {
    if text.len() != 1 + 2 * HASH_LEN || !text.starts_with('*') {
        return Err(AuthError::BadNativeHash);
    }
    // 41 bytes starting with '*': the rest is 40 bytes, so a second '*' leaves 39 after
    // parse_stored_hash_hex strips it and is refused.
    parse_stored_hash_hex(&text[1..]).ok_or(AuthError::BadNativeHash)
}

/// Server side: whether a client's auth response `token` proves the password whose
/// stored hash is `stored`, for the `nonce` the client was sent (its first 20 bytes are
/// used; a trailing NUL is harmless). An empty token (a client with an empty password)
/// never verifies, as in MySQL: an account without a password has no stored hash.
pub fn verify(stored: &[u8; HASH_LEN], nonce: &[u8], token: &[u8]) -> bool {
    native_password_verify(token, nonce, stored)
}

/// Client side: the auth response for `password` and the server's `nonce` (empty for an
/// empty password, else 20 bytes).
pub fn token(password: &[u8], nonce: &[u8]) -> Vec<u8> {
    native_password_token(password, nonce)
}

/// The stored hash of `password` (`SHA1(SHA1(password))`).
pub fn hash(password: &[u8]) -> [u8; HASH_LEN] {
    native_password_hash(password)
}

/// The hash text for `password` as MySQL and MariaDB print it: `*` and 40 uppercase hex
/// digits (what `PASSWORD('...')` returns). For an empty password MySQL stores no hash;
/// [`crate::hash_password`] refuses one.
pub fn hash_text(password: &[u8]) -> String {
    format_stored_hash(&native_password_hash(password))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `SELECT PASSWORD('secret')` on MariaDB 10.11.19 (and `CREATE USER n IDENTIFIED BY
    /// 'secret'` stores the same in mysql.global_priv).
    const SECRET_HASH: &str = "*14E65567ABDB5135D0CFD9A70B3032C179A49EE7";
    /// MariaDB 10.11.19, `CREATE USER n2 IDENTIFIED BY '<LONG_PASSWORD>'` from the
    /// `mariadb` client (utf8mb4).
    const LONG_PASSWORD: &str = "pässwörd ✓ with spaces and a long tail 0123456789";
    const LONG_HASH: &str = "*9E47B90226F0180BFB8C2C3B1C1BF4A185AE60E8";

    #[test]
    fn hash_text_matches_mariadb() {
        assert_eq!(hash_text(b"secret"), SECRET_HASH);
        assert_eq!(hash_text(LONG_PASSWORD.as_bytes()), LONG_HASH);
        assert_eq!(parse_hash(SECRET_HASH), Ok(hash(b"secret")));
    }

    #[test]
    fn parse_accepts_either_case() {
        let lower = SECRET_HASH.to_ascii_lowercase();
        assert_eq!(parse_hash(&lower), parse_hash(SECRET_HASH));
        assert!(parse_hash(&lower).is_ok());
    }

    #[test]
    fn parse_refuses_other_shapes() {
        for bad in [
            "",
            "*",
            &SECRET_HASH[1..],                            // no '*'
            &SECRET_HASH[..40],                           // 39 digits
            &format!("{SECRET_HASH}0"),                   // 41 digits
            "*14E65567ABDB5135D0CFD9A70B3032C179A49EEG",  // not hex
            "**4E65567ABDB5135D0CFD9A70B3032C179A49EE7",  // second '*'
            " *14E65567ABDB5135D0CFD9A70B3032C179A49EE7", // blank
            "*14E65567ABDB5135D0CFD9A70B3032C179A49Eé",   // non-ASCII, 41 bytes
            "$A$005$ABCDEFGHIJKLMNOPQRSTabcdefgh01234567ijklmnop89012345ABCDEFGH678",
        ] {
            assert_eq!(parse_hash(bad), Err(AuthError::BadNativeHash), "{bad:?}");
        }
    }

    #[test]
    fn verify_token_from_token() {
        let stored = parse_hash(SECRET_HASH).unwrap();
        let nonce = *b"0123456789abcdefghij";
        let t = token(b"secret", &nonce);
        assert_eq!(t.len(), 20);
        assert!(verify(&stored, &nonce, &t));
        // With the trailing NUL of the auth switch data.
        let mut with_nul = nonce.to_vec();
        with_nul.push(0);
        assert!(verify(&stored, &with_nul, &t));
        // Wrong password, wrong nonce, tampered, short, long, empty.
        assert!(!verify(&stored, &nonce, &token(b"Secret", &nonce)));
        assert!(!verify(&stored, b"0123456789abcdefghiJ", &t));
        let mut tampered = t.clone();
        tampered[19] ^= 0x80;
        assert!(!verify(&stored, &nonce, &tampered));
        assert!(!verify(&stored, &nonce, &t[..19]));
        let mut long = t.clone();
        long.push(0);
        assert!(!verify(&stored, &nonce, &long));
        assert!(!verify(&stored, &nonce, &[]));
        assert!(token(b"", &nonce).is_empty());
    }

    proptest! {
        #[test]
        fn round_trip(pw in proptest::collection::vec(any::<u8>(), 1..64),
                      nonce in proptest::collection::vec(any::<u8>(), 20..=21)) {
            let stored = parse_hash(&hash_text(&pw)).unwrap();
            prop_assert_eq!(stored, hash(&pw));
            prop_assert!(verify(&stored, &nonce, &token(&pw, &nonce)));
        }

        #[test]
        fn parse_never_panics(s in ".{0,50}") {
            let _ = parse_hash(&s);
        }

        #[test]
        fn verify_never_panics(token in proptest::collection::vec(any::<u8>(), 0..40),
                               nonce in proptest::collection::vec(any::<u8>(), 0..30)) {
            let _ = verify(&[0; 20], &nonce, &token);
        }
    }
}
