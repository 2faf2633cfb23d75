//! Property tests of `Tracker`: generated well-formed conversations (random capabilities,
//! login, then random commands with random responses, some pipelined) fed through a
//! client-side and a backend-side tracker exactly as `forward.rs` does, checking kinds,
//! where each response ends, sequence ids and a few events; and arbitrary frames in any
//! order, which must never panic.

use std::collections::VecDeque;
use std::sync::OnceLock;

use dpm_protocol::caps::{
    CLIENT_COMPRESS, CLIENT_DEPRECATE_EOF, CLIENT_OPTIONAL_RESULTSET_METADATA, CLIENT_PROTOCOL_41,
    CLIENT_SSL, CLIENT_ZSTD_COMPRESSION_ALGORITHM,
};
use dpm_protocol::command::com;
use dpm_protocol::frame::MAX_PAYLOAD_LEN;
use proptest::prelude::*;

use super::grammar::SERVER_MORE_RESULTS_EXISTS;
use super::test_packets::{column, eof, handshake, login, ok, ok_eof};
use super::{PacketKind, Side, Tracker};
use crate::event::Event;

/// Capabilities the generator does not model (they turn the connection into a tunnel).
const TUNNEL_CAPS: u32 = (CLIENT_SSL | CLIENT_COMPRESS | CLIENT_ZSTD_COMPRESSION_ALGORITHM) as u32;

/// One full frame (0xFFFFFF bytes) starting with COM_QUERY: a 16 MiB command's or row's
/// first frame, shared by every case.
fn big_frame() -> &'static [u8] {
    static BIG: OnceLock<Vec<u8>> = OnceLock::new();
    BIG.get_or_init(|| {
        let mut v = vec![b'x'; MAX_PAYLOAD_LEN];
        v[0] = com::QUERY;
        v
    })
}

// ---------------------------------------------------------------------------------------
// The model: what the generator chooses.

/// One result of a (multi-)result response.
#[derive(Clone, Debug)]
enum Res {
    Ok,
    Rows {
        columns: u8,
        rows: u8,
        /// The row at this index (if any) is 16 MiB: two frames.
        big_row: Option<u8>,
        /// With CLIENT_OPTIONAL_RESULTSET_METADATA: the header says no metadata follows.
        skip_metadata: bool,
        row_byte: u8,
    },
}

#[derive(Clone, Debug)]
enum Cmd {
    /// COM_QUERY (or COM_STMT_EXECUTE, with binary rows): progress reports, then results
    /// chained by SERVER_MORE_RESULTS_EXISTS, ended by the last result or by an ERR.
    Results {
        execute: bool,
        progress: u8,
        results: Vec<Res>,
        end_err: bool,
    },
    /// LOAD DATA LOCAL INFILE: request, file chunks, empty packet, OK (or ERR), then more
    /// results if any.
    Infile {
        chunks: u8,
        err: bool,
        then: Vec<Res>,
    },
    Prepare {
        params: u8,
        columns: u8,
        err: bool,
    },
    FieldList {
        columns: u8,
    },
    Statistics,
    /// A command answered by one OK or ERR.
    Simple {
        code: u8,
        err: bool,
    },
    /// A command without response.
    NoResponse {
        code: u8,
    },
    /// A 16 MiB COM_QUERY (two frames) answered by OK.
    BigQuery {
        tail: u8,
    },
}

#[derive(Clone, Debug)]
enum Item {
    Single(Cmd),
    /// Several commands sent before (or while) their responses come; the bools choose the
    /// interleaving of further commands with the responses.
    Pipelined(Vec<Cmd>, Vec<bool>),
}

#[derive(Clone, Debug)]
struct Conversation {
    server_caps: u32,
    client_caps: u32,
    /// 0: plain OK; 1: auth switch; 2: auth switch then more data.
    auth_rounds: u8,
    items: Vec<Item>,
    quit: bool,
}

fn res() -> impl Strategy<Value = Res> {
    prop_oneof![
        1 => Just(Res::Ok),
        3 => (1u8..5, 0u8..5, prop::option::weighted(0.05, 0u8..5), any::<bool>(), 0u8..=0xFB)
            .prop_map(|(columns, rows, big_row, skip_metadata, row_byte)| Res::Rows {
                columns,
                rows,
                big_row,
                skip_metadata,
                row_byte,
            }),
    ]
}

/// Commands that may be pipelined (no client packets inside their response).
fn pipelinable() -> impl Strategy<Value = Cmd> {
    prop_oneof![
        4 => (any::<bool>(), 0u8..3, prop::collection::vec(res(), 1..4), prop::bool::weighted(0.15))
            .prop_map(|(execute, progress, results, end_err)| Cmd::Results {
                execute,
                progress,
                results,
                end_err,
            }),
        2 => (0u8..4, 0u8..4, prop::bool::weighted(0.1))
            .prop_map(|(params, columns, err)| Cmd::Prepare { params, columns, err }),
        1 => (0u8..4).prop_map(|columns| Cmd::FieldList { columns }),
        1 => Just(Cmd::Statistics),
        2 => (
            prop::sample::select(vec![
                com::PING,
                com::INIT_DB,
                com::STMT_RESET,
                com::RESET_CONNECTION,
                com::SET_OPTION,
            ]),
            prop::bool::weighted(0.2),
        )
            .prop_map(|(code, err)| Cmd::Simple { code, err }),
        1 => prop::sample::select(vec![com::STMT_CLOSE, com::STMT_SEND_LONG_DATA])
            .prop_map(|code| Cmd::NoResponse { code }),
        1 => (0u8..4).prop_map(|tail| Cmd::BigQuery { tail }),
    ]
}

fn cmd() -> impl Strategy<Value = Cmd> {
    prop_oneof![
        8 => pipelinable(),
        1 => (0u8..4, prop::bool::weighted(0.2), prop::collection::vec(res(), 0..3))
            .prop_map(|(chunks, err, then)| Cmd::Infile { chunks, err, then }),
    ]
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        3 => cmd().prop_map(Item::Single),
        1 => (
            prop::collection::vec(pipelinable(), 2..5),
            prop::collection::vec(any::<bool>(), 1..8),
        )
            .prop_map(|(cmds, order)| Item::Pipelined(cmds, order)),
    ]
}

fn conversation() -> impl Strategy<Value = Conversation> {
    (
        any::<u32>(),
        any::<u32>(),
        0u8..3,
        prop::collection::vec(item(), 0..12),
        any::<bool>(),
    )
        .prop_map(
            |(server_caps, client_caps, auth_rounds, items, quit)| Conversation {
                server_caps: (server_caps | CLIENT_PROTOCOL_41 as u32) & !TUNNEL_CAPS,
                client_caps: (client_caps | CLIENT_PROTOCOL_41 as u32) & !TUNNEL_CAPS,
                auth_rounds,
                items,
                quit,
            },
        )
}

// ---------------------------------------------------------------------------------------
// Frames: the model written out, with what the trackers must say about each.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum From {
    Client,
    Server,
}

#[derive(Clone, Debug)]
enum Payload {
    Bytes(Vec<u8>),
    Big,
}

impl Payload {
    fn bytes(&self) -> &[u8] {
        match self {
            Payload::Bytes(b) => b,
            Payload::Big => big_frame(),
        }
    }
}

#[derive(Clone, Debug)]
struct Frame {
    from: From,
    payload: Payload,
    /// The sequence id a real peer puts in the header.
    seq: u8,
    kind: PacketKind,
    /// Commands awaiting a response (or the login) after this frame, relative change.
    outstanding: i32,
    /// The event the backend side must reach on receiving this server frame, if checked.
    event: Option<Event>,
}

/// Writes one command's exchange as frames with their sequence ids.
struct Writer {
    deprecate_eof: bool,
    optional_metadata: bool,
    seq: u8,
    frames: Vec<Frame>,
}

impl Writer {
    fn push(&mut self, from: From, payload: Payload, kind: PacketKind) -> &mut Frame {
        self.frames.push(Frame {
            from,
            payload,
            seq: self.seq,
            kind,
            outstanding: 0,
            event: None,
        });
        self.seq = self.seq.wrapping_add(1);
        self.frames.last_mut().unwrap()
    }

    fn server(&mut self, p: Vec<u8>, kind: PacketKind) -> &mut Frame {
        self.push(From::Server, Payload::Bytes(p), kind)
    }

    fn client(&mut self, p: Vec<u8>, kind: PacketKind) -> &mut Frame {
        self.push(From::Client, Payload::Bytes(p), kind)
    }

    /// The packet ending the response.
    fn end(&mut self, p: Vec<u8>, kind: PacketKind) {
        let event = if kind == PacketKind::Err {
            Event::ServerError
        } else {
            Event::ResponseEnded
        };
        let f = self.server(p, kind);
        f.outstanding = -1;
        f.event = Some(event);
    }

    /// A terminator (OK, EOF) ending the response, or one result of it when `more`.
    fn terminator(&mut self, p: Vec<u8>, kind: PacketKind, more: bool) {
        if more {
            self.server(p, kind).event = Some(Event::MoreResults);
        } else {
            self.end(p, kind);
        }
    }

    fn command(&mut self, p: Vec<u8>, has_response: bool) {
        let kind = PacketKind::Command(p[0]);
        self.client(p, kind).outstanding = i32::from(has_response);
    }

    fn end_of_rows(&mut self, status: u16, more: bool) {
        if self.deprecate_eof {
            self.terminator(ok_eof(status), PacketKind::Ok, more);
        } else {
            self.terminator(eof(status), PacketKind::Eof, more);
        }
    }

    fn results(&mut self, results: &[Res], binary: bool, end_err: bool) {
        for (i, r) in results.iter().enumerate() {
            let more = end_err || i + 1 < results.len();
            let status = 2 | if more { SERVER_MORE_RESULTS_EXISTS } else { 0 };
            match *r {
                Res::Ok => self.terminator(ok(status), PacketKind::Ok, more),
                Res::Rows {
                    columns,
                    rows,
                    big_row,
                    skip_metadata,
                    row_byte,
                } => {
                    let skip = skip_metadata && self.optional_metadata;
                    let mut header = vec![columns];
                    if self.optional_metadata {
                        header.push(u8::from(!skip));
                    }
                    self.server(header, PacketKind::ResultSetHeader);
                    if !skip {
                        for _ in 0..columns {
                            self.server(column(), PacketKind::ColumnDef);
                        }
                        if !self.deprecate_eof {
                            self.server(eof(2), PacketKind::Eof).event = Some(Event::ColumnsEnded);
                        }
                    }
                    for row in 0..rows {
                        if big_row == Some(row) {
                            self.push(From::Server, Payload::Big, PacketKind::Row);
                            self.server(vec![b'y'; 3], PacketKind::Continuation);
                        } else if binary {
                            let mut p = vec![0, 0];
                            p.extend(std::iter::repeat_n(7u8, columns as usize));
                            self.server(p, PacketKind::Row);
                        } else {
                            // Only the first byte matters: never 0xFE (EOF) nor 0xFF (ERR).
                            self.server(vec![row_byte, b'a'], PacketKind::Row);
                        }
                    }
                    self.end_of_rows(status, more);
                }
            }
        }
        if end_err {
            self.end(err_packet(), PacketKind::Err);
        }
    }

    fn cmd(&mut self, c: &Cmd) {
        match c {
            Cmd::Results {
                execute,
                progress,
                results,
                end_err,
            } => {
                if *execute {
                    self.command(vec![com::STMT_EXECUTE, 1, 0, 0, 0, 0, 1, 0, 0, 0], true);
                } else {
                    self.command(vec![com::QUERY, b'q'], true);
                }
                for _ in 0..*progress {
                    self.server(
                        b"\xFF\xFF\xFF\x01\x00\x01stage".to_vec(),
                        PacketKind::Progress,
                    )
                    .event = Some(Event::Progress);
                }
                self.results(results, *execute, *end_err);
            }
            Cmd::Infile { chunks, err, then } => {
                self.command(
                    b"\x03LOAD DATA LOCAL INFILE 'f' INTO TABLE t".to_vec(),
                    true,
                );
                self.server(b"\xFBf".to_vec(), PacketKind::InfileRequest)
                    .event = Some(Event::InfileRequest);
                for _ in 0..*chunks {
                    self.client(b"1,2\n".to_vec(), PacketKind::InfileData);
                }
                self.client(Vec::new(), PacketKind::InfileData);
                if *err {
                    self.end(err_packet(), PacketKind::Err);
                } else {
                    let more = !then.is_empty();
                    let status = 2 | if more { SERVER_MORE_RESULTS_EXISTS } else { 0 };
                    self.terminator(ok(status), PacketKind::Ok, more);
                    self.results(then, false, false);
                }
            }
            Cmd::Prepare {
                params,
                columns,
                err,
            } => {
                self.command(vec![com::STMT_PREPARE, b's'], true);
                if *err {
                    return self.end(err_packet(), PacketKind::Err);
                }
                let p = vec![0, 1, 0, 0, 0, *columns, 0, *params, 0, 0, 0, 0];
                let mut packets: Vec<(Vec<u8>, PacketKind)> = Vec::new();
                packets.push((p, PacketKind::PrepareOk));
                for _ in 0..*params {
                    packets.push((column(), PacketKind::ParamDef));
                }
                if *params > 0 && !self.deprecate_eof {
                    packets.push((eof(2), PacketKind::ParamsEof));
                }
                for _ in 0..*columns {
                    packets.push((column(), PacketKind::ColumnDef));
                }
                if *columns > 0 && !self.deprecate_eof {
                    packets.push((eof(2), PacketKind::Eof));
                }
                let last = packets.pop().unwrap();
                for (p, kind) in packets {
                    self.server(p, kind);
                }
                self.end(last.0, last.1);
            }
            Cmd::FieldList { columns } => {
                self.command(b"\x04t\0".to_vec(), true);
                for _ in 0..*columns {
                    self.server(column(), PacketKind::ColumnDef);
                }
                self.end_of_rows(2, false);
            }
            Cmd::Statistics => {
                self.command(vec![com::STATISTICS], true);
                self.end(b"Uptime: 5  Threads: 1".to_vec(), PacketKind::Statistics);
            }
            Cmd::Simple { code, err } => {
                self.command(vec![*code, b'a'], true);
                if *err {
                    self.end(err_packet(), PacketKind::Err);
                } else {
                    self.end(ok(2), PacketKind::Ok);
                }
            }
            Cmd::NoResponse { code } => self.command(vec![*code, 1, 0, 0, 0], false),
            Cmd::BigQuery { tail } => {
                self.push(From::Client, Payload::Big, PacketKind::Command(com::QUERY))
                    .outstanding = 1;
                self.client(vec![b'z'; *tail as usize], PacketKind::Continuation);
                self.end(ok(2), PacketKind::Ok);
            }
        }
    }
}

/// The whole conversation as frames in the order they travel.
fn frames(c: &Conversation) -> Vec<Frame> {
    let caps = (c.server_caps & c.client_caps) as u64;
    let mut w = Writer {
        deprecate_eof: caps & CLIENT_DEPRECATE_EOF != 0,
        optional_metadata: caps & CLIENT_OPTIONAL_RESULTSET_METADATA != 0,
        seq: 0,
        frames: Vec::new(),
    };
    w.server(handshake(c.server_caps), PacketKind::Handshake)
        .event = Some(Event::ServerGreeting);
    w.client(login(c.client_caps), PacketKind::HandshakeResponse);
    if c.auth_rounds > 0 {
        w.server(
            b"\xFEmysql_native_password\0abcdefghijklmnopqrst\0".to_vec(),
            PacketKind::AuthSwitch,
        )
        .event = Some(Event::AuthSwitch);
        w.client(vec![9; 20], PacketKind::AuthData);
    }
    if c.auth_rounds > 1 {
        w.server(vec![1, 3], PacketKind::AuthMoreData).event = Some(Event::AuthMoreData);
        w.client(vec![9; 32], PacketKind::AuthData);
    }
    w.end(ok(2), PacketKind::Ok);
    let mut out = std::mem::take(&mut w.frames);
    for item in &c.items {
        match item {
            Item::Single(cmd) => {
                w.seq = 0;
                w.cmd(cmd);
                out.append(&mut w.frames);
            }
            Item::Pipelined(cmds, order) => {
                let mut heads = VecDeque::new();
                let mut tails = VecDeque::new();
                for (i, cmd) in cmds.iter().enumerate() {
                    w.seq = 0;
                    w.cmd(cmd);
                    // The command's own frames travel together; its response may be
                    // interleaved with further commands.
                    let mut fs = std::mem::take(&mut w.frames);
                    let rest =
                        fs.split_off(fs.iter().take_while(|f| f.from == From::Client).count());
                    heads.push_back(fs);
                    tails.extend(rest.into_iter().map(|f| (i, f)));
                }
                let mut sent = 0;
                let mut choice = order.iter().cycle();
                while !heads.is_empty() || !tails.is_empty() {
                    let must_send = tails.front().is_none_or(|&(owner, _)| owner >= sent);
                    if !heads.is_empty() && (must_send || *choice.next().unwrap()) {
                        out.extend(heads.pop_front().unwrap());
                        sent += 1;
                    } else {
                        out.push(tails.pop_front().unwrap().1);
                    }
                }
            }
        }
    }
    if c.quit {
        w.seq = 0;
        w.command(vec![com::QUIT], false);
        out.append(&mut w.frames);
    }
    out
}

// ---------------------------------------------------------------------------------------
// Packets (the ones `tests.rs` needs too are in `test_packets.rs`).

fn err_packet() -> Vec<u8> {
    b"\xFF\x7A\x04#42S02no such table".to_vec()
}

// ---------------------------------------------------------------------------------------
// Driving the trackers as forward.rs does.

/// Feeds every frame through both trackers and checks what they say.
fn run(c: &Conversation) -> Result<(), TestCaseError> {
    let mut client = Tracker::new(Side::Client, 1 << 30);
    let mut backend = Tracker::new(Side::Backend, 1 << 30);
    // The login counts as outstanding until its OK.
    let mut outstanding = 1i32;
    for (i, f) in frames(c).iter().enumerate() {
        let p = f.payload.bytes();
        let at = format!("frame {i}: {:?} {:?} seq {}", f.from, f.kind, f.seq);
        match f.from {
            From::Server => {
                let got = backend.on_receive(f.seq, p);
                let got = got.map_err(|e| TestCaseError::fail(format!("{at}: {e}")))?;
                let (seq, sent) = client.on_send(p);
                prop_assert_eq!(got.kind, f.kind, "backend receives {}", at);
                prop_assert_eq!(sent.kind, f.kind, "client is sent {}", at);
                prop_assert_eq!(seq, f.seq, "sequence id written to the client, {}", at);
                if let Some(event) = f.event {
                    prop_assert_eq!(got.event, Some(event), "{}", at);
                }
            }
            From::Client => {
                let got = client.on_receive(f.seq, p);
                let got = got.map_err(|e| TestCaseError::fail(format!("{at}: {e}")))?;
                let (seq, sent) = backend.on_send(p);
                prop_assert_eq!(got.kind, f.kind, "client receives {}", at);
                prop_assert_eq!(sent.kind, f.kind, "backend is sent {}", at);
                prop_assert_eq!(seq, f.seq, "sequence id written to the backend, {}", at);
                if matches!(f.kind, PacketKind::Command(_)) {
                    prop_assert_eq!(got.event, Some(Event::ClientSentCommand), "{}", at);
                    prop_assert_eq!(sent.event, Some(Event::BackendGotCommand), "{}", at);
                }
            }
        }
        prop_assert!(!client.is_tunnel() && !backend.is_tunnel(), "{}", at);
        outstanding += f.outstanding;
        prop_assert_eq!(
            backend.is_idle(),
            outstanding == 0,
            "backend idle after {}",
            at
        );
        prop_assert_eq!(
            client.is_idle(),
            outstanding == 0,
            "client idle after {}",
            at
        );
    }
    prop_assert_eq!(outstanding, 0);
    let caps = (c.server_caps & c.client_caps) as u64;
    prop_assert_eq!(client.negotiated_caps(), caps);
    prop_assert_eq!(backend.negotiated_caps(), caps);
    Ok(())
}

/// One arbitrary frame: who handles it and how.
#[derive(Clone, Debug)]
struct RawFrame {
    /// 0: client receives, 1: client is sent, 2: backend receives, 3: backend is sent,
    /// 4: take_eof_style on both.
    op: u8,
    seq: u8,
    payload: Vec<u8>,
}

fn raw_frame() -> impl Strategy<Value = RawFrame> {
    let payload = prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..12),
        2 => (prop::sample::select(vec![0u8, 1, 3, 0x16, 0x17, 0xFB, 0xFE, 0xFF]),
              prop::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(b, mut v)| { v.insert(0, b); v }),
    ];
    (0u8..5, any::<u8>(), payload).prop_map(|(op, seq, payload)| RawFrame { op, seq, payload })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn well_formed_conversations_are_tracked(c in conversation()) {
        run(&c)?;
    }

    #[test]
    fn arbitrary_frames_never_panic(
        login_first in any::<bool>(),
        caps in any::<u32>(),
        max_packet in prop::sample::select(vec![0usize, 8, 64, 1 << 30]),
        raw in prop::collection::vec(raw_frame(), 0..60),
    ) {
        let mut client = Tracker::new(Side::Client, max_packet);
        let mut backend = Tracker::new(Side::Backend, max_packet);
        if login_first {
            let caps = caps | CLIENT_PROTOCOL_41 as u32;
            let _ = backend.on_receive(0, &handshake(caps));
            let _ = client.on_send(&handshake(caps));
            let _ = client.on_receive(1, &login(caps));
            let _ = backend.on_send(&login(caps));
            let _ = backend.on_receive(2, &ok(2));
            let _ = client.on_send(&ok(2));
        }
        for f in &raw {
            match f.op {
                0 => { let _ = client.on_receive(f.seq, &f.payload); }
                1 => { let _ = client.on_send(&f.payload); }
                2 => { let _ = backend.on_receive(f.seq, &f.payload); }
                3 => { let _ = backend.on_send(&f.payload); }
                _ => { client.take_eof_style(); backend.take_eof_style(); }
            }
            for t in [&client, &backend] {
                let _ = (t.is_idle(), t.phase(), t.negotiated_caps(), t.awaiting_handshake());
            }
        }
    }
}
