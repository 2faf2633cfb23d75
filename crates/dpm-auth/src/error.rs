//! [`AuthError`]: every way parsing a stored hash, loading an RSA key or an RSA step of
//! `caching_sha2_password` can fail.
//!
//! Messages are one line and never contain a password, a hash or key material: a stored
//! hash is described by what is wrong with its shape, never quoted.

/// An error of this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A plugin name other than the three this crate knows.
    #[error("unknown authentication plugin '{0}' (expected mysql_native_password, caching_sha2_password or client_ed25519)")]
    UnknownPlugin(String),

    /// A `mysql_native_password` hash that is not `*` and 40 hex digits.
    #[error("password_hash for mysql_native_password must be '*' followed by 40 hex digits")]
    BadNativeHash,

    /// A `caching_sha2_password` hash that is not MySQL's `$A$…` form; the text says what
    /// is wrong.
    #[error("password_hash for caching_sha2_password must be MySQL's authentication_string ('$A$005$', a 20-character salt and a 43-character digest): {0}")]
    BadCachingSha2Hash(&'static str),

    /// A `client_ed25519` hash that is not MariaDB's 43 characters of base64; the text says
    /// what is wrong.
    #[error("password_hash for client_ed25519 must be MariaDB's authentication_string (43 characters of base64, no padding): {0}")]
    BadEd25519Hash(&'static str),

    /// An empty password: MySQL and MariaDB keep no hash for it (the account's
    /// authentication_string is empty and the client sends an empty token).
    #[error("the password is empty: an account without a password has no password_hash")]
    EmptyPassword,

    /// A password longer than `caching_sha2_password` accepts (256 bytes, as MySQL).
    #[error("the password is longer than {0} bytes, the most caching_sha2_password accepts")]
    PasswordTooLong(usize),

    /// An RSA private key file could not be read or parsed.
    #[error("cannot load the RSA private key {path}: {reason}")]
    RsaKey {
        /// Where the key was read from (a path, or "PEM text").
        path: String,
        /// What went wrong (never key material).
        reason: String,
    },

    /// Generating an RSA key pair failed.
    #[error("cannot generate an RSA key pair: {0}")]
    RsaGenerate(String),

    /// A PEM public key (the one a server sent) could not be parsed.
    #[error("the server's RSA public key is not a PEM public key: {0}")]
    RsaPublicKey(String),

    /// RSA encryption of a password failed (for example the password is too long for the
    /// key).
    #[error("cannot RSA-encrypt the password: {0}")]
    RsaEncrypt(String),

    /// The client's RSA-encrypted password could not be decrypted (wrong length, wrong key,
    /// or not OAEP). Deliberately without detail.
    #[error("cannot decrypt the RSA-encrypted password")]
    RsaDecrypt,

    /// The nonce given for an RSA step was empty.
    #[error("the nonce is empty")]
    EmptyNonce,
}
