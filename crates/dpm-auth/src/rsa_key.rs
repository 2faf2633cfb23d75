//! The RSA step of `caching_sha2_password` full authentication over a connection without
//! TLS: the server's key pair ([`RsaKeyPair`]: load or generate, the public key PEM it
//! sends on request, decrypting the client's password) and the client's encryption
//! ([`encrypt_password`]).
//!
//! As MySQL: the client XORs its password and a terminating NUL with the 20-byte nonce
//! (repeated), encrypts that with RSA-OAEP (SHA-1, MGF1-SHA-1: OpenSSL's
//! `RSA_PKCS1_OAEP_PADDING`) under the server's public key and sends the ciphertext, as
//! long as the key (256 bytes for 2048 bits). The server decrypts, XORs with the nonce
//! again and takes the password up to the first NUL.
//!
//! Decryption uses RSA blinding. The `rsa` crate's private-key operations are not
//! constant-time (RUSTSEC-2023-0071, the "Marvin" timing attack, no fixed release yet):
//! prefer TLS for full authentication where an attacker can time many attempts.

use std::path::Path;

use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};
use sha1::Sha1;

use crate::AuthError;

/// Size of the keys [`RsaKeyPair::generate`] makes (MySQL's auto-generated keys are 2048
/// bits too).
pub const GENERATED_KEY_BITS: usize = 2048;
/// Smallest key accepted from a file.
pub const MIN_KEY_BITS: usize = 1024;
/// The nonce bytes the password is XORed with (MySQL's `SCRAMBLE_LENGTH`).
const NONCE_LEN: usize = 20;

/// A server's RSA key pair for `caching_sha2_password`, with its public key PEM ready to
/// send. `Debug` shows only the key size.
#[derive(Clone)]
pub struct RsaKeyPair {
    private: RsaPrivateKey,
    public_pem: String,
}

impl std::fmt::Debug for RsaKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RsaKeyPair({} bits, private key <hidden>)",
            self.private.size() * 8
        )
    }
}

fn key_error(path: &str, reason: impl std::fmt::Display) -> AuthError {
    AuthError::RsaKey {
        path: path.to_string(),
        reason: reason.to_string(),
    }
}

/// `password ‖ NUL`, or the decrypted bytes, XORed with `nonce[..20]` repeated.
fn xor_with_nonce(data: &mut [u8], nonce: &[u8]) -> Result<(), AuthError> {
    let nonce = &nonce[..nonce.len().min(NONCE_LEN)];
    if nonce.is_empty() {
        return Err(AuthError::EmptyNonce);
    }
    for (d, n) in data.iter_mut().zip(nonce.iter().cycle()) {
        *d ^= n;
    }
    Ok(())
}

impl RsaKeyPair {
    /// Reads a PEM private key file: PKCS#1 (`-----BEGIN RSA PRIVATE KEY-----`, as
    /// `openssl genrsa` and MySQL's `private_key.pem`) or unencrypted PKCS#8
    /// (`-----BEGIN PRIVATE KEY-----`, as `openssl genpkey`).
    pub fn from_pem_file(path: &Path) -> Result<RsaKeyPair, AuthError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| key_error(&shown, e))?;
        Self::parse_pem(&text, &shown)
    }

    /// Parses PEM private key text (PKCS#1 or unencrypted PKCS#8).
    pub fn from_pem(pem: &str) -> Result<RsaKeyPair, AuthError> {
        Self::parse_pem(pem, "(PEM text)")
    }

    fn parse_pem(pem: &str, shown: &str) -> Result<RsaKeyPair, AuthError> {
        let private = if pem.contains("-----BEGIN RSA PRIVATE KEY-----") {
            RsaPrivateKey::from_pkcs1_pem(pem.trim()).map_err(|e| key_error(shown, e))?
        } else if pem.contains("-----BEGIN PRIVATE KEY-----") {
            RsaPrivateKey::from_pkcs8_pem(pem.trim()).map_err(|e| key_error(shown, e))?
        } else if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            return Err(key_error(
                shown,
                "the key is encrypted; dpm needs it without a passphrase",
            ));
        } else {
            return Err(key_error(
                shown,
                "not a PEM RSA private key (expected -----BEGIN RSA PRIVATE KEY----- or -----BEGIN PRIVATE KEY-----)",
            ));
        };
        if private.size() * 8 < MIN_KEY_BITS {
            return Err(key_error(
                shown,
                format!(
                    "the key has {} bits, fewer than {MIN_KEY_BITS}",
                    private.size() * 8
                ),
            ));
        }
        Self::with_key(private).map_err(|e| key_error(shown, e))
    }

    /// Generates a new [`GENERATED_KEY_BITS`]-bit key pair.
    ///
    /// Slow, and random in duration: about 0.1 s in an optimised build, about 10 s with
    /// `num-bigint-dig` unoptimised (dpm's dev profile optimises it). Run it on a blocking
    /// thread (`spawn_blocking`), never on an I/O thread, and only once per process.
    pub fn generate() -> Result<RsaKeyPair, AuthError> {
        let private = RsaPrivateKey::new(&mut rand::thread_rng(), GENERATED_KEY_BITS)
            .map_err(|e| AuthError::RsaGenerate(e.to_string()))?;
        Self::with_key(private).map_err(AuthError::RsaGenerate)
    }

    fn with_key(private: RsaPrivateKey) -> Result<RsaKeyPair, String> {
        let public_pem = private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| e.to_string())?;
        Ok(RsaKeyPair {
            private,
            public_pem,
        })
    }

    /// The public key as the server sends it when a client asks (`0x02`): SPKI PEM,
    /// `-----BEGIN PUBLIC KEY-----` … `-----END PUBLIC KEY-----\n`, the form MySQL's
    /// `public_key.pem` has and its clients read (`PEM_read_bio_RSA_PUBKEY`).
    pub fn public_key_pem(&self) -> &str {
        &self.public_pem
    }

    /// The length of a ciphertext under this key (the key size in bytes): the client's
    /// encrypted password must be exactly this long.
    pub fn ciphertext_len(&self) -> usize {
        self.private.size()
    }

    /// Decrypts the client's RSA-encrypted password (RSA-OAEP with SHA-1), XORs it with
    /// the `nonce` the client was sent (its first 20 bytes, repeated) and returns the
    /// password: the bytes before the first NUL.
    ///
    /// Fails with [`AuthError::RsaDecrypt`] (no detail) if the ciphertext is not
    /// [`Self::ciphertext_len`] bytes or does not decrypt; with [`AuthError::EmptyNonce`]
    /// for an empty nonce.
    pub fn decrypt_password(&self, ciphertext: &[u8], nonce: &[u8]) -> Result<Vec<u8>, AuthError> {
        if nonce.is_empty() {
            return Err(AuthError::EmptyNonce);
        }
        if ciphertext.len() != self.ciphertext_len() {
            return Err(AuthError::RsaDecrypt);
        }
        let mut plain = self
            .private
            .decrypt_blinded(&mut rand::thread_rng(), Oaep::new::<Sha1>(), ciphertext)
            .map_err(|_| AuthError::RsaDecrypt)?;
        xor_with_nonce(&mut plain, nonce)?;
        if let Some(end) = plain.iter().position(|&b| b == 0) {
            plain.truncate(end);
        }
        Ok(plain)
    }
}

/// Client side: encrypts `password` for a server whose public key is `public_pem` (SPKI
/// `-----BEGIN PUBLIC KEY-----`, as MySQL sends it, or PKCS#1 `-----BEGIN RSA PUBLIC
/// KEY-----`) and which sent `nonce`: `(password ‖ NUL) XOR nonce[..20]` repeated,
/// RSA-OAEP with SHA-1.
///
/// Fails if the PEM is not an RSA public key, the nonce is empty, or the password does
/// not fit the key (at most 213 bytes for 2048 bits).
pub fn encrypt_password(
    public_pem: &str,
    password: &[u8],
    nonce: &[u8],
) -> Result<Vec<u8>, AuthError> {
    let pem = public_pem.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    let public = if pem.contains("-----BEGIN RSA PUBLIC KEY-----") {
        RsaPublicKey::from_pkcs1_pem(pem).map_err(|e| AuthError::RsaPublicKey(e.to_string()))?
    } else {
        RsaPublicKey::from_public_key_pem(pem)
            .map_err(|e| AuthError::RsaPublicKey(e.to_string()))?
    };
    let mut message = Vec::with_capacity(password.len() + 1);
    message.extend_from_slice(password);
    message.push(0);
    xor_with_nonce(&mut message, nonce)?;
    public
        .encrypt(&mut rand::thread_rng(), Oaep::new::<Sha1>(), &message)
        .map_err(|e| match e {
            rsa::Error::MessageTooLong => {
                AuthError::RsaEncrypt("the password is too long for the key".to_string())
            }
            other => AuthError::RsaEncrypt(other.to_string()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    // A throwaway 2048-bit test key made with `openssl genpkey` for these tests only (and
    // its PKCS#1 and public forms made with `openssl rsa` / `openssl pkey`).
    const PKCS8: &str = include_str!("../testdata/rsa_test_key_pkcs8.pem");
    const PKCS1: &str = include_str!("../testdata/rsa_test_key_pkcs1.pem");
    const PUBLIC: &str = include_str!("../testdata/rsa_test_key_public.pem");
    const PUBLIC_PKCS1: &str = include_str!("../testdata/rsa_test_key_public_pkcs1.pem");
    /// `openssl pkeyutl -encrypt -pubin -inkey rsa_test_key_public.pem -pkeyopt
    /// rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha1 -pkeyopt rsa_mgf1_md:sha1` of
    /// `"secret\0" XOR "ABCDEFGHIJ0123456789"`, hex.
    const OPENSSL_CIPHERTEXT: &str = include_str!("../testdata/secret_oaep_sha1.hex");
    /// What PyMySQL 2.2.8 (RSA-OAEP through the `cryptography` package) sent a
    /// `caching_sha2_password` server holding this key that asked for full
    /// authentication: it requested the public key (`0x02`), then sent this ciphertext of
    /// password "secret" for the auth switch nonce `ABCDEFGHIJ0123456789`. Captured with a
    /// one-off fake server; hex.
    const PYMYSQL_CIPHERTEXT: &str = include_str!("../testdata/pymysql_secret_oaep_sha1.hex");
    const NONCE: &[u8; 20] = b"ABCDEFGHIJ0123456789";

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.trim().len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn loads_pkcs1_and_pkcs8_with_the_same_public_key() {
        let a = RsaKeyPair::from_pem(PKCS8).unwrap();
        let b = RsaKeyPair::from_pem(PKCS1).unwrap();
        assert_eq!(a.public_key_pem(), b.public_key_pem());
        // The PEM is OpenSSL's SPKI form, byte for byte.
        assert_eq!(a.public_key_pem(), PUBLIC);
        assert!(a
            .public_key_pem()
            .starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert!(a.public_key_pem().ends_with("-----END PUBLIC KEY-----\n"));
        assert_eq!(a.ciphertext_len(), 256);
    }

    #[test]
    fn loads_from_a_file_and_reports_missing_ones() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/rsa_test_key_pkcs1.pem");
        assert!(RsaKeyPair::from_pem_file(&path).is_ok());
        let missing = Path::new("/nonexistent/dpm-key.pem");
        let err = RsaKeyPair::from_pem_file(missing).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot load the RSA private key /nonexistent/dpm-key.pem: "),
            "{err}"
        );
    }

    #[test]
    fn refuses_what_is_not_a_private_key() {
        for pem in [
            "",
            "hello",
            PUBLIC,
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
            "-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----\n",
            &PKCS1.replace("MII", "MIJ"),
        ] {
            let err = RsaKeyPair::from_pem(pem).unwrap_err();
            assert!(matches!(err, AuthError::RsaKey { .. }), "{err}");
            assert!(!err.to_string().contains('\n'), "{err}");
        }
    }

    #[test]
    fn decrypts_what_openssl_encrypted() {
        let key = RsaKeyPair::from_pem(PKCS8).unwrap();
        let ct = unhex(OPENSSL_CIPHERTEXT);
        assert_eq!(key.decrypt_password(&ct, NONCE).unwrap(), b"secret");
        // With the handshake's trailing NUL on the nonce.
        assert_eq!(
            key.decrypt_password(&ct, b"ABCDEFGHIJ0123456789\0")
                .unwrap(),
            b"secret"
        );
        // Wrong nonce: other bytes (no NUL where the password ended).
        assert_ne!(
            key.decrypt_password(&ct, b"XBCDEFGHIJ0123456789").unwrap(),
            b"secret"
        );
    }

    #[test]
    fn decrypts_what_pymysql_sent() {
        let key = RsaKeyPair::from_pem(PKCS1).unwrap();
        let ct = unhex(PYMYSQL_CIPHERTEXT);
        assert_eq!(ct.len(), key.ciphertext_len());
        assert_eq!(key.decrypt_password(&ct, NONCE).unwrap(), b"secret");
    }

    #[test]
    fn round_trip_and_failures() {
        let key = RsaKeyPair::from_pem(PKCS1).unwrap();
        let ct = encrypt_password(key.public_key_pem(), b"p\xc3\xa4ss word", NONCE).unwrap();
        assert_eq!(ct.len(), 256);
        assert_eq!(
            key.decrypt_password(&ct, NONCE).unwrap(),
            b"p\xc3\xa4ss word"
        );
        // OAEP is randomised.
        assert_ne!(
            encrypt_password(key.public_key_pem(), b"p\xc3\xa4ss word", NONCE).unwrap(),
            ct
        );
        // Empty password: just the NUL.
        let ct0 = encrypt_password(PUBLIC, b"", NONCE).unwrap();
        assert_eq!(key.decrypt_password(&ct0, NONCE).unwrap(), b"");
        // Tampered, truncated, too long, empty.
        let mut tampered = ct.clone();
        tampered[100] ^= 1;
        assert_eq!(
            key.decrypt_password(&tampered, NONCE),
            Err(AuthError::RsaDecrypt)
        );
        assert_eq!(
            key.decrypt_password(&ct[..255], NONCE),
            Err(AuthError::RsaDecrypt)
        );
        assert_eq!(
            key.decrypt_password(&[ct.clone(), vec![0]].concat(), NONCE),
            Err(AuthError::RsaDecrypt)
        );
        assert_eq!(key.decrypt_password(&[], NONCE), Err(AuthError::RsaDecrypt));
        assert_eq!(key.decrypt_password(&ct, b""), Err(AuthError::EmptyNonce));
        // Another key cannot decrypt it.
        let other = RsaKeyPair::generate().unwrap();
        assert_eq!(
            other.decrypt_password(&ct, NONCE),
            Err(AuthError::RsaDecrypt)
        );
    }

    #[test]
    fn encrypt_failures() {
        assert!(matches!(
            encrypt_password(
                "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
                b"pw",
                NONCE
            ),
            Err(AuthError::RsaPublicKey(_))
        ));
        assert!(matches!(
            encrypt_password("", b"pw", NONCE),
            Err(AuthError::RsaPublicKey(_))
        ));
        assert!(matches!(
            encrypt_password(PKCS8, b"pw", NONCE),
            Err(AuthError::RsaPublicKey(_))
        ));
        assert_eq!(
            encrypt_password(PUBLIC, b"pw", b""),
            Err(AuthError::EmptyNonce)
        );
        // 2048 bits with OAEP-SHA1: 214 bytes of message, so 213 of password.
        assert!(encrypt_password(PUBLIC, &[b'x'; 213], NONCE).is_ok());
        assert_eq!(
            encrypt_password(PUBLIC, &[b'x'; 214], NONCE),
            Err(AuthError::RsaEncrypt(
                "the password is too long for the key".to_string()
            ))
        );
        // The PEM as a server sends it may carry a trailing NUL; PKCS#1 public keys work too.
        assert!(encrypt_password(&format!("{PUBLIC}\0"), b"pw", NONCE).is_ok());
        let key = RsaKeyPair::from_pem(PKCS8).unwrap();
        let ct = encrypt_password(PUBLIC_PKCS1, b"pw", NONCE).unwrap();
        assert_eq!(key.decrypt_password(&ct, NONCE).unwrap(), b"pw");
    }

    #[test]
    fn generated_keys_work_and_debug_hides_them() {
        let key = RsaKeyPair::generate().unwrap();
        assert_eq!(key.ciphertext_len(), GENERATED_KEY_BITS / 8);
        let ct = encrypt_password(key.public_key_pem(), b"secret", NONCE).unwrap();
        assert_eq!(key.decrypt_password(&ct, NONCE).unwrap(), b"secret");
        assert_eq!(
            format!("{key:?}"),
            "RsaKeyPair(2048 bits, private key <hidden>)"
        );
    }
}
