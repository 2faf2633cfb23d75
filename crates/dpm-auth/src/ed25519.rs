//! MariaDB's `client_ed25519` (server plugin `ed25519`, `auth_ed25519.so`): the stored
//! public key, the server's check of the client's signature, and the client's signature
//! for logging in to a MariaDB backend.
//!
//! ```text
//! az      = SHA512(password)            (any length: not RFC 8032's 32-byte seed)
//! a       = clamp(az[..32])             (the secret scalar), prefix = az[32..]
//! stored  = base64(a·B), no padding     (43 characters, MariaDB's authentication_string)
//! server → client: 32-byte nonce;  client → server: Ed25519 signature (64 bytes) of the nonce
//! ```
//! Apart from where the secret comes from, this is standard Ed25519: for a 32-byte
//! password it is exactly RFC 8032 with that password as the secret key.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use ed25519_dalek::hazmat::{raw_sign, ExpandedSecretKey};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use sha2::{Digest, Sha512};

use crate::AuthError;

/// Length of the nonce MariaDB's server sends.
pub const NONCE_LEN: usize = 32;
/// Length of a signature (the client's auth response).
pub const SIGNATURE_LEN: usize = 64;
/// Length of the stored hash text: 32 bytes in base64 without padding.
pub const HASH_TEXT_LEN: usize = 43;

/// The expanded secret key MariaDB derives from a password: SHA-512 of it, the first half
/// clamped into the scalar, the second half the nonce prefix.
fn expanded_key(password: &[u8]) -> ExpandedSecretKey {
    let az: [u8; 64] = Sha512::digest(password).into();
    ExpandedSecretKey::from_bytes(&az)
}

/// The public key of `password`: the 32 bytes MariaDB stores (base64-encoded).
pub fn public_key_from_password(password: &[u8]) -> [u8; 32] {
    VerifyingKey::from(&expanded_key(password)).to_bytes()
}

/// The stored hash text for `password`, as MariaDB's `PASSWORD()` under
/// `IDENTIFIED VIA ed25519 USING PASSWORD('…')` stores it: the public key in standard
/// base64 without padding (43 characters). MariaDB stores an empty string for an empty
/// password; [`crate::hash_password`] refuses one.
pub fn hash_text(password: &[u8]) -> String {
    STANDARD_NO_PAD.encode(public_key_from_password(password))
}

fn bad(reason: &'static str) -> AuthError {
    AuthError::BadEd25519Hash(reason)
}

/// Parses a stored hash: 43 characters of standard base64 (`A-Z a-z 0-9 + /`) without
/// padding, decoding to a valid Ed25519 public key.
pub fn parse_hash(text: &str) -> Result<[u8; 32], AuthError> {
    if text.len() != HASH_TEXT_LEN {
        return Err(bad("wrong length"));
    }
    let bytes = STANDARD_NO_PAD
        .decode(text)
        .map_err(|_| bad("not base64"))?;
    let key: [u8; 32] = bytes.try_into().map_err(|_| bad("wrong length"))?;
    VerifyingKey::from_bytes(&key).map_err(|_| bad("not an Ed25519 public key"))?;
    Ok(key)
}

/// Server side: whether `signature` (the client's auth response) is a valid Ed25519
/// signature of `nonce` (the bytes the server sent, exactly) under `public_key`. False
/// for a signature that is not 64 bytes, a key that is not a curve point, or a
/// non-canonical signature.
pub fn verify(public_key: &[u8; 32], nonce: &[u8], signature: &[u8]) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(public_key) else {
        return false;
    };
    let Ok(signature) = Signature::from_slice(signature) else {
        return false;
    };
    key.verify(nonce, &signature).is_ok()
}

/// Client side: the auth response for `password` to a MariaDB server that sent `nonce`:
/// the Ed25519 signature of the nonce with the key derived from the password.
///
/// Sign the plugin data exactly as the server sent it (32 bytes). Do not use
/// `AuthSwitchRequest::nonce()`, which drops a trailing NUL: a random nonce ends in a
/// zero byte one time in 256.
pub fn sign(password: &[u8], nonce: &[u8]) -> [u8; SIGNATURE_LEN] {
    let key = expanded_key(password);
    let public = VerifyingKey::from(&key);
    raw_sign::<Sha512>(&key, nonce, &public).to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn unhex<const N: usize>(s: &str) -> [u8; N] {
        let v: Vec<u8> = (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect();
        v.try_into().unwrap()
    }

    /// MariaDB 10.11.19 with auth_ed25519: `CREATE USER e IDENTIFIED VIA ed25519 USING
    /// PASSWORD('secret')`, then `authentication_string` from mysql.global_priv.
    const SECRET_HASH: &str = "ZIgUREUg5PVgQ6LskhXmO+eZLS0nC8be6HPjYWR4YJY";
    /// The same for a longer UTF-8 password (sent by the `mariadb` client as utf8mb4).
    const LONG_PASSWORD: &str = "pässwörd ✓ with spaces and a long tail 0123456789";
    const LONG_HASH: &str = "JnErDdOpjp1yq8oJj5/aq9vWim+hu4AhdBpy+XWx+yU";

    #[test]
    fn hash_text_matches_mariadb() {
        assert_eq!(hash_text(b"secret"), SECRET_HASH);
        assert_eq!(hash_text(LONG_PASSWORD.as_bytes()), LONG_HASH);
        assert_eq!(
            parse_hash(SECRET_HASH).unwrap(),
            public_key_from_password(b"secret")
        );
    }

    /// RFC 8032 §7.1 tests 1 and 2: a 32-byte password is the RFC's secret key.
    #[test]
    fn rfc8032_vectors() {
        let cases = [
            (
                "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
                "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
                &[][..],
                "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
            ),
            (
                "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
                "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
                &[0x72][..],
                "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
            ),
        ];
        for (secret, public, message, signature) in cases {
            let secret: [u8; 32] = unhex(secret);
            let public: [u8; 32] = unhex(public);
            let signature: [u8; 64] = unhex(signature);
            assert_eq!(public_key_from_password(&secret), public);
            assert_eq!(sign(&secret, message), signature);
            assert!(verify(&public, message, &signature));
        }
    }

    /// `sign("secret", 00 01 … 1f)`: the signature the `mariadb` 10.11 command-line client
    /// (libmariadb's client_ed25519 plugin) sent a one-off fake server that switched it to
    /// client_ed25519 with this nonce; the same bytes were computed independently with
    /// libsodium's scalar and point primitives (PyNaCl) from SHA-512("secret").
    #[test]
    fn sign_vector_for_a_mariadb_password() {
        let nonce: Vec<u8> = (0u8..32).collect();
        let expected: [u8; 64] = unhex(
            "546c3e9311d19ee389d1ae5d945821bfe459423910136f16b3bd2ae89fd7d63b449e689f4be812891a85b8f999076446d92adb83d0707215aaa60b5a23220907",
        );
        assert_eq!(sign(b"secret", &nonce), expected);
        let key = parse_hash(SECRET_HASH).unwrap();
        assert!(verify(&key, &nonce, &expected));
    }

    #[test]
    fn verify_failures() {
        let key = parse_hash(SECRET_HASH).unwrap();
        let nonce = [7u8; NONCE_LEN];
        let sig = sign(b"secret", &nonce);
        assert!(verify(&key, &nonce, &sig));
        // Wrong password, wrong nonce, tampered signature, wrong lengths.
        assert!(!verify(&key, &nonce, &sign(b"Secret", &nonce)));
        let mut other_nonce = nonce;
        other_nonce[31] ^= 1;
        assert!(!verify(&key, &other_nonce, &sig));
        assert!(!verify(&key, &nonce[..31], &sig));
        for i in [0, 31, 32, 63] {
            let mut tampered = sig;
            tampered[i] ^= 0x01;
            assert!(!verify(&key, &nonce, &tampered), "byte {i}");
        }
        assert!(!verify(&key, &nonce, &sig[..63]));
        assert!(!verify(&key, &nonce, &[sig.as_slice(), &[0]].concat()));
        assert!(!verify(&key, &nonce, &[]));
        // Another account's key.
        let other = public_key_from_password(b"other");
        assert!(!verify(&other, &nonce, &sig));
        // Non-canonical S (S + l) is refused.
        let mut non_canonical = sig;
        let l: [u8; 32] = unhex("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
        let mut carry = 0u16;
        for i in 0..32 {
            let sum = u16::from(non_canonical[32 + i]) + u16::from(l[i]) + carry;
            non_canonical[32 + i] = sum as u8;
            carry = sum >> 8;
        }
        assert!(!verify(&key, &nonce, &non_canonical));
    }

    #[test]
    fn parse_failures() {
        for (text, reason) in [
            ("", "wrong length"),
            (&SECRET_HASH[..42], "wrong length"),
            (
                "ZIgUREUg5PVgQ6LskhXmO+eZLS0nC8be6HPjYWR4YJY=",
                "wrong length",
            ),
            ("ZIgUREUg5PVgQ6LskhXmO+eZLS0nC8be6HPjYWR4YJ!", "not base64"),
            ("ZIgUREUg5PVgQ6LskhXmO-eZLS0nC8be6HPjYWR4YJY", "not base64"),
            // The last character carries 2 spare bits that must be zero.
            ("ZIgUREUg5PVgQ6LskhXmO+eZLS0nC8be6HPjYWR4YJZ", "not base64"),
            (
                "ZIgUREUg5PVgQ6LskhXmO+eZLS0nC8be6HPjYWR4YJé",
                "wrong length",
            ),
            ("*14E65567ABDB5135D0CFD9A70B3032C179A49EE7", "wrong length"),
        ] {
            assert_eq!(
                parse_hash(text),
                Err(AuthError::BadEd25519Hash(reason)),
                "{text:?}"
            );
        }
        // 32 bytes that are not a point on the curve (y = 2 has no x).
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        assert_eq!(
            parse_hash(&STANDARD_NO_PAD.encode(not_a_point)),
            Err(AuthError::BadEd25519Hash("not an Ed25519 public key"))
        );
        assert!(!verify(&not_a_point, &[0; 32], &[0; 64]));
    }

    proptest! {
        #[test]
        fn sign_verifies(pw in proptest::collection::vec(any::<u8>(), 0..100),
                         nonce in proptest::collection::vec(any::<u8>(), 32..=32)) {
            let key = parse_hash(&hash_text(&pw)).unwrap();
            prop_assert!(verify(&key, &nonce, &sign(&pw, &nonce)));
        }

        #[test]
        fn parse_never_panics(s in "[A-Za-z0-9+/=é-]{0,50}") {
            let _ = parse_hash(&s);
        }

        #[test]
        fn verify_never_panics(key in proptest::collection::vec(any::<u8>(), 32..=32),
                               sig in proptest::collection::vec(any::<u8>(), 0..70)) {
            let key: [u8; 32] = key.try_into().unwrap();
            let _ = verify(&key, &[1; 32], &sig);
        }
    }
}
