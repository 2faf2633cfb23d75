//! The data path: each connection's reader and writer tasks, forwarding between linked
//! connections, and writing packets with the sequence ids the protocol expects.
//!
//! Hot path: when no callback is registered for the events a read produces, the reader
//! walks the frame headers in its read buffer, lets the tracker peek at the first bytes
//! of each packet, rewrites the sequence byte in place and hands the whole run of frames
//! to the partner in one write — no allocation, no copy unless the partner's socket is
//! full. Lua is entered only for events that have a callback.

use std::rc::Rc;

use bytes::{Buf, Bytes, BytesMut};
use dpm_protocol::frame::{PacketHeader, HEADER_LEN, MAX_PAYLOAD_LEN};

use crate::conn::{Conn, HIGH_WATER};
use crate::event::{Event, Verdict};
use crate::tracker::TrackError;
use crate::worker::Worker;

/// Initial and minimum free space of a read buffer.
const READ_CHUNK: usize = 16 * 1024;
/// An idle read buffer larger than this is given back.
const MAX_IDLE_BUFFER: usize = 256 * 1024;

/// Starts the reader and writer tasks of a connected connection.
pub(crate) fn start_io(worker: &Worker, conn: &Rc<Conn>) {
    tokio::task::spawn_local(reader_loop(worker.clone(), conn.clone()));
    tokio::task::spawn_local(writer_loop(worker.clone(), conn.clone()));
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
    let Some(stream) = conn.stream.get() else {
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
    let Some(stream) = conn.stream.get() else {
        return;
    };
    let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut assembly: Option<Assembly> = None;
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
        tokio::select! {
            r = stream.readable() => if r.is_err() { worker.close(conn.id); return; },
            _ = conn.close_signal.notified() => return,
        }
        reserve_for_next_read(&mut rbuf);
        match stream.try_read_buf(&mut rbuf) {
            Ok(0) => {
                tracing::debug!(conn = conn.id, "peer closed");
                worker.close(conn.id);
                return;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => {
                tracing::debug!(conn = conn.id, error = %e, "read failed");
                worker.close(conn.id);
                return;
            }
        }
        if let Err(e) = process(&worker, &conn, &mut rbuf, &mut assembly).await {
            tracing::warn!(conn = conn.id, role = ?conn.role, peer = %conn.target, "protocol error: {e}; closing the connection");
            worker.close(conn.id);
            return;
        }
    }
}

/// Makes room for the next read: at least READ_CHUNK, or the rest of a large frame
/// whose header is already buffered. Gives a big buffer back once it is empty.
fn reserve_for_next_read(rbuf: &mut BytesMut) {
    if rbuf.is_empty() && rbuf.capacity() > MAX_IDLE_BUFFER {
        *rbuf = BytesMut::with_capacity(READ_CHUNK);
        return;
    }
    let frame = PacketHeader::parse(rbuf).map_or(0, |h| HEADER_LEN + h.payload_len);
    let want = frame.saturating_sub(rbuf.len()).max(READ_CHUNK);
    if rbuf.capacity() - rbuf.len() < want {
        rbuf.reserve(want);
    }
}

/// A packet of several frames being joined for a callback.
struct Assembly {
    event: Event,
    payload: BytesMut,
}

/// Handles every complete frame in `rbuf`; keeps an incomplete one for the next read.
async fn process(
    worker: &Worker,
    conn: &Rc<Conn>,
    rbuf: &mut BytesMut,
    assembly: &mut Option<Assembly>,
) -> Result<(), TrackError> {
    // rbuf[..ready] holds frames already checked and rewritten, waiting to be forwarded.
    let mut ready = 0;
    loop {
        if conn.closing.get() {
            return Ok(());
        }
        if conn.tracker.borrow().is_tunnel() {
            // TLS or compression end to end: from here on bytes pass untouched.
            if let Some(partner) = worker.partner_of(conn) {
                partner.send(rbuf);
            }
            rbuf.clear();
            return Ok(());
        }
        let Some(header) = PacketHeader::parse(&rbuf[ready..]) else {
            break;
        };
        let frame_len = HEADER_LEN + header.payload_len;
        if rbuf.len() - ready < frame_len {
            break;
        }
        let payload = &rbuf[ready + HEADER_LEN..ready + frame_len];
        let info = conn.tracker.borrow_mut().on_receive(header.seq, payload)?;
        let wants_callback = info.event.filter(|&e| conn.mask.get().has(e));
        let partner = worker.partner_of(conn);

        if assembly.is_some() || wants_callback.is_some() {
            flush(partner.as_deref(), rbuf, &mut ready);
            let frame = rbuf.split_to(frame_len);
            let event = assembly
                .as_ref()
                .map_or_else(|| wants_callback.unwrap_or(Event::MY_CLOSING), |a| a.event);
            let packet = if info.continued || assembly.is_some() {
                let asm = assembly.get_or_insert_with(|| Assembly {
                    event,
                    payload: BytesMut::new(),
                });
                asm.payload.extend_from_slice(&frame[HEADER_LEN..]);
                if info.continued {
                    continue;
                }
                assembly
                    .take()
                    .map(|a| a.payload.freeze())
                    .unwrap_or_default()
            } else {
                frame.freeze().slice(HEADER_LEN..)
            };
            handle_callback(worker, conn, event, packet).await;
            continue;
        }

        let Some(target) = partner else {
            // Not linked and nobody listening: the packet has nowhere to go.
            flush(None, rbuf, &mut ready);
            rbuf.advance(frame_len);
            continue;
        };
        let (seq, sent) = target.tracker.borrow_mut().on_send(payload);
        if let Some(event) = sent.event.filter(|&e| target.mask.get().has(e)) {
            // The partner's "sent" callback runs before the bytes move, as in the original.
            flush(Some(&target), rbuf, &mut ready);
            if let Some(sink) = worker.sink() {
                sink.packet(target.id, event, None).await;
            }
        }
        rbuf[ready + 3] = seq;
        ready += frame_len;
        if info.starts_tunnel || sent.starts_tunnel {
            conn.tracker.borrow_mut().enter_tunnel();
            target.tracker.borrow_mut().enter_tunnel();
        }
    }
    flush(worker.partner_of(conn).as_deref(), rbuf, &mut ready);
    Ok(())
}

/// Sends the first `ready` bytes of `rbuf` to `target` and drops them from the buffer.
fn flush(target: Option<&Conn>, rbuf: &mut BytesMut, ready: &mut usize) {
    if *ready == 0 {
        return;
    }
    if let Some(target) = target {
        target.send(&rbuf[..*ready]);
    }
    rbuf.advance(*ready);
    *ready = 0;
}

/// Runs the callback for a received packet and carries out its verdict.
async fn handle_callback(worker: &Worker, conn: &Rc<Conn>, event: Event, packet: Bytes) {
    let Some(sink) = worker.sink() else {
        return;
    };
    let verdict = sink.packet(conn.id, event, Some(packet.clone())).await;
    if conn.closing.get() || verdict == Verdict::Drop {
        return;
    }
    let Some(target) = worker.partner_of(conn) else {
        return;
    };
    let sent = write_packet(&target, &packet);
    if conn.tracker.borrow().is_tunnel() || target.tracker.borrow().is_tunnel() {
        conn.tracker.borrow_mut().enter_tunnel();
        target.tracker.borrow_mut().enter_tunnel();
    }
    if let Some(event) = sent.filter(|&e| target.mask.get().has(e)) {
        sink.packet(target.id, event, None).await;
    }
    if verdict == Verdict::ForwardThenUnlink {
        let _ = worker.unlink(conn.id);
    }
}
