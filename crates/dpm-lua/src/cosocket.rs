//! `core.tcp()`: LuaSocket-compatible TCP client sockets that never block the worker
//! (the seed's cosockets). A coroutine waiting on one suspends only itself: its
//! connection waits, every other connection and task of the worker goes on.
//!
//! Methods, with LuaSocket's return values: `connect(host, port)` and
//! `connect_ssl(host, port [, { ca, verify, server_name }])` → `1` or `nil, err`;
//! `send(data [, i [, j]])` → the index of the last byte sent, or `nil, err, last sent`;
//! `receive([pattern [, prefix]])` with `"*l"` (a line, without its `\r\n`; the default),
//! `"*a"` (everything until the peer closes) or a byte count → the data, or `nil, err,
//! partial`; `settimeout(seconds)` (nil or negative: none); `getpeername()` /
//! `getsockname()` → `ip, port`; `setoption(name, value)` with LuaSocket's names
//! (`tcp-nodelay`, `keepalive`, `linger`); `close()` → `1`. Errors are LuaSocket's
//! words: `"closed"`, `"timeout"`, `"connection refused"`.
//!
//! They wait, so they are refused where nothing may wait (`crate::contexts`). One
//! coroutine at a time may use a socket; a second one gets `nil, "busy"`.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use mlua::{Lua, MultiValue, Table, UserData, UserDataMethods, UserDataRef, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::contexts::may_wait;

/// A connected stream, plain or TLS.
enum Stream {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Tcp(s) => s,
            Stream::Tls(s) => s.get_ref().0,
        }
    }

    async fn read_buf(&mut self, buf: &mut BytesMut) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read_buf(buf).await,
            Stream::Tls(s) => s.read_buf(buf).await,
        }
    }

    async fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(data).await,
            Stream::Tls(s) => {
                let n = s.write(data).await?;
                s.flush().await?;
                Ok(n)
            }
        }
    }
}

/// A `core.tcp()` socket.
#[derive(Default)]
pub struct CoSocket {
    /// The stream; taken out while an operation runs (so two coroutines cannot both use it).
    stream: RefCell<Option<Stream>>,
    /// An operation is running.
    busy: Cell<bool>,
    /// Bytes read ahead of what `receive` returned.
    pending: RefCell<BytesMut>,
    timeout: Cell<Option<Duration>>,
}

/// The LuaSocket word for an I/O error.
fn word(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "connection refused".into(),
        TimedOut => "timeout".into(),
        ConnectionReset | BrokenPipe | UnexpectedEof | NotConnected => "closed".into(),
        _ => e.to_string(),
    }
}

/// `nil, err` (and more values, for a partial result).
fn fail(lua: &Lua, err: &str, more: Option<Value>) -> mlua::Result<MultiValue> {
    let mut values = vec![Value::Nil, Value::String(lua.create_string(err)?)];
    values.extend(more);
    Ok(MultiValue::from_vec(values))
}

/// What `receive` was asked for.
enum Pattern {
    Line,
    All,
    Bytes(usize),
}

impl CoSocket {
    /// Takes the stream out for an operation; `Err(word)` when there is none or it is in use.
    fn take(&self) -> Result<Stream, &'static str> {
        if self.busy.get() {
            return Err("busy");
        }
        let stream = self.stream.borrow_mut().take().ok_or("closed")?;
        self.busy.set(true);
        Ok(stream)
    }

    fn put_back(&self, stream: Stream) {
        self.busy.set(false);
        *self.stream.borrow_mut() = Some(stream);
    }

    /// Runs `op` within the socket's timeout.
    async fn timed<T>(
        &self,
        op: impl std::future::Future<Output = std::io::Result<T>>,
    ) -> std::io::Result<T> {
        match self.timeout.get() {
            Some(limit) => tokio::time::timeout(limit, op)
                .await
                .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into())),
            None => op.await,
        }
    }

    async fn connect(&self, host: &str, port: u16) -> std::io::Result<TcpStream> {
        if self.busy.get() {
            return Err(std::io::Error::other("busy"));
        }
        if dpm_engine::control::check::check_only() {
            // An init function's connect under dpm --check: nothing leaves the process.
            return Err(std::io::Error::other("not connected (dpm --check)"));
        }
        self.busy.set(true);
        let connected = self.timed(TcpStream::connect((host, port))).await;
        self.busy.set(false);
        let stream = connected?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    /// Reads into `pending` until it holds what `pattern` asks for (or the stream ends).
    /// Returns the result and whether the peer closed.
    async fn fill(
        &self,
        stream: &mut Stream,
        pattern: &Pattern,
    ) -> (Option<BytesMut>, Option<String>) {
        loop {
            {
                let mut pending = self.pending.borrow_mut();
                match pattern {
                    Pattern::Line => {
                        if let Some(at) = pending.iter().position(|&b| b == b'\n') {
                            let mut line = pending.split_to(at + 1);
                            line.truncate(at);
                            if line.last() == Some(&b'\r') {
                                line.truncate(at - 1);
                            }
                            return (Some(line), None);
                        }
                    }
                    Pattern::Bytes(n) if pending.len() >= *n => {
                        return (Some(pending.split_to(*n)), None);
                    }
                    _ => {}
                }
            }
            let mut chunk = BytesMut::with_capacity(16 * 1024);
            match self.timed(stream.read_buf(&mut chunk)).await {
                Ok(0) => {
                    let rest = std::mem::take(&mut *self.pending.borrow_mut());
                    return match pattern {
                        Pattern::All => (Some(rest), None),
                        _ => (Some(rest), Some("closed".into())),
                    };
                }
                Ok(_) => self.pending.borrow_mut().extend_from_slice(&chunk),
                Err(e) => {
                    let rest = std::mem::take(&mut *self.pending.borrow_mut());
                    return (Some(rest), Some(word(&e)));
                }
            }
        }
    }
}

fn pattern_of(lua: &Lua, value: Option<Value>) -> mlua::Result<Pattern> {
    Ok(match value {
        None | Some(Value::Nil) => Pattern::Line,
        Some(Value::Integer(n)) if n >= 0 => Pattern::Bytes(n as usize),
        Some(Value::Number(n)) if n >= 0.0 => Pattern::Bytes(n as usize),
        Some(Value::String(s)) => match &*s.to_str()? {
            "*l" | "l" => Pattern::Line,
            "*a" | "a" => Pattern::All,
            other => {
                return Err(crate::errors::raise(
                    lua,
                    format!("receive: unknown pattern '{other}' (\"*l\", \"*a\" or a byte count)"),
                ))
            }
        },
        Some(other) => {
            return Err(crate::errors::raise(
                lua,
                format!("receive: the pattern cannot be a {}", other.type_name()),
            ))
        }
    })
}

fn address(lua: &Lua, addr: std::io::Result<SocketAddr>) -> mlua::Result<MultiValue> {
    match addr {
        Ok(a) => Ok(MultiValue::from_vec(vec![
            Value::String(lua.create_string(a.ip().to_string())?),
            Value::Integer(i64::from(a.port())),
        ])),
        Err(e) => fail(lua, &word(&e), None),
    }
}

impl UserData for CoSocket {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_async_method(
            "connect",
            |lua, this: UserDataRef<CoSocket>, (host, port): (String, u16)| async move {
                let _wait = may_wait(&lua, "socket:connect")?;
                match this.connect(&host, port).await {
                    Ok(stream) => {
                        *this.stream.borrow_mut() = Some(Stream::Tcp(stream));
                        Ok(MultiValue::from_vec(vec![Value::Integer(1)]))
                    }
                    Err(e) => fail(&lua, &word(&e), None),
                }
            },
        );
        methods.add_async_method(
            "connect_ssl",
            |lua,
             this: UserDataRef<CoSocket>,
             (host, port, options): (String, u16, Option<Table>)| async move {
                let _wait = may_wait(&lua, "socket:connect_ssl")?;
                let mut tls = dpm_engine::tls::ClientTlsOptions {
                    verify: true,
                    ..Default::default()
                };
                if let Some(o) = &options {
                    tls.ca = o.get::<Option<String>>("ca")?.map(Into::into);
                    tls.verify = o.get::<Option<bool>>("verify")?.unwrap_or(true);
                    tls.server_name = o.get::<Option<String>>("server_name")?;
                }
                let name = tls.server_name.clone().unwrap_or_else(|| host.clone());
                let config = match dpm_engine::tls::ClientTls::define(tls) {
                    Ok(c) => c.config(),
                    Err(e) => return fail(&lua, &e.to_string(), None),
                };
                let Ok(name) = rustls::pki_types::ServerName::try_from(name.clone()) else {
                    return fail(&lua, &format!("'{name}' is not a valid server name"), None);
                };
                let tcp = match this.connect(&host, port).await {
                    Ok(s) => s,
                    Err(e) => return fail(&lua, &word(&e), None),
                };
                let connector = tokio_rustls::TlsConnector::from(config);
                match this.timed(connector.connect(name, tcp)).await {
                    Ok(s) => {
                        *this.stream.borrow_mut() = Some(Stream::Tls(Box::new(s)));
                        Ok(MultiValue::from_vec(vec![Value::Integer(1)]))
                    }
                    Err(e) => fail(&lua, &word(&e), None),
                }
            },
        );
        methods.add_async_method(
            "send",
            |lua,
             this: UserDataRef<CoSocket>,
             (data, i, j): (mlua::String, Option<i64>, Option<i64>)| async move {
                let _wait = may_wait(&lua, "socket:send")?;
                let bytes = data.as_bytes().to_vec();
                let len = bytes.len() as i64;
                // LuaSocket's i and j: 1-based, inclusive, negative from the end.
                let at = |k: i64| {
                    if k < 0 {
                        (len + k + 1).max(0)
                    } else {
                        k.min(len)
                    }
                };
                let (from, to) = (at(i.unwrap_or(1)).max(1), at(j.unwrap_or(-1)));
                let mut stream = match this.take() {
                    Ok(s) => s,
                    Err(w) => return fail(&lua, w, None),
                };
                let mut sent = from - 1;
                let mut error = None;
                while sent < to {
                    let chunk = &bytes[sent as usize..to as usize];
                    match this.timed(stream.write(chunk)).await {
                        Ok(0) => {
                            error = Some("closed".to_string());
                            break;
                        }
                        Ok(n) => sent += n as i64,
                        Err(e) => {
                            error = Some(word(&e));
                            break;
                        }
                    }
                }
                this.put_back(stream);
                match error {
                    None => Ok(MultiValue::from_vec(vec![Value::Integer(sent)])),
                    Some(err) => fail(&lua, &err, Some(Value::Integer(sent))),
                }
            },
        );
        methods.add_async_method(
            "receive",
            |lua,
             this: UserDataRef<CoSocket>,
             (pattern, prefix): (Option<Value>, Option<mlua::String>)| async move {
                let _wait = may_wait(&lua, "socket:receive")?;
                let pattern = pattern_of(&lua, pattern)?;
                let mut stream = match this.take() {
                    Ok(s) => s,
                    Err(w) => return fail(&lua, w, None),
                };
                let (data, error) = this.fill(&mut stream, &pattern).await;
                this.put_back(stream);
                let mut out = prefix.map(|p| p.as_bytes().to_vec()).unwrap_or_default();
                if let Some(data) = data {
                    out.extend_from_slice(data.chunk());
                }
                let out = Value::String(lua.create_string(&out)?);
                match error {
                    None => Ok(MultiValue::from_vec(vec![out])),
                    Some(err) => fail(&lua, &err, Some(out)),
                }
            },
        );
        methods.add_method("settimeout", |_, this, seconds: Option<f64>| {
            this.timeout.set(
                seconds
                    .filter(|s| *s >= 0.0)
                    .and_then(|s| Duration::try_from_secs_f64(s).ok()),
            );
            Ok(1)
        });
        methods.add_method("getpeername", |lua, this, ()| {
            match &*this.stream.borrow() {
                Some(s) => address(lua, s.tcp().peer_addr()),
                None => fail(lua, "closed", None),
            }
        });
        methods.add_method("getsockname", |lua, this, ()| {
            match &*this.stream.borrow() {
                Some(s) => address(lua, s.tcp().local_addr()),
                None => fail(lua, "closed", None),
            }
        });
        methods.add_method("setoption", |lua, this, (name, value): (String, Value)| {
            use dpm_engine::sockets::{set_option, OptionValue};
            use std::os::fd::AsRawFd;
            let stream = this.stream.borrow();
            let Some(s) = &*stream else {
                return fail(lua, "closed", None);
            };
            let fd = s.tcp().as_raw_fd();
            let on = |v: &Value| !matches!(v, Value::Nil | Value::Boolean(false));
            let set = match name.as_str() {
                "tcp-nodelay" => set_option(fd, "TCP_NODELAY", &OptionValue::Flag(on(&value))),
                "keepalive" => set_option(fd, "SO_KEEPALIVE", &OptionValue::Flag(on(&value))),
                "linger" => {
                    let linger = match &value {
                        Value::Table(t) if t.get::<Option<bool>>("on")?.unwrap_or(false) => {
                            Some(t.get::<Option<u32>>("timeout")?.unwrap_or(0))
                        }
                        _ => None,
                    };
                    set_option(fd, "SO_LINGER", &OptionValue::Linger(linger))
                }
                // Accepted as LuaSocket does; a connected client socket has nothing to set.
                "reuseaddr" | "reuseport" => Ok(()),
                other => Err(format!("unknown option '{other}'")),
            };
            match set {
                Ok(()) => Ok(MultiValue::from_vec(vec![Value::Integer(1)])),
                Err(e) => fail(lua, &e, None),
            }
        });
        methods.add_method("close", |_, this, ()| {
            this.stream.borrow_mut().take();
            this.pending.borrow_mut().clear();
            Ok(1)
        });
    }
}

/// Registers `core.tcp()` on `core`.
pub fn register(lua: &Lua, core: &Table) -> mlua::Result<()> {
    core.set("tcp", lua.create_function(|_, ()| Ok(CoSocket::default()))?)
}
