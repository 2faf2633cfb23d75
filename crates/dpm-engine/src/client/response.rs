//! The response grammar of a command, as the client reads it (no `CLIENT_DEPRECATE_EOF`,
//! so result sets end with classic EOF packets):
//!
//! ```text
//! response   = OK | ERR | EOF | LOCAL-INFILE-request (client data) (OK | ERR)
//!            | column-count column-def* EOF row* (EOF | ERR)
//! ```
//! repeated while the final OK/EOF carries `SERVER_MORE_RESULTS_EXISTS`. (A bare EOF is
//! what `COM_SET_OPTION` answers.)
//!
//! [`ResponseReader`] is sans-I/O: it is fed one payload at a time and says whether it
//! wants more, wants the client to refuse a `LOCAL INFILE` request, or is done;
//! [`read_response`] drives it over a [`PacketStream`]. Packet decoding is
//! `dpm-protocol`'s; this file only knows which packet comes next.

use bytes::Bytes;
use dpm_protocol::{
    is_eof_packet, is_err_packet, is_local_infile_request, is_ok_packet, is_progress_report,
    ColumnCount, ColumnDefinition41, EofPacket, ErrPacket, OkPacket, TextRow,
    SERVER_MORE_RESULTS_EXISTS,
};

use super::error::ClientError;
use super::wire::PacketStream;
use super::{Response, ResponseSummary, ResultSet};

/// What the reader needs after a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The next packet of the response.
    More,
    /// The server asked for a local file: send an empty packet (no file), then go on.
    Refuse,
    /// The response is complete.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The first packet of a response, or of the next result after MORE_RESULTS.
    Start,
    /// Column definitions, `left` of them still to come.
    Columns {
        left: u64,
    },
    /// The EOF after the column definitions.
    ColumnsEof,
    /// Rows, until EOF or ERR.
    Rows,
    Done,
}

/// The last OK (or bare EOF) of a response.
#[derive(Debug, Default)]
struct OkInfo {
    affected_rows: u64,
    last_insert_id: u64,
    status: u16,
    warnings: u16,
    info: Bytes,
}

/// Follows one command's response packet by packet and collects it (see the module docs).
///
/// With `keep_rows` false nothing per row or per column is decoded or allocated: rows are
/// only counted (the mirroring path).
pub(crate) struct ResponseReader {
    caps: u64,
    keep_rows: bool,
    state: State,
    /// Columns of the current result set.
    columns: usize,
    /// The result set being read (only with `keep_rows`).
    current: Option<ResultSet>,
    sets: Vec<ResultSet>,
    last_ok: Option<OkInfo>,
    error: Option<(u16, [u8; 5], String)>,
    result_sets: u32,
    rows: u64,
}

impl ResponseReader {
    /// A reader for the response of one command; `caps` are the negotiated capabilities.
    pub(crate) fn new(caps: u64, keep_rows: bool) -> ResponseReader {
        ResponseReader {
            caps,
            keep_rows,
            state: State::Start,
            columns: 0,
            current: None,
            sets: Vec::new(),
            last_ok: None,
            error: None,
            result_sets: 0,
            rows: 0,
        }
    }

    /// Takes the next packet of the response.
    pub(crate) fn feed(&mut self, payload: &Bytes) -> Result<Step, ClientError> {
        match self.state {
            State::Start => self.start(payload),
            State::Columns { left } => {
                if self.keep_rows {
                    let def = ColumnDefinition41::decode(payload, self.caps)
                        .map_err(|e| ClientError::decode("column definition", e))?;
                    if let Some(set) = &mut self.current {
                        set.columns
                            .push(String::from_utf8_lossy(&def.name).into_owned());
                    }
                }
                self.state = if left > 1 {
                    State::Columns { left: left - 1 }
                } else {
                    State::ColumnsEof
                };
                Ok(Step::More)
            }
            State::ColumnsEof => {
                if !is_eof_packet(payload, false) {
                    return Err(unexpected("the EOF after the column definitions", payload));
                }
                self.state = State::Rows;
                Ok(Step::More)
            }
            State::Rows => self.row_or_end(payload),
            State::Done => Err(ClientError::Protocol(
                "a packet after the end of the response".into(),
            )),
        }
    }

    fn start(&mut self, payload: &Bytes) -> Result<Step, ClientError> {
        if is_ok_packet(payload) {
            let ok = OkPacket::decode(payload, self.caps)
                .map_err(|e| ClientError::decode("OK packet", e))?;
            return Ok(self.ended(OkInfo {
                affected_rows: ok.affected_rows,
                last_insert_id: ok.last_insert_id,
                status: ok.status_flags,
                warnings: ok.warnings,
                info: ok.info,
            }));
        }
        if is_err_packet(payload) {
            return self.err(payload);
        }
        // COM_SET_OPTION answers with a bare EOF instead of an OK.
        if is_eof_packet(payload, false) {
            let eof = EofPacket::decode(payload, self.caps)
                .map_err(|e| ClientError::decode("EOF packet", e))?;
            return Ok(self.ended(OkInfo {
                status: eof.status_flags,
                warnings: eof.warnings,
                ..OkInfo::default()
            }));
        }
        // 0xFB cannot start a column count (it is the NULL marker), so this is the
        // request. We never announce CLIENT_LOCAL_FILES, so servers should not send it;
        // if one does, an empty packet means "no file" and it answers OK or ERR.
        if is_local_infile_request(payload) {
            return Ok(Step::Refuse);
        }
        let count = ColumnCount::decode(payload, self.caps)
            .map_err(|e| ClientError::decode("column count", e))?
            .count;
        // The server's own limit on columns is far below u16::MAX.
        if count == 0 || count > u64::from(u16::MAX) {
            return Err(ClientError::Protocol(format!("bad column count {count}")));
        }
        self.columns = count as usize;
        self.result_sets += 1;
        if self.keep_rows {
            self.current = Some(ResultSet {
                columns: Vec::with_capacity(self.columns),
                rows: Vec::new(),
                status: 0,
            });
        }
        self.state = State::Columns { left: count };
        Ok(Step::More)
    }

    fn row_or_end(&mut self, payload: &Bytes) -> Result<Step, ClientError> {
        if is_eof_packet(payload, false) {
            let eof = EofPacket::decode(payload, self.caps)
                .map_err(|e| ClientError::decode("EOF packet", e))?;
            if let Some(mut set) = self.current.take() {
                set.status = eof.status_flags;
                self.sets.push(set);
            }
            return Ok(self.next_result(eof.status_flags));
        }
        if is_err_packet(payload) {
            return self.err(payload);
        }
        self.rows += 1;
        if let Some(set) = &mut self.current {
            let row = TextRow::decode(payload, self.columns)
                .map_err(|e| ClientError::decode("text row", e))?;
            set.rows.push(row.values);
        }
        Ok(Step::More)
    }

    fn err(&mut self, payload: &Bytes) -> Result<Step, ClientError> {
        // Only sent to clients announcing MARIADB_CLIENT_PROGRESS (we do not), and never a
        // terminator anyway.
        if is_progress_report(payload) {
            return Ok(Step::More);
        }
        let err = ErrPacket::decode(payload).map_err(|e| ClientError::decode("ERR packet", e))?;
        self.error = Some((
            err.code,
            err.sql_state.unwrap_or(*b"HY000"),
            String::from_utf8_lossy(&err.message).into_owned(),
        ));
        // An ERR ends the whole response: the server runs no further statement.
        self.state = State::Done;
        Ok(Step::Done)
    }

    fn ended(&mut self, ok: OkInfo) -> Step {
        let status = ok.status;
        self.last_ok = Some(ok);
        self.next_result(status)
    }

    fn next_result(&mut self, status: u16) -> Step {
        if status & SERVER_MORE_RESULTS_EXISTS != 0 {
            self.state = State::Start;
            Step::More
        } else {
            self.state = State::Done;
            Step::Done
        }
    }

    /// The collected response. An ERR anywhere wins (earlier results are dropped); else
    /// any result set makes it [`Response::Rows`] (OKs between them are dropped); else
    /// the last OK.
    pub(crate) fn into_response(self) -> Response {
        if let Some((code, sqlstate, message)) = self.error {
            return Response::Err {
                code,
                sqlstate,
                message,
            };
        }
        if self.result_sets > 0 {
            return Response::Rows(self.sets);
        }
        let ok = self.last_ok.unwrap_or_default();
        Response::Ok {
            affected_rows: ok.affected_rows,
            last_insert_id: ok.last_insert_id,
            status: ok.status,
            warnings: ok.warnings,
            info: ok.info,
        }
    }

    /// The response in short, folded like [`Self::into_response`].
    pub(crate) fn into_summary(self) -> ResponseSummary {
        if let Some((code, sqlstate, message)) = self.error {
            return ResponseSummary::Err {
                code,
                sqlstate,
                message,
            };
        }
        if self.result_sets > 0 {
            return ResponseSummary::Rows {
                result_sets: self.result_sets,
                rows: self.rows,
            };
        }
        let ok = self.last_ok.unwrap_or_default();
        ResponseSummary::Ok {
            affected_rows: ok.affected_rows,
            warnings: ok.warnings,
        }
    }
}

fn unexpected(wanted: &str, payload: &[u8]) -> ClientError {
    ClientError::Protocol(format!(
        "expected {wanted}, got a packet of {} bytes starting with {:#04x}",
        payload.len(),
        payload.first().copied().unwrap_or(0)
    ))
}

/// Reads the complete response of the command just written to `stream` into `reader`.
pub(crate) async fn read_response<T: std::borrow::Borrow<crate::transport::Transport>>(
    stream: &mut PacketStream<T>,
    reader: &mut ResponseReader,
) -> Result<(), ClientError> {
    loop {
        let packet = stream.read().await?;
        match reader.feed(&packet.payload)? {
            Step::More => {}
            Step::Refuse => stream.write(&[]).await?,
            Step::Done => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use dpm_protocol::*;

    const CAPS: u64 = CLIENT_PROTOCOL_41 | CLIENT_TRANSACTIONS | CLIENT_MULTI_RESULTS;

    fn ok(affected: u64, status: u16) -> Bytes {
        let mut b = BytesMut::new();
        OkPacket {
            affected_rows: affected,
            last_insert_id: 7,
            status_flags: status,
            warnings: 1,
            info: Bytes::from_static(b"info"),
            ..Default::default()
        }
        .encode(&mut b, CAPS);
        b.freeze()
    }

    fn err(code: u16, message: &str) -> Bytes {
        let mut b = BytesMut::new();
        ErrPacket::new(code, *b"42S02", message.to_string()).encode(&mut b);
        b.freeze()
    }

    fn eof(status: u16) -> Bytes {
        let mut b = BytesMut::new();
        EofPacket {
            warnings: 0,
            status_flags: status,
        }
        .encode(&mut b, CAPS);
        b.freeze()
    }

    fn column(name: &str) -> Bytes {
        let mut b = BytesMut::new();
        ColumnDefinition41 {
            catalog: Bytes::from_static(b"def"),
            name: Bytes::copy_from_slice(name.as_bytes()),
            org_name: Bytes::copy_from_slice(name.as_bytes()),
            character_set: 45,
            column_length: 10,
            column_type: 253,
            ..Default::default()
        }
        .encode(&mut b, CAPS);
        b.freeze()
    }

    fn row(values: &[Option<&[u8]>]) -> Bytes {
        let mut b = BytesMut::new();
        TextRow {
            values: values
                .iter()
                .map(|v| v.map(Bytes::copy_from_slice))
                .collect(),
        }
        .encode(&mut b);
        b.freeze()
    }

    /// A result set: count, definitions, EOF, rows, EOF with `status`.
    fn result_set(names: &[&str], rows: &[&[Option<&[u8]>]], status: u16) -> Vec<Bytes> {
        let mut out = Vec::new();
        let mut count = BytesMut::new();
        put_lenenc_int(&mut count, names.len() as u64);
        out.push(count.freeze());
        out.extend(names.iter().map(|n| column(n)));
        out.push(eof(0));
        out.extend(rows.iter().map(|r| row(r)));
        out.push(eof(status));
        out
    }

    /// Feeds every packet; the reader must say Done exactly at the last one.
    fn run(packets: &[Bytes], keep_rows: bool) -> ResponseReader {
        let mut reader = ResponseReader::new(CAPS, keep_rows);
        for (i, p) in packets.iter().enumerate() {
            let step = reader.feed(p).unwrap();
            let last = i + 1 == packets.len();
            assert_eq!(step == Step::Done, last, "packet {i}: {step:?}");
        }
        reader
    }

    fn b(s: &str) -> Option<Bytes> {
        Some(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn ok_response() {
        let r = run(&[ok(3, SERVER_STATUS_AUTOCOMMIT)], true).into_response();
        assert_eq!(
            r,
            Response::Ok {
                affected_rows: 3,
                last_insert_id: 7,
                status: SERVER_STATUS_AUTOCOMMIT,
                warnings: 1,
                info: Bytes::from_static(b"info"),
            }
        );
        let s = run(&[ok(3, 0)], false).into_summary();
        assert_eq!(
            s,
            ResponseSummary::Ok {
                affected_rows: 3,
                warnings: 1
            }
        );
    }

    #[test]
    fn err_response() {
        let r = run(&[err(1146, "Table 'x' doesn't exist")], true).into_response();
        assert_eq!(
            r,
            Response::Err {
                code: 1146,
                sqlstate: *b"42S02",
                message: "Table 'x' doesn't exist".into()
            }
        );
    }

    #[test]
    fn bare_eof_is_an_ok() {
        let r = run(&[eof(SERVER_STATUS_AUTOCOMMIT)], true).into_response();
        assert!(matches!(
            r,
            Response::Ok {
                status: SERVER_STATUS_AUTOCOMMIT,
                ..
            }
        ));
    }

    #[test]
    fn one_result_set() {
        let packets = result_set(
            &["1", "NULL", "x"],
            &[&[Some(b"1"), None, Some(b"x")]],
            SERVER_STATUS_AUTOCOMMIT,
        );
        let r = run(&packets, true).into_response();
        assert_eq!(
            r,
            Response::Rows(vec![ResultSet {
                columns: vec!["1".into(), "NULL".into(), "x".into()],
                rows: vec![vec![b("1"), None, b("x")]],
                status: SERVER_STATUS_AUTOCOMMIT,
            }])
        );
        let s = run(&packets, false).into_summary();
        assert_eq!(
            s,
            ResponseSummary::Rows {
                result_sets: 1,
                rows: 1
            }
        );
    }

    #[test]
    fn two_result_sets_and_a_final_ok() {
        // What CALL of a procedure with two SELECTs sends.
        let mut packets = result_set(
            &["a"],
            &[&[Some(b"1")], &[Some(b"2")]],
            SERVER_MORE_RESULTS_EXISTS,
        );
        packets.extend(result_set(&["b", "c"], &[], SERVER_MORE_RESULTS_EXISTS));
        packets.push(ok(0, SERVER_STATUS_AUTOCOMMIT));
        let Response::Rows(sets) = run(&packets, true).into_response() else {
            panic!("rows expected");
        };
        assert_eq!(sets.len(), 2);
        assert_eq!(sets[0].rows, vec![vec![b("1")], vec![b("2")]]);
        assert_eq!(sets[1].columns, vec!["b".to_string(), "c".to_string()]);
        assert!(sets[1].rows.is_empty());
        assert_eq!(
            run(&packets, false).into_summary(),
            ResponseSummary::Rows {
                result_sets: 2,
                rows: 2
            }
        );
    }

    #[test]
    fn err_after_a_result_set_wins() {
        let mut packets = result_set(&["a"], &[&[Some(b"1")]], SERVER_MORE_RESULTS_EXISTS);
        packets.push(err(1064, "syntax"));
        assert!(matches!(
            run(&packets, true).into_response(),
            Response::Err { code: 1064, .. }
        ));
        // An ERR in place of a row ends the response too.
        let mut packets = result_set(&["a"], &[&[Some(b"1")]], 0);
        packets.pop();
        packets.push(err(1317, "interrupted"));
        assert!(matches!(
            run(&packets, false).into_summary(),
            ResponseSummary::Err { code: 1317, .. }
        ));
    }

    #[test]
    fn multi_ok_keeps_the_last() {
        let packets = [ok(1, SERVER_MORE_RESULTS_EXISTS), ok(2, 0)];
        assert!(matches!(
            run(&packets, true).into_response(),
            Response::Ok {
                affected_rows: 2,
                status: 0,
                ..
            }
        ));
    }

    #[test]
    fn local_infile_is_refused() {
        let mut reader = ResponseReader::new(CAPS, true);
        assert_eq!(
            reader
                .feed(&Bytes::from_static(b"\xfb/etc/passwd"))
                .unwrap(),
            Step::Refuse
        );
        assert_eq!(reader.feed(&ok(0, 0)).unwrap(), Step::Done);
    }

    #[test]
    fn malformed_packets_are_protocol_errors() {
        let mut reader = ResponseReader::new(CAPS, true);
        reader.feed(&Bytes::from_static(b"\x01")).unwrap();
        reader.feed(&column("a")).unwrap();
        // A row where the EOF after the column definitions belongs.
        let e = reader.feed(&row(&[Some(b"1")])).unwrap_err();
        assert!(matches!(e, ClientError::Protocol(_)), "{e}");
        // A row with the wrong number of columns.
        let mut reader = ResponseReader::new(CAPS, true);
        for p in &result_set(&["a"], &[], 0)[..3] {
            reader.feed(p).unwrap();
        }
        assert!(reader.feed(&row(&[Some(b"1"), None])).is_err());
    }

    /// Over a real socket pair: a row larger than one 16 MiB frame is joined, sequence
    /// ids are checked, and a LOCAL INFILE request is answered with an empty packet.
    #[tokio::test]
    async fn packet_stream_joins_frames_and_refuses_infile() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (ours, mut peer) = tokio::net::UnixStream::pair().unwrap();
        let mut stream = PacketStream::new(crate::transport::Transport::unix(ours));

        let big = vec![b'z'; MAX_PAYLOAD_LEN + 1];
        let mut wire = BytesMut::new();
        let mut seq = 1;
        for p in result_set(&["big"], &[&[Some(&big)]], 0) {
            seq = encode_packet(&mut wire, seq, &p);
        }
        assert!(seq > 6, "the row took two frames");
        stream.write(b"\x03SELECT big").await.unwrap();
        let (read, written) = tokio::join!(
            async {
                let mut reader = ResponseReader::new(CAPS, true);
                read_response(&mut stream, &mut reader)
                    .await
                    .map(|_| reader)
            },
            peer.write_all(&wire)
        );
        written.unwrap();
        let Response::Rows(sets) = read.unwrap().into_response() else {
            panic!("rows expected");
        };
        assert_eq!(sets[0].rows[0][0].as_deref(), Some(&big[..]));

        // The next exchange: LOCAL INFILE request, refusal, OK.
        let mut command = [0u8; 15];
        peer.read_exact(&mut command).await.unwrap(); // the first command, framed
        stream.reset_seq();
        stream.write(b"\x03LOAD").await.unwrap();
        let mut wire = BytesMut::new();
        encode_packet(&mut wire, 1, b"\xfbfile.csv");
        peer.write_all(&wire).await.unwrap();
        let mut reader = ResponseReader::new(CAPS, false);
        let (read, refusal) = tokio::join!(read_response(&mut stream, &mut reader), async {
            let mut got = [0u8; 9 + 4];
            peer.read_exact(&mut got).await.unwrap();
            let mut ok_wire = BytesMut::new();
            encode_packet(&mut ok_wire, 3, &ok(0, 0));
            peer.write_all(&ok_wire).await.unwrap();
            got
        });
        read.unwrap();
        assert_eq!(
            &refusal[9..],
            &[0, 0, 0, 2],
            "an empty packet, sequence id 2"
        );
        assert!(matches!(reader.into_summary(), ResponseSummary::Ok { .. }));

        // A packet with the wrong sequence id is a protocol error.
        stream.reset_seq();
        stream.write(b"\x0e").await.unwrap();
        let mut wire = BytesMut::new();
        encode_packet(&mut wire, 5, &ok(0, 0));
        peer.write_all(&wire).await.unwrap();
        let mut reader = ResponseReader::new(CAPS, false);
        let e = read_response(&mut stream, &mut reader).await.unwrap_err();
        assert!(e.to_string().contains("sequence id 5"), "{e}");
    }
}
