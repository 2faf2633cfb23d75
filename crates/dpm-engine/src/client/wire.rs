//! The client's packet stream: whole logical packets read from and written to a
//! [`Transport`], with the sequence ids of one exchange checked and assigned.
//!
//! Framing (the 4-byte header, 16 MiB continuation frames) is `dpm-protocol`'s
//! [`PacketDecoder`] and [`encode_packet`]; this file only moves bytes and keeps the
//! sequence counter.

use std::borrow::Borrow;

use bytes::BytesMut;
use dpm_protocol::{encode_packet, Packet, PacketDecoder};

use super::error::ClientError;
use crate::transport::Transport;

/// Bytes asked of the socket per read (the buffer grows further when a packet needs it).
const READ_CHUNK: usize = 64 * 1024;

/// A connected socket read and written packet by packet: owned (the engine's own
/// client) or borrowed from a connection (a login dpm runs itself).
pub(crate) struct PacketStream<T: Borrow<Transport> = Transport> {
    transport: T,
    /// Received bytes not yet taken as packets.
    read_buf: BytesMut,
    /// Reused for every packet written.
    write_buf: BytesMut,
    decoder: PacketDecoder,
    /// The sequence id the next packet (read or written) must carry.
    seq: u8,
}

impl<T: Borrow<Transport>> PacketStream<T> {
    pub(crate) fn new(transport: T) -> PacketStream<T> {
        PacketStream {
            transport,
            read_buf: BytesMut::with_capacity(READ_CHUNK),
            write_buf: BytesMut::new(),
            decoder: PacketDecoder::default(),
            seq: 0,
        }
    }

    /// Starts a new exchange: the next packet written (a command) carries sequence id 0.
    pub(crate) fn reset_seq(&mut self) {
        self.seq = 0;
    }

    /// Reads the next logical packet; its sequence id must be the expected one.
    pub(crate) async fn read(&mut self) -> Result<Packet, ClientError> {
        loop {
            if let Some(packet) = self
                .decoder
                .decode(&mut self.read_buf)
                .map_err(|e| ClientError::Protocol(e.to_string()))?
            {
                if packet.seq != self.seq {
                    return Err(ClientError::Protocol(format!(
                        "packet out of order: sequence id {} where {} was expected",
                        packet.seq, self.seq
                    )));
                }
                self.seq = packet.next_seq();
                return Ok(packet);
            }
            self.fill().await?;
        }
    }

    /// Waits for more bytes from the socket; end-of-file is [`ClientError::Closed`].
    async fn fill(&mut self) -> Result<(), ClientError> {
        if self.read_buf.capacity() - self.read_buf.len() < READ_CHUNK / 4 {
            self.read_buf.reserve(READ_CHUNK);
        }
        loop {
            // TLS: records still waiting for the socket (a handshake message) must leave
            // before an answer can come.
            self.flush_pending().await?;
            self.transport.borrow().readable().await?;
            match self.transport.borrow().try_read_buf(&mut self.read_buf) {
                Ok(0) => return Err(ClientError::Closed),
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Writes `payload` as one logical packet (split into frames when ≥ 16 MiB) and waits
    /// until the socket has taken all of it.
    pub(crate) async fn write(&mut self, payload: &[u8]) -> Result<(), ClientError> {
        self.write_buf.clear();
        self.seq = encode_packet(&mut self.write_buf, self.seq, payload);
        let mut sent = 0;
        while sent < self.write_buf.len() {
            self.transport.borrow().writable().await?;
            match self.transport.borrow().try_write(&self.write_buf[sent..]) {
                Ok(0) => return Err(ClientError::Closed),
                Ok(n) => sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e.into()),
            }
        }
        // TLS: records made from what was taken leave before the packet counts as sent.
        self.flush_pending().await?;
        // A one-off huge command should not pin its buffer for the connection's life.
        if self.write_buf.capacity() > 1 << 20 {
            self.write_buf = BytesMut::new();
        }
        Ok(())
    }

    /// Continues an exchange whose packets so far (up to `seq - 1`) were read elsewhere,
    /// with `unread` bytes already taken from the socket.
    pub(crate) fn resume(&mut self, seq: u8, unread: BytesMut) {
        self.seq = seq;
        self.read_buf = unread;
    }

    /// Waits until TLS records made but not yet written have left.
    async fn flush_pending(&self) -> Result<(), ClientError> {
        let transport = self.transport.borrow();
        while transport.has_pending_output() {
            transport.writable().await?;
            match transport.flush() {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// The transport, e.g. to switch it to TLS.
    pub(crate) fn transport(&self) -> &Transport {
        self.transport.borrow()
    }

    /// Bytes read but not yet taken as packets (they belong to whoever reads next: the
    /// TLS handshake after an SSLRequest, or the connection's reader after a login).
    pub(crate) fn take_unread(&mut self) -> BytesMut {
        self.read_buf.split()
    }

    /// Best-effort, non-blocking write of raw bytes (for `COM_QUIT` on drop).
    pub(crate) fn try_write_now(&self, bytes: &[u8]) {
        let _ = self.transport.borrow().try_write(bytes);
    }
}
