//! End-to-end use of the public API on captured-looking byte streams: frame decoding,
//! response classification and typed decode / re-encode of every packet.

use bytes::{Bytes, BytesMut};
use dpm_protocol::*;

fn frames(wire: &[u8]) -> Vec<Packet> {
    let mut src = BytesMut::from(wire);
    let mut d = PacketDecoder::default();
    let mut out = Vec::new();
    while let Some(p) = d.decode(&mut src).unwrap() {
        out.push(p);
    }
    assert!(src.is_empty(), "stream ends on a packet boundary");
    out
}

fn reencode(packets: &[Packet]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for p in packets {
        p.encode(&mut out);
    }
    out.to_vec()
}

/// `select @@version_comment limit 1` and its classic (EOF-terminated) text result set, as
/// in the MySQL protocol documentation.
const QUERY_RESPONSE: &[u8] = b"\x01\x00\x00\x01\x01\
\x27\x00\x00\x02\x03def\x00\x00\x00\x11@@version_comment\x00\x0c\x08\x00\x1c\x00\x00\x00\xfd\x00\x00\x1f\x00\x00\
\x05\x00\x00\x03\xfe\x00\x00\x02\x00\
\x1d\x00\x00\x04\x1cMySQL Community Server (GPL)\
\x05\x00\x00\x05\xfe\x00\x00\x02\x00";

#[test]
fn classic_text_result_set() {
    let caps = CLIENT_PROTOCOL_41 | CLIENT_TRANSACTIONS | CLIENT_SECURE_CONNECTION;
    let packets = frames(QUERY_RESPONSE);
    assert_eq!(packets.len(), 5);
    assert_eq!(reencode(&packets), QUERY_RESPONSE);
    assert_eq!(response_shape(com::QUERY), ResponseShape::ResultSets);

    let count = ColumnCount::decode(&packets[0].payload, caps).unwrap();
    assert_eq!(count.count, 1);
    let def = ColumnDefinition41::decode(&packets[1].payload, caps).unwrap();
    assert_eq!(def.column_type, column_type::VAR_STRING);
    assert!(is_eof_packet(&packets[2].payload, false));
    assert_eq!(
        terminator_status(&packets[2].payload, false),
        Some(SERVER_STATUS_AUTOCOMMIT)
    );
    assert!(!is_eof_packet(&packets[3].payload, false));
    let row = TextRow::decode(&packets[3].payload, 1).unwrap();
    assert_eq!(
        row.values[0].as_deref(),
        Some(&b"MySQL Community Server (GPL)"[..])
    );
    let status = terminator_status(&packets[4].payload, false).unwrap();
    assert_eq!(status & SERVER_MORE_RESULTS_EXISTS, 0);
    assert_eq!(packets[4].seq, 5);
}

#[test]
fn deprecate_eof_binary_result_set_roundtrip() {
    // A server-side stream built with the encoders, then walked the way a proxy would.
    let caps = CLIENT_PROTOCOL_41 | CLIENT_DEPRECATE_EOF | CLIENT_SESSION_TRACK;
    let types = [
        column_type::LONGLONG,
        column_type::VAR_STRING,
        column_type::DATETIME,
    ];
    let mut wire = BytesMut::new();
    let mut seq = 1;
    seq = encode_packet_with(&mut wire, seq, |d| {
        ColumnCount {
            count: 3,
            metadata_follows: None,
        }
        .encode(d, caps)
    });
    for (i, t) in types.iter().enumerate() {
        let def = ColumnDefinition41 {
            catalog: Bytes::from_static(b"def"),
            name: Bytes::from(format!("c{i}")),
            column_type: *t,
            ..Default::default()
        };
        seq = encode_packet_with(&mut wire, seq, |d| def.encode(d, caps));
    }
    let row = BinaryRow {
        values: vec![
            BinaryValue::Int8(42),
            BinaryValue::Null,
            BinaryValue::DateTime(value::DateTime {
                year: 2024,
                month: 2,
                day: 29,
                ..Default::default()
            }),
        ],
    };
    seq = encode_packet_with(&mut wire, seq, |d| row.encode(d));
    let ok = OkPacket {
        header: 0xFE,
        status_flags: SERVER_STATUS_AUTOCOMMIT,
        ..Default::default()
    };
    let next = encode_packet_with(&mut wire, seq, |d| ok.encode(d, caps));
    assert_eq!(next, 7);

    let packets = frames(&wire);
    assert_eq!(packets.len(), 6);
    let mut col_types = Vec::new();
    for p in &packets[1..4] {
        col_types.push(
            ColumnDefinition41::decode(&p.payload, caps)
                .unwrap()
                .column_type,
        );
    }
    assert_eq!(col_types, types);
    assert!(!is_eof_packet(&packets[4].payload, true));
    assert_eq!(
        BinaryRow::decode(&packets[4].payload, &col_types).unwrap(),
        row
    );
    assert_eq!(
        terminator_status(&packets[5].payload, true),
        Some(SERVER_STATUS_AUTOCOMMIT)
    );
    assert_eq!(
        ok_status(&packets[5].payload),
        Some(SERVER_STATUS_AUTOCOMMIT)
    );
    assert_eq!(OkPacket::decode(&packets[5].payload, caps).unwrap(), ok);
}

#[test]
fn native_password_login() {
    // Server handshake (MariaDB style), client computes the token, server verifies it.
    let nonce = b"\x3e\x52\x47\x5b\x3c\x6a\x5e\x7e\x5c\x28\x77\x23\x70\x4f\x6b\x38\x61\x3d\x5e\x4b";
    let hs = HandshakeV10 {
        protocol_version: 10,
        server_version: Bytes::from_static(b"5.5.5-10.11.6-MariaDB"),
        connection_id: 7,
        auth_plugin_data: Bytes::from_static(nonce),
        capabilities: CLIENT_PROTOCOL_41
            | CLIENT_SECURE_CONNECTION
            | CLIENT_PLUGIN_AUTH
            | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
            | MARIADB_CLIENT_STMT_BULK_OPERATIONS,
        character_set: 45,
        status_flags: SERVER_STATUS_AUTOCOMMIT,
        auth_plugin_name: Some(Bytes::from_static(auth::MYSQL_NATIVE_PASSWORD)),
    };
    let mut wire = BytesMut::new();
    encode_packet_with(&mut wire, 0, |d| hs.encode(d));
    let p = &frames(&wire)[0];
    let seen = HandshakeV10::decode(&p.payload).unwrap();
    assert_eq!(seen, hs);

    let resp = HandshakeResponse41 {
        capabilities: seen.capabilities,
        max_packet_size: 1 << 24,
        character_set: 45,
        username: Bytes::from_static(b"app"),
        auth_response: Bytes::from(scramble::native_password_token(b"toast", seen.nonce())),
        auth_plugin_name: Some(Bytes::from_static(auth::MYSQL_NATIVE_PASSWORD)),
        ..Default::default()
    };
    let mut wire = BytesMut::new();
    encode_packet_with(&mut wire, p.next_seq(), |d| resp.encode(d));
    let p = &frames(&wire)[0];
    assert_eq!(p.seq, 1);
    assert!(!is_ssl_request(&p.payload));
    let got = HandshakeResponse41::decode(&p.payload).unwrap();
    let stored = parse_stored_hash_hex("*09A4298405EF045A61DB26DF8811FEA0E44A80FD").unwrap();
    assert!(native_password_verify(&got.auth_response, nonce, &stored));
    assert!(!native_password_verify(
        &got.auth_response,
        &[0u8; 20],
        &stored
    ));
}
