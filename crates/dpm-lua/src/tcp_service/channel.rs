//! The seed's channel class over a raw TCP connection: `txn:req_channel()` holds what the
//! client sent, `txn:res_channel()` what goes back to it.
//!
//! Each channel has the seed's two parts: the *input* (data waiting to be processed:
//! bytes received from the client on the request side, bytes an action `set` or
//! `append`ed on the response side) and the *output* (data processed and on its way:
//! `forward(n)` moves bytes from input to output). A raw TCP service has no server
//! behind it, so what is forwarded on the request channel is consumed there (its output
//! part stays empty); what is forwarded on the response channel is written to the client.
//!
//! Reading the request (`dup`, `get`, `get_line` with nothing to return yet) waits for
//! the client without blocking the worker (`crate::contexts::may_wait`: only the action
//! waits, and its CPU burst restarts afterwards); `send` waits until the client took the
//! bytes. Nothing here blocks: reads and writes are tokio's readiness-based `try_*` on
//! the shared `&TcpStream`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use bytes::BytesMut;
use mlua::{UserData, UserDataMethods, UserDataRef, Value};
use tokio::net::TcpStream;

use crate::contexts::may_wait;

/// The most a request's input holds: past it, reads stop until the action takes data
/// (a `get_line` then returns the first `MAX_INPUT` bytes as if they were a line), so a
/// client cannot grow a worker's memory without bound.
pub const MAX_INPUT: usize = 1 << 20;

/// The client connection both channels of a transaction share. Without a socket (a
/// statement of a MySQL session, `crate::services::lua_action`) the channels only hold
/// data: nothing is read or written, the request has all it will get.
pub struct Client {
    stream: Option<TcpStream>,
    /// The client closed its sending side (or the connection failed).
    read_eof: Cell<bool>,
    /// The transaction was closed or finished: every operation is refused.
    closed: Cell<bool>,
}

impl Client {
    pub fn new(stream: TcpStream) -> Rc<Client> {
        Rc::new(Client {
            stream: Some(stream),
            read_eof: Cell::new(false),
            closed: Cell::new(false),
        })
    }

    /// A client without a socket: the channels of one statement.
    pub fn statement() -> Rc<Client> {
        Rc::new(Client {
            stream: None,
            read_eof: Cell::new(true),
            closed: Cell::new(false),
        })
    }

    /// True when the channels write to a socket.
    pub fn has_socket(&self) -> bool {
        self.stream.is_some()
    }

    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Closes the connection at once: nothing more is read or written.
    pub fn close(&self) {
        self.discard_unread();
        self.closed.set(true);
        // Wakes the client now rather than when the action's objects are collected.
        if let Some(stream) = &self.stream {
            let _ = socket_ref(stream).shutdown(std::net::Shutdown::Both);
        }
    }

    /// Reads what the socket has without waiting into `into`; false when it has nothing.
    fn try_read(&self, into: &mut BytesMut) -> bool {
        let Some(stream) = &self.stream else {
            return false;
        };
        if self.read_eof.get() || self.closed.get() {
            return false;
        }
        into.reserve(4096);
        match stream.try_read_buf(into) {
            Ok(0) => {
                self.read_eof.set(true);
                false
            }
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
            Err(_) => {
                self.read_eof.set(true);
                false
            }
        }
    }

    /// Reads and drops what the client sent that nobody will read (at most
    /// [`MAX_INPUT`]): a socket closed with unread data sends a reset, which can make the
    /// client lose the answer it has not read yet.
    fn discard_unread(&self) {
        let mut scratch = BytesMut::new();
        while scratch.len() < MAX_INPUT && self.try_read(&mut scratch) {}
    }

    /// Waits until the socket has something to read (or ended).
    async fn readable(&self) {
        match &self.stream {
            Some(stream) if stream.readable().await.is_ok() => {}
            _ => self.read_eof.set(true),
        }
    }

    /// Reads what arrived, without waiting, until `into` holds [`MAX_INPUT`] bytes.
    fn drain_into(&self, into: &mut BytesMut) {
        while into.len() < MAX_INPUT && self.try_read(into) {}
    }

    /// Writes all of `data`, waiting for the socket as needed; false when the client is gone.
    pub async fn write_all(&self, mut data: &[u8]) -> bool {
        let Some(stream) = &self.stream else {
            return data.is_empty();
        };
        while !data.is_empty() {
            if self.closed.get() {
                return false;
            }
            match stream.try_write(data) {
                Ok(n) => data = &data[n..],
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if stream.writable().await.is_err() {
                        return false;
                    }
                }
                Err(_) => return false,
            }
        }
        true
    }

    /// Writes as much of `data` as the socket takes now; returns how much.
    fn try_write(&self, data: &[u8]) -> usize {
        match &self.stream {
            Some(stream) if !self.closed.get() => stream.try_write(data).unwrap_or(0),
            _ => 0,
        }
    }

    /// Ends the connection after the action: no more writes, then the socket closes
    /// when the last reference goes.
    pub fn end(&self) {
        self.discard_unread();
        if !self.closed.replace(true) {
            if let Some(stream) = &self.stream {
                let _ = socket_ref(stream).shutdown(std::net::Shutdown::Write);
            }
        }
    }
}

/// `shutdown(2)` on a `&TcpStream` (tokio's needs `&mut` and waits).
fn socket_ref(stream: &TcpStream) -> socket2::SockRef<'_> {
    socket2::SockRef::from(stream)
}

/// Which way a channel's data flows.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// From the client.
    Request,
    /// To the client.
    Response,
}

/// One channel of a transaction.
pub struct Channel {
    client: Rc<Client>,
    side: Side,
    /// The input part (see the module's doc). A `RefCell` borrowed only between awaits.
    input: RefCell<BytesMut>,
    /// The response's output part: forwarded, not yet written to the client.
    output: RefCell<BytesMut>,
    /// A coroutine is waiting on this channel (a second one is refused).
    busy: Cell<bool>,
}

impl Channel {
    pub fn new(client: Rc<Client>, side: Side) -> Rc<Channel> {
        Rc::new(Channel {
            client,
            side,
            input: RefCell::default(),
            output: RefCell::default(),
            busy: Cell::new(false),
        })
    }

    /// Waits until the request's input satisfies `ready` or the client ended; false if
    /// the channel was already in use by another coroutine.
    async fn wait_for(&self, ready: impl Fn(&[u8]) -> bool) -> bool {
        if self.side == Side::Response {
            // Nothing arrives on the response side: what is there is all there is.
            return true;
        }
        if self.busy.replace(true) {
            return false;
        }
        // Takes what already arrived first, so the answer is as complete as can be now.
        self.client.drain_into(&mut self.input.borrow_mut());
        while !ready(&self.input.borrow())
            && self.input.borrow().len() < MAX_INPUT
            && !self.client.read_eof.get()
            && !self.client.is_closed()
        {
            self.client.readable().await;
            self.client.drain_into(&mut self.input.borrow_mut());
        }
        self.busy.set(false);
        true
    }

    /// The input's length; on the request side, after taking what arrived (no waiting).
    pub fn in_length(&self) -> usize {
        if self.side == Side::Request {
            self.client.drain_into(&mut self.input.borrow_mut());
        }
        self.input.borrow().len()
    }

    /// Writes the response's output, then `extra`; false when the client is gone.
    async fn flush_with(&self, extra: &[u8]) -> bool {
        let pending = std::mem::take(&mut *self.output.borrow_mut());
        self.client.write_all(&pending).await && self.client.write_all(extra).await
    }

    /// At the end of the action: the response's input and output go to the client (the
    /// seed: data `set` or `append`ed waits for the end of processing).
    pub async fn flush_all(&self) -> bool {
        let input = std::mem::take(&mut *self.input.borrow_mut());
        self.flush_with(&input).await
    }

    /// Sets the input (a statement's SQL, before the action runs).
    pub fn preload(&self, data: &[u8]) {
        let mut input = self.input.borrow_mut();
        input.clear();
        input.extend_from_slice(data);
    }

    /// Everything the channel holds, output then input (a statement's outcome).
    pub fn contents(&self) -> Vec<u8> {
        let mut all = self.output.borrow().to_vec();
        all.extend_from_slice(&self.input.borrow());
        all
    }

    /// Moves up to `n` input bytes to the output; returns how many moved.
    fn forward(&self, n: usize) -> usize {
        let moved = {
            let mut input = self.input.borrow_mut();
            let n = n.min(input.len());
            let bytes = input.split_to(n);
            // A raw TCP request has no server behind it: what is forwarded is consumed.
            if self.side == Side::Response || !self.client.has_socket() {
                self.output.borrow_mut().extend_from_slice(&bytes);
            }
            n
        };
        if self.side == Side::Response {
            // Starts writing without waiting; what the socket does not take now goes with
            // the next send, or at the end of the action.
            let mut output = self.output.borrow_mut();
            let written = self.client.try_write(&output);
            let _ = output.split_to(written);
        }
        moved
    }
}

/// The first line of `input` (with its `\n`), or everything when there is no `\n`.
fn line_end(input: &[u8]) -> usize {
    input
        .iter()
        .position(|&b| b == b'\n')
        .map_or(input.len(), |at| at + 1)
}

/// The context check of a method that waits on a socket: a channel without one (a
/// statement's) never waits, so it is allowed where nothing may wait (fetches).
fn waits(
    lua: &mlua::Lua,
    channel: &Channel,
    function: &str,
) -> mlua::Result<Option<crate::contexts::Waiting>> {
    if channel.client.has_socket() {
        may_wait(lua, function).map(Some)
    } else {
        Ok(None)
    }
}

/// A script's handle on a [`Channel`].
pub struct ChannelObject(pub Rc<Channel>);

/// `nil` when the transaction is closed, or the request ended with nothing left.
fn none_left(channel: &Channel) -> bool {
    channel.client.is_closed()
        || (channel.input.borrow().is_empty()
            && (channel.side == Side::Response || channel.client.read_eof.get()))
}

/// The three ways to read a channel's input.
#[derive(Clone, Copy)]
enum Read {
    /// A copy of all of it.
    Dup,
    /// All of it, consumed.
    Get,
    /// Its first line, consumed.
    Line,
}

impl Read {
    fn name(self) -> &'static str {
        match self {
            Read::Dup => "channel:dup",
            Read::Get => "channel:get",
            Read::Line => "channel:get_line",
        }
    }
}

impl UserData for ChannelObject {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        // dup, get and get_line wait for the client when the request has nothing yet.
        for (name, read) in [
            ("dup", Read::Dup),
            ("get", Read::Get),
            ("get_line", Read::Line),
        ] {
            methods.add_async_method(
                name,
                move |lua, this: UserDataRef<ChannelObject>, ()| async move {
                    let channel = this.0.clone();
                    // A statement's channel never waits (a fetch may read it).
                    let _wait = waits(&lua, &channel, read.name())?;
                    let ready = |input: &[u8]| match read {
                        Read::Line => input.contains(&b'\n'),
                        Read::Dup | Read::Get => !input.is_empty(),
                    };
                    if !channel.wait_for(ready).await || none_left(&channel) {
                        return Ok(Value::Nil);
                    }
                    let data = {
                        let mut input = channel.input.borrow_mut();
                        match read {
                            Read::Dup => input.to_vec(),
                            Read::Get => std::mem::take(&mut *input).to_vec(),
                            Read::Line => {
                                let end = line_end(&input);
                                input.split_to(end).to_vec()
                            }
                        }
                    };
                    Ok(Value::String(lua.create_string(&data)?))
                },
            );
        }
        methods.add_method("set", |_, this, data: mlua::String| {
            if this.0.client.is_closed() {
                return Ok(-1);
            }
            let mut input = this.0.input.borrow_mut();
            input.clear();
            input.extend_from_slice(&data.as_bytes());
            Ok(data.as_bytes().len() as i64)
        });
        methods.add_method("append", |_, this, data: mlua::String| {
            if this.0.client.is_closed() {
                return Ok(-1);
            }
            this.0
                .input
                .borrow_mut()
                .extend_from_slice(&data.as_bytes());
            Ok(data.as_bytes().len() as i64)
        });
        methods.add_async_method(
            "send",
            |lua, this: UserDataRef<ChannelObject>, data: mlua::String| async move {
                let channel = this.0.clone();
                let _wait = waits(&lua, &channel, "channel:send")?;
                // A raw TCP service has no server to send the request to.
                if channel.side == Side::Request || channel.client.is_closed() {
                    return Ok(-1);
                }
                let bytes = data.as_bytes().to_vec();
                if !channel.client.has_socket() {
                    // A statement's answer is made when the action ends.
                    channel.output.borrow_mut().extend_from_slice(&bytes);
                    return Ok(bytes.len() as i64);
                }
                Ok(if channel.flush_with(&bytes).await {
                    bytes.len() as i64
                } else {
                    -1
                })
            },
        );
        methods.add_method("get_in_length", |_, this, ()| Ok(this.0.in_length()));
        methods.add_method("get_out_length", |_, this, ()| {
            Ok(this.0.output.borrow().len())
        });
        methods.add_method("forward", |lua, this, n: i64| {
            if n < 0 {
                return Err(crate::errors::raise(
                    lua,
                    format!("channel:forward: the byte count must be 0 or more, got {n}"),
                ));
            }
            if this.0.client.is_closed() {
                return Ok(-1);
            }
            Ok(this.0.forward(n as usize) as i64)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::line_end;

    #[test]
    fn a_line_ends_after_its_newline_or_at_the_end_of_the_data() {
        assert_eq!(line_end(b"GET / HTTP/1.0\r\nHost: x\r\n"), 16);
        assert_eq!(line_end(b"no newline"), 10);
        assert_eq!(line_end(b""), 0);
    }
}
