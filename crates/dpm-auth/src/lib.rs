//! Password hashes and login-plugin exchanges for dpm, with no I/O: what dpm needs to
//! authenticate clients itself (proxy-held users, configured with hashes only) and to log
//! in to backends.
//!
//! * [`native`]: `mysql_native_password` (`*` + 40 hex), built on
//!   [`dpm_protocol::scramble`].
//! * [`caching_sha2`]: `caching_sha2_password`: the scramble, the fast path against a
//!   cached `SHA256(SHA256(password))`, MySQL's `$A$005$` stored hash for the full path,
//!   and the RSA key pair for full authentication without TLS.
//! * [`ed25519`]: MariaDB's `client_ed25519`.
//! * Here: [`Plugin`] (the three by wire name), [`StoredCredential`] (a parsed
//!   `password_hash` of any of them) and [`hash_password`] (what `dpm hash-password`
//!   prints).
//!
//! Secrets stay out of sight: no `Debug` output or error message of this crate shows a
//! password, a hash or a private key.

#![warn(missing_docs)]

pub mod caching_sha2;
pub mod ed25519;
mod error;
pub mod native;
mod rsa_key;
mod sha256_crypt;

use std::fmt;
use std::str::FromStr;

use dpm_protocol::auth::{CACHING_SHA2_PASSWORD, CLIENT_ED25519, MYSQL_NATIVE_PASSWORD};

pub use caching_sha2::{CachingSha2Hash, RsaKeyPair};
pub use error::AuthError;

/// Constant-time equality of two byte strings of the same length (false if the lengths
/// differ).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An authentication plugin dpm can verify clients with and log in to backends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Plugin {
    /// `mysql_native_password`: SHA-1 challenge/response.
    MysqlNativePassword,
    /// `caching_sha2_password`: MySQL 8's SHA-256 scheme.
    CachingSha2Password,
    /// `client_ed25519`: MariaDB's Ed25519 signatures.
    ClientEd25519,
}

impl Plugin {
    /// Every plugin, in a fixed order.
    pub const ALL: [Plugin; 3] = [
        Plugin::MysqlNativePassword,
        Plugin::CachingSha2Password,
        Plugin::ClientEd25519,
    ];

    /// The plugin's name on the wire and in configuration (`mysql_native_password`,
    /// `caching_sha2_password`, `client_ed25519`).
    pub fn name(self) -> &'static str {
        match self {
            Plugin::MysqlNativePassword => "mysql_native_password",
            Plugin::CachingSha2Password => "caching_sha2_password",
            Plugin::ClientEd25519 => "client_ed25519",
        }
    }

    /// The name as bytes: the constant of [`dpm_protocol::auth`] that handshakes and auth
    /// switch requests carry.
    pub fn wire_name(self) -> &'static [u8] {
        match self {
            Plugin::MysqlNativePassword => MYSQL_NATIVE_PASSWORD,
            Plugin::CachingSha2Password => CACHING_SHA2_PASSWORD,
            Plugin::ClientEd25519 => CLIENT_ED25519,
        }
    }

    /// The plugin of a name exactly as [`Plugin::name`] spells it.
    pub fn from_name(name: &str) -> Result<Plugin, AuthError> {
        Self::from_wire_name(name.as_bytes())
            .ok_or_else(|| AuthError::UnknownPlugin(name.chars().take(64).collect()))
    }

    /// The plugin of a name as it came off the wire, if it is one of the three.
    pub fn from_wire_name(name: &[u8]) -> Option<Plugin> {
        Plugin::ALL.into_iter().find(|p| p.wire_name() == name)
    }
}

impl fmt::Display for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Plugin {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Plugin, AuthError> {
        Plugin::from_name(s)
    }
}

/// A parsed `password_hash` of a proxy-held user, one variant per plugin. `Debug` shows
/// only the variant (`StoredCredential::Native(<hidden>)`).
#[derive(Clone, PartialEq, Eq)]
pub enum StoredCredential {
    /// `mysql_native_password`: `SHA1(SHA1(password))`, for [`native::verify`].
    Native([u8; native::HASH_LEN]),
    /// `caching_sha2_password`: MySQL's stored hash, for
    /// [`CachingSha2Hash::verify_password`] (full authentication).
    CachingSha2(CachingSha2Hash),
    /// `client_ed25519`: the public key, for [`ed25519::verify`].
    Ed25519([u8; 32]),
}

impl fmt::Debug for StoredCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let variant = match self {
            StoredCredential::Native(_) => "Native",
            StoredCredential::CachingSha2(_) => "CachingSha2",
            StoredCredential::Ed25519(_) => "Ed25519",
        };
        write!(f, "StoredCredential::{variant}(<hidden>)")
    }
}

impl StoredCredential {
    /// Parses `text` as a `password_hash` for `plugin`, in the form MySQL or MariaDB
    /// stores in `authentication_string`:
    /// * `mysql_native_password`: `*` and 40 hex digits;
    /// * `caching_sha2_password`: `$A$005$`, a 20-character salt and a 43-character
    ///   digest (or all of it in `0x…` hex, as `SHOW CREATE USER` may print it);
    /// * `client_ed25519`: 43 characters of base64.
    ///
    /// The error is one line naming the plugin and the expected form, never quoting
    /// `text`.
    pub fn parse(plugin: Plugin, text: &str) -> Result<StoredCredential, AuthError> {
        Ok(match plugin {
            Plugin::MysqlNativePassword => StoredCredential::Native(native::parse_hash(text)?),
            Plugin::CachingSha2Password => {
                StoredCredential::CachingSha2(CachingSha2Hash::parse(text)?)
            }
            Plugin::ClientEd25519 => StoredCredential::Ed25519(ed25519::parse_hash(text)?),
        })
    }

    /// The plugin this credential is for.
    pub fn plugin(&self) -> Plugin {
        match self {
            StoredCredential::Native(_) => Plugin::MysqlNativePassword,
            StoredCredential::CachingSha2(_) => Plugin::CachingSha2Password,
            StoredCredential::Ed25519(_) => Plugin::ClientEd25519,
        }
    }
}

/// The `password_hash` text for `password` under `plugin`, as MySQL or MariaDB would
/// store it: what `dpm hash-password` prints. `caching_sha2_password` hashes get a fresh
/// random salt each time.
///
/// Refuses an empty password (MySQL and MariaDB store no hash for one, and a client with
/// an empty password sends an empty token that no hash verifies) and, for
/// `caching_sha2_password`, one longer than 256 bytes.
pub fn hash_password(plugin: Plugin, password: &[u8]) -> Result<String, AuthError> {
    if password.is_empty() {
        return Err(AuthError::EmptyPassword);
    }
    Ok(match plugin {
        Plugin::MysqlNativePassword => native::hash_text(password),
        Plugin::CachingSha2Password => caching_sha2::hash_text(password)?,
        Plugin::ClientEd25519 => ed25519::hash_text(password),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_names_are_the_wire_constants() {
        for plugin in Plugin::ALL {
            assert_eq!(plugin.name().as_bytes(), plugin.wire_name());
            assert_eq!(Plugin::from_name(plugin.name()), Ok(plugin));
            assert_eq!(plugin.name().parse::<Plugin>(), Ok(plugin));
            assert_eq!(Plugin::from_wire_name(plugin.wire_name()), Some(plugin));
            assert_eq!(plugin.to_string(), plugin.name());
        }
        assert_eq!(
            Plugin::from_name("mysql_native_password"),
            Ok(Plugin::MysqlNativePassword)
        );
        assert_eq!(Plugin::from_wire_name(b"sha256_password"), None);
        for bad in ["", "ed25519", "MYSQL_NATIVE_PASSWORD", "sha256_password"] {
            let err = Plugin::from_name(bad).unwrap_err();
            assert_eq!(err, AuthError::UnknownPlugin(bad.to_string()));
        }
        assert_eq!(
            Plugin::from_name("ed25519").unwrap_err().to_string(),
            "unknown authentication plugin 'ed25519' (expected mysql_native_password, caching_sha2_password or client_ed25519)"
        );
        // A long name is cut in the message.
        let long = "x".repeat(500);
        assert!(Plugin::from_name(&long).unwrap_err().to_string().len() < 200);
    }

    #[test]
    fn parse_each_plugin() {
        let native = StoredCredential::parse(
            Plugin::MysqlNativePassword,
            "*14E65567ABDB5135D0CFD9A70B3032C179A49EE7",
        )
        .unwrap();
        assert_eq!(native, StoredCredential::Native(native::hash(b"secret")));
        assert_eq!(native.plugin(), Plugin::MysqlNativePassword);

        let sha2 = StoredCredential::parse(
            Plugin::CachingSha2Password,
            "$A$005$AbCd!@#\tEfgH%^&*01@#dNFegEa4OGDrnEu7M4T.nkmm794xI/QoCR3Z.xpLOW6",
        )
        .unwrap();
        let StoredCredential::CachingSha2(hash) = &sha2 else {
            panic!("{sha2:?}")
        };
        assert!(hash.verify_password(b"HahaH0hO1234#$@#%"));
        assert_eq!(sha2.plugin(), Plugin::CachingSha2Password);

        let ed = StoredCredential::parse(
            Plugin::ClientEd25519,
            "ZIgUREUg5PVgQ6LskhXmO+eZLS0nC8be6HPjYWR4YJY",
        )
        .unwrap();
        assert_eq!(
            ed,
            StoredCredential::Ed25519(ed25519::public_key_from_password(b"secret"))
        );
        assert_eq!(ed.plugin(), Plugin::ClientEd25519);
    }

    #[test]
    fn parse_errors_are_one_line_and_name_the_form() {
        let native_text = "*14E65567ABDB5135D0CFD9A70B3032C179A49EE7";
        let sha2_text = "$A$005$AbCd!@#\tEfgH%^&*01@#dNFegEa4OGDrnEu7M4T.nkmm794xI/QoCR3Z.xpLOW6";
        let ed_text = "ZIgUREUg5PVgQ6LskhXmO+eZLS0nC8be6HPjYWR4YJY";
        let cases = [
            (Plugin::MysqlNativePassword, sha2_text, "password_hash for mysql_native_password must be '*' followed by 40 hex digits"),
            (Plugin::MysqlNativePassword, ed_text, "password_hash for mysql_native_password must be '*' followed by 40 hex digits"),
            (Plugin::CachingSha2Password, native_text, "password_hash for caching_sha2_password must be MySQL's authentication_string ('$A$005$', a 20-character salt and a 43-character digest): it must start with '$A$'"),
            (Plugin::CachingSha2Password, ed_text, "password_hash for caching_sha2_password must be MySQL's authentication_string ('$A$005$', a 20-character salt and a 43-character digest): it must start with '$A$'"),
            (Plugin::ClientEd25519, native_text, "password_hash for client_ed25519 must be MariaDB's authentication_string (43 characters of base64, no padding): wrong length"),
            (Plugin::ClientEd25519, sha2_text, "password_hash for client_ed25519 must be MariaDB's authentication_string (43 characters of base64, no padding): wrong length"),
        ];
        for (plugin, text, expected) in cases {
            let message = StoredCredential::parse(plugin, text)
                .unwrap_err()
                .to_string();
            assert_eq!(message, expected);
            assert!(!message.contains(&text[1..10]), "{message}");
        }
    }

    #[test]
    fn debug_hides_secrets() {
        let native = StoredCredential::Native(native::hash(b"secret"));
        assert_eq!(format!("{native:?}"), "StoredCredential::Native(<hidden>)");
        let sha2 = StoredCredential::CachingSha2(CachingSha2Hash::generate(b"secret").unwrap());
        assert_eq!(
            format!("{sha2:?}"),
            "StoredCredential::CachingSha2(<hidden>)"
        );
        let ed = StoredCredential::Ed25519(ed25519::public_key_from_password(b"secret"));
        assert_eq!(format!("{ed:?}"), "StoredCredential::Ed25519(<hidden>)");
        // Also inside other values, and with {:#?}.
        let shown = format!("{:#?}", Some(vec![native, sha2, ed]));
        for hidden in ["14E65567", "ZIgUREUg", "$A$005$"] {
            assert!(!shown.contains(hidden), "{shown}");
        }
    }

    #[test]
    fn hash_password_for_each_plugin() {
        assert_eq!(
            hash_password(Plugin::MysqlNativePassword, b"secret").unwrap(),
            "*14E65567ABDB5135D0CFD9A70B3032C179A49EE7"
        );
        assert_eq!(
            hash_password(Plugin::ClientEd25519, b"secret").unwrap(),
            "ZIgUREUg5PVgQ6LskhXmO+eZLS0nC8be6HPjYWR4YJY"
        );
        let sha2 = hash_password(Plugin::CachingSha2Password, b"secret").unwrap();
        let parsed = StoredCredential::parse(Plugin::CachingSha2Password, &sha2).unwrap();
        let StoredCredential::CachingSha2(hash) = parsed else {
            panic!()
        };
        assert!(hash.verify_password(b"secret"));
        for plugin in Plugin::ALL {
            assert_eq!(hash_password(plugin, b""), Err(AuthError::EmptyPassword));
            // Every hash parses back as its plugin's credential.
            let text = hash_password(plugin, b"pw").unwrap();
            assert_eq!(
                StoredCredential::parse(plugin, &text).unwrap().plugin(),
                plugin
            );
        }
        assert_eq!(
            hash_password(Plugin::CachingSha2Password, &[b'x'; 257]),
            Err(AuthError::PasswordTooLong(256))
        );
        assert!(hash_password(Plugin::MysqlNativePassword, &[b'x'; 257]).is_ok());
    }

    #[test]
    fn ct_eq_works() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(ct_eq(b"", b""));
    }
}
