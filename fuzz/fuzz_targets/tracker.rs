//! Fuzzes the per-connection protocol tracker (`dpm_engine::tracker::Tracker`): a
//! client-side and a backend-side tracker are fed arbitrary frames in an arbitrary order,
//! directly or forwarded from one to the other as `forward.rs` does. Errors are fine;
//! panics are not.
//!
//! Input: caps (4 bytes, CLIENT_PROTOCOL_41 forced), a settings byte (bit 0: start after
//! a well-formed greeting + login + OK; bits 1-2: max packet size), then frames, each an
//! op byte, a sequence id byte, a length byte and that many payload bytes. Op bit 3 makes
//! the frame a full 0xFFFFFF-byte one (so continuation frames are exercised) whose first
//! byte is the op's bits 4-5 mapped to COM_QUERY / 0x00 / 0xFE / 0xFF.
#![no_main]

use std::sync::OnceLock;

use dpm_engine::tracker::{Side, Tracker};
use dpm_protocol::frame::MAX_PAYLOAD_LEN;
use libfuzzer_sys::fuzz_target;

const CLIENT_PROTOCOL_41: u32 = 512;

fn full_frame(first: u8) -> &'static [u8] {
    static FRAMES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    let frames = FRAMES.get_or_init(|| {
        [0x03, 0x00, 0xFE, 0xFF]
            .iter()
            .map(|&b| {
                let mut v = vec![b'x'; MAX_PAYLOAD_LEN];
                v[0] = b;
                // Ends the version string early, should the frame be read as a greeting
                // (which scans for it): keeps executions fast.
                v[16] = 0;
                v
            })
            .collect()
    });
    &frames[first as usize & 3]
}

fn handshake(caps: u32) -> Vec<u8> {
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

fn login(caps: u32) -> Vec<u8> {
    let mut p = caps.to_le_bytes().to_vec();
    p.extend_from_slice(&(16u32 << 20).to_le_bytes());
    p.push(45);
    p.extend_from_slice(&[0; 23]);
    p.extend_from_slice(b"dpm\0");
    p.push(0);
    p
}

/// `forward.rs`: a frame received on `from` is written to `to`.
fn forward(from: &mut Tracker, to: &mut Tracker, seq: u8, payload: &[u8]) {
    if from.is_tunnel() {
        return;
    }
    let Ok(got) = from.on_receive(seq, payload) else {
        return;
    };
    let (_, sent) = to.on_send(payload);
    if got.starts_tunnel || sent.starts_tunnel || to.is_tunnel() {
        from.enter_tunnel();
        to.enter_tunnel();
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    let caps = u32::from_le_bytes(data[..4].try_into().unwrap()) | CLIENT_PROTOCOL_41;
    let settings = data[4];
    let max_packet = [16, 1024, 1 << 24, 1 << 30][(settings >> 1) as usize & 3];
    let mut client = Tracker::new(Side::Client, max_packet);
    let mut backend = Tracker::new(Side::Backend, max_packet);
    if settings & 1 != 0 {
        forward(&mut backend, &mut client, 0, &handshake(caps));
        forward(&mut client, &mut backend, 1, &login(caps));
        forward(&mut backend, &mut client, 2, &[0, 0, 0, 2, 0, 0, 0]);
    }
    let mut rest = &data[5..];
    while rest.len() >= 3 {
        let (op, seq, len) = (rest[0], rest[1], rest[2] as usize);
        rest = &rest[3..];
        let payload = if op & 8 != 0 {
            full_frame(op >> 4)
        } else {
            let len = len.min(rest.len());
            let (p, r) = rest.split_at(len);
            rest = r;
            p
        };
        match op & 7 {
            0 => {
                let _ = client.on_receive(seq, payload);
            }
            1 => {
                let _ = client.on_send(payload);
            }
            2 => {
                let _ = backend.on_receive(seq, payload);
            }
            3 => {
                let _ = backend.on_send(payload);
            }
            4 => forward(&mut client, &mut backend, seq, payload),
            5 => forward(&mut backend, &mut client, seq, payload),
            6 => {
                client.take_eof_style();
                backend.take_eof_style();
            }
            _ => {
                if seq == 0xFF {
                    client.enter_tunnel();
                }
            }
        }
        for t in [&client, &backend] {
            let _ = (
                t.is_idle(),
                t.is_tunnel(),
                t.phase(),
                t.negotiated_caps(),
                t.awaiting_handshake(),
            );
        }
    }
});
