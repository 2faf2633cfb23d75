//! Capability flags, as one `u64`: the 32 standard MySQL bits plus MariaDB's extended bits
//! 32..63.
//!
//! MariaDB sends its extended capabilities in 4 otherwise-reserved bytes: the last 4 of the
//! 10 filler bytes of the initial handshake, and bytes 28..32 of the handshake response.
//! They are only meaningful when bit 0 ([`CLIENT_MYSQL`], historically
//! `CLIENT_LONG_PASSWORD`) is **not** set: MariaDB servers (10.2+) clear it, MySQL always
//! sets it.

/// Use the improved version of old password authentication. MariaDB reuses this bit as
/// [`CLIENT_MYSQL`]: a peer that sets it is (or pretends to be) MySQL.
pub const CLIENT_LONG_PASSWORD: u64 = 1;
/// MariaDB's name for bit 0: set by MySQL peers, cleared by MariaDB ones. When clear, the
/// extended capability bytes are present.
pub const CLIENT_MYSQL: u64 = 1;
/// Send found rows instead of affected rows in the OK packet.
pub const CLIENT_FOUND_ROWS: u64 = 2;
/// Get all column flags.
pub const CLIENT_LONG_FLAG: u64 = 4;
/// A database (schema) name can be specified on connect in the handshake response.
pub const CLIENT_CONNECT_WITH_DB: u64 = 8;
/// Don't allow `database.table.column`.
pub const CLIENT_NO_SCHEMA: u64 = 16;
/// The compressed protocol is used.
pub const CLIENT_COMPRESS: u64 = 32;
/// Special handling of ODBC behaviour (unused).
pub const CLIENT_ODBC: u64 = 64;
/// `LOAD DATA LOCAL` is allowed.
pub const CLIENT_LOCAL_FILES: u64 = 128;
/// Ignore spaces before `(`.
pub const CLIENT_IGNORE_SPACE: u64 = 256;
/// The 4.1 protocol: OK/ERR/EOF layouts with status, warnings and SQL state.
pub const CLIENT_PROTOCOL_41: u64 = 512;
/// `wait_timeout` versus `wait_interactive_timeout`.
pub const CLIENT_INTERACTIVE: u64 = 1024;
/// Use SSL/TLS; the client sends an SSL request and upgrades the connection.
pub const CLIENT_SSL: u64 = 2048;
/// Don't issue SIGPIPE on network errors (client only).
pub const CLIENT_IGNORE_SIGPIPE: u64 = 4096;
/// The client knows about transactions (status flags in the OK packet).
pub const CLIENT_TRANSACTIONS: u64 = 8192;
/// Deprecated flag for the 4.1 protocol.
pub const CLIENT_RESERVED: u64 = 16384;
/// 4.1 authentication: the auth response is prefixed with a 1-byte length. Also called
/// `CLIENT_RESERVED2`.
pub const CLIENT_SECURE_CONNECTION: u64 = 32768;
/// Multiple statements in one `COM_QUERY`.
pub const CLIENT_MULTI_STATEMENTS: u64 = 1 << 16;
/// Multiple result sets for `COM_QUERY`.
pub const CLIENT_MULTI_RESULTS: u64 = 1 << 17;
/// Multiple result sets for `COM_STMT_EXECUTE`.
pub const CLIENT_PS_MULTI_RESULTS: u64 = 1 << 18;
/// Pluggable authentication: plugin names in the handshake and its response.
pub const CLIENT_PLUGIN_AUTH: u64 = 1 << 19;
/// Connection attributes in the handshake response.
pub const CLIENT_CONNECT_ATTRS: u64 = 1 << 20;
/// The auth response in the handshake response is a length-encoded string.
pub const CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA: u64 = 1 << 21;
/// The client can handle expired passwords (sandbox mode).
pub const CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS: u64 = 1 << 22;
/// Session state tracking information in OK packets.
pub const CLIENT_SESSION_TRACK: u64 = 1 << 23;
/// EOF packets are replaced by OK packets with a `0xFE` header.
pub const CLIENT_DEPRECATE_EOF: u64 = 1 << 24;
/// Result set metadata may be omitted (MySQL 8.0.3+): a `metadata_follows` byte follows
/// the column count.
pub const CLIENT_OPTIONAL_RESULTSET_METADATA: u64 = 1 << 25;
/// zstd compression of the compressed protocol (MySQL 8.0.18+).
pub const CLIENT_ZSTD_COMPRESSION_ALGORITHM: u64 = 1 << 26;
/// Query attributes in `COM_QUERY` and `COM_STMT_EXECUTE` (MySQL 8.0.23+).
pub const CLIENT_QUERY_ATTRIBUTES: u64 = 1 << 27;
/// Multi-factor authentication (MySQL 8.0.27+).
pub const MULTI_FACTOR_AUTHENTICATION: u64 = 1 << 28;
/// Reserved for extending the capability flags (MySQL). MariaDB used this bit as the
/// obsolete `CLIENT_PROGRESS_OBSOLETE`.
pub const CLIENT_CAPABILITY_EXTENSION: u64 = 1 << 29;
/// Verify the server certificate (client only, deprecated).
pub const CLIENT_SSL_VERIFY_SERVER_CERT: u64 = 1 << 30;
/// Don't reset options after a failed connect (client only).
pub const CLIENT_REMEMBER_OPTIONS: u64 = 1 << 31;

/// MariaDB: the client understands progress-report packets (ERR with code `0xFFFF`).
pub const MARIADB_CLIENT_PROGRESS: u64 = 1 << 32;
/// MariaDB: `COM_MULTI` (removed in later versions).
pub const MARIADB_CLIENT_COM_MULTI: u64 = 1 << 33;
/// MariaDB: `COM_STMT_BULK_EXECUTE` (10.2+).
pub const MARIADB_CLIENT_STMT_BULK_OPERATIONS: u64 = 1 << 34;
/// MariaDB: extended column metadata (type and format names) in column definitions (10.5+).
pub const MARIADB_CLIENT_EXTENDED_METADATA: u64 = 1 << 35;
/// Older name of [`MARIADB_CLIENT_EXTENDED_METADATA`].
pub const MARIADB_CLIENT_EXTENDED_TYPE_INFO: u64 = MARIADB_CLIENT_EXTENDED_METADATA;
/// MariaDB: prepared-statement result metadata may be skipped; a `metadata follows` byte
/// follows the column count (10.6+).
pub const MARIADB_CLIENT_CACHE_METADATA: u64 = 1 << 36;
/// MariaDB: `COM_STMT_BULK_EXECUTE` can return one result per parameter set (11.5+).
pub const MARIADB_CLIENT_BULK_UNIT_RESULTS: u64 = 1 << 37;

/// Mask of the bits that travel in MariaDB's extended capability bytes.
pub const MARIADB_EXTENDED_CAPS_MASK: u64 = 0xFFFF_FFFF_0000_0000;

/// Every capability bit with a name, in bit order.
pub const CAPABILITY_NAMES: &[(u64, &str)] = &[
    (CLIENT_LONG_PASSWORD, "CLIENT_LONG_PASSWORD"),
    (CLIENT_FOUND_ROWS, "CLIENT_FOUND_ROWS"),
    (CLIENT_LONG_FLAG, "CLIENT_LONG_FLAG"),
    (CLIENT_CONNECT_WITH_DB, "CLIENT_CONNECT_WITH_DB"),
    (CLIENT_NO_SCHEMA, "CLIENT_NO_SCHEMA"),
    (CLIENT_COMPRESS, "CLIENT_COMPRESS"),
    (CLIENT_ODBC, "CLIENT_ODBC"),
    (CLIENT_LOCAL_FILES, "CLIENT_LOCAL_FILES"),
    (CLIENT_IGNORE_SPACE, "CLIENT_IGNORE_SPACE"),
    (CLIENT_PROTOCOL_41, "CLIENT_PROTOCOL_41"),
    (CLIENT_INTERACTIVE, "CLIENT_INTERACTIVE"),
    (CLIENT_SSL, "CLIENT_SSL"),
    (CLIENT_IGNORE_SIGPIPE, "CLIENT_IGNORE_SIGPIPE"),
    (CLIENT_TRANSACTIONS, "CLIENT_TRANSACTIONS"),
    (CLIENT_RESERVED, "CLIENT_RESERVED"),
    (CLIENT_SECURE_CONNECTION, "CLIENT_SECURE_CONNECTION"),
    (CLIENT_MULTI_STATEMENTS, "CLIENT_MULTI_STATEMENTS"),
    (CLIENT_MULTI_RESULTS, "CLIENT_MULTI_RESULTS"),
    (CLIENT_PS_MULTI_RESULTS, "CLIENT_PS_MULTI_RESULTS"),
    (CLIENT_PLUGIN_AUTH, "CLIENT_PLUGIN_AUTH"),
    (CLIENT_CONNECT_ATTRS, "CLIENT_CONNECT_ATTRS"),
    (
        CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA,
        "CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA",
    ),
    (
        CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS,
        "CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS",
    ),
    (CLIENT_SESSION_TRACK, "CLIENT_SESSION_TRACK"),
    (CLIENT_DEPRECATE_EOF, "CLIENT_DEPRECATE_EOF"),
    (
        CLIENT_OPTIONAL_RESULTSET_METADATA,
        "CLIENT_OPTIONAL_RESULTSET_METADATA",
    ),
    (
        CLIENT_ZSTD_COMPRESSION_ALGORITHM,
        "CLIENT_ZSTD_COMPRESSION_ALGORITHM",
    ),
    (CLIENT_QUERY_ATTRIBUTES, "CLIENT_QUERY_ATTRIBUTES"),
    (MULTI_FACTOR_AUTHENTICATION, "MULTI_FACTOR_AUTHENTICATION"),
    (CLIENT_CAPABILITY_EXTENSION, "CLIENT_CAPABILITY_EXTENSION"),
    (
        CLIENT_SSL_VERIFY_SERVER_CERT,
        "CLIENT_SSL_VERIFY_SERVER_CERT",
    ),
    (CLIENT_REMEMBER_OPTIONS, "CLIENT_REMEMBER_OPTIONS"),
    (MARIADB_CLIENT_PROGRESS, "MARIADB_CLIENT_PROGRESS"),
    (MARIADB_CLIENT_COM_MULTI, "MARIADB_CLIENT_COM_MULTI"),
    (
        MARIADB_CLIENT_STMT_BULK_OPERATIONS,
        "MARIADB_CLIENT_STMT_BULK_OPERATIONS",
    ),
    (
        MARIADB_CLIENT_EXTENDED_METADATA,
        "MARIADB_CLIENT_EXTENDED_METADATA",
    ),
    (
        MARIADB_CLIENT_CACHE_METADATA,
        "MARIADB_CLIENT_CACHE_METADATA",
    ),
    (
        MARIADB_CLIENT_BULK_UNIT_RESULTS,
        "MARIADB_CLIENT_BULK_UNIT_RESULTS",
    ),
];

/// The name of a single capability bit, if it has one.
pub fn capability_name(bit: u64) -> Option<&'static str> {
    CAPABILITY_NAMES
        .iter()
        .find(|(b, _)| *b == bit)
        .map(|(_, n)| *n)
}

/// The names of the bits set in `caps` (unnamed bits are skipped), for logs.
pub fn capability_names(caps: u64) -> impl Iterator<Item = &'static str> {
    CAPABILITY_NAMES
        .iter()
        .filter(move |(b, _)| caps & b != 0)
        .map(|(_, n)| *n)
}

/// True when the capability set comes from a MariaDB peer, i.e. [`CLIENT_MYSQL`] is clear and
/// the extended capability bytes are meaningful.
#[inline]
pub const fn is_mariadb(caps: u64) -> bool {
    caps & CLIENT_MYSQL == 0
}

/// Combines the lower 32 bits and MariaDB's 32 extended bits the way the handshake packets
/// do: the extended part is only used when [`CLIENT_MYSQL`] is clear in `lower`.
#[inline]
pub const fn combine(lower: u32, extended: u32) -> u64 {
    let lower = lower as u64;
    if is_mariadb(lower) {
        lower | ((extended as u64) << 32)
    } else {
        lower
    }
}

/// The 4 extended-capability bytes to write for `caps`: its upper 32 bits for a MariaDB
/// capability set, zero otherwise.
#[inline]
pub const fn extended_part(caps: u64) -> u32 {
    if is_mariadb(caps) {
        (caps >> 32) as u32
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(CLIENT_PROTOCOL_41, 0x200);
        assert_eq!(CLIENT_SECURE_CONNECTION, 0x8000);
        assert_eq!(CLIENT_DEPRECATE_EOF, 0x0100_0000);
        assert_eq!(CLIENT_REMEMBER_OPTIONS, 0x8000_0000);
        assert_eq!(MARIADB_CLIENT_CACHE_METADATA, 0x10_0000_0000);
        assert_eq!(CAPABILITY_NAMES.len(), 38);
        for (i, (bit, _)) in CAPABILITY_NAMES.iter().enumerate() {
            assert_eq!(*bit, 1u64 << i);
        }
    }

    #[test]
    fn names_and_combine() {
        assert_eq!(capability_name(CLIENT_SSL), Some("CLIENT_SSL"));
        assert_eq!(capability_name(1 << 40), None);
        let names: Vec<_> = capability_names(CLIENT_SSL | CLIENT_PROTOCOL_41).collect();
        assert_eq!(names, ["CLIENT_PROTOCOL_41", "CLIENT_SSL"]);
        assert_eq!(combine(0x0000_0201, 0x1D), 0x201);
        assert_eq!(combine(0x0000_0200, 0x1D), 0x1D_0000_0200);
        assert_eq!(extended_part(0x1D_0000_0200), 0x1D);
        assert_eq!(extended_part(0x1D_0000_0201), 0);
        assert!(is_mariadb(0x200));
    }
}
