//! The data path: each connection's reader and writer tasks, forwarding between linked
//! connections, and writing packets with the sequence ids the protocol expects.
//!
//! Hot path: when no callback is registered for the events a read produces, the reader
//! walks the frame headers in its read buffer, lets the tracker peek at the first bytes
//! of each packet, rewrites the sequence byte in place and hands the whole run of frames
//! to the partner in one write — no allocation, no copy unless the partner's socket is
//! full. Lua is entered only for events that have a callback, and a service session's
//! pipeline only for the requests or replies its filters asked for (`crate::pipeline`).

use std::rc::Rc;

use bytes::{Buf, BytesMut};
use dpm_protocol::command::com;
use dpm_protocol::frame::{PacketHeader, HEADER_LEN, MAX_PAYLOAD_LEN};

use crate::conn::{Conn, Role, HIGH_WATER};
use crate::event::{Event, Verdict};
use crate::pipeline;
use crate::session::Session;
use crate::sink::Packet;
use crate::tracker::{FrameInfo, PacketKind, TrackError};
use crate::worker::Worker;

/// Initial and minimum free space of a read buffer.
const READ_CHUNK: usize = 16 * 1024;
/// Size of each worker's scratch read buffer (the hot path reads into it).
pub(crate) const SCRATCH_LEN: usize = 64 * 1024;

/// Starts the reader and writer tasks of a connected connection.
/// Both are polled as their session's work (`crate::log_context`), when the connection
/// belongs to one yet.
pub(crate) fn start_io(worker: &Worker, conn: &Rc<Conn>) {
    use crate::log_context::scoped;
    tokio::task::spawn_local(scoped(conn, reader_loop(worker.clone(), conn.clone())));
    tokio::task::spawn_local(scoped(conn, writer_loop(worker.clone(), conn.clone())));
}

/// Writes one logical packet to `conn`, split into frames of at most 16 MiB - 1, each
/// with the sequence id the tracker assigns. Returns the event reached, if any.
pub(crate) fn write_packet(conn: &Conn, payload: &[u8]) -> Option<Event> {
    let mut event = None;
    let mut rest = payload;
    let mut first = true;
    loop {
        let chunk = &rest[..rest.len().min(MAX_PAYLOAD_LEN)];
        rest = &rest[chunk.len()..];
        let (seq, info) = conn.tracker.borrow_mut().on_send(chunk);
        if first {
            event = info.event;
            first = false;
        }
        let mut header = [0u8; HEADER_LEN];
        PacketHeader {
            payload_len: chunk.len(),
            seq,
        }
        .write(&mut header);
        conn.send_frame(&header, chunk);
        if chunk.len() < MAX_PAYLOAD_LEN {
            return event;
        }
    }
}

async fn writer_loop(worker: Worker, conn: Rc<Conn>) {
    let Some(stream) = conn.transport.get() else {
        return;
    };
    loop {
        match conn.flush_some() {
            Ok(true) => {
                if conn.closing.get() {
                    break;
                }
                conn.out_ready.notified().await;
            }
            Ok(false) => {
                let ready = if conn.closing.get() {
                    let limit = worker.inner.config.close_flush_timeout;
                    tokio::time::timeout(limit, stream.writable())
                        .await
                        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
                } else {
                    stream.writable().await
                };
                if ready.is_err() {
                    break;
                }
            }
            Err(e) => {
                tracing::debug!(conn = conn.id, error = %e, "write failed");
                worker.close(conn.id);
                break;
            }
        }
    }
    conn.out.borrow_mut().clear();
    stream.shutdown();
}

async fn reader_loop(worker: Worker, conn: Rc<Conn>) {
    let Some(stream) = conn.transport.get() else {
        return;
    };
    // Bytes kept between reads: a partial frame, or the rest of a read that reached a
    // callback. Empty (and unallocated) most of the time.
    let mut buf = conn.pending_input.take();
    let mut assembly: Option<Assembly> = None;
    if !buf.is_empty() {
        // Sent right after a login dpm ran itself: handled before waiting for more.
        if let Err(e) = process(&worker, &conn, &mut buf, &mut assembly).await {
            tracing::warn!(conn = conn.id, role = ?conn.role, peer = %conn.target, "protocol error: {e}; closing the connection");
            worker.close(conn.id);
            return;
        }
    }
    loop {
        if conn.closing.get() {
            return;
        }
        if let Some(partner) = worker.partner_of(&conn) {
            if partner.unsent() > HIGH_WATER {
                // Backpressure: the partner reads slower than we do; wait for it.
                let drained = partner.drained.notified();
                tokio::select! {
                    _ = drained => {}
                    _ = conn.close_signal.notified() => return,
                }
                continue;
            }
        }
        // Closing shuts the socket's read side down, which wakes this wait: no second
        // future (and no Notify lock) per read.
        if stream.readable().await.is_err() || conn.closing.get() {
            worker.close(conn.id);
            return;
        }
        let outcome = if buf.is_empty() && assembly.is_none() {
            read_fast(&worker, &conn, stream, &mut buf)
        } else {
            read_into(&worker, &conn, stream, &mut buf)
        };
        if stream.has_pending_output() {
            // A TLS read answered the peer (handshake, key update) and the socket did
            // not take it all: the writer flushes the rest.
            conn.out_ready.notify_one();
        }
        let result = match outcome {
            Read::Closed => {
                worker.close(conn.id);
                return;
            }
            Read::WouldBlock | Read::Forwarded => continue,
            Read::Failed(e) => Err(e),
            Read::Stopped(stop) => {
                match handle_stop(&worker, &conn, &mut buf, &mut assembly, stop).await {
                    Ok(()) => process(&worker, &conn, &mut buf, &mut assembly).await,
                    Err(e) => Err(e),
                }
            }
            Read::Buffered => process(&worker, &conn, &mut buf, &mut assembly).await,
        };
        if let Err(e) = result {
            tracing::warn!(conn = conn.id, role = ?conn.role, peer = %conn.target, "protocol error: {e}; closing the connection");
            worker.close(conn.id);
            return;
        }
        if buf.is_empty() && !conn.mask.get().has_packet_events() {
            // An idle connection holds no read buffer (10,000 idle clients cost little).
            buf = BytesMut::new();
        }
    }
}

/// What one read produced.
enum Read {
    /// The peer closed, or the socket failed.
    Closed,
    /// Spurious readiness.
    WouldBlock,
    /// Everything read was forwarded from the scratch buffer.
    Forwarded,
    /// A frame the tracker refuses.
    Failed(TrackError),
    /// Bytes were added to the connection's buffer; walk them.
    Buffered,
    /// The fast path stopped at a frame that needs a callback; `buf` holds the rest.
    Stopped(Stop),
}

/// The hot path: reads into the worker's scratch buffer and forwards every complete
/// frame that needs no callback straight from it. Only what is left (a partial frame,
/// or frames from the first one that needs a callback) is copied into `buf`.
fn read_fast(
    worker: &Worker,
    conn: &Conn,
    stream: &crate::transport::Transport,
    buf: &mut BytesMut,
) -> Read {
    let mut scratch = worker.inner.scratch.borrow_mut();
    let n = match stream.try_read(&mut scratch[..]) {
        Ok(0) => return Read::Closed,
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Read::WouldBlock,
        Err(e) => {
            read_failed(worker, conn, &e);
            return Read::Closed;
        }
    };
    worker.metrics().bytes_read(conn.role == Role::Client, n);
    match walk(worker, conn, &mut scratch[..n], false) {
        Err(e) => Read::Failed(e),
        Ok(Stop {
            at,
            why: StopReason::Drained,
        }) if at == n => Read::Forwarded,
        Ok(Stop { at, why }) => {
            buf.extend_from_slice(&scratch[at..n]);
            match why {
                StopReason::Drained => Read::Buffered,
                // `buf` now starts with the frame the walk stopped at.
                why => Read::Stopped(Stop { at: 0, why }),
            }
        }
    }
}

/// A read failed: the connection is closed; a TLS failure (`InvalidData` comes only
/// from TLS) is said in the log and, during a login, to the waiting client.
fn read_failed(worker: &Worker, conn: &Conn, e: &std::io::Error) {
    if e.kind() == std::io::ErrorKind::InvalidData {
        crate::tls::report_failure(worker, conn, e);
    } else {
        if e.kind() == std::io::ErrorKind::ConnectionReset {
            conn.reset_by_peer.set(true);
        }
        tracing::debug!(conn = conn.id, error = %e, "read failed");
    }
}

/// The slow path: reads into the connection's own buffer behind what it already holds.
fn read_into(
    worker: &Worker,
    conn: &Conn,
    stream: &crate::transport::Transport,
    buf: &mut BytesMut,
) -> Read {
    reserve_for_next_read(buf);
    match stream.try_read_buf(buf) {
        Ok(0) => Read::Closed,
        Ok(n) => {
            worker.metrics().bytes_read(conn.role == Role::Client, n);
            Read::Buffered
        }
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Read::WouldBlock,
        Err(e) => {
            read_failed(worker, conn, &e);
            Read::Closed
        }
    }
}

/// Makes room for the next read: at least READ_CHUNK, or the rest of a large frame
/// whose header is already buffered.
fn reserve_for_next_read(buf: &mut BytesMut) {
    let frame = PacketHeader::parse(buf).map_or(0, |h| HEADER_LEN + h.payload_len);
    let want = frame.saturating_sub(buf.len()).max(READ_CHUNK);
    if buf.capacity() - buf.len() < want {
        buf.reserve(want);
    }
}

/// A packet of several frames being joined for a callback or the pipeline.
struct Assembly {
    event: Option<Event>,
    pipeline: bool,
    login: bool,
    kind: PacketKind,
    payload: BytesMut,
}

/// Where walking a buffer of frames stopped: at byte `at`, and why.
struct Stop {
    at: usize,
    why: StopReason,
}

enum StopReason {
    /// Every complete frame before `at` was forwarded (or dropped); a partial frame may follow.
    Drained,
    /// The frame at `at` (`len` bytes, already seen by the tracker) goes to the
    /// connection's callback for `event` and/or the session's pipeline (`pipeline`).
    Callback {
        len: usize,
        event: Option<Event>,
        pipeline: bool,
        /// A login packet dpm changes or answers because it terminates TLS (`crate::tls`).
        login: bool,
        kind: PacketKind,
        continued: bool,
    },
    /// Every frame before `at` was forwarded; the last one ended a reply the session's
    /// filters await: they see it now.
    ReplyEnded(pipeline::ReplyEnd),
    /// The frame at `at` (`len` bytes, tracked) is a COM_CHANGE_USER in a session whose
    /// login dpm ran: dpm answers it (`crate::authenticator`).
    ChangeUser { len: usize },
    /// The frame at `at` (`len` bytes, tracked, sequence id rewritten) must be sent to
    /// `target` once the target's callback for `event` (a "sent" transition) ran.
    SentCallback {
        len: usize,
        target: Rc<Conn>,
        event: Event,
    },
}

impl Stop {
    fn drained(at: usize) -> Stop {
        Stop {
            at,
            why: StopReason::Drained,
        }
    }
}

/// Walks the complete frames of `buf`: lets the tracker look at each, rewrites sequence
/// ids in place and forwards every run of frames to the partner with one write. Stops
/// before the first frame that needs a callback. Synchronous and allocation-free.
fn walk(
    worker: &Worker,
    conn: &Conn,
    buf: &mut [u8],
    assembling: bool,
) -> Result<Stop, TrackError> {
    let target = worker.partner_of(conn);
    let session = conn.session.borrow().clone();
    let pipeline = session.as_ref().and_then(|s| s.pipeline());
    // A backend of a service session that is not linked (a readwritesplit spare): it
    // answers session commands only, and its answers go nowhere (`session::backends`).
    let spare = target.is_none() && pipeline.is_some() && conn.role == Role::Backend;
    let mut run = 0; // start of the run of frames not yet sent
    let mut at = 0;
    loop {
        if conn.closing.get() {
            return Ok(Stop::drained(buf.len()));
        }
        if conn.tracker.borrow().is_tunnel() {
            // TLS or compression end to end: from here on bytes pass untouched.
            send_run(target.as_deref(), &buf[run..]);
            return Ok(Stop::drained(buf.len()));
        }
        let Some(header) = PacketHeader::parse(&buf[at..]) else {
            break;
        };
        let len = HEADER_LEN + header.payload_len;
        if buf.len() - at < len {
            break;
        }
        let info = conn
            .tracker
            .borrow_mut()
            .on_receive(header.seq, &buf[at + HEADER_LEN..at + len])?;
        if info.kind == PacketKind::PrepareOk && !spare {
            // A session with several backends shows the client its own statement ids.
            show_client_statement_id(
                session.as_deref(),
                conn,
                &mut buf[at + HEADER_LEN..at + len],
            );
        }
        let payload = &buf[at + HEADER_LEN..at + len];
        if spare {
            if let Some(session) = &session {
                let ends = ends_response(&info);
                crate::session::backends::spare_packet(session, conn, info.kind, payload, ends);
            }
            at += len;
            run = at;
            continue;
        }
        if let (Some(session), Some(pipeline)) = (&session, &pipeline) {
            // Only service sessions keep their state: a plain DPM link pays nothing.
            observe(worker, session, pipeline, conn, &info, payload);
            if conn.role == Role::Backend && crate::session::replay::recording(session) {
                // A transaction kept for a replay: its answers are checksummed.
                let ends = ends_response(&info);
                crate::session::replay::answer_packet(session, info.kind, payload, ends);
            }
        }
        let callback = info.event.filter(|&e| conn.mask.get().has(e));
        let stage = pipeline
            .as_deref()
            .is_some_and(|p| pipeline_stops(p, conn, &info, payload));
        let login = crate::tls::intercepts(conn, target.as_deref(), info.kind);
        // Two commands dpm may answer itself when it ran the login: one test per frame.
        if let (
            PacketKind::Command(command @ (com::CHANGE_USER | com::QUIT)),
            Role::Client,
            Some(s),
        ) = (info.kind, conn.role, &session)
        {
            if command == com::CHANGE_USER && s.has_proxy_login() {
                send_run(target.as_deref(), &buf[run..at]);
                let why = StopReason::ChangeUser { len };
                return Ok(Stop { at, why });
            }
            if command == com::QUIT
                && callback.is_none()
                && !stage
                && target
                    .as_ref()
                    .is_some_and(|t| crate::session::pool::keeps_at_quit(s, t))
            {
                // The client leaves between statements and its server connection stays
                // for the next session: the server is not told to quit; dpm closes the
                // client as the server would have. (`deliver` does the same for a
                // COM_QUIT a callback or filter passes on.)
                send_run(target.as_deref(), &buf[run..at]);
                worker.close(conn.id);
                return Ok(Stop::drained(buf.len()));
            }
        }
        // The end of a reply the filters await normally goes out with the rest of the run
        // (one write, as without filters) and the filters see it right after; only when a
        // callback must see the packet first does the walk stop before it.
        let reply_end = stage
            && conn.role == Role::Backend
            && callback.is_none()
            && !assembling
            && !info.continued
            && target
                .as_ref()
                .is_some_and(|t| !t.mask.get().has_packet_events());
        if (assembling || callback.is_some() || stage || login) && !reply_end {
            send_run(target.as_deref(), &buf[run..at]);
            let why = StopReason::Callback {
                len,
                event: callback,
                pipeline: stage,
                login,
                kind: info.kind,
                continued: info.continued,
            };
            return Ok(Stop { at, why });
        }
        if let (Some(p), PacketKind::Command(command)) = (&pipeline, info.kind) {
            pipeline::note_request_sent(p, command, None);
        }
        let ended = reply_end.then(|| pipeline::ReplyEnd::of(info.kind, payload));
        let Some(t) = &target else {
            if conn.pool.get() != crate::session::pool::PoolState::Out {
                // A kept connection's answers to its reset.
                crate::session::pool::reset_answer(conn, &info, payload);
            }
            // Not linked and nobody listening: the frame has nowhere to go.
            send_run(None, &buf[run..at]);
            at += len;
            run = at;
            continue;
        };
        let (seq, sent) = t
            .tracker
            .borrow_mut()
            .on_send(&buf[at + HEADER_LEN..at + len]);
        buf[at + 3] = seq;
        if info.starts_tunnel || sent.starts_tunnel {
            conn.tracker.borrow_mut().enter_tunnel();
            t.tracker.borrow_mut().enter_tunnel();
        }
        if let Some(event) = sent.event.filter(|&e| t.mask.get().has(e)) {
            send_run(Some(t), &buf[run..at]);
            let why = StopReason::SentCallback {
                len,
                target: t.clone(),
                event,
            };
            return Ok(Stop { at, why });
        }
        at += len;
        if let Some(end) = ended {
            send_run(target.as_deref(), &buf[run..at]);
            let why = StopReason::ReplyEnded(end);
            return Ok(Stop { at, why });
        }
    }
    send_run(target.as_deref(), &buf[run..at]);
    Ok(Stop::drained(at))
}

fn send_run(target: Option<&Conn>, bytes: &[u8]) {
    if let (Some(target), false) = (target, bytes.is_empty()) {
        target.send(bytes);
    }
}

/// Handles every complete frame in `buf`; keeps an incomplete one for the next read.
async fn process(
    worker: &Worker,
    conn: &Rc<Conn>,
    buf: &mut BytesMut,
    assembly: &mut Option<Assembly>,
) -> Result<(), TrackError> {
    loop {
        match walk(worker, conn, &mut buf[..], assembly.is_some())? {
            Stop {
                at,
                why: StopReason::Drained,
            } => {
                buf.advance(at);
                return Ok(());
            }
            stop => handle_stop(worker, conn, buf, assembly, stop).await?,
        }
    }
}

/// Carries out a stop of [`walk`] whose offsets are relative to `buf`, consuming the
/// frame it is about.
async fn handle_stop(
    worker: &Worker,
    conn: &Rc<Conn>,
    buf: &mut BytesMut,
    assembly: &mut Option<Assembly>,
    stop: Stop,
) -> Result<(), TrackError> {
    buf.advance(stop.at);
    match stop.why {
        StopReason::Drained => {}
        StopReason::ReplyEnded(end) => {
            let session = conn.session.borrow().clone();
            if let Some((session, stages)) = session.and_then(|s| s.pipeline().map(|p| (s, p))) {
                pipeline::run_reply(worker, &session, stages, end).await;
            }
        }
        StopReason::ChangeUser { len } => {
            let frame = buf.split_to(len).freeze();
            let payload = frame.slice(HEADER_LEN..);
            if !crate::authenticator::change_user(worker, conn, payload, buf).await {
                worker.close(conn.id);
            }
        }
        StopReason::SentCallback { len, target, event } => {
            // A "sent" callback runs once the packet is queued on its connection, whoever
            // wrote it (see `deliver`).
            target.send(&buf[..len]);
            buf.advance(len);
            if let Some(sink) = target.generation.sink() {
                sink.packet(target.id, event, None).await;
            }
        }
        StopReason::Callback {
            len,
            event,
            pipeline,
            login,
            kind,
            continued,
        } => {
            let frame = buf.split_to(len);
            if login && kind == PacketKind::SslRequest {
                // dpm answers it: what follows in `buf` is the client's TLS handshake.
                if !crate::tls::switch_client_to_tls(conn, buf) {
                    worker.close(conn.id);
                }
                return Ok(());
            }
            if login
                && kind == PacketKind::HandshakeResponse
                && crate::tls::refuse_if_insecure(worker, conn)
            {
                return Ok(());
            }
            let packet = if continued || assembly.is_some() {
                let asm = assembly.get_or_insert_with(|| Assembly {
                    event,
                    pipeline,
                    login,
                    kind,
                    payload: BytesMut::new(),
                });
                asm.payload.extend_from_slice(&frame[HEADER_LEN..]);
                if continued {
                    return Ok(());
                }
                assembly.take().map(|a| {
                    let packet = Packet {
                        kind: a.kind,
                        payload: a.payload.freeze(),
                    };
                    (a.event, a.pipeline, a.login, packet)
                })
            } else {
                let payload = frame.freeze().slice(HEADER_LEN..);
                Some((event, pipeline, login, Packet { kind, payload }))
            };
            if let Some((event, pipeline, login, packet)) = packet {
                if event.is_some() || pipeline || login {
                    handle_callback(worker, conn, event, pipeline, login, packet).await;
                }
            }
        }
    }
    Ok(())
}

/// Runs a received packet through its session's stages — the connection's callback
/// for `event` (through the `EventSink`), then the service pipeline (`pipeline`) — and
/// forwards what is left (a `login` packet with dpm's TLS changes).
async fn handle_callback(
    worker: &Worker,
    conn: &Rc<Conn>,
    event: Option<Event>,
    pipeline: bool,
    login: bool,
    packet: Packet,
) {
    let mut verdict = Verdict::Forward;
    if let (Some(event), Some(sink)) = (event, conn.generation.sink()) {
        verdict = sink.packet(conn.id, event, Some(packet.clone())).await;
    }
    if conn.closing.get() {
        return;
    }
    let session = conn.session.borrow().clone();
    if verdict == Verdict::Drop {
        // A command a callback swallowed gets no response from the server either.
        if let (Some(s), PacketKind::Command(command)) = (&session, packet.kind) {
            s.state.borrow_mut().answered_by_pipeline(command);
        }
        // The end of a reply the filters awaited, swallowed: forget it.
        if let (true, Role::Backend, Some(p)) = (
            pipeline,
            conn.role,
            session.as_ref().and_then(|s| s.pipeline()),
        ) {
            pipeline::reply_dropped(&p);
        }
        return;
    }
    if let Some((session, stages)) = session.and_then(|s| s.pipeline().map(|p| (s, p))) {
        match (conn.role, packet.kind) {
            (Role::Client, PacketKind::Command(_)) if pipeline => {
                pipeline::run_request(worker, conn, &session, stages, packet.payload).await;
                return finish(worker, conn, verdict);
            }
            (Role::Client, PacketKind::Command(command)) => {
                pipeline::note_request_sent(&stages, command, None)
            }
            (Role::Backend, kind) if pipeline => {
                let end = pipeline::ReplyEnd::of(kind, &packet.payload);
                pipeline::run_reply(worker, &session, stages, end).await;
            }
            _ => {}
        }
    }
    let Some(target) = worker.partner_of(conn) else {
        return;
    };
    if login {
        crate::tls::deliver_login_packet(worker, conn, &target, packet.payload).await;
    } else {
        deliver(worker, conn, &target, &packet.payload).await;
    }
    finish(worker, conn, verdict);
}

fn finish(worker: &Worker, conn: &Conn, verdict: Verdict) {
    if verdict == Verdict::ForwardThenUnlink {
        let _ = worker.unlink(conn.id);
    }
}

/// Writes one packet from `from` to `to` and runs `to`'s "sent" callback, if any. The
/// one order for every path that writes a packet: the "sent" callback runs after the
/// packet was queued on its connection.
pub(crate) async fn deliver(worker: &Worker, from: &Conn, to: &Conn, payload: &[u8]) {
    if payload == [com::QUIT] && to.role == Role::Backend {
        let session = from.session.borrow().clone();
        if session.is_some_and(|s| crate::session::pool::keeps_at_quit(&s, to)) {
            // As in `walk`: the server connection stays for the next session.
            worker.close(from.id);
            return;
        }
    }
    let sent = write_packet(to, payload);
    if from.tracker.borrow().is_tunnel() || to.tracker.borrow().is_tunnel() {
        from.tracker.borrow_mut().enter_tunnel();
        to.tracker.borrow_mut().enter_tunnel();
    }
    // The mask first: the sink (an `Rc` clone) only for a packet with a callback.
    if let Some(event) = sent.filter(|&e| to.mask.get().has(e)) {
        if let Some(sink) = to.generation.sink() {
            sink.packet(to.id, event, None).await;
        }
    }
}

/// Notes what a packet tells about its session (status flags, schema, prepared
/// statements) and counts it for the metrics (commands by type; server errors by code;
/// the statement's latency on its server when its response ends). Only the kinds that
/// carry session state are looked at further.
#[inline]
fn observe(
    worker: &Worker,
    session: &Session,
    pipeline: &pipeline::Pipeline,
    conn: &Conn,
    info: &FrameInfo,
    payload: &[u8],
) {
    if conn.role == Role::Client {
        match info.kind {
            PacketKind::Command(command) => {
                pipeline.service.metrics.command(command);
                if command == dpm_protocol::command::com::QUERY {
                    let sql = payload.get(1..).unwrap_or_default();
                    pipeline.service.metrics.text_statement(sql);
                }
                let mut state = session.state.borrow_mut();
                let idle = !state.is_running();
                state.client_packet(info.kind, payload);
                if let (Some(config), true, dpm_protocol::command::com::QUERY) =
                    (crate::digests::config(), idle, command)
                {
                    drop(state);
                    let pending = crate::digests::statement_starts(
                        worker, config, session, pipeline, payload,
                    );
                    session.state.borrow_mut().digest = Some(pending);
                }
            }
            PacketKind::HandshakeResponse => {
                session.state.borrow_mut().client_packet(info.kind, payload);
            }
            _ => {}
        }
    } else if info.kind == PacketKind::Row {
        if let Some(pending) = session.state.borrow_mut().digest.as_mut() {
            pending.row();
        }
    } else if matches!(
        info.kind,
        PacketKind::Ok | PacketKind::Eof | PacketKind::Err | PacketKind::PrepareOk
    ) {
        let caps = conn.tracker.borrow().negotiated_caps();
        let ends = ends_response(info);
        if info.kind == PacketKind::Err {
            if let Some(code) = payload.get(1..3) {
                worker
                    .metrics()
                    .server_error(u16::from_le_bytes([code[0], code[1]]));
            }
        }
        let mut state = session.state.borrow_mut();
        let started = state.server_packet(info.kind, payload, caps, ends);
        if let Some(started) = started {
            // The statement's second clock read (the first was as dpm read the command).
            let took = started.elapsed();
            pipeline.statement_took(took);
            if let Some(pending) = state.digest.take() {
                drop(state);
                let failed = info.kind == PacketKind::Err;
                crate::digests::statement_ended(worker, pending, started, took, failed);
            }
        }
    }
}

/// The linked backend answered a COM_STMT_PREPARE: in a session with several backends
/// the answer is rewritten, in place, to carry the id the client knows the statement by
/// (`session::statements`).
fn show_client_statement_id(session: Option<&Session>, conn: &Conn, payload: &mut [u8]) {
    let Some(session) = session else {
        return;
    };
    let id = session
        .pipeline()
        .and_then(|p| p.statement_being_prepared());
    if let Some(id) = id {
        crate::session::backends::show_client_id(session, id, conn, payload);
    }
}

/// True when a server packet ends its command's whole response.
#[inline]
fn ends_response(info: &FrameInfo) -> bool {
    matches!(info.event, Some(Event::ResponseEnded | Event::ServerError))
}

/// True when the session's pipeline must see this frame: a client command a filter wants
/// (asked whole, without stopping: a filter whose `match` does not match costs no stop),
/// or the last packet of a reply they await.
#[inline]
fn pipeline_stops(
    pipeline: &pipeline::Pipeline,
    conn: &Conn,
    info: &FrameInfo,
    payload: &[u8],
) -> bool {
    if conn.role == Role::Client {
        return pipeline.interest.requests
            && matches!(info.kind, PacketKind::Command(_))
            // The first frame of a ≥ 16 MiB command is not the whole command: it stops.
            && (info.continued || pipeline::wanted(pipeline, payload));
    }
    pipeline::note_reply_packet(pipeline, info.kind, ends_response(info))
}
