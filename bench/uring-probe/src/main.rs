//! uring-probe: the cheapest io_uring TCP forwarder we could write, to bound what an
//! io_uring engine could save dpm (docs/performance.md). NOT part of dpm: no protocol,
//! no Lua, no error recovery beyond closing a pair. One thread, one ring.
//!
//! usage: uring-probe LISTEN_PORT BACKEND_PORT   (both on 127.0.0.1)
//!
//! Each accepted client gets its own backend connection. Each direction has one 64 KiB
//! buffer: recv from one side, send all of it to the other, recv again. All submissions
//! of one loop iteration go to the kernel in one `io_uring_enter`, which also waits for
//! the next completion (DEFER_TASKRUN: completions are processed only there).

use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};

use io_uring::{opcode, squeue, types, IoUring};

const BUF: usize = 64 * 1024;
const ACCEPT: u64 = u64::MAX;

/// One direction of a pair: read from `from`, write to `to`.
struct Dir {
    from: RawFd,
    to: RawFd,
    buf: Box<[u8]>,
    /// Bytes received and not yet sent, and how many of them were sent.
    len: usize,
    sent: usize,
}

fn nodelay(fd: RawFd) {
    let one: libc::c_int = 1;
    // SAFETY: setsockopt on a socket we own, with a valid int option.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            &one as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (listen, backend): (u16, u16) = match (args.get(1), args.get(2)) {
        (Some(l), Some(b)) => (l.parse().expect("port"), b.parse().expect("port")),
        _ => {
            eprintln!("usage: uring-probe LISTEN_PORT BACKEND_PORT");
            std::process::exit(2);
        }
    };
    let listener = TcpListener::bind(("127.0.0.1", listen))?;
    let lfd = listener.as_raw_fd();
    let mut ring: IoUring = IoUring::builder()
        .setup_coop_taskrun()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(4096)?;
    // Direction ids: 2*pair = client->backend, 2*pair+1 = backend->client.
    let mut dirs: HashMap<u64, Dir> = HashMap::new();
    let mut next_pair: u64 = 0;
    let mut pending: Vec<squeue::Entry> = Vec::new();
    let recv = |d: &mut Dir, id: u64| {
        opcode::Recv::new(types::Fd(d.from), d.buf.as_mut_ptr(), BUF as u32)
            .build()
            .user_data(id << 1)
    };
    let send = |d: &Dir, id: u64| {
        opcode::Send::new(
            types::Fd(d.to),
            d.buf[d.sent..].as_ptr(),
            (d.len - d.sent) as u32,
        )
        .build()
        .user_data((id << 1) | 1)
    };
    pending.push(
        opcode::AcceptMulti::new(types::Fd(lfd))
            .build()
            .user_data(ACCEPT),
    );
    eprintln!("uring-probe: 127.0.0.1:{listen} -> 127.0.0.1:{backend}");
    loop {
        {
            let mut sq = ring.submission();
            for e in pending.drain(..) {
                // SAFETY: every buffer an entry points to lives in `dirs` until its
                // completion arrives (a pair is only dropped after both directions failed).
                unsafe { sq.push(&e).expect("submission queue full") };
            }
        }
        ring.submit_and_wait(1)?;
        let cqes: Vec<(u64, i32, u32)> = ring
            .completion()
            .map(|c| (c.user_data(), c.result(), c.flags()))
            .collect();
        for (ud, res, flags) in cqes {
            if ud == ACCEPT {
                if !io_uring::cqueue::more(flags) {
                    pending.push(
                        opcode::AcceptMulti::new(types::Fd(lfd))
                            .build()
                            .user_data(ACCEPT),
                    );
                }
                if res < 0 {
                    continue;
                }
                let cfd = res as RawFd;
                nodelay(cfd);
                let bfd = match TcpStream::connect(("127.0.0.1", backend)) {
                    Ok(s) => {
                        s.set_nodelay(true)?;
                        s.into_raw_fd()
                    }
                    Err(_) => {
                        // SAFETY: closing the accepted fd we own.
                        unsafe { libc::close(cfd) };
                        continue;
                    }
                };
                let pair = next_pair;
                next_pair += 1;
                for (id, from, to) in [(2 * pair, cfd, bfd), (2 * pair + 1, bfd, cfd)] {
                    let mut d = Dir {
                        from,
                        to,
                        buf: vec![0u8; BUF].into_boxed_slice(),
                        len: 0,
                        sent: 0,
                    };
                    pending.push(recv(&mut d, id));
                    dirs.insert(id, d);
                }
                continue;
            }
            let id = ud >> 1;
            let is_send = ud & 1 == 1;
            let Some(d) = dirs.get_mut(&id) else { continue };
            if res <= 0 {
                // EOF or error: shut both sockets; the other direction's recv then ends too.
                // SAFETY: shutdown on fds we own (closing waits until both directions ended).
                unsafe {
                    libc::shutdown(d.from, libc::SHUT_RDWR);
                    libc::shutdown(d.to, libc::SHUT_RDWR);
                }
                let (from, to) = (d.from, d.to);
                dirs.remove(&id);
                if !dirs.contains_key(&(id ^ 1)) {
                    // SAFETY: both directions ended; no entry refers to these fds any more.
                    unsafe {
                        libc::close(from);
                        libc::close(to);
                    }
                }
                continue;
            }
            if is_send {
                d.sent += res as usize;
                if d.sent < d.len {
                    pending.push(send(d, id));
                } else {
                    d.len = 0;
                    d.sent = 0;
                    pending.push(recv(d, id));
                }
            } else {
                d.len = res as usize;
                d.sent = 0;
                pending.push(send(d, id));
            }
        }
    }
}
