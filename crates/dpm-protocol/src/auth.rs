//! Authentication-phase packets after the handshake response: [`AuthSwitchRequest`] (`0xFE`),
//! [`AuthSwitchResponse`] (raw), [`AuthMoreData`] (`0x01`) and MySQL's multi-factor
//! [`AuthNextFactor`] (`0x02`), plus well-known plugin names and `caching_sha2_password`
//! status bytes.
//!
//! The authentication phase ends with an OK or ERR packet from the server.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::Result;
use crate::reader::{expect_header, get_nul_or_eof_str, slice_of};
use crate::writer::put_nul_str;

/// Header byte of an auth switch request (shared with EOF/OK-as-EOF).
pub const AUTH_SWITCH_HEADER: u8 = 0xFE;
/// Header byte of an auth-more-data packet.
pub const AUTH_MORE_DATA_HEADER: u8 = 0x01;
/// Header byte of a MySQL multi-factor "next factor" packet.
pub const AUTH_NEXT_FACTOR_HEADER: u8 = 0x02;

/// `caching_sha2_password` (in an [`AuthMoreData`]): the fast path succeeded, an OK follows.
pub const CACHING_SHA2_FAST_AUTH_SUCCESS: u8 = 0x03;
/// `caching_sha2_password` (in an [`AuthMoreData`]): the server needs the full password,
/// over TLS or RSA-encrypted.
pub const CACHING_SHA2_PERFORM_FULL_AUTH: u8 = 0x04;
/// `caching_sha2_password` / `sha256_password`: the client's request for the server's RSA
/// public key (sent as an [`AuthSwitchResponse`] payload of one byte).
pub const CACHING_SHA2_REQUEST_PUBLIC_KEY: u8 = 0x02;

/// Plugin name of the classic SHA1 challenge/response scheme.
pub const MYSQL_NATIVE_PASSWORD: &[u8] = b"mysql_native_password";
/// Plugin name of MySQL 8's default scheme.
pub const CACHING_SHA2_PASSWORD: &[u8] = b"caching_sha2_password";
/// Plugin name of MySQL's RSA/TLS SHA256 scheme.
pub const SHA256_PASSWORD: &[u8] = b"sha256_password";
/// Plugin name of the cleartext scheme (password sent NUL-terminated).
pub const MYSQL_CLEAR_PASSWORD: &[u8] = b"mysql_clear_password";
/// Plugin name of MariaDB's ed25519 scheme.
pub const CLIENT_ED25519: &[u8] = b"client_ed25519";
/// Plugin name of the pre-4.1 scheme.
pub const MYSQL_OLD_PASSWORD: &[u8] = b"mysql_old_password";

/// The server asks the client to authenticate again with another plugin.
///
/// `0xFE ‖ plugin_name NUL ‖ plugin_data (EOF)`. The bare one-byte `[0xFE]` (the pre-4.1
/// "old password" switch) decodes with empty name and data, and encodes back to one byte.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthSwitchRequest {
    /// The plugin the client must switch to.
    pub plugin_name: Bytes,
    /// The plugin's data, as sent (for `mysql_native_password`: the 20-byte nonce plus a
    /// trailing NUL).
    pub plugin_data: Bytes,
}

impl AuthSwitchRequest {
    /// Decodes an auth switch request payload.
    pub fn decode(payload: &Bytes) -> Result<Self> {
        let mut buf: &[u8] = payload;
        expect_header(&mut buf, AUTH_SWITCH_HEADER, "auth switch request")?;
        let plugin_name = slice_of(payload, get_nul_or_eof_str(&mut buf));
        Ok(AuthSwitchRequest {
            plugin_name,
            plugin_data: slice_of(payload, buf),
        })
    }

    /// Encodes the payload.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u8(AUTH_SWITCH_HEADER);
        if self.plugin_name.is_empty() && self.plugin_data.is_empty() {
            return;
        }
        put_nul_str(dst, &self.plugin_name);
        dst.put_slice(&self.plugin_data);
    }

    /// The plugin data with one trailing NUL removed (the nonce, for the password plugins).
    pub fn nonce(&self) -> &[u8] {
        match self.plugin_data.split_last() {
            Some((0, rest)) => rest,
            _ => &self.plugin_data,
        }
    }
}

/// The client's answer to an auth switch request or to auth-more-data: raw plugin data,
/// no header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthSwitchResponse {
    /// The plugin's response data.
    pub data: Bytes,
}

impl AuthSwitchResponse {
    /// Decodes (wraps) the payload; never fails.
    pub fn decode(payload: &Bytes) -> Result<Self> {
        Ok(AuthSwitchResponse {
            data: payload.clone(),
        })
    }

    /// Encodes the payload.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_slice(&self.data);
    }
}

/// Extra authentication data from the server: `0x01 ‖ data (EOF)`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthMoreData {
    /// The plugin data (for `caching_sha2_password`, often the single status byte
    /// [`CACHING_SHA2_FAST_AUTH_SUCCESS`] or [`CACHING_SHA2_PERFORM_FULL_AUTH`], or a PEM key).
    pub data: Bytes,
}

impl AuthMoreData {
    /// Decodes an auth-more-data payload.
    pub fn decode(payload: &Bytes) -> Result<Self> {
        let mut buf: &[u8] = payload;
        expect_header(&mut buf, AUTH_MORE_DATA_HEADER, "auth more data")?;
        Ok(AuthMoreData {
            data: slice_of(payload, buf),
        })
    }

    /// Encodes the payload.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u8(AUTH_MORE_DATA_HEADER);
        dst.put_slice(&self.data);
    }
}

/// MySQL multi-factor authentication: the server asks for the next factor.
/// `0x02 ‖ plugin_name NUL ‖ plugin_data (EOF)`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthNextFactor {
    /// The plugin for the next factor.
    pub plugin_name: Bytes,
    /// The plugin's data.
    pub plugin_data: Bytes,
}

impl AuthNextFactor {
    /// Decodes a next-factor payload.
    pub fn decode(payload: &Bytes) -> Result<Self> {
        let mut buf: &[u8] = payload;
        expect_header(&mut buf, AUTH_NEXT_FACTOR_HEADER, "auth next factor")?;
        let plugin_name = slice_of(payload, get_nul_or_eof_str(&mut buf));
        Ok(AuthNextFactor {
            plugin_name,
            plugin_data: slice_of(payload, buf),
        })
    }

    /// Encodes the payload.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.put_u8(AUTH_NEXT_FACTOR_HEADER);
        put_nul_str(dst, &self.plugin_name);
        dst.put_slice(&self.plugin_data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;
    use proptest::prelude::*;

    #[test]
    fn switch_fixture() {
        // From the MySQL docs: switch to mysql_native_password with a 20-byte nonce + NUL.
        let wire = Bytes::from_static(
            b"\xfemysql_native_password\x00\x7a\x55\x3d\x24\x4b\x31\x54\x4c\x7a\x6b\x21\x6d\x42\x30\x5a\x4f\x34\x48\x7b\x71\x00",
        );
        let r = AuthSwitchRequest::decode(&wire).unwrap();
        assert_eq!(&r.plugin_name[..], MYSQL_NATIVE_PASSWORD);
        assert_eq!(r.plugin_data.len(), 21);
        assert_eq!(r.nonce().len(), 20);
        let mut out = BytesMut::new();
        r.encode(&mut out);
        assert_eq!(out.freeze(), wire);

        let old = Bytes::from_static(b"\xfe");
        let r = AuthSwitchRequest::decode(&old).unwrap();
        assert_eq!(r, AuthSwitchRequest::default());
        let mut out = BytesMut::new();
        r.encode(&mut out);
        assert_eq!(out.freeze(), old);
        assert!(AuthSwitchRequest::decode(&Bytes::from_static(b"\x01x")).is_err());
        assert!(AuthSwitchRequest::decode(&Bytes::new()).is_err());
    }

    #[test]
    fn more_data_fixture() {
        let wire = Bytes::from_static(b"\x01\x03");
        let m = AuthMoreData::decode(&wire).unwrap();
        assert_eq!(&m.data[..], &[CACHING_SHA2_FAST_AUTH_SUCCESS]);
        let mut out = BytesMut::new();
        m.encode(&mut out);
        assert_eq!(out.freeze(), wire);
        assert!(AuthMoreData::decode(&Bytes::from_static(b"\xfe")).is_err());
    }

    proptest! {
        #[test]
        fn switch_roundtrip(name in arb_cstr(30), data in arb_bytes(40)) {
            let r = AuthSwitchRequest { plugin_name: name, plugin_data: data };
            let mut out = BytesMut::new();
            r.encode(&mut out);
            prop_assert_eq!(AuthSwitchRequest::decode(&out.freeze()).unwrap(), r);
        }

        #[test]
        fn next_factor_roundtrip(name in arb_cstr(30), data in arb_bytes(40)) {
            let r = AuthNextFactor { plugin_name: name, plugin_data: data };
            let mut out = BytesMut::new();
            r.encode(&mut out);
            prop_assert_eq!(AuthNextFactor::decode(&out.freeze()).unwrap(), r);
        }

        #[test]
        fn more_data_and_response_roundtrip(data in arb_bytes(60)) {
            let m = AuthMoreData { data: data.clone() };
            let mut out = BytesMut::new();
            m.encode(&mut out);
            prop_assert_eq!(AuthMoreData::decode(&out.freeze()).unwrap(), m);
            let r = AuthSwitchResponse { data };
            let mut out = BytesMut::new();
            r.encode(&mut out);
            prop_assert_eq!(AuthSwitchResponse::decode(&out.freeze()).unwrap(), r);
        }

        #[test]
        fn arbitrary_never_panics(data in arb_payload()) {
            let b = Bytes::from(data);
            let _ = AuthSwitchRequest::decode(&b).map(|r| r.nonce().len());
            let _ = AuthMoreData::decode(&b);
            let _ = AuthNextFactor::decode(&b);
            let _ = AuthSwitchResponse::decode(&b);
        }
    }
}
