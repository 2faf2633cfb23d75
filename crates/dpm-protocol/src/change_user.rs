//! `COM_CHANGE_USER` ([`ComChangeUser`]): re-authenticate as another user on the same
//! connection, resetting the session.
//!
//! ```text
//! int<1>      0x11
//! string<NUL> user
//! auth_response: int<1> length + data if CLIENT_SECURE_CONNECTION, else string<NUL>
//! string<NUL> schema
//! --- optional from here on ---
//! int<2>      character_set
//! string<NUL> auth_plugin_name (if CLIENT_PLUGIN_AUTH)
//! connection attributes (if CLIENT_CONNECT_ATTRS)
//! ```
//! The capabilities are the connection's negotiated ones.

use bytes::{BufMut, Bytes, BytesMut};

use crate::caps::{CLIENT_CONNECT_ATTRS, CLIENT_PLUGIN_AUTH, CLIENT_SECURE_CONNECTION};
use crate::command::com;
use crate::connect_attrs::{decode_connect_attrs, encode_connect_attrs, ConnectAttrs};
use crate::error::Result;
use crate::reader::{
    expect_header, get_bytes, get_nul_or_eof_str, get_nul_str, get_u16, get_u8, slice_of,
};
use crate::writer::put_nul_str;

const WHAT: &str = "COM_CHANGE_USER";

/// `COM_CHANGE_USER`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ComChangeUser {
    /// The new user name.
    pub username: Bytes,
    /// Authentication data for the new user (computed against the connection's nonce).
    pub auth_response: Bytes,
    /// The new default schema (may be empty).
    pub database: Bytes,
    /// The new collation id; `None` when the packet ends after the schema.
    pub character_set: Option<u16>,
    /// Plugin that produced `auth_response` (present only with `CLIENT_PLUGIN_AUTH` and a
    /// character set; when encoding, `None` with the flag set is written as empty).
    pub auth_plugin_name: Option<Bytes>,
    /// Connection attributes (only with `CLIENT_CONNECT_ATTRS` and a character set).
    pub connect_attrs: ConnectAttrs,
}

impl ComChangeUser {
    /// Decodes a `COM_CHANGE_USER` payload using the connection's capabilities.
    pub fn decode(payload: &Bytes, caps: u64) -> Result<Self> {
        let mut buf: &[u8] = payload;
        expect_header(&mut buf, com::CHANGE_USER, WHAT)?;
        let username = slice_of(payload, get_nul_str(&mut buf, "username")?);
        let auth = if caps & CLIENT_SECURE_CONNECTION != 0 {
            let len = get_u8(&mut buf, "auth response")? as usize;
            get_bytes(&mut buf, len, "auth response")?
        } else {
            get_nul_str(&mut buf, "auth response")?
        };
        let auth_response = slice_of(payload, auth);
        let database = slice_of(payload, get_nul_or_eof_str(&mut buf));
        let mut out = ComChangeUser {
            username,
            auth_response,
            database,
            ..Default::default()
        };
        if buf.is_empty() {
            return Ok(out);
        }
        out.character_set = Some(get_u16(&mut buf, WHAT)?);
        if caps & CLIENT_PLUGIN_AUTH != 0 && !buf.is_empty() {
            out.auth_plugin_name = Some(slice_of(payload, get_nul_or_eof_str(&mut buf)));
        }
        if caps & CLIENT_CONNECT_ATTRS != 0 && !buf.is_empty() {
            out.connect_attrs = decode_connect_attrs(payload, &mut buf)?;
        }
        Ok(out)
    }

    /// Encodes the payload. Without `CLIENT_SECURE_CONNECTION` the auth response is written
    /// NUL-terminated; with it, responses longer than 255 bytes are cut to 255.
    /// Nothing after the schema is written when `character_set` is `None`.
    pub fn encode(&self, dst: &mut BytesMut, caps: u64) {
        dst.put_u8(com::CHANGE_USER);
        put_nul_str(dst, &self.username);
        if caps & CLIENT_SECURE_CONNECTION != 0 {
            let n = self.auth_response.len().min(255);
            dst.put_u8(n as u8);
            dst.put_slice(&self.auth_response[..n]);
        } else {
            put_nul_str(dst, &self.auth_response);
        }
        put_nul_str(dst, &self.database);
        let Some(cs) = self.character_set else {
            return;
        };
        dst.put_u16_le(cs);
        if caps & CLIENT_PLUGIN_AUTH != 0 {
            put_nul_str(dst, self.auth_plugin_name.as_deref().unwrap_or_default());
        }
        if caps & CLIENT_CONNECT_ATTRS != 0 {
            encode_connect_attrs(dst, &self.connect_attrs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::*;
    use crate::test_util::*;
    use proptest::prelude::*;

    const CAPS: u64 =
        CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH | CLIENT_CONNECT_ATTRS;

    #[test]
    fn fixture() {
        let wire = Bytes::from_static(
            b"\x11bob\x00\x14\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\
shop\x00\x2d\x00mysql_native_password\x00\x0a\x03_os\x05Linux\x00",
        );
        // The attribute block above is followed by one stray byte; decode must still stop
        // at the block's end.
        let c = ComChangeUser::decode(&wire, CAPS).unwrap();
        assert_eq!(&c.username[..], b"bob");
        assert_eq!(c.auth_response.len(), 20);
        assert_eq!(&c.database[..], b"shop");
        assert_eq!(c.character_set, Some(45));
        assert_eq!(c.auth_plugin_name.as_deref(), Some(MYSQL_NATIVE));
        assert_eq!(c.connect_attrs.len(), 1);
        let mut out = BytesMut::new();
        c.encode(&mut out, CAPS);
        assert_eq!(&out[..], &wire[..wire.len() - 1]);
    }

    const MYSQL_NATIVE: &[u8] = b"mysql_native_password";

    #[test]
    fn minimal_old_client() {
        let wire = Bytes::from_static(b"\x11bob\x00pw\x00db\x00");
        let c = ComChangeUser::decode(&wire, CLIENT_PROTOCOL_41).unwrap();
        assert_eq!(&c.auth_response[..], b"pw");
        assert_eq!(c.character_set, None);
        let mut out = BytesMut::new();
        c.encode(&mut out, CLIENT_PROTOCOL_41);
        assert_eq!(out.freeze(), wire);
        assert!(
            ComChangeUser::decode(&Bytes::from_static(b"\x11bob\x00pw\x00db\x00\x01"), 0).is_err()
        );
        assert!(ComChangeUser::decode(&Bytes::from_static(b"\x03"), 0).is_err());
    }

    proptest! {
        #[test]
        fn roundtrip((c, caps) in arb_change_user()) {
            let mut out = BytesMut::new();
            c.encode(&mut out, caps);
            prop_assert_eq!(ComChangeUser::decode(&out.freeze(), caps).unwrap(), c);
        }

        #[test]
        fn arbitrary_never_panics(data in arb_payload(), caps in any::<u64>()) {
            let _ = ComChangeUser::decode(&Bytes::from(data), caps);
        }
    }
}
