//! The SHA-256 variant of Ulrich Drepper's "Unix crypt using SHA-256 and SHA-512"
//! (`$5$`), the multi-round digest inside MySQL's `caching_sha2_password`
//! `authentication_string`.
//!
//! Only the algorithm is here: [`digest`] takes the salt bytes and round count as given
//! (MySQL uses 20-byte salts where the spec truncates to 16, and takes the rounds from the
//! `$A$005$` header), and returns the 43-character text the spec writes after the salt.
//! The cost grows with `rounds` and with the square of the password length (step 13 hashes
//! the password once per byte of it), so callers bound the password length.

use sha2::{Digest, Sha256};

/// Length of the encoded digest text.
pub const DIGEST_TEXT_LEN: usize = 43;

/// The crypt alphabet ("./0-9A-Za-z"), 6 bits a character, least significant first.
const ALPHABET: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Whether `c` is a character of the crypt alphabet.
pub fn is_crypt_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'.' || c == b'/'
}

/// `bytes` repeated (and cut) to `len` bytes: the spec's P and S sequences.
fn cycle(bytes: &[u8; 32], len: usize) -> Vec<u8> {
    bytes.iter().copied().cycle().take(len).collect()
}

/// The sha256crypt digest of `password` with `salt` (used whole) and `rounds` rounds
/// (used as given), encoded as the spec's 43 characters.
pub fn digest(password: &[u8], salt: &[u8], rounds: u32) -> [u8; DIGEST_TEXT_LEN] {
    // Steps 4-8: digest B = H(password ‖ salt ‖ password).
    let b: [u8; 32] = Sha256::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize()
        .into();

    // Steps 1-3, 9-12: digest A.
    let mut a = Sha256::new();
    a.update(password);
    a.update(salt);
    let mut left = password.len();
    while left > 32 {
        a.update(b);
        left -= 32;
    }
    a.update(&b[..left]);
    let mut bits = password.len();
    while bits > 0 {
        if bits & 1 != 0 {
            a.update(b);
        } else {
            a.update(password);
        }
        bits >>= 1;
    }
    let a: [u8; 32] = a.finalize().into();

    // Steps 13-16: P from DP = H(password repeated once per byte of it).
    let mut dp = Sha256::new();
    for _ in 0..password.len() {
        dp.update(password);
    }
    let p = cycle(&dp.finalize().into(), password.len());

    // Steps 17-20: S from DS = H(salt repeated 16 + A[0] times).
    let mut ds = Sha256::new();
    for _ in 0..16 + usize::from(a[0]) {
        ds.update(salt);
    }
    let s = cycle(&ds.finalize().into(), salt.len());

    // Step 21: the rounds.
    let mut c = a;
    for round in 0..rounds {
        let mut h = Sha256::new();
        if round & 1 != 0 {
            h.update(&p);
        } else {
            h.update(c);
        }
        if round % 3 != 0 {
            h.update(&s);
        }
        if round % 7 != 0 {
            h.update(&p);
        }
        if round & 1 != 0 {
            h.update(c);
        } else {
            h.update(&p);
        }
        c = h.finalize().into();
    }
    encode(&c)
}

/// Step 22: the spec's byte order and base-64 encoding of the final SHA-256 digest.
fn encode(d: &[u8; 32]) -> [u8; DIGEST_TEXT_LEN] {
    const GROUPS: [(usize, usize, usize); 10] = [
        (0, 10, 20),
        (21, 1, 11),
        (12, 22, 2),
        (3, 13, 23),
        (24, 4, 14),
        (15, 25, 5),
        (6, 16, 26),
        (27, 7, 17),
        (18, 28, 8),
        (9, 19, 29),
    ];
    let mut out = [0u8; DIGEST_TEXT_LEN];
    let mut at = 0;
    let mut put = |w: u32, n: usize| {
        let mut w = w;
        for _ in 0..n {
            out[at] = ALPHABET[(w & 0x3f) as usize];
            w >>= 6;
            at += 1;
        }
    };
    for (b2, b1, b0) in GROUPS {
        put(
            u32::from(d[b2]) << 16 | u32::from(d[b1]) << 8 | u32::from(d[b0]),
            4,
        );
    }
    put(u32::from(d[31]) << 8 | u32::from(d[30]), 3);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec's `$5$` string: `$5$[rounds=N$]salt$digest`, with the spec's salt cut at 16
    /// bytes and rounds clamped to 1000..=999999999 (default 5000, "rounds=" printed only
    /// when given).
    fn crypt_spec(password: &str, setting: &str) -> String {
        let rest = setting.strip_prefix("$5$").unwrap();
        let (rounds, salt) = match rest.strip_prefix("rounds=") {
            Some(r) => {
                let (n, salt) = r.split_once('$').unwrap();
                (
                    Some(n.parse::<u32>().unwrap().clamp(1000, 999_999_999)),
                    salt,
                )
            }
            None => (None, rest),
        };
        let salt = &salt.as_bytes()[..salt.len().min(16)];
        let text = digest(password.as_bytes(), salt, rounds.unwrap_or(5000));
        let prefix = rounds.map_or(String::new(), |n| format!("rounds={n}$"));
        format!(
            "$5${prefix}{}${}",
            std::str::from_utf8(salt).unwrap(),
            std::str::from_utf8(&text).unwrap()
        )
    }

    /// The SHA-256 test vectors of the spec ("Unix crypt using SHA-256 and SHA-512"),
    /// each also checked against glibc's crypt(3) on this machine (Python's `crypt`).
    #[test]
    fn spec_vectors() {
        for (password, setting, expected) in [
            (
                "Hello world!",
                "$5$saltstring",
                "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5",
            ),
            (
                "Hello world!",
                "$5$rounds=10000$saltstringsaltstring",
                "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA",
            ),
            (
                "This is just a test",
                "$5$rounds=5000$toolongsaltstring",
                "$5$rounds=5000$toolongsaltstrin$Un/5jzAHMgOGZ5.mWJpuVolil07guHPvOW8mGRcvxa5",
            ),
            (
                "a very much longer text to encrypt.  This one even stretches over morethan one line.",
                "$5$rounds=1400$anotherlongsaltstring",
                "$5$rounds=1400$anotherlongsalts$Rx.j8H.h8HjEDGomFU8bDkXm3XIUnzyxf12oP84Bnq1",
            ),
            (
                "the minimum number is still observed",
                "$5$rounds=10$roundstoolow",
                "$5$rounds=1000$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC",
            ),
        ] {
            assert_eq!(crypt_spec(password, setting), expected, "{password:?}");
        }
    }

    /// The spec's vectors with many rounds (about a second in a test build, where `sha2` is
    /// optimised: see the workspace's `profile.dev.package`).
    #[test]
    fn spec_vectors_many_rounds() {
        assert_eq!(
            crypt_spec(
                "we have a short salt string but not a short password",
                "$5$rounds=77777$short"
            ),
            "$5$rounds=77777$short$JiO1O3ZpDAxGJeaDIuqCoEFysAe1mZNJRs3pw0KQRd/"
        );
        assert_eq!(
            crypt_spec("a short string", "$5$rounds=123456$asaltof16chars.."),
            "$5$rounds=123456$asaltof16chars..$gP3VQ/6X7UUEW3HkBn2w1/Ptq2jxPyzV/cZKmF/wJvD"
        );
    }

    #[test]
    fn edge_lengths_do_not_panic() {
        // Passwords of 0, 31, 32, 33 and 64 bytes cross the block boundaries of steps 10
        // and 16; an empty salt is allowed by the algorithm.
        for len in [0usize, 1, 31, 32, 33, 64, 65] {
            let pw = vec![b'x'; len];
            let text = digest(&pw, b"", 1000);
            assert!(text.iter().all(|&c| is_crypt_char(c)));
            assert_ne!(digest(&pw, b"salt", 1000), text);
        }
    }
}
