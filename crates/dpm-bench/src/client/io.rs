//! A connection's bytes: one read buffer and one write buffer, both reused for the life
//! of the connection (no allocation per query once they have grown to the largest
//! response), frames walked in place, and the seam where packet hooks replace the
//! socket's read and write ([`PacketHooks`], neper's `client_recvmsg`/`client_sendmsg`).
//!
//! Without hooks a read is tokio's `read_buf`, whose short read clears the socket's
//! readiness: the next query costs one `write` and one `read` (plus a share of the
//! thread's `epoll_wait`), no `EAGAIN` round trip. With hooks, readiness is awaited first
//! and the hook called instead of the system call; a hook that returns -1 with `EAGAIN`
//! has its readiness cleared and is called again when the socket is ready.

use std::future::Future;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::rc::Rc;

use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;

use super::error::ClientError;

/// Room kept free at the end of the read buffer before each read.
const MIN_READ: usize = 16 * 1024;

/// What a packet hook returns: the buffer handed to it (written into, for a read) and the
/// hook's return value (bytes moved, or -1), or a Lua error (`FILE:LINE: message`).
pub type HookResult = Result<(Vec<u8>, isize), String>;

/// A packet hook's future (it may sleep without blocking the thread).
pub type HookFuture<'a> = Pin<Box<dyn Future<Output = HookResult> + 'a>>;

/// Functions that replace a connection's socket reads and writes (the Lua packet hooks).
pub trait PacketHooks {
    /// True when writes go through [`PacketHooks::sendmsg`].
    fn has_send(&self) -> bool;
    /// True when reads go through [`PacketHooks::recvmsg`].
    fn has_recv(&self) -> bool;
    /// Writes some of `buf[start..]` to `fd`; returns the buffer and bytes written or -1.
    fn sendmsg(&self, fd: RawFd, buf: Vec<u8>, start: usize) -> HookFuture<'_>;
    /// Reads into `buf`'s spare capacity from `fd` (extending its length); returns the
    /// buffer and bytes read, 0 at end of stream, or -1.
    fn recvmsg(&self, fd: RawFd, buf: Vec<u8>) -> HookFuture<'_>;
    /// The `errno` the last helper call left (`sendmsg`/`recvmsg` set it), read when a
    /// hook returned -1; reset to 0 before each hook call.
    fn take_errno(&self) -> i32;
}

/// The socket and its buffers.
pub struct Io {
    pub(crate) stream: TcpStream,
    pub(crate) fd: RawFd,
    /// Bytes read and not yet consumed are `rbuf[rpos..]`.
    rbuf: Vec<u8>,
    rpos: usize,
    /// The command being built and sent.
    pub(crate) wbuf: Vec<u8>,
    hooks: Option<Rc<dyn PacketHooks>>,
}

impl Io {
    pub(crate) fn new(stream: TcpStream, fd: RawFd, hooks: Option<Rc<dyn PacketHooks>>) -> Io {
        Io {
            stream,
            fd,
            rbuf: Vec::with_capacity(2 * MIN_READ),
            rpos: 0,
            wbuf: Vec::with_capacity(1024),
            hooks: hooks.filter(|h| h.has_send() || h.has_recv()),
        }
    }

    /// The next packet, whole: its sequence id and where its payload is in
    /// [`Io::payload`]'s buffer (valid until the next read).
    pub(crate) async fn next_packet(&mut self) -> Result<(u8, usize, usize), ClientError> {
        loop {
            let avail = &self.rbuf[self.rpos..];
            if let [a, b, c, seq, ..] = *avail {
                let len = u32::from_le_bytes([a, b, c, 0]) as usize;
                if len == dpm_protocol::MAX_PAYLOAD_LEN {
                    return Err(ClientError::Protocol(
                        "a packet of 16 MiB or more (dpm bench reads packets up to 16 MiB)".into(),
                    ));
                }
                if avail.len() >= 4 + len {
                    let start = self.rpos + 4;
                    self.rpos = start + len;
                    return Ok((seq, start, start + len));
                }
            }
            self.fill().await?;
        }
    }

    /// The bytes of a payload [`Io::next_packet`] returned.
    #[inline]
    pub(crate) fn payload(&self, start: usize, end: usize) -> &[u8] {
        &self.rbuf[start..end]
    }

    /// Reads more bytes (at least one) into the read buffer.
    async fn fill(&mut self) -> Result<(), ClientError> {
        if self.rpos == self.rbuf.len() {
            self.rbuf.clear();
            self.rpos = 0;
        } else if self.rpos > 0 && self.rbuf.capacity() - self.rbuf.len() < MIN_READ {
            self.rbuf.drain(..self.rpos);
            self.rpos = 0;
        }
        if self.rbuf.capacity() - self.rbuf.len() < MIN_READ {
            self.rbuf.reserve(MIN_READ);
        }
        let n = match self.hooks.clone() {
            Some(hooks) if hooks.has_recv() => self.hooked_read(&*hooks).await?,
            _ => self.stream.read_buf(&mut self.rbuf).await?,
        };
        if n == 0 {
            return Err(ClientError::Lost("the server closed the connection".into()));
        }
        Ok(())
    }

    async fn hooked_read(&mut self, hooks: &dyn PacketHooks) -> Result<usize, ClientError> {
        loop {
            self.stream.readable().await?;
            let buf = std::mem::take(&mut self.rbuf);
            let before = buf.len();
            let (buf, n) = hooks
                .recvmsg(self.fd, buf)
                .await
                .map_err(ClientError::Hook)?;
            self.rbuf = buf;
            if n >= 0 {
                let n = n as usize;
                if self.rbuf.len() != before + n {
                    return Err(ClientError::Hook(format!(
                        "client_recvmsg returned {n} but the message holds {} new bytes",
                        self.rbuf.len().saturating_sub(before)
                    )));
                }
                return Ok(n);
            }
            self.hook_failed(hooks, Interest::READABLE)?;
        }
    }

    /// After a hook returned -1: `EAGAIN` clears the readiness (wait for the next event),
    /// anything else is the connection's end.
    fn hook_failed(&self, hooks: &dyn PacketHooks, interest: Interest) -> Result<(), ClientError> {
        let errno = hooks.take_errno();
        if errno == libc::EAGAIN || errno == libc::EWOULDBLOCK {
            let _ = self.stream.try_io(interest, || {
                Err::<(), _>(std::io::Error::from(std::io::ErrorKind::WouldBlock))
            });
            return Ok(());
        }
        if errno == 0 {
            return Err(ClientError::Lost("a packet hook returned -1".into()));
        }
        Err(ClientError::Lost(
            std::io::Error::from_raw_os_error(errno).to_string(),
        ))
    }

    /// Sends the whole write buffer.
    pub(crate) async fn send(&mut self) -> Result<(), ClientError> {
        match self.hooks.clone() {
            Some(hooks) if hooks.has_send() => self.hooked_send(&*hooks).await,
            _ => Ok(self.stream.write_all(&self.wbuf).await?),
        }
    }

    async fn hooked_send(&mut self, hooks: &dyn PacketHooks) -> Result<(), ClientError> {
        let mut sent = 0;
        while sent < self.wbuf.len() {
            self.stream.writable().await?;
            let buf = std::mem::take(&mut self.wbuf);
            let (buf, n) = hooks
                .sendmsg(self.fd, buf, sent)
                .await
                .map_err(ClientError::Hook)?;
            self.wbuf = buf;
            if n >= 0 {
                sent += n as usize;
                if sent > self.wbuf.len() {
                    return Err(ClientError::Hook(format!(
                        "client_sendmsg returned {n}, more than the message held"
                    )));
                }
                continue;
            }
            self.hook_failed(hooks, Interest::WRITABLE)?;
        }
        Ok(())
    }

    /// Starts a packet in the write buffer (a placeholder header): the payload follows.
    #[inline]
    pub(crate) fn begin_packet(&mut self) {
        self.wbuf.clear();
        self.wbuf.extend_from_slice(&[0, 0, 0, 0]);
    }

    /// Writes the header of the packet begun at `start` with sequence id `seq`.
    #[inline]
    pub(crate) fn finish_packet(&mut self, start: usize, seq: u8) -> Result<(), ClientError> {
        let len = self.wbuf.len() - start - 4;
        if len >= dpm_protocol::MAX_PAYLOAD_LEN {
            return Err(ClientError::Protocol(
                "a command of 16 MiB or more (dpm bench sends packets up to 16 MiB)".into(),
            ));
        }
        let l = (len as u32).to_le_bytes();
        self.wbuf[start..start + 4].copy_from_slice(&[l[0], l[1], l[2], seq]);
        Ok(())
    }
}
