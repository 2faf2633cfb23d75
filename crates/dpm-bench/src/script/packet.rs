//! Packet hooks in Lua (neper's `client_sendmsg`, `client_recvmsg`, `client_recverr`):
//! a hook is called as `hook(fd, msg, flags)` instead of the connection's write or read
//! and returns the bytes written or read, or -1. `msg` is a message object holding the
//! connection's own buffer for the call (no copy): the bytes to send, or room to read
//! into, plus for `recvmsg` a 512-byte control buffer. The helpers `sendmsg(fd, msg,
//! flags [, len])` and `recvmsg(fd, msg, flags)` do the real system call (`MSG_DONTWAIT` added:
//! the socket is the event loop's) and set `errno`, which a hook returning -1 leaves for
//! the connection to read (`EAGAIN`: wait for the socket again). A hook runs as a
//! coroutine and may sleep (`core.msleep`) without holding up the thread's other
//! connections.

use std::cell::{Cell, RefCell};
use std::os::fd::RawFd;
use std::rc::Rc;

use mlua::{AnyUserData, Function, Lua, Table, UserData, UserDataMethods, Value};

use crate::client::io::{HookFuture, PacketHooks};
use dpm_lua::errors::{error_line, raise};

/// Size of the control-message buffer of a `recvmsg` (neper's 512 bytes).
const CONTROL_LEN: usize = 512;

/// A message: the connection's buffer lent to a hook for one call.
#[derive(Default)]
pub struct Msg {
    /// The buffer (a send's bytes are `data[start..]`; a read appends to it).
    data: Vec<u8>,
    start: usize,
    /// Control messages received (`recvmsg`).
    control: Vec<u8>,
}

impl UserData for Msg {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        // Bytes to send, or bytes received by this call.
        methods.add_method("len", |_, m, ()| Ok(m.data.len() - m.start));
        methods.add_meta_method("__len", |_, m, ()| Ok(m.data.len() - m.start));
        // A copy of those bytes, as a Lua string.
        methods.add_method("bytes", |lua, m, ()| lua.create_string(&m.data[m.start..]));
        // Control messages of the last recvmsg: { { level =, type =, data = }, ... }.
        methods.add_method("control", |lua, m, ()| control_table(lua, &m.control));
    }
}

thread_local! {
    /// `errno` of the last helper call on this thread (C's `errno`, for Lua).
    static ERRNO: Cell<i32> = const { Cell::new(0) };
}

fn set_errno(rc: isize) -> isize {
    if rc < 0 {
        ERRNO.with(|e| e.set(std::io::Error::last_os_error().raw_os_error().unwrap_or(0)));
        -1
    } else {
        rc
    }
}

/// Registers `sendmsg`, `recvmsg` and `errno()`.
pub fn register(lua: &Lua, g: &Table) -> mlua::Result<()> {
    g.set(
        "sendmsg",
        lua.create_function(
            |lua, (fd, msg, flags, len): (RawFd, AnyUserData, Option<i32>, Option<usize>)| {
                let m = msg
                    .borrow::<Msg>()
                    .map_err(|_| raise(lua, "sendmsg: the second argument must be a message"))?;
                let bytes = &m.data[m.start..];
                // An optional length sends only the first `len` bytes (a partial write).
                let bytes = &bytes[..len.unwrap_or(bytes.len()).min(bytes.len())];
                let flags = flags.unwrap_or(0) | libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
                // SAFETY: send(2) reads `bytes.len()` bytes from a live slice.
                let rc = unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), flags) };
                Ok(set_errno(rc))
            },
        )?,
    )?;
    g.set(
        "recvmsg",
        lua.create_function(|lua, (fd, msg, flags): (RawFd, AnyUserData, Option<i32>)| {
            let mut m = msg
                .borrow_mut::<Msg>()
                .map_err(|_| raise(lua, "recvmsg: the second argument must be a message"))?;
            Ok(recv_into(fd, &mut m, flags.unwrap_or(0)))
        })?,
    )?;
    g.set(
        "errno",
        lua.create_function(|_, ()| Ok(ERRNO.with(|e| e.get())))?,
    )?;
    Ok(())
}

/// `recvmsg(2)` into the message's spare capacity and control buffer.
fn recv_into(fd: RawFd, m: &mut Msg, flags: i32) -> isize {
    let Msg { data, control, .. } = m;
    if data.capacity() - data.len() < 512 {
        data.reserve(16 * 1024);
    }
    control.clear();
    control.reserve(CONTROL_LEN);
    let spare = data.spare_capacity_mut();
    let mut iov = libc::iovec {
        iov_base: spare.as_mut_ptr().cast(),
        iov_len: spare.len(),
    };
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_iov = &mut iov;
    hdr.msg_iovlen = 1;
    hdr.msg_control = control.spare_capacity_mut().as_mut_ptr().cast();
    hdr.msg_controllen = CONTROL_LEN as _;
    // SAFETY: the iovec and control buffer point at spare capacity we own, of the
    // lengths given; recvmsg writes at most that much.
    let rc = unsafe { libc::recvmsg(fd, &mut hdr, flags | libc::MSG_DONTWAIT) };
    if rc > 0 {
        // SAFETY: recvmsg initialised `rc` bytes of the spare capacity.
        unsafe { data.set_len(data.len() + rc as usize) };
    }
    if rc >= 0 {
        // SAFETY: the kernel wrote `msg_controllen` bytes of control messages.
        unsafe { control.set_len((hdr.msg_controllen as usize).min(CONTROL_LEN)) };
    }
    set_errno(rc)
}

/// Parses a control buffer into `{ { level, type, data }, ... }`.
fn control_table(lua: &Lua, control: &[u8]) -> mlua::Result<Table> {
    let out = lua.create_table()?;
    let header = std::mem::size_of::<libc::cmsghdr>();
    let mut at = 0;
    while at + header <= control.len() {
        let len = usize::from_ne_bytes(control[at..at + 8].try_into().unwrap_or_default());
        let level = i32::from_ne_bytes(control[at + 8..at + 12].try_into().unwrap_or_default());
        let kind = i32::from_ne_bytes(control[at + 12..at + 16].try_into().unwrap_or_default());
        if len < header || at + len > control.len() {
            break;
        }
        let t = lua.create_table()?;
        t.set("level", level)?;
        t.set("type", kind)?;
        t.set("data", lua.create_string(&control[at + header..at + len])?)?;
        out.push(t)?;
        at += (len + 7) & !7;
    }
    Ok(out)
}

/// A thread's packet hooks: the Lua functions and one message object per call site.
pub struct LuaPacketHooks {
    pub(crate) send: Option<Function>,
    pub(crate) recv: Option<Function>,
    pub(crate) lua: Lua,
}

impl LuaPacketHooks {
    async fn call(
        &self,
        func: &Function,
        what: &str,
        fd: RawFd,
        data: Vec<u8>,
        start: usize,
        flags: i32,
    ) -> Result<(Vec<u8>, isize), String> {
        ERRNO.with(|e| e.set(0));
        let msg = self
            .lua
            .create_userdata(Msg {
                data,
                start,
                control: Vec::new(),
            })
            .map_err(|e| format!("{what}: {e}"))?;
        let result = func.call_async::<Value>((fd, msg.clone(), flags)).await;
        let data = msg
            .take::<Msg>()
            .map(|m| m.data)
            .map_err(|e| format!("{what}: the message was kept: {e}"))?;
        let n = match result {
            Ok(Value::Integer(n)) => n as isize,
            Ok(Value::Number(n)) if n.fract() == 0.0 => n as isize,
            Ok(other) => {
                return Err(format!(
                    "{what}: the hook must return a number of bytes or -1, not {}",
                    other.type_name()
                ))
            }
            Err(e) => return Err(format!("{what}: {}", error_line(&e))),
        };
        Ok((data, n.max(-1)))
    }
}

impl PacketHooks for LuaPacketHooks {
    fn has_send(&self) -> bool {
        self.send.is_some()
    }

    fn has_recv(&self) -> bool {
        self.recv.is_some()
    }

    fn sendmsg(&self, fd: RawFd, buf: Vec<u8>, start: usize) -> HookFuture<'_> {
        Box::pin(async move {
            match &self.send {
                Some(f) => self.call(f, "client_sendmsg", fd, buf, start, 0).await,
                None => Ok((buf, -1)),
            }
        })
    }

    fn recvmsg(&self, fd: RawFd, buf: Vec<u8>) -> HookFuture<'_> {
        Box::pin(async move {
            match &self.recv {
                Some(f) => {
                    let (buf, n) = self.call(f, "client_recvmsg", fd, buf, 0, 0).await?;
                    Ok((buf, n))
                }
                None => Ok((buf, -1)),
            }
        })
    }

    fn take_errno(&self) -> i32 {
        ERRNO.with(|e| e.replace(0))
    }
}

/// Watches a connection's error queue: whenever the socket reports an error event, the
/// `client_recverr` hook runs with a fresh message and `MSG_ERRQUEUE`, again until it
/// returns -1 (`EAGAIN`: the queue is empty); the watch ends with the run.
pub(crate) fn watch_errors(
    lua: Lua,
    hook: Function,
    fd: RawFd,
    failed: Rc<RefCell<Option<String>>>,
) -> Option<tokio::task::JoinHandle<()>> {
    // A duplicate of the descriptor, registered for error events only.
    // SAFETY: dup(2) of a descriptor we hold open; the copy is owned below.
    let dup = unsafe { libc::dup(fd) };
    if dup < 0 {
        *failed.borrow_mut() = Some(format!(
            "client_recverr: dup: {}",
            std::io::Error::last_os_error()
        ));
        return None;
    }
    // SAFETY: `dup` is a fresh descriptor nobody else owns.
    let owned = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(dup) };
    // SAFETY: `owned` is an open descriptor the AsyncFd owns until it is dropped.
    let registered = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(owned, tokio::io::Interest::ERROR)
    };
    let afd = match registered {
        Ok(afd) => afd,
        Err(e) => {
            *failed.borrow_mut() = Some(format!("client_recverr: {e}"));
            return None;
        }
    };
    Some(tokio::task::spawn_local(async move {
        let hooks = LuaPacketHooks {
            send: None,
            recv: None,
            lua,
        };
        loop {
            let Ok(mut guard) = afd.ready(tokio::io::Interest::ERROR).await else {
                return;
            };
            match hooks
                .call(
                    &hook,
                    "client_recverr",
                    fd,
                    Vec::with_capacity(512),
                    0,
                    libc::MSG_ERRQUEUE,
                )
                .await
            {
                // -1: the queue is empty (or the hook gave up); wait for the next event.
                Ok((_, n)) if n < 0 => guard.clear_ready(),
                // An entry was read (0 bytes is normal: timestamps carry no data).
                Ok(_) => {}
                Err(e) => {
                    *failed.borrow_mut() = Some(e);
                    return;
                }
            }
        }
    }))
}
