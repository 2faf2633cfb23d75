//! The server's initial handshake packet, protocol version 10 ([`HandshakeV10`]).
//!
//! ```text
//! int<1>     protocol_version (10)
//! string<NUL> server_version
//! int<4>     connection_id
//! string[8]  auth_plugin_data_part_1
//! int<1>     filler (0)
//! int<2>     capability flags, lower 16 bits
//! int<1>     character_set
//! int<2>     status_flags
//! int<2>     capability flags, upper 16 bits
//! int<1>     auth_plugin_data_len (if CLIENT_PLUGIN_AUTH, else 0)
//! string[6]  reserved
//! int<4>     MariaDB extended capabilities (if CLIENT_MYSQL is clear), else reserved
//! string[n]  auth_plugin_data_part_2, n = max(13, auth_plugin_data_len - 8)
//!            (if CLIENT_SECURE_CONNECTION; ends with a NUL)
//! string<NUL> auth_plugin_name (if CLIENT_PLUGIN_AUTH)
//! ```

use bytes::{BufMut, Bytes, BytesMut};

use crate::caps::{self, CLIENT_PLUGIN_AUTH, CLIENT_SECURE_CONNECTION};
use crate::error::{ProtocolError, Result};
use crate::reader::{
    get_bytes, get_nul_or_eof_str, get_nul_str, get_u16, get_u32, get_u8, slice_of,
};
use crate::writer::{put_nul_str, put_zeros};

/// The protocol version byte of [`HandshakeV10`].
pub const PROTOCOL_VERSION_10: u8 = 10;

const WHAT: &str = "initial handshake";

/// The server's initial handshake (protocol version 10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeV10 {
    /// Always 10 for this packet.
    pub protocol_version: u8,
    /// Human-readable server version, e.g. `8.0.36` or `5.5.5-10.11.6-MariaDB`.
    pub server_version: Bytes,
    /// The server's connection (thread) id.
    pub connection_id: u32,
    /// The authentication nonce (scramble): both parts joined, without the NUL that ends
    /// part 2 on the wire. Normally 20 bytes; it should not contain NUL bytes and must be
    /// at least 8 bytes long to encode faithfully (shorter data is zero-padded).
    pub auth_plugin_data: Bytes,
    /// Server capabilities: lower and upper 16 bits, plus MariaDB's extended capabilities
    /// in bits 32..63 when `CLIENT_MYSQL` (bit 0) is clear.
    pub capabilities: u64,
    /// The server's default collation id (low 8 bits).
    pub character_set: u8,
    /// Server status flags.
    pub status_flags: u16,
    /// Authentication plugin of `auth_plugin_data`, present when `CLIENT_PLUGIN_AUTH` is set.
    pub auth_plugin_name: Option<Bytes>,
}

impl HandshakeV10 {
    /// Decodes a handshake payload.
    ///
    /// Tolerates a missing NUL after the plugin name or after part 2 of the scramble.
    /// A payload starting with `0xFF` (the server refusing the connection) yields
    /// [`ProtocolError::UnexpectedHeader`]; decode it as an [`crate::ErrPacket`].
    pub fn decode(payload: &Bytes) -> Result<Self> {
        let mut buf: &[u8] = payload;
        let protocol_version = get_u8(&mut buf, WHAT)?;
        if protocol_version != PROTOCOL_VERSION_10 {
            return Err(ProtocolError::UnexpectedHeader {
                what: WHAT,
                found: protocol_version,
            });
        }
        let server_version = slice_of(payload, get_nul_str(&mut buf, "server version")?);
        let connection_id = get_u32(&mut buf, WHAT)?;
        let part1 = get_bytes(&mut buf, 8, "auth plugin data")?;
        let _filler = get_u8(&mut buf, WHAT)?;
        let caps_lower = get_u16(&mut buf, WHAT)? as u32;
        let character_set = get_u8(&mut buf, WHAT)?;
        let status_flags = get_u16(&mut buf, WHAT)?;
        let caps_upper = get_u16(&mut buf, WHAT)? as u32;
        let auth_data_len = get_u8(&mut buf, WHAT)? as usize;
        let _reserved = get_bytes(&mut buf, 6, WHAT)?;
        let extended = get_u32(&mut buf, WHAT)?;
        let capabilities = caps::combine(caps_lower | (caps_upper << 16), extended);

        let mut auth_plugin_data = slice_of(payload, part1);
        if capabilities & CLIENT_SECURE_CONNECTION != 0 {
            // Tolerate a missing final NUL, nothing shorter.
            let len = auth_data_len.saturating_sub(8).max(13);
            let len = if buf.len() == len - 1 { len - 1 } else { len };
            let part2 = get_bytes(&mut buf, len, "auth plugin data")?;
            let end = part2.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
            let part2 = &part2[..end];
            if !part2.is_empty() {
                let mut joined = BytesMut::with_capacity(8 + part2.len());
                joined.put_slice(part1);
                joined.put_slice(part2);
                auth_plugin_data = joined.freeze();
            }
        }
        let auth_plugin_name = if capabilities & CLIENT_PLUGIN_AUTH != 0 {
            Some(slice_of(payload, get_nul_or_eof_str(&mut buf)))
        } else {
            None
        };
        Ok(HandshakeV10 {
            protocol_version,
            server_version,
            connection_id,
            auth_plugin_data,
            capabilities,
            character_set,
            status_flags,
            auth_plugin_name,
        })
    }

    /// Encodes the payload (no frame header).
    ///
    /// `auth_plugin_data_len` is written as `auth_plugin_data.len() + 1` (the NUL counts),
    /// which is what MySQL and MariaDB send.
    pub fn encode(&self, dst: &mut BytesMut) {
        let data = &self.auth_plugin_data[..];
        let (part1, part2) = data.split_at(data.len().min(8));
        dst.reserve(64 + self.server_version.len() + data.len());
        dst.put_u8(self.protocol_version);
        put_nul_str(dst, &self.server_version);
        dst.put_u32_le(self.connection_id);
        dst.put_slice(part1);
        put_zeros(dst, 8 - part1.len());
        dst.put_u8(0);
        dst.put_u16_le(self.capabilities as u16);
        dst.put_u8(self.character_set);
        dst.put_u16_le(self.status_flags);
        dst.put_u16_le((self.capabilities >> 16) as u16);
        let has_plugin = self.capabilities & CLIENT_PLUGIN_AUTH != 0;
        dst.put_u8(if has_plugin {
            (8 + part2.len() + 1).min(255) as u8
        } else {
            0
        });
        put_zeros(dst, 6);
        dst.put_u32_le(caps::extended_part(self.capabilities));
        if self.capabilities & CLIENT_SECURE_CONNECTION != 0 {
            dst.put_slice(part2);
            put_zeros(dst, 13usize.saturating_sub(part2.len()).max(1));
        }
        if has_plugin {
            put_nul_str(dst, self.auth_plugin_name.as_deref().unwrap_or_default());
        }
    }

    /// The nonce to hash passwords against (the same bytes as `auth_plugin_data`).
    pub fn nonce(&self) -> &[u8] {
        &self.auth_plugin_data
    }

    /// True when the server is MariaDB (`CLIENT_MYSQL` clear in its capabilities).
    pub fn is_mariadb(&self) -> bool {
        caps::is_mariadb(self.capabilities)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::*;
    use crate::test_util::*;
    use proptest::prelude::*;

    /// MySQL 8.0 handshake as captured on the wire (payload only).
    pub(crate) const MYSQL8_HANDSHAKE: &[u8] = b"\x0a8.0.36\x00\x0d\x00\x00\x00\
\x37\x27\x5c\x1f\x2a\x3b\x4c\x5d\x00\xff\xff\xff\x02\x00\xff\xdf\x15\
\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\
\x1a\x6e\x2b\x66\x72\x11\x3c\x45\x07\x59\x61\x7a\x00\
caching_sha2_password\x00";

    /// MariaDB 10.11 handshake (note `5.5.5-` prefix, CLIENT_MYSQL clear, extended caps 0x1d).
    pub(crate) const MARIADB_HANDSHAKE: &[u8] = b"\x0a5.5.5-10.11.6-MariaDB-0+deb12u1\x00\
\x2a\x00\x00\x00\x3e\x52\x47\x5b\x3c\x6a\x5e\x7e\x00\xfe\xf7\x2d\x02\x00\xff\x81\x15\
\x00\x00\x00\x00\x00\x00\x1d\x00\x00\x00\
\x5c\x28\x77\x23\x70\x4f\x6b\x38\x61\x3d\x5e\x4b\x00\
mysql_native_password\x00";

    /// From the MySQL 5.7 documentation / captures: 5.7.18-log with mysql_native_password.
    const MYSQL57_HANDSHAKE: &[u8] = b"\x0a5.7.18-log\x00\x12\x7a\x29\x00\
\x33\x58\x38\x18\x44\x5e\x16\x48\x00\xff\xff\x21\x02\x00\xff\xc1\x15\
\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\
\x40\x79\x11\x30\x2a\x41\x61\x55\x64\x77\x6e\x0d\x00\
mysql_native_password\x00";

    /// MySQL 5.5 documentation example without CLIENT_PLUGIN_AUTH.
    const MYSQL55_HANDSHAKE: &[u8] = b"\x0a5.5.2-m2\x00\x0b\x00\x00\x00\
\x64\x76\x48\x40\x49\x2d\x43\x4a\x00\xff\xf7\x08\x02\x00\x00\x00\x00\
\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\
\x2a\x34\x64\x7c\x63\x5a\x77\x6b\x34\x5e\x5d\x3a\x00";

    fn roundtrip_exact(wire: &[u8]) -> HandshakeV10 {
        let hs = HandshakeV10::decode(&Bytes::copy_from_slice(wire)).unwrap();
        let mut out = BytesMut::new();
        hs.encode(&mut out);
        assert_eq!(&out[..], wire, "byte-exact re-encode");
        hs
    }

    #[test]
    fn mysql8_fixture() {
        let hs = roundtrip_exact(MYSQL8_HANDSHAKE);
        assert_eq!(&hs.server_version[..], b"8.0.36");
        assert_eq!(hs.connection_id, 13);
        assert_eq!(hs.auth_plugin_data.len(), 20);
        assert_eq!(
            &hs.auth_plugin_data[..8],
            b"\x37\x27\x5c\x1f\x2a\x3b\x4c\x5d"
        );
        assert_eq!(hs.capabilities, 0xDFFF_FFFF);
        assert!(!hs.is_mariadb());
        assert_eq!(hs.character_set, 0xFF);
        assert_eq!(hs.status_flags, 2);
        assert_eq!(
            hs.auth_plugin_name.as_deref(),
            Some(&b"caching_sha2_password"[..])
        );
    }

    #[test]
    fn mariadb_fixture() {
        let hs = roundtrip_exact(MARIADB_HANDSHAKE);
        assert_eq!(&hs.server_version[..], b"5.5.5-10.11.6-MariaDB-0+deb12u1");
        assert!(hs.is_mariadb());
        assert_eq!(hs.capabilities & 0xFFFF_FFFF, 0x81FF_F7FE);
        assert_eq!(
            hs.capabilities >> 32,
            (MARIADB_CLIENT_PROGRESS
                | MARIADB_CLIENT_STMT_BULK_OPERATIONS
                | MARIADB_CLIENT_EXTENDED_METADATA
                | MARIADB_CLIENT_CACHE_METADATA)
                >> 32
        );
        assert_eq!(hs.character_set, 45);
        assert_eq!(hs.nonce().len(), 20);
        assert_eq!(
            hs.auth_plugin_name.as_deref(),
            Some(&b"mysql_native_password"[..])
        );
    }

    #[test]
    fn mysql57_and_55_fixtures() {
        let hs = roundtrip_exact(MYSQL57_HANDSHAKE);
        assert_eq!(hs.connection_id, 0x297a12);
        assert_eq!(hs.capabilities, 0xC1FF_FFFF);
        let hs = roundtrip_exact(MYSQL55_HANDSHAKE);
        assert_eq!(hs.auth_plugin_name, None);
        assert_eq!(&hs.auth_plugin_data[..], b"dvH@I-CJ*4d|cZwk4^]:");
    }

    #[test]
    fn plugin_name_without_nul() {
        let mut v = MYSQL57_HANDSHAKE.to_vec();
        v.pop();
        let hs = HandshakeV10::decode(&Bytes::from(v)).unwrap();
        assert_eq!(
            hs.auth_plugin_name.as_deref(),
            Some(&b"mysql_native_password"[..])
        );
    }

    #[test]
    fn rejects_err_and_truncation() {
        let err = Bytes::from_static(b"\xff\x6a\x04Host is blocked");
        assert!(matches!(
            HandshakeV10::decode(&err),
            Err(ProtocolError::UnexpectedHeader { found: 0xFF, .. })
        ));
        // Everything up to the end of part 2 of the scramble (minus its NUL) is required.
        for cut in 0..51 {
            let r = HandshakeV10::decode(&Bytes::copy_from_slice(&MYSQL8_HANDSHAKE[..cut]));
            assert!(r.is_err(), "cut at {cut}");
        }
    }

    proptest! {
        #[test]
        fn roundtrip(hs in arb_handshake()) {
            let mut out = BytesMut::new();
            hs.encode(&mut out);
            let back = HandshakeV10::decode(&out.freeze()).unwrap();
            prop_assert_eq!(back, hs);
        }

        #[test]
        fn arbitrary_never_panics(data in arb_payload()) {
            let _ = HandshakeV10::decode(&Bytes::from(data));
        }
    }
}
