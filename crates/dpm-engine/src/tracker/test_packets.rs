//! Payload builders shared by the tracker's tests (`tests.rs`) and property tests
//! (`proptests.rs`): the packets of a conversation, without frame headers.

/// A protocol-10 greeting (MariaDB 10.11-like) offering `caps`.
pub(super) fn handshake(caps: u32) -> Vec<u8> {
    let mut p = vec![10];
    p.extend_from_slice(b"10.11.6-MariaDB\0");
    p.extend_from_slice(&7u32.to_le_bytes());
    p.extend_from_slice(b"abcdefgh\0");
    p.extend_from_slice(&(caps as u16).to_le_bytes());
    p.push(45);
    p.extend_from_slice(&2u16.to_le_bytes());
    p.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
    p.push(21);
    p.extend_from_slice(&[0; 6]);
    p.extend_from_slice(&0u32.to_le_bytes());
    p.extend_from_slice(b"ijklmnopqrst\0mysql_native_password\0");
    p
}

/// A protocol-4.1 login (handshake response) with client capabilities `caps`, user `dpm`.
pub(super) fn login(caps: u32) -> Vec<u8> {
    let mut p = caps.to_le_bytes().to_vec();
    p.extend_from_slice(&(16u32 << 20).to_le_bytes());
    p.push(45);
    p.extend_from_slice(&[0; 23]);
    p.extend_from_slice(b"dpm\0");
    p.push(0);
    p
}

/// An OK packet with status flags `status`.
pub(super) fn ok(status: u16) -> Vec<u8> {
    let mut p = vec![0, 0, 0];
    p.extend_from_slice(&status.to_le_bytes());
    p.extend_from_slice(&[0, 0]);
    p
}

/// An OK packet with a 0xFE header: what ends a result set under `CLIENT_DEPRECATE_EOF`.
pub(super) fn ok_eof(status: u16) -> Vec<u8> {
    let mut p = ok(status);
    p[0] = 0xFE;
    p
}

/// A classic 5-byte EOF packet with status flags `status`.
pub(super) fn eof(status: u16) -> Vec<u8> {
    let mut p = vec![0xFE, 0, 0];
    p.extend_from_slice(&status.to_le_bytes());
    p
}

/// A column definition (`def`, column `a`, VARCHAR).
pub(super) fn column() -> Vec<u8> {
    let mut p = b"\x03def\x00\x00\x00\x01a\x00\x0c".to_vec();
    p.extend_from_slice(&[45, 0, 10, 0, 0, 0, 253, 0, 0, 0, 0, 0]);
    p
}
