//! `caching_sha2_password` (MySQL 8's default plugin): the client's scramble, the server's
//! fast path against a cached `SHA256(SHA256(password))`, and the stored hash (MySQL's
//! `$A$005$` `authentication_string`) that the full path checks a cleartext password
//! against. The RSA half of the full path over a plain connection is in
//! [`RsaKeyPair`] and [`encrypt_password`] (re-exported from `rsa_key`).
//!
//! ```text
//! token   = SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) ‖ nonce[..20])     (client → server)
//! digest2 = SHA256(SHA256(pw))                                         (the fast-auth cache entry)
//! fast:     SHA256(token XOR SHA256(digest2 ‖ nonce[..20])) == digest2
//! stored  = "$A$" ‖ rounds/1000 as 3 hex digits ‖ "$" ‖ salt(20) ‖ sha256crypt(pw, salt, rounds)(43)
//! ```
//! The exchange: the server sends a 20-byte nonce; the client answers with the token
//! (empty for an empty password). With a cached `digest2` that [`fast_verify`]s, the
//! server sends `0x01 0x03` (fast auth success) and OK. Otherwise `0x01 0x04` (perform
//! full authentication): over TLS the client sends its password NUL-terminated
//! ([`cleartext_password`]); over a plain connection it sends `0x02` to ask for the
//! server's public key ([`RsaKeyPair::public_key_pem`]) and then the password
//! RSA-encrypted ([`RsaKeyPair::decrypt_password`]). The server checks the password with
//! [`CachingSha2Hash::verify_password`] and, on success, caches
//! [`digest2_from_password`].

use rand::Rng;
use sha2::{Digest, Sha256};

use crate::sha256_crypt::{self, is_crypt_char, DIGEST_TEXT_LEN};
use crate::{ct_eq, AuthError};

pub use crate::rsa_key::{encrypt_password, RsaKeyPair};

/// Length of the client's token (a SHA-256 digest).
pub const TOKEN_LEN: usize = 32;
/// Length of the nonce the server sends; longer nonces are cut to it.
pub const NONCE_LEN: usize = 20;
/// Length of the salt in the stored hash.
pub const SALT_LEN: usize = 20;
/// The longest password MySQL hashes or checks (`MAX_PLAINTEXT_LENGTH`); longer ones are
/// refused (sha256crypt's cost grows with the square of the password length).
pub const MAX_PASSWORD_LEN: usize = 256;
/// The round count MySQL uses (`caching_sha2_password_digest_rounds` default), written
/// `005` in the stored hash.
pub const DEFAULT_ROUNDS: u32 = 5000;
/// Rounds are stored in thousands, as three hex digits: at most `0xFFF` thousand.
pub const MAX_ROUNDS: u32 = 0xFFF * ROUNDS_UNIT;
const ROUNDS_UNIT: u32 = 1000;

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn nonce20(nonce: &[u8]) -> &[u8] {
    &nonce[..nonce.len().min(NONCE_LEN)]
}

fn xor32(a: &[u8; 32], b: &[u8]) -> [u8; 32] {
    let mut out = *a;
    for (o, x) in out.iter_mut().zip(b) {
        *o ^= x;
    }
    out
}

/// Client side: the 32-byte scramble
/// `SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) ‖ nonce[..20])`.
///
/// A client with an empty password sends an empty token instead; see [`token`].
pub fn scramble(password: &[u8], nonce: &[u8]) -> [u8; TOKEN_LEN] {
    let stage1 = sha256(&[password]);
    let digest2 = sha256(&[&stage1]);
    xor32(&stage1, &sha256(&[&digest2, nonce20(nonce)]))
}

/// Client side: the auth response for `password`: empty for an empty password, else the
/// 32-byte [`scramble`].
pub fn token(password: &[u8], nonce: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        Vec::new()
    } else {
        scramble(password, nonce).to_vec()
    }
}

/// `SHA256(SHA256(password))`: what the server's fast-auth cache keeps for an account
/// after a successful full authentication.
pub fn digest2_from_password(password: &[u8]) -> [u8; 32] {
    sha256(&[&sha256(&[password])])
}

/// Server fast path: whether the client's `token` proves the password whose cached
/// `SHA256(SHA256(password))` is `digest2`, for the `nonce` the client was sent (its first
/// 20 bytes). A token that is not 32 bytes (for example the empty token of an empty
/// password) never verifies; the server then asks for full authentication.
pub fn fast_verify(digest2: &[u8; 32], nonce: &[u8], token: &[u8]) -> bool {
    if token.len() != TOKEN_LEN {
        return false;
    }
    let stage1 = xor32(&sha256(&[digest2, nonce20(nonce)]), token);
    ct_eq(&sha256(&[&stage1]), digest2)
}

/// Server full path over TLS: the password in the client's cleartext answer (sent
/// NUL-terminated; one trailing NUL is removed).
pub fn cleartext_password(data: &[u8]) -> &[u8] {
    data.strip_suffix(&[0]).unwrap_or(data)
}

/// A parsed `caching_sha2_password` stored hash: MySQL's `authentication_string`
/// `$A$RRR$` + 20-byte salt + 43-character sha256crypt digest, where `RRR` is the round
/// count in thousands as three hex digits (`005` = 5000 rounds).
///
/// `Debug` does not show the salt or digest.
#[derive(Clone, PartialEq, Eq)]
pub struct CachingSha2Hash {
    rounds: u32,
    salt: [u8; SALT_LEN],
    digest: [u8; DIGEST_TEXT_LEN],
}

impl std::fmt::Debug for CachingSha2Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CachingSha2Hash(<hidden>)")
    }
}

fn bad(reason: &'static str) -> AuthError {
    AuthError::BadCachingSha2Hash(reason)
}

/// MySQL's salts are 20 bytes of 1..=127 other than `$` (`generate_user_salt`); its
/// sha256crypt stops the salt at a `$` or NUL, so such bytes cannot be matched.
fn check_salt(salt: &[u8]) -> Result<[u8; SALT_LEN], AuthError> {
    let salt: [u8; SALT_LEN] = salt
        .try_into()
        .map_err(|_| bad("the salt must be 20 characters"))?;
    if salt.iter().any(|&c| c == 0 || c == b'$' || c > 0x7f) {
        return Err(bad(
            "the salt must not contain '$', NUL or non-ASCII characters",
        ));
    }
    Ok(salt)
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Characters of the salts this crate makes: printable ASCII without blank, `$` (the
/// separator), quotes and backslash, so the hash text can be pasted into a Lua or SQL
/// string as it is. 90 characters, so 20 of them are about 130 random bits.
const SALT_ALPHABET: &[u8] =
    b"!#%&()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`abcdefghijklmnopqrstuvwxyz{|}~";

impl CachingSha2Hash {
    /// Parses MySQL's `authentication_string` for `caching_sha2_password`, as
    /// `SELECT authentication_string FROM mysql.user` prints it, or in the `0x…` hex form
    /// `SHOW CREATE USER` uses when the salt has unprintable characters (MySQL's salts may
    /// contain any ASCII character but `$` and NUL).
    ///
    /// The round count is read from the header (`005` = 5000; any of `001`…`FFF`).
    pub fn parse(text: &str) -> Result<CachingSha2Hash, AuthError> {
        match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            Some(hex) => Self::parse_bytes(&decode_hex(hex)?),
            None => Self::parse_bytes(text.as_bytes()),
        }
    }

    fn parse_bytes(s: &[u8]) -> Result<CachingSha2Hash, AuthError> {
        let Some(rest) = s.strip_prefix(b"$A$") else {
            return Err(if s.starts_with(b"$") {
                bad("only the '$A$' form (SHA-256) is supported")
            } else {
                bad("it must start with '$A$'")
            });
        };
        let rounds = match rest {
            [a, b, c, b'$', ..] => [a, b, c]
                .iter()
                .try_fold(0u32, |acc, &&d| Some(acc * 16 + u32::from(hex_value(d)?))),
            _ => None,
        }
        .ok_or(bad(
            "the round count after '$A$' must be 3 hex digits and '$'",
        ))?;
        if rounds == 0 {
            return Err(bad("the round count must not be 000"));
        }
        let rest = &rest[4..];
        if rest.len() != SALT_LEN + DIGEST_TEXT_LEN {
            return Err(bad("the salt and digest must be 63 characters together"));
        }
        let salt = check_salt(&rest[..SALT_LEN])?;
        let digest: [u8; DIGEST_TEXT_LEN] = rest[SALT_LEN..]
            .try_into()
            .map_err(|_| bad("the digest must be 43 characters"))?;
        if !digest.iter().all(|&c| is_crypt_char(c)) {
            return Err(bad("the digest must be 43 characters of ./0-9A-Za-z"));
        }
        Ok(CachingSha2Hash {
            rounds: rounds * ROUNDS_UNIT,
            salt,
            digest,
        })
    }

    /// The stored hash of `password` with a fresh random salt and MySQL's default 5000
    /// rounds. The salt is 20 printable ASCII characters (no blank, `$`, quote or
    /// backslash), which MySQL accepts as it is.
    ///
    /// Fails for a password longer than [`MAX_PASSWORD_LEN`] bytes (MySQL refuses those).
    pub fn generate(password: &[u8]) -> Result<CachingSha2Hash, AuthError> {
        let mut rng = rand::thread_rng();
        let mut salt = [0u8; SALT_LEN];
        for c in &mut salt {
            *c = SALT_ALPHABET[rng.gen_range(0..SALT_ALPHABET.len())];
        }
        Self::new(password, &salt, DEFAULT_ROUNDS)
    }

    /// The stored hash of `password` with the given `salt` (20 ASCII bytes other than `$`
    /// and NUL) and `rounds` (a multiple of 1000, from 1000 to [`MAX_ROUNDS`]).
    pub fn new(password: &[u8], salt: &[u8], rounds: u32) -> Result<CachingSha2Hash, AuthError> {
        if password.len() > MAX_PASSWORD_LEN {
            return Err(AuthError::PasswordTooLong(MAX_PASSWORD_LEN));
        }
        let salt = check_salt(salt)?;
        if rounds == 0 || rounds > MAX_ROUNDS || !rounds.is_multiple_of(ROUNDS_UNIT) {
            return Err(bad(
                "the round count must be a multiple of 1000 from 1000 to 4095000",
            ));
        }
        Ok(CachingSha2Hash {
            rounds,
            salt,
            digest: sha256_crypt::digest(password, &salt, rounds),
        })
    }

    /// Full authentication: whether `password` (the cleartext the client sent over TLS or
    /// RSA-encrypted) is the one this hash was made from. False for a password longer than
    /// [`MAX_PASSWORD_LEN`] bytes, as in MySQL.
    ///
    /// This runs [`Self::rounds`] SHA-256 rounds (0.7 ms for 5000 in an optimised build,
    /// 40 ms with `sha2` unoptimised): call it off the I/O thread where that matters.
    pub fn verify_password(&self, password: &[u8]) -> bool {
        if password.len() > MAX_PASSWORD_LEN {
            return false;
        }
        ct_eq(
            &sha256_crypt::digest(password, &self.salt, self.rounds),
            &self.digest,
        )
    }

    /// The number of sha256crypt rounds (5000 for `$A$005$`).
    pub fn rounds(&self) -> u32 {
        self.rounds
    }

    /// The hash as MySQL stores it (`$A$005$…`, 70 characters). The salts this crate makes
    /// are printable; a parsed MySQL salt may hold control characters, kept as they are.
    pub fn to_text(&self) -> String {
        let mut s = format!("$A${:03X}$", self.rounds / ROUNDS_UNIT);
        // Salt (ASCII, checked) and digest (crypt alphabet) are ASCII.
        s.extend(self.salt.iter().chain(&self.digest).map(|&c| char::from(c)));
        s
    }
}

fn decode_hex(hex: &str) -> Result<Vec<u8>, AuthError> {
    let hex = hex.as_bytes();
    if !hex.len().is_multiple_of(2) {
        return Err(bad("the 0x form must have an even number of hex digits"));
    }
    hex.chunks_exact(2)
        .map(|pair| Some((hex_value(pair[0])? << 4) | hex_value(pair[1])?))
        .collect::<Option<Vec<u8>>>()
        .ok_or(bad("the 0x form must contain only hex digits"))
}

/// The stored hash text for `password` with a random salt: [`CachingSha2Hash::generate`]
/// as MySQL's `authentication_string`.
pub fn hash_text(password: &[u8]) -> Result<String, AuthError> {
    Ok(CachingSha2Hash::generate(password)?.to_text())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// MySQL's own unit test (unittest/gunit/sha2_password-t.cc, GenerateScramble): source
    /// "Ab12#$Cd56&*", rnd "eF!@34gH%^78".
    #[test]
    fn scramble_matches_mysql_unit_test() {
        let expected: [u8; 32] = [
            0x6a, 0x45, 0x37, 0x96, 0x6b, 0x29, 0x63, 0x59, 0x24, 0x8d, 0x64, 0x86, 0x0a, 0xd6,
            0xcc, 0x2a, 0x06, 0x47, 0x8c, 0x26, 0xea, 0xaa, 0x3b, 0x02, 0x69, 0x4c, 0x85, 0x02,
            0xf5, 0x5b, 0xc8, 0xdc,
        ];
        assert_eq!(scramble(b"Ab12#$Cd56&*", b"eF!@34gH%^78"), expected);
        let digest2 = digest2_from_password(b"Ab12#$Cd56&*");
        assert!(fast_verify(&digest2, b"eF!@34gH%^78", &expected));
    }

    /// The token two real clients sent a fake server for password "secret" and the auth
    /// switch nonce `ABCDEFGHIJ0123456789`: the `mariadb` 10.11 command-line client
    /// (libmariadb's caching_sha2_password plugin) and PyMySQL 2.2.8 sent the same bytes.
    #[test]
    fn scramble_matches_real_clients() {
        let nonce = b"ABCDEFGHIJ0123456789";
        let expected: [u8; 32] = [
            0x8b, 0x08, 0xfa, 0x01, 0xa4, 0x00, 0x97, 0x17, 0x7e, 0x50, 0xba, 0xe8, 0x71, 0xdb,
            0xc1, 0xc4, 0x9a, 0x94, 0xe7, 0xa1, 0x58, 0x09, 0xc2, 0x76, 0x7d, 0x6c, 0x66, 0xb9,
            0x0f, 0x7a, 0x62, 0xda,
        ];
        assert_eq!(scramble(b"secret", nonce), expected);
        // The auth switch data as sent, with its trailing NUL, gives the same token.
        assert_eq!(scramble(b"secret", b"ABCDEFGHIJ0123456789\0"), expected);
        assert!(fast_verify(
            &digest2_from_password(b"secret"),
            nonce,
            &expected
        ));
    }

    /// MySQL's unit test Caching_sha2_password_generate_fast_digest: the cache entry for
    /// "HahaH0hO1234#$@#%".
    #[test]
    fn digest2_matches_mysql_unit_test() {
        let expected: [u8; 32] = [
            0x00, 0x3c, 0x20, 0x68, 0xb3, 0x6b, 0xc9, 0xb7, 0x18, 0x75, 0xb3, 0x38, 0x7d, 0x2f,
            0x86, 0xf9, 0xe3, 0x3a, 0xb3, 0x83, 0x11, 0x6b, 0xd9, 0x57, 0xf1, 0x73, 0x46, 0x9b,
            0x1f, 0x38, 0xf2, 0xdf,
        ];
        assert_eq!(digest2_from_password(b"HahaH0hO1234#$@#%"), expected);
    }

    #[test]
    fn fast_verify_failures() {
        let nonce = *b"abcdefghij0123456789";
        let digest2 = digest2_from_password(b"secret");
        let t = token(b"secret", &nonce);
        assert!(fast_verify(&digest2, &nonce, &t));
        // Longer nonce (trailing NUL of the handshake data) is cut to 20 bytes.
        assert!(fast_verify(&digest2, b"abcdefghij0123456789\0", &t));
        assert!(!fast_verify(&digest2, &nonce, &token(b"Secret", &nonce)));
        assert!(!fast_verify(&digest2, b"abcdefghij012345678X", &t));
        let mut tampered = t.clone();
        tampered[0] ^= 1;
        assert!(!fast_verify(&digest2, &nonce, &tampered));
        assert!(!fast_verify(&digest2, &nonce, &t[..31]));
        assert!(!fast_verify(
            &digest2,
            &nonce,
            &[t.clone(), vec![0]].concat()
        ));
        assert!(!fast_verify(&digest2, &nonce, &[]));
        assert!(!fast_verify(&digest2, &[], &t));
        assert!(token(b"", &nonce).is_empty());
    }

    #[test]
    fn cleartext_strips_one_nul() {
        assert_eq!(cleartext_password(b"secret\0"), b"secret");
        assert_eq!(cleartext_password(b"secret"), b"secret");
        assert_eq!(cleartext_password(b"\0"), b"");
        assert_eq!(cleartext_password(b""), b"");
        assert_eq!(cleartext_password(b"a\0\0"), b"a\0");
    }

    /// Full-auth vectors from MySQL's unit test
    /// (Caching_sha2_password_authenticate_fast_authenticate): password, salt and the
    /// 43-character digest MySQL stores, for 5000 rounds. Two of the salts contain a tab,
    /// as MySQL's generated salts may.
    const MYSQL_VECTORS: [(&str, &str, &str); 3] = [
        (
            "HahaH0hO1234#$@#%",
            "AbCd!@#\tEfgH%^&*01@#",
            "dNFegEa4OGDrnEu7M4T.nkmm794xI/QoCR3Z.xpLOW6",
        ),
        (
            ";bCdEF34^i9&*\":({\\56\"",
            "CVlq))+AC>Q)#4!@# x!",
            "SPMN/L8.noKqe8IXVZ2DpCE6w29b106vCQecap9JKpA",
        ),
        (
            " CQ#$ML CF%IF$#(<#R ()<_q@#(rq",
            "X#y)+q x2cx3,qr2##3\t",
            "rP8Jn8Mtp6XCMx1QjSDA8NSalfVMSBNMIr2yqcEi6Q8",
        ),
    ];

    #[test]
    fn stored_hash_matches_mysql_unit_test() {
        for (password, salt, digest) in MYSQL_VECTORS {
            let text = format!("$A$005${salt}{digest}");
            let hash = CachingSha2Hash::parse(&text).unwrap();
            assert_eq!(hash.rounds(), 5000);
            assert!(hash.verify_password(password.as_bytes()), "{password}");
            assert!(!hash.verify_password(b"HahaH0hO1234#$@#"));
            assert_eq!(hash.to_text(), text);
            let made = CachingSha2Hash::new(password.as_bytes(), salt.as_bytes(), 5000).unwrap();
            assert_eq!(made, hash);
            // The hex form of SHOW CREATE USER.
            let hex: String = text.bytes().map(|b| format!("{b:02X}")).collect();
            assert_eq!(CachingSha2Hash::parse(&format!("0x{hex}")).unwrap(), hash);
            assert_eq!(
                CachingSha2Hash::parse(&format!("0x{}", hex.to_lowercase())).unwrap(),
                hash
            );
        }
    }

    #[test]
    fn generate_round_trips() {
        let hash = CachingSha2Hash::generate(b"secret").unwrap();
        let text = hash.to_text();
        assert!(text.starts_with("$A$005$"), "{text}");
        assert_eq!(text.len(), 70);
        assert!(text[7..27].bytes().all(|c| SALT_ALPHABET.contains(&c)));
        let parsed = CachingSha2Hash::parse(&text).unwrap();
        assert_eq!(parsed, hash);
        assert!(parsed.verify_password(b"secret"));
        assert!(!parsed.verify_password(b"secreT"));
        assert!(!parsed.verify_password(b""));
        // Fresh salt each time.
        assert_ne!(CachingSha2Hash::generate(b"secret").unwrap(), hash);
        assert!(hash_text(b"secret").unwrap().starts_with("$A$005$"));
    }

    #[test]
    fn rounds_other_than_5000() {
        let hash = CachingSha2Hash::new(b"pw", b"ABCDEFGHIJKLMNOPQRST", 10_000).unwrap();
        let text = hash.to_text();
        assert!(text.starts_with("$A$00A$"), "{text}");
        let parsed = CachingSha2Hash::parse(&text).unwrap();
        assert_eq!(parsed.rounds(), 10_000);
        assert!(parsed.verify_password(b"pw"));
        // Same salt, other round count: another digest.
        let other = CachingSha2Hash::new(b"pw", b"ABCDEFGHIJKLMNOPQRST", 5000).unwrap();
        assert_ne!(other.to_text()[7..], text[7..]);
        assert_eq!(
            CachingSha2Hash::parse(&text.replace("$A$00A$", "$A$00a$"))
                .unwrap()
                .rounds(),
            10_000
        );
    }

    #[test]
    fn long_passwords() {
        let max = vec![b'p'; MAX_PASSWORD_LEN];
        let hash = CachingSha2Hash::new(&max, b"ABCDEFGHIJKLMNOPQRST", 1000).unwrap();
        assert!(hash.verify_password(&max));
        let too_long = vec![b'p'; MAX_PASSWORD_LEN + 1];
        assert!(!hash.verify_password(&too_long));
        assert_eq!(
            CachingSha2Hash::generate(&too_long),
            Err(AuthError::PasswordTooLong(MAX_PASSWORD_LEN))
        );
    }

    #[test]
    fn new_refuses_bad_salt_and_rounds() {
        for (salt, rounds) in [
            (&b"ABCDEFGHIJKLMNOPQRS"[..], 5000),
            (b"ABCDEFGHIJKLMNOPQRSTU", 5000),
            (b"ABCDEFGHIJ$LMNOPQRST", 5000),
            (b"ABCDEFGHIJ\0LMNOPQRST", 5000),
            (b"ABCDEFGHIJ\xc3\xa9MNOPQRST", 5000),
            (b"ABCDEFGHIJKLMNOPQRST", 0),
            (b"ABCDEFGHIJKLMNOPQRST", 999),
            (b"ABCDEFGHIJKLMNOPQRST", 5500),
            (b"ABCDEFGHIJKLMNOPQRST", MAX_ROUNDS + 1000),
        ] {
            assert!(
                matches!(
                    CachingSha2Hash::new(b"pw", salt, rounds),
                    Err(AuthError::BadCachingSha2Hash(_))
                ),
                "{salt:?} {rounds}"
            );
        }
    }

    #[test]
    fn parse_refuses_other_shapes() {
        let good = "$A$005$ABCDEFGHIJKLMNOPQRSTabcdefgh01234567ijklmnop89012345ABCDEFGH678";
        assert!(CachingSha2Hash::parse(good).is_ok());
        let cases = [
            "",
            "$",
            "$A$",
            "A$005$ABCDEFGHIJKLMNOPQRSTabcdefgh01234567ijklmnop89012345ABCDEFGH678",
            "$B$005$ABCDEFGHIJKLMNOPQRSTabcdefgh01234567ijklmnop89012345ABCDEFGH678",
            "$5$rounds=5000$ABCDEFGHIJKLMNOPQRSTabcdefgh01234567ijklmnop89012345ABCDEFGH678",
            "$A$000$ABCDEFGHIJKLMNOPQRSTabcdefgh01234567ijklmnop89012345ABCDEFGH678",
            "$A$05$ABCDEFGHIJKLMNOPQRSTabcdefgh01234567ijklmnop89012345ABCDEFGH678",
            "$A$0005$ABCDEFGHIJKLMNOPQRSTabcdefgh01234567ijklmnop89012345ABCDEFGH678",
            "$A$00G$ABCDEFGHIJKLMNOPQRSTabcdefgh01234567ijklmnop89012345ABCDEFGH678",
            "$A$005$ABCDEFGHIJKLMNOPQRSTabcdefgh01234567ijklmnop89012345ABCDEFGH67",
            "$A$005$ABCDEFGHIJKLMNOPQRSTabcdefgh01234567ijklmnop89012345ABCDEFGH6789",
            "$A$005$ABCDEFGHIJ$LMNOPQRSTabcdefgh01234567ijklmnop89012345ABCDEFGH678",
            "$A$005$ABCDEFGHIJKLMNOPQRSTabcdefgh01234567ijklmnop89012345ABCDEFGH67!",
            "$A$005$ABCDEFGHIJKLMNOPQRéabcdefgh01234567ijklmnop89012345ABCDEFGH678",
            "0x2441",
            "0x24412430303524",
            "0x244",
            "0xZZ",
            "*14E65567ABDB5135D0CFD9A70B3032C179A49EE7",
            "ZIgUREUg5PVgQ6LskhXmO+eZLS0nC8be6HPjYWR4YJY",
        ];
        for bad in cases {
            let err = CachingSha2Hash::parse(bad).unwrap_err();
            assert!(matches!(err, AuthError::BadCachingSha2Hash(_)), "{bad:?}");
            // The message never quotes the input.
            let message = err.to_string();
            assert!(!message.contains("ABCDEFGHIJ"), "{message}");
            assert!(!message.contains('\n'), "{message}");
        }
    }

    #[test]
    fn debug_hides_the_hash() {
        let hash = CachingSha2Hash::generate(b"secret").unwrap();
        let shown = format!("{hash:?}");
        assert_eq!(shown, "CachingSha2Hash(<hidden>)");
        assert!(!shown.contains(&hash.to_text()[7..27]));
    }

    proptest! {
        #[test]
        fn scramble_fast_verifies(pw in proptest::collection::vec(any::<u8>(), 1..80),
                                  nonce in proptest::collection::vec(any::<u8>(), 20..=21)) {
            let digest2 = digest2_from_password(&pw);
            prop_assert!(fast_verify(&digest2, &nonce, &scramble(&pw, &nonce)));
        }

        #[test]
        fn parse_never_panics(s in "(\\$A\\$)?[0-9A-F$]{0,4}.{0,70}") {
            if let Ok(hash) = CachingSha2Hash::parse(&s) {
                prop_assert_eq!(CachingSha2Hash::parse(&hash.to_text()), Ok(hash));
            }
        }

        #[test]
        fn parse_hex_never_panics(s in "0[xX][0-9a-fA-F]{0,150}") {
            let _ = CachingSha2Hash::parse(&s);
        }

        #[test]
        fn fast_verify_never_panics(token in proptest::collection::vec(any::<u8>(), 0..40),
                                    nonce in proptest::collection::vec(any::<u8>(), 0..30)) {
            let _ = fast_verify(&[0; 32], &nonce, &token);
        }
    }
}
