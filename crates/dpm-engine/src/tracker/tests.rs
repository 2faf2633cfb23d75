//! Tracker tests: whole conversations fed packet by packet, checking kinds, events,
//! sequence ids and where each response ends.

use super::*;
use dpm_protocol::caps::{CLIENT_COMPRESS, CLIENT_DEPRECATE_EOF, CLIENT_PROTOCOL_41, CLIENT_SSL};
use dpm_protocol::command::com;
use grammar::SERVER_MORE_RESULTS_EXISTS;
use test_packets::{column, eof, handshake, login, ok, ok_eof};

const SERVER_CAPS: u32 = 0xF7FE | (0x81BF << 16); // MariaDB 10.11-like, without CLIENT_MYSQL
const DEPRECATE: u64 = CLIENT_DEPRECATE_EOF;

/// A backend tracker after a completed login with the given client capabilities.
fn ready_backend(client_caps: u32) -> Tracker {
    let mut t = Tracker::new(Side::Backend, 1 << 30);
    assert_eq!(
        t.on_receive(0, &handshake(SERVER_CAPS)).unwrap().event,
        Some(Event::ServerGreeting)
    );
    let (seq, sent) = t.on_send(&login(client_caps));
    assert_eq!(
        (seq, sent.kind, sent.event),
        (
            1,
            PacketKind::HandshakeResponse,
            Some(Event::BackendGotLogin)
        )
    );
    assert_eq!(
        t.on_receive(2, &ok(2)).unwrap().event,
        Some(Event::ResponseEnded)
    );
    assert!(t.is_idle());
    t
}

fn client_caps(extra: u64) -> u32 {
    (CLIENT_PROTOCOL_41 | 0x8000 | 0x20000 | 0x10000 | extra) as u32
}

fn kinds(t: &mut Tracker, packets: &[Vec<u8>]) -> Vec<PacketKind> {
    packets
        .iter()
        .enumerate()
        .map(|(i, p)| t.on_receive(i as u8 + 1, p).unwrap().kind)
        .collect()
}

#[test]
fn query_result_set_with_classic_eof() {
    let mut t = ready_backend(client_caps(0));
    let (seq, sent) = t.on_send(&[com::QUERY, b'x']);
    assert_eq!((seq, sent.event), (0, Some(Event::BackendGotCommand)));
    let got = kinds(&mut t, &[vec![1], column(), eof(2), vec![1, b'a'], eof(2)]);
    use PacketKind::*;
    assert_eq!(got, [ResultSetHeader, ColumnDef, Eof, Row, Eof]);
    assert!(t.is_idle());
}

#[test]
fn query_result_set_with_deprecate_eof() {
    let mut t = ready_backend(client_caps(DEPRECATE));
    t.on_send(&[com::QUERY, b'x']);
    let got = kinds(&mut t, &[vec![1], column(), vec![1, b'a'], ok_eof(2)]);
    use PacketKind::*;
    assert_eq!(got, [ResultSetHeader, ColumnDef, Row, Ok]);
    assert!(t.is_idle());
}

#[test]
fn binary_rows_starting_with_zero_are_rows_not_ok() {
    let mut t = ready_backend(client_caps(DEPRECATE));
    t.on_send(&[com::STMT_EXECUTE, 1, 0, 0, 0, 0, 1, 0, 0, 0]);
    let got = kinds(&mut t, &[vec![1], column(), vec![0, 0, 1, b'a'], ok_eof(2)]);
    assert_eq!(got[2], PacketKind::Row);
    assert!(t.is_idle());
}

#[test]
fn multi_results_continue_until_no_more_results_flag() {
    let mut t = ready_backend(client_caps(0));
    t.on_send(&[com::QUERY, b'x']);
    let more = SERVER_MORE_RESULTS_EXISTS | 2;
    kinds(
        &mut t,
        &[vec![1], column(), eof(more), vec![1, b'a'], eof(more)],
    );
    assert!(!t.is_idle(), "second result announced");
    kinds(
        &mut t,
        &[vec![1], column(), eof(more), vec![1, b'b'], eof(more)],
    );
    assert!(!t.is_idle());
    // A stored procedure ends with a plain OK.
    assert_eq!(
        t.on_receive(11, &ok(2)).unwrap().event,
        Some(Event::ResponseEnded)
    );
    assert!(t.is_idle());
}

#[test]
fn local_infile_exchange() {
    let mut t = ready_backend(client_caps(0));
    t.on_send(&[com::QUERY, b'L']);
    assert_eq!(
        t.on_receive(1, b"\xFB/tmp/f").unwrap().kind,
        PacketKind::InfileRequest
    );
    let (seq, sent) = t.on_send(b"1,2\n");
    assert_eq!((seq, sent.kind), (2, PacketKind::InfileData));
    let (seq, sent) = t.on_send(b"");
    assert_eq!((seq, sent.kind), (3, PacketKind::InfileData));
    assert_eq!(
        t.on_receive(4, &ok(2)).unwrap().event,
        Some(Event::ResponseEnded)
    );
    assert!(t.is_idle());
}

#[test]
fn prepare_ok_with_params_and_columns() {
    for deprecate in [0, DEPRECATE] {
        let mut t = ready_backend(client_caps(deprecate));
        t.on_send(&[com::STMT_PREPARE, b's']);
        let prepare_ok = vec![0, 1, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0];
        let mut packets = vec![prepare_ok, column(), column()];
        if deprecate == 0 {
            packets.push(eof(2));
        }
        packets.push(column());
        if deprecate == 0 {
            packets.push(eof(2));
        }
        kinds(&mut t, &packets);
        assert!(t.is_idle(), "deprecate={deprecate}");
    }
}

#[test]
fn commands_without_response_do_not_wait() {
    let mut t = ready_backend(client_caps(0));
    t.on_send(&[com::STMT_CLOSE, 1, 0, 0, 0]);
    assert!(t.is_idle());
    let (seq, _) = t.on_send(&[com::PING]);
    assert_eq!(seq, 0);
    t.on_receive(1, &ok(2)).unwrap();
    assert!(t.is_idle());
}

#[test]
fn errors_and_progress_reports() {
    let mut t = ready_backend(client_caps(0));
    t.on_send(&[com::QUERY, b'x']);
    assert_eq!(
        t.on_receive(1, b"\xFF\xFF\xFF\x01\x00\x01stage")
            .unwrap()
            .kind,
        PacketKind::Progress
    );
    let err = t.on_receive(2, b"\xFF\x7A\x04#42S02no such table").unwrap();
    assert_eq!(
        (err.kind, err.event),
        (PacketKind::Err, Some(Event::ServerError))
    );
    assert!(t.is_idle());
}

#[test]
fn auth_switch_then_ok() {
    let mut t = Tracker::new(Side::Backend, 1 << 30);
    t.on_receive(0, &handshake(SERVER_CAPS)).unwrap();
    t.on_send(&login(client_caps(0)));
    assert_eq!(
        t.on_receive(2, b"\xFEclient_ed25519\0nonce").unwrap().kind,
        PacketKind::AuthSwitch
    );
    let (seq, sent) = t.on_send(&[7; 64]);
    assert_eq!((seq, sent.kind), (3, PacketKind::AuthData));
    assert_eq!(t.on_receive(4, &ok(2)).unwrap().kind, PacketKind::Ok);
    assert!(t.is_idle());
}

#[test]
fn ssl_request_and_compression_turn_into_tunnels() {
    let mut t = Tracker::new(Side::Client, 1 << 30);
    t.on_send(&handshake(SERVER_CAPS | CLIENT_SSL as u32));
    let ssl = &login(client_caps(CLIENT_SSL))[..32];
    assert!(t.on_receive(1, ssl).unwrap().starts_tunnel);

    let mut t = Tracker::new(Side::Client, 1 << 30);
    t.on_send(&handshake(SERVER_CAPS | CLIENT_COMPRESS as u32));
    t.on_receive(1, &login(client_caps(CLIENT_COMPRESS)))
        .unwrap();
    let (_, sent) = t.on_send(&ok(2));
    assert!(sent.starts_tunnel);
}

#[test]
fn client_side_sequence_ids_follow_the_exchange() {
    let mut t = Tracker::new(Side::Client, 1 << 30);
    let (seq, sent) = t.on_send(&handshake(SERVER_CAPS));
    assert_eq!((seq, sent.event), (0, Some(Event::ClientGotGreeting)));
    assert_eq!(
        t.on_receive(1, &login(client_caps(0))).unwrap().event,
        Some(Event::ClientSentLogin)
    );
    assert_eq!(t.on_send(&ok(2)).0, 2);
    assert_eq!(
        t.on_receive(0, &[com::QUERY, b'x']).unwrap().event,
        Some(Event::ClientSentCommand)
    );
    assert_eq!(t.on_send(&[1]).0, 1);
    assert_eq!(t.on_send(&column()).0, 2);
    // A pipelined command does not disturb the response being written.
    assert_eq!(
        t.on_receive(0, &[com::PING]).unwrap().kind,
        PacketKind::Command(com::PING)
    );
    assert_eq!(t.on_send(&eof(2)).0, 3);
    assert_eq!(t.on_send(&[1, b'a']).0, 4);
    assert_eq!(t.on_send(&eof(2)).0, 5);
    // The PING's OK starts a new response at 1.
    assert_eq!(t.on_send(&ok(2)).0, 1);
    assert!(t.is_idle());
}

#[test]
fn large_packets_are_tracked_by_their_first_frame() {
    let mut t = ready_backend(client_caps(0));
    let big = vec![0u8; MAX_PAYLOAD_LEN];
    let (_, first) = t.on_send(&[&[com::QUERY][..], &big[1..]].concat());
    assert!(first.continued);
    let (seq, rest) = t.on_send(b"tail");
    assert_eq!((seq, rest.kind), (1, PacketKind::Continuation));
    assert_eq!(
        t.on_receive(2, &ok(2)).unwrap().event,
        Some(Event::ResponseEnded)
    );
}

#[test]
fn bad_client_input_is_refused() {
    let mut t = Tracker::new(Side::Client, 1 << 30);
    assert_eq!(
        t.on_receive(0, b"GET / HTTP/1.1"),
        Err(TrackError::ClientSpokeFirst)
    );
    let mut t = Tracker::new(Side::Client, 1 << 30);
    t.on_send(&handshake(SERVER_CAPS));
    assert_eq!(t.on_receive(1, b"short"), Err(TrackError::BadLogin(5)));
    let mut t = Tracker::new(Side::Client, 1 << 30);
    t.on_send(&handshake(SERVER_CAPS));
    t.on_receive(1, &login(client_caps(0))).unwrap();
    t.on_send(&ok(2));
    assert_eq!(t.on_receive(0, b""), Err(TrackError::EmptyCommand));
    let mut t = Tracker::new(Side::Client, 100);
    t.on_send(&handshake(SERVER_CAPS));
    t.on_receive(1, &login(client_caps(0))).unwrap();
    t.on_send(&ok(2));
    assert_eq!(t.on_receive(0, &[3; 101]), Err(TrackError::TooLarge(100)));
}

#[test]
fn response_to_a_multi_frame_command_continues_its_sequence() {
    let mut t = Tracker::new(Side::Client, 1 << 30);
    t.on_send(&handshake(SERVER_CAPS));
    t.on_receive(1, &login(client_caps(0))).unwrap();
    t.on_send(&ok(2));
    let mut big = vec![b'x'; MAX_PAYLOAD_LEN];
    big[0] = com::QUERY;
    assert!(t.on_receive(0, &big).unwrap().continued);
    assert!(t.on_receive(1, &big).unwrap().continued);
    assert_eq!(
        t.on_receive(2, b"tail").unwrap().kind,
        PacketKind::Continuation
    );
    assert_eq!(t.on_send(&ok(2)).0, 3);
    assert!(t.is_idle());
}

/// Events a backend connection raises for each server packet of a response.
fn events(t: &mut Tracker, packets: &[Vec<u8>]) -> Vec<Option<Event>> {
    packets
        .iter()
        .enumerate()
        .map(|(i, p)| t.on_receive(i as u8 + 1, p).unwrap().event)
        .collect()
}

#[test]
fn events_of_a_result_set_follow_the_original() {
    let mut t = ready_backend(client_caps(0));
    t.on_send(&[com::QUERY, b'x']);
    let got = events(&mut t, &[vec![1], column(), eof(2), vec![1, b'a'], eof(2)]);
    let e = |x| Some(x);
    assert_eq!(
        got,
        [
            e(Event::ResultSetHeader),
            e(Event::ColumnDefinition),
            e(Event::ColumnsEnded),
            e(Event::Row),
            e(Event::ResponseEnded)
        ]
    );
}

#[test]
fn events_of_modern_responses() {
    let e = |x| Some(x);
    // Multi-results: the intermediate terminator raises MoreResults, the last one ResponseEnded.
    let mut t = ready_backend(client_caps(DEPRECATE));
    t.on_send(&[com::QUERY, b'x']);
    let more = SERVER_MORE_RESULTS_EXISTS | 2;
    let got = events(
        &mut t,
        &[vec![1], column(), vec![1, b'a'], ok_eof(more), ok(2)],
    );
    assert_eq!(got[3], e(Event::MoreResults));
    assert_eq!(got[4], e(Event::ResponseEnded));
    // Prepare: OK, params, EOF, columns, EOF.
    let mut t = ready_backend(client_caps(0));
    t.on_send(&[com::STMT_PREPARE, b's']);
    let prepare_ok = vec![0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0];
    let got = events(&mut t, &[prepare_ok, column(), eof(2), column(), eof(2)]);
    assert_eq!(
        got,
        [
            e(Event::PrepareOk),
            e(Event::ParamDefinition),
            e(Event::ParamsEnded),
            e(Event::ColumnDefinition),
            e(Event::ResponseEnded)
        ]
    );
    // LOCAL INFILE.
    let mut t = ready_backend(client_caps(0));
    t.on_send(&[com::QUERY, b'L']);
    assert_eq!(
        t.on_receive(1, b"\xFBf").unwrap().event,
        e(Event::InfileRequest)
    );
    // PING and other simple commands raise ResponseEnded; ERR raises ServerError.
    let mut t = ready_backend(client_caps(0));
    t.on_send(&[com::PING]);
    assert_eq!(
        t.on_receive(1, &ok(2)).unwrap().event,
        e(Event::ResponseEnded)
    );
    t.on_send(&[com::INIT_DB, b'x']);
    assert_eq!(
        t.on_receive(1, b"\xFF\x19\x04#42000no db").unwrap().event,
        e(Event::ServerError)
    );
    // Auth switch during login.
    let mut t = Tracker::new(Side::Backend, 1 << 30);
    t.on_receive(0, &handshake(SERVER_CAPS)).unwrap();
    t.on_send(&login(client_caps(0)));
    assert_eq!(
        t.on_receive(2, b"\xFEclient_ed25519\0n").unwrap().event,
        e(Event::AuthSwitch)
    );
    assert_eq!(
        t.on_receive(4, b"\x01\x03").unwrap().event,
        e(Event::AuthMoreData)
    );
    assert_eq!(
        t.on_receive(5, &ok(2)).unwrap().event,
        e(Event::ResponseEnded)
    );
}

#[test]
fn client_events_for_auth_and_infile_data() {
    let mut t = Tracker::new(Side::Client, 1 << 30);
    t.on_send(&handshake(SERVER_CAPS));
    t.on_receive(1, &login(client_caps(0))).unwrap();
    t.on_send(b"\xFEclient_ed25519\0n");
    assert_eq!(
        t.on_receive(3, &[9; 64]).unwrap().event,
        Some(Event::ClientAuthData)
    );
    t.on_send(&ok(2));
    t.on_receive(0, &[com::QUERY, b'L']).unwrap();
    t.on_send(b"\xFBfile");
    assert_eq!(
        t.on_receive(2, b"1,2\n").unwrap().event,
        Some(Event::ClientInfileData)
    );
    assert_eq!(
        t.on_receive(3, b"").unwrap().event,
        Some(Event::ClientInfileData)
    );
    t.on_send(&ok(2));
    assert!(t.is_idle());
}

/// Found by the property tests: the continuation frames of a pipelined 16 MiB command
/// reset the sequence ids of the response still being written to the client.
#[test]
fn pipelined_multi_frame_command_does_not_disturb_the_response_being_written() {
    let mut t = Tracker::new(Side::Client, 1 << 30);
    t.on_send(&handshake(SERVER_CAPS));
    t.on_receive(1, &login(client_caps(0))).unwrap();
    t.on_send(&ok(2));
    t.on_receive(0, &[com::QUERY, b'x']).unwrap();
    assert_eq!(t.on_send(&[1]).0, 1);
    assert_eq!(t.on_send(&column()).0, 2);
    let mut big = vec![b'x'; MAX_PAYLOAD_LEN];
    big[0] = com::QUERY;
    assert!(t.on_receive(0, &big).unwrap().continued);
    assert_eq!(t.on_receive(1, b"").unwrap().kind, PacketKind::Continuation);
    assert_eq!(t.on_send(&eof(2)).0, 3);
    assert_eq!(t.on_send(&eof(2)).0, 4);
    // The pipelined command's response starts one past its last frame.
    assert_eq!(t.on_send(&ok(2)).0, 2);
    assert!(t.is_idle());
}
