//! The client's reply to the initial handshake: [`HandshakeResponse41`], and the truncated
//! [`SslRequest`] a client sends first when it wants TLS.
//!
//! ```text
//! int<4>     capability flags (lower 32 bits)
//! int<4>     max_packet_size
//! int<1>     character_set
//! string[19] filler
//! int<4>     MariaDB extended capabilities (if CLIENT_MYSQL is clear), else filler
//! --- an SSL request ends here (32 bytes) ---
//! string<NUL> username
//! auth_response: string<lenenc> if CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA,
//!                else int<1> length + data if CLIENT_SECURE_CONNECTION,
//!                else string<NUL>
//! string<NUL> database (if CLIENT_CONNECT_WITH_DB)
//! string<NUL> auth_plugin_name (if CLIENT_PLUGIN_AUTH)
//! connection attributes (if CLIENT_CONNECT_ATTRS)
//! int<1>     zstd_compression_level (if CLIENT_ZSTD_COMPRESSION_ALGORITHM)
//! ```
//!
//! The layout depends on the response's own capability flags, as the server reads it.

use bytes::{BufMut, Bytes, BytesMut};

use crate::caps::{
    self, CLIENT_CONNECT_ATTRS, CLIENT_CONNECT_WITH_DB, CLIENT_PLUGIN_AUTH,
    CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA, CLIENT_PROTOCOL_41, CLIENT_SECURE_CONNECTION,
    CLIENT_SSL, CLIENT_ZSTD_COMPRESSION_ALGORITHM,
};
use crate::connect_attrs::{decode_connect_attrs, encode_connect_attrs, ConnectAttrs};
use crate::error::{ProtocolError, Result};
use crate::lenenc::{get_lenenc_str_nonnull, put_lenenc_str};
use crate::reader::{get_bytes, get_nul_or_eof_str, get_nul_str, get_u32, get_u8, slice_of};
use crate::writer::{put_nul_str, put_zeros};

/// Length of an [`SslRequest`] payload (the fixed prefix of every handshake response).
pub const SSL_REQUEST_LEN: usize = 32;

const WHAT: &str = "handshake response";

/// True when `payload` is an SSL request: exactly 32 bytes with `CLIENT_SSL` set.
/// (A full handshake response is always longer: it holds at least the username's NUL.)
#[inline]
pub fn is_ssl_request(payload: &[u8]) -> bool {
    payload.len() == SSL_REQUEST_LEN
        && u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]) as u64 & CLIENT_SSL
            != 0
}

fn decode_prefix(buf: &mut &[u8], what: &'static str) -> Result<(u64, u32, u8)> {
    let lower = get_u32(buf, what)?;
    let max_packet_size = get_u32(buf, what)?;
    let character_set = get_u8(buf, what)?;
    let _filler = get_bytes(buf, 19, what)?;
    let extended = get_u32(buf, what)?;
    Ok((
        caps::combine(lower, extended),
        max_packet_size,
        character_set,
    ))
}

fn encode_prefix(dst: &mut BytesMut, capabilities: u64, max_packet_size: u32, character_set: u8) {
    dst.put_u32_le(capabilities as u32);
    dst.put_u32_le(max_packet_size);
    dst.put_u8(character_set);
    put_zeros(dst, 19);
    dst.put_u32_le(caps::extended_part(capabilities));
}

/// The 32-byte SSL request a client sends before upgrading the connection to TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SslRequest {
    /// Client capabilities (must include `CLIENT_SSL`), with MariaDB extended bits.
    pub capabilities: u64,
    /// Maximum packet size the client will send.
    pub max_packet_size: u32,
    /// The client's collation id.
    pub character_set: u8,
}

impl SslRequest {
    /// Decodes the first 32 bytes of `payload` (which may be a full handshake response).
    pub fn decode(payload: &[u8]) -> Result<Self> {
        let mut buf = payload;
        let (capabilities, max_packet_size, character_set) =
            decode_prefix(&mut buf, "SSL request")?;
        Ok(SslRequest {
            capabilities,
            max_packet_size,
            character_set,
        })
    }

    /// Encodes the 32-byte payload.
    pub fn encode(&self, dst: &mut BytesMut) {
        encode_prefix(
            dst,
            self.capabilities,
            self.max_packet_size,
            self.character_set,
        );
    }
}

/// The handshake response of a 4.1+ client (`Protocol::HandshakeResponse41`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HandshakeResponse41 {
    /// Client capabilities, including MariaDB's extended bits when `CLIENT_MYSQL` is clear.
    pub capabilities: u64,
    /// Maximum packet size the client will send.
    pub max_packet_size: u32,
    /// The client's collation id.
    pub character_set: u8,
    /// Login user name.
    pub username: Bytes,
    /// Authentication data produced by the client's auth plugin (for
    /// `mysql_native_password`, 20 bytes, or empty for an empty password).
    pub auth_response: Bytes,
    /// Initial schema; `Some` iff `CLIENT_CONNECT_WITH_DB` (when encoding, `None` with the
    /// flag set is written as an empty name).
    pub database: Option<Bytes>,
    /// Plugin that produced `auth_response`; `Some` iff `CLIENT_PLUGIN_AUTH`.
    pub auth_plugin_name: Option<Bytes>,
    /// Connection attributes (only sent with `CLIENT_CONNECT_ATTRS`).
    pub connect_attrs: ConnectAttrs,
    /// zstd compression level (only with `CLIENT_ZSTD_COMPRESSION_ALGORITHM`, MySQL 8.0.18+).
    pub zstd_compression_level: Option<u8>,
}

impl HandshakeResponse41 {
    /// Decodes a handshake response payload.
    ///
    /// Trailing optional fields (database, plugin name, attributes, zstd level) that the
    /// capabilities announce but the packet omits decode as `None`/empty, and a missing NUL
    /// after the last string is tolerated, as servers do.
    pub fn decode(payload: &Bytes) -> Result<Self> {
        let mut buf: &[u8] = payload;
        let (capabilities, max_packet_size, character_set) = decode_prefix(&mut buf, WHAT)?;
        if capabilities & CLIENT_PROTOCOL_41 == 0 {
            return Err(ProtocolError::malformed(WHAT, "CLIENT_PROTOCOL_41 not set"));
        }
        let username = slice_of(payload, get_nul_str(&mut buf, "username")?);
        let auth = if capabilities & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
            get_lenenc_str_nonnull(&mut buf, "auth response")?
        } else if capabilities & CLIENT_SECURE_CONNECTION != 0 {
            let len = get_u8(&mut buf, "auth response")? as usize;
            get_bytes(&mut buf, len, "auth response")?
        } else {
            get_nul_or_eof_str(&mut buf)
        };
        let auth_response = slice_of(payload, auth);
        let database = if capabilities & CLIENT_CONNECT_WITH_DB != 0 && !buf.is_empty() {
            Some(slice_of(payload, get_nul_or_eof_str(&mut buf)))
        } else {
            None
        };
        let auth_plugin_name = if capabilities & CLIENT_PLUGIN_AUTH != 0 && !buf.is_empty() {
            Some(slice_of(payload, get_nul_or_eof_str(&mut buf)))
        } else {
            None
        };
        let connect_attrs = if capabilities & CLIENT_CONNECT_ATTRS != 0 && !buf.is_empty() {
            decode_connect_attrs(payload, &mut buf)?
        } else {
            Vec::new()
        };
        let zstd_compression_level =
            if capabilities & CLIENT_ZSTD_COMPRESSION_ALGORITHM != 0 && !buf.is_empty() {
                Some(get_u8(&mut buf, WHAT)?)
            } else {
                None
            };
        Ok(HandshakeResponse41 {
            capabilities,
            max_packet_size,
            character_set,
            username,
            auth_response,
            database,
            auth_plugin_name,
            connect_attrs,
            zstd_compression_level,
        })
    }

    /// Encodes the payload (no frame header). Fields are written according to
    /// `self.capabilities`. With only `CLIENT_SECURE_CONNECTION`, an auth response longer
    /// than 255 bytes is cut to 255 (use `CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA` instead).
    pub fn encode(&self, dst: &mut BytesMut) {
        let c = self.capabilities;
        encode_prefix(dst, c, self.max_packet_size, self.character_set);
        put_nul_str(dst, &self.username);
        if c & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
            put_lenenc_str(dst, &self.auth_response);
        } else if c & CLIENT_SECURE_CONNECTION != 0 {
            let n = self.auth_response.len().min(255);
            dst.put_u8(n as u8);
            dst.put_slice(&self.auth_response[..n]);
        } else {
            put_nul_str(dst, &self.auth_response);
        }
        if c & CLIENT_CONNECT_WITH_DB != 0 {
            put_nul_str(dst, self.database.as_deref().unwrap_or_default());
        }
        if c & CLIENT_PLUGIN_AUTH != 0 {
            put_nul_str(dst, self.auth_plugin_name.as_deref().unwrap_or_default());
        }
        if c & CLIENT_CONNECT_ATTRS != 0 {
            encode_connect_attrs(dst, &self.connect_attrs);
        }
        if c & CLIENT_ZSTD_COMPRESSION_ALGORITHM != 0 {
            if let Some(level) = self.zstd_compression_level {
                dst.put_u8(level);
            }
        }
    }

    /// The SSL request with this response's capability prefix.
    pub fn ssl_request(&self) -> SslRequest {
        SslRequest {
            capabilities: self.capabilities | CLIENT_SSL,
            max_packet_size: self.max_packet_size,
            character_set: self.character_set,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::*;
    use crate::test_util::*;
    use proptest::prelude::*;

    /// The HandshakeResponse41 example from the MySQL protocol documentation (payload).
    const DOC_RESPONSE: &[u8] = b"\x8d\xa6\x0f\x00\x00\x00\x00\x01\x08\
\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\
pam\x00\x14\xab\x09\xee\xf6\xbc\xb1\x32\x3e\x61\x14\x38\x65\xc0\x99\x1d\x95\x7d\x75\xd4\x47\
test\x00mysql_native_password\x00";

    /// A MariaDB Connector/C style response: CLIENT_MYSQL clear, extended caps at 28..32,
    /// lenenc auth data and connection attributes.
    const MARIADB_RESPONSE: &[u8] = b"\x0e\xa2\x3e\x01\x00\x00\x00\x40\x2d\
\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x15\x00\x00\x00\
app\x00\x14\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\
shop\x00mysql_native_password\x00\
\x18\x03_os\x05Linux\x0c_client_name\x00";

    fn exact(wire: &[u8]) -> HandshakeResponse41 {
        let r = HandshakeResponse41::decode(&Bytes::copy_from_slice(wire)).unwrap();
        let mut out = BytesMut::new();
        r.encode(&mut out);
        assert_eq!(&out[..], wire);
        r
    }

    #[test]
    fn mysql_doc_fixture() {
        let r = exact(DOC_RESPONSE);
        assert_eq!(r.capabilities, 0x000F_A68D);
        assert_eq!(r.max_packet_size, 0x0100_0000);
        assert_eq!(r.character_set, 8);
        assert_eq!(&r.username[..], b"pam");
        assert_eq!(r.auth_response.len(), 20);
        assert_eq!(r.database.as_deref(), Some(&b"test"[..]));
        assert_eq!(
            r.auth_plugin_name.as_deref(),
            Some(&b"mysql_native_password"[..])
        );
        assert!(r.connect_attrs.is_empty());
        assert!(!is_ssl_request(DOC_RESPONSE));
    }

    #[test]
    fn mariadb_fixture() {
        let r = exact(MARIADB_RESPONSE);
        assert!(is_mariadb(r.capabilities));
        assert_eq!(
            r.capabilities >> 32,
            (MARIADB_CLIENT_PROGRESS
                | MARIADB_CLIENT_STMT_BULK_OPERATIONS
                | MARIADB_CLIENT_CACHE_METADATA)
                >> 32
        );
        assert!(r.capabilities & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0);
        assert_eq!(r.connect_attrs.len(), 2);
        assert_eq!(&r.connect_attrs[0].1[..], b"Linux");
    }

    #[test]
    fn ssl_request() {
        let r = HandshakeResponse41::decode(&Bytes::from_static(MARIADB_RESPONSE)).unwrap();
        let ssl = r.ssl_request();
        let mut out = BytesMut::new();
        ssl.encode(&mut out);
        assert_eq!(out.len(), 32);
        assert!(is_ssl_request(&out));
        assert_eq!(SslRequest::decode(&out).unwrap(), ssl);
        assert_eq!(&out[4..], &MARIADB_RESPONSE[4..32]);
        assert!(
            !is_ssl_request(&MARIADB_RESPONSE[..32]),
            "CLIENT_SSL not set"
        );
        assert!(!is_ssl_request(&out[..31]));
    }

    #[test]
    fn old_style_auth_and_missing_tail() {
        // No SECURE_CONNECTION: NUL-terminated auth; CONNECT_WITH_DB announced but absent.
        let mut w = BytesMut::new();
        encode_prefix(
            &mut w,
            CLIENT_PROTOCOL_41 | CLIENT_CONNECT_WITH_DB | 1,
            0,
            33,
        );
        w.put_slice(b"bob\0secret\0");
        let r = HandshakeResponse41::decode(&w.freeze()).unwrap();
        assert_eq!(&r.auth_response[..], b"secret");
        assert_eq!(r.database, None);
    }

    #[test]
    fn rejects_pre41_and_truncation() {
        let mut w = BytesMut::new();
        encode_prefix(&mut w, 0, 0, 0);
        w.put_slice(b"x\0\0");
        assert!(HandshakeResponse41::decode(&w.freeze()).is_err());
        for cut in [0, 10, 31, 32, 35, 37, 50] {
            let r = HandshakeResponse41::decode(&Bytes::copy_from_slice(&DOC_RESPONSE[..cut]));
            assert!(r.is_err(), "cut {cut}");
        }
    }

    proptest! {
        #[test]
        fn roundtrip(r in arb_handshake_response()) {
            let mut out = BytesMut::new();
            r.encode(&mut out);
            let back = HandshakeResponse41::decode(&out.freeze()).unwrap();
            prop_assert_eq!(back, r);
        }

        #[test]
        fn ssl_roundtrip(caps in any::<u64>(), max in any::<u32>(), cs in any::<u8>()) {
            let s = SslRequest { capabilities: canonical_caps(caps), max_packet_size: max, character_set: cs };
            let mut out = BytesMut::new();
            s.encode(&mut out);
            prop_assert_eq!(SslRequest::decode(&out).unwrap(), s);
        }

        #[test]
        fn arbitrary_never_panics(data in arb_payload()) {
            let _ = is_ssl_request(&data);
            let _ = SslRequest::decode(&data);
            let _ = HandshakeResponse41::decode(&Bytes::from(data));
        }
    }
}
