//! Socket hooks (neper's model) and socket options.
//!
//! A hook is the moment a socket's descriptor is handed to the program: right after a
//! client is accepted, right after a backend socket is created (before its `connect`, so
//! that binding options apply), right after a listening socket is created (before its
//! `bind`), and when dpm starts closing a client or backend connection (its descriptor
//! still open, so that `TCP_INFO` can be read). The engine asks its [`EventSink`] to run
//! the hooks the program registered; a worker with none registered pays one `Cell` read
//! per socket and builds nothing.
//!
//! [`set_option`] and [`get_option`] are the socket-option API the hooks use: a short
//! table of names (`TCP_NODELAY`, `SO_RCVBUF`, `TCP_INFO` …) over `setsockopt(2)` and
//! `getsockopt(2)`.
//!
//! [`EventSink`]: crate::EventSink

use std::net::{IpAddr, SocketAddr};
use std::os::fd::RawFd;

/// When a socket hook runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketHook {
    /// A client connection was accepted (before its greeting).
    ClientSocket = 0,
    /// A backend socket was created (before its connect).
    ServerSocket = 1,
    /// A listening socket was created (before its bind).
    ListenerSocket = 2,
    /// A client connection is being closed.
    ClientClose = 3,
    /// A backend connection is being closed.
    ServerClose = 4,
}

impl SocketHook {
    /// Every hook, in the order of their bits.
    pub const ALL: [SocketHook; 5] = [
        SocketHook::ClientSocket,
        SocketHook::ServerSocket,
        SocketHook::ListenerSocket,
        SocketHook::ClientClose,
        SocketHook::ServerClose,
    ];

    /// The name of the Lua function that registers it (`dpm.client_socket` …).
    pub fn name(self) -> &'static str {
        match self {
            SocketHook::ClientSocket => "client_socket",
            SocketHook::ServerSocket => "server_socket",
            SocketHook::ListenerSocket => "listener_socket",
            SocketHook::ClientClose => "client_close",
            SocketHook::ServerClose => "server_close",
        }
    }
}

/// The hooks a worker's program registered, one bit each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketHooks(u8);

impl SocketHooks {
    /// True when `hook` is registered.
    #[inline]
    pub fn has(self, hook: SocketHook) -> bool {
        self.0 & (1 << hook as u8) != 0
    }

    /// These hooks and `hook`.
    pub fn with(self, hook: SocketHook) -> SocketHooks {
        SocketHooks(self.0 | 1 << hook as u8)
    }
}

/// The address a hooked socket is bound or connected to, or accepted from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SocketAddress {
    /// IPv4 or IPv6.
    Inet(SocketAddr),
    /// A unix socket's path.
    Unix(String),
}

impl SocketAddress {
    /// `"inet"`, `"inet6"` or `"unix"`.
    pub fn family(&self) -> &'static str {
        match self {
            SocketAddress::Inet(SocketAddr::V4(_)) => "inet",
            SocketAddress::Inet(SocketAddr::V6(_)) => "inet6",
            SocketAddress::Unix(_) => "unix",
        }
    }
}

/// A socket option's value, as set or read.
#[derive(Clone, Debug, PartialEq)]
pub enum OptionValue {
    /// An on/off option (`TCP_NODELAY`, `SO_KEEPALIVE`).
    Flag(bool),
    /// A number (sizes in bytes, times in the option's own unit).
    Int(i64),
    /// A name (`TCP_CONGESTION`).
    Text(String),
    /// `SO_LINGER`: off, or on with this many seconds.
    Linger(Option<u32>),
    /// `TCP_INFO` (read only): field name and value, in the kernel's order.
    Info(Vec<(&'static str, u64)>),
}

/// How an option is passed to the kernel.
#[derive(Clone, Copy)]
enum Kind {
    Flag,
    Int,
    Text,
    Linger,
    Info,
}

/// The options the API knows: name, level, option, kind.
const OPTIONS: [(&str, libc::c_int, libc::c_int, Kind); 13] = [
    (
        "TCP_NODELAY",
        libc::IPPROTO_TCP,
        libc::TCP_NODELAY,
        Kind::Flag,
    ),
    (
        "SO_KEEPALIVE",
        libc::SOL_SOCKET,
        libc::SO_KEEPALIVE,
        Kind::Flag,
    ),
    (
        "TCP_KEEPIDLE",
        libc::IPPROTO_TCP,
        libc::TCP_KEEPIDLE,
        Kind::Int,
    ),
    (
        "TCP_KEEPINTVL",
        libc::IPPROTO_TCP,
        libc::TCP_KEEPINTVL,
        Kind::Int,
    ),
    (
        "TCP_KEEPCNT",
        libc::IPPROTO_TCP,
        libc::TCP_KEEPCNT,
        Kind::Int,
    ),
    (
        "TCP_USER_TIMEOUT",
        libc::IPPROTO_TCP,
        libc::TCP_USER_TIMEOUT,
        Kind::Int,
    ),
    ("SO_RCVBUF", libc::SOL_SOCKET, libc::SO_RCVBUF, Kind::Int),
    ("SO_SNDBUF", libc::SOL_SOCKET, libc::SO_SNDBUF, Kind::Int),
    ("IP_TOS", libc::IPPROTO_IP, libc::IP_TOS, Kind::Int),
    (
        "TCP_CONGESTION",
        libc::IPPROTO_TCP,
        libc::TCP_CONGESTION,
        Kind::Text,
    ),
    ("SO_LINGER", libc::SOL_SOCKET, libc::SO_LINGER, Kind::Linger),
    // Flags `SOF_TIMESTAMPING_*`: timestamps on the error queue (`dpm bench`'s
    // `client_recverr`).
    (
        "SO_TIMESTAMPING",
        libc::SOL_SOCKET,
        libc::SO_TIMESTAMPING,
        Kind::Int,
    ),
    ("TCP_INFO", libc::IPPROTO_TCP, libc::TCP_INFO, Kind::Info),
];

/// The names [`set_option`] and [`get_option`] take.
pub fn option_names() -> impl Iterator<Item = &'static str> {
    OPTIONS.iter().map(|o| o.0)
}

fn lookup(name: &str) -> Result<(libc::c_int, libc::c_int, Kind), String> {
    OPTIONS
        .iter()
        .find(|o| o.0.eq_ignore_ascii_case(name))
        .map(|o| (o.1, o.2, o.3))
        .ok_or_else(|| {
            let known: Vec<&str> = option_names().collect();
            format!(
                "unknown socket option '{name}' (known: {})",
                known.join(", ")
            )
        })
}

/// Refuses a descriptor that is not a socket (a file, dpm's epoll or eventfd): the API
/// acts on sockets only.
fn check_socket(fd: RawFd) -> Result<(), String> {
    let mut kind: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `kind`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut kind as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(format!(
            "descriptor {fd}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

fn os_error(name: &str, fd: RawFd) -> String {
    format!(
        "{name} on descriptor {fd}: {}",
        std::io::Error::last_os_error()
    )
}

/// `setsockopt(2)`: sets option `name` of socket `fd`.
pub fn set_option(fd: RawFd, name: &str, value: &OptionValue) -> Result<(), String> {
    let (level, option, kind) = lookup(name)?;
    check_socket(fd)?;
    let wrong = |want: &str| format!("{name} takes {want}, not {value:?}");
    let set = |ptr: *const libc::c_void, len: usize| {
        // SAFETY: `ptr` points at `len` readable bytes for the duration of the call.
        let rc = unsafe { libc::setsockopt(fd, level, option, ptr, len as libc::socklen_t) };
        if rc == 0 {
            Ok(())
        } else {
            Err(os_error(name, fd))
        }
    };
    match (kind, value) {
        (Kind::Flag | Kind::Int, OptionValue::Flag(on)) => {
            let v = libc::c_int::from(*on);
            set((&v as *const libc::c_int).cast(), std::mem::size_of_val(&v))
        }
        (Kind::Flag | Kind::Int, OptionValue::Int(n)) => {
            let v = libc::c_int::try_from(*n).map_err(|_| wrong("a 32-bit number"))?;
            set((&v as *const libc::c_int).cast(), std::mem::size_of_val(&v))
        }
        (Kind::Text, OptionValue::Text(text)) => set(text.as_ptr().cast(), text.len()),
        (Kind::Linger, OptionValue::Linger(secs)) => {
            let v = libc::linger {
                l_onoff: libc::c_int::from(secs.is_some()),
                l_linger: secs.unwrap_or(0).try_into().map_err(|_| wrong("seconds"))?,
            };
            set(
                (&v as *const libc::linger).cast(),
                std::mem::size_of_val(&v),
            )
        }
        (Kind::Linger, OptionValue::Flag(false)) => {
            set_option(fd, name, &OptionValue::Linger(None))
        }
        (Kind::Linger, OptionValue::Int(n)) => {
            let secs = u32::try_from(*n).map_err(|_| wrong("seconds (0 or more) or false"))?;
            set_option(fd, name, &OptionValue::Linger(Some(secs)))
        }
        (Kind::Info, _) => Err(format!("{name} can only be read")),
        (Kind::Flag, _) => Err(wrong("true or false")),
        (Kind::Int, _) => Err(wrong("a number")),
        (Kind::Text, _) => Err(wrong("a name")),
        (Kind::Linger, _) => Err(wrong("seconds (0 or more) or false")),
    }
}

/// `getsockopt(2)`: reads option `name` of socket `fd`.
pub fn get_option(fd: RawFd, name: &str) -> Result<OptionValue, String> {
    let (level, option, kind) = lookup(name)?;
    check_socket(fd)?;
    let get = |ptr: *mut libc::c_void, len: usize| -> Result<usize, String> {
        let mut len = len as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes at `ptr`.
        let rc = unsafe { libc::getsockopt(fd, level, option, ptr, &mut len) };
        if rc == 0 {
            Ok(len as usize)
        } else {
            Err(os_error(name, fd))
        }
    };
    match kind {
        Kind::Flag | Kind::Int => {
            let mut v: libc::c_int = 0;
            get(
                (&mut v as *mut libc::c_int).cast(),
                std::mem::size_of_val(&v),
            )?;
            Ok(match kind {
                Kind::Flag => OptionValue::Flag(v != 0),
                _ => OptionValue::Int(i64::from(v)),
            })
        }
        Kind::Text => {
            let mut buf = [0u8; 64];
            let len = get(buf.as_mut_ptr().cast(), buf.len())?;
            let text = &buf[..len];
            let text = text.split(|&b| b == 0).next().unwrap_or_default();
            Ok(OptionValue::Text(
                String::from_utf8_lossy(text).into_owned(),
            ))
        }
        Kind::Linger => {
            let mut v = libc::linger {
                l_onoff: 0,
                l_linger: 0,
            };
            get(
                (&mut v as *mut libc::linger).cast(),
                std::mem::size_of_val(&v),
            )?;
            let secs = (v.l_onoff != 0).then(|| v.l_linger.max(0) as u32);
            Ok(OptionValue::Linger(secs))
        }
        Kind::Info => {
            // SAFETY: tcp_info is plain integers; all zeroes is a valid value.
            let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
            get(
                (&mut info as *mut libc::tcp_info).cast(),
                std::mem::size_of_val(&info),
            )?;
            Ok(OptionValue::Info(tcp_info_fields(&info)))
        }
    }
}

/// The fields of `TCP_INFO` (times in microseconds, as the kernel gives them; `cwnd` in
/// segments).
fn tcp_info_fields(i: &libc::tcp_info) -> Vec<(&'static str, u64)> {
    vec![
        ("state", u64::from(i.tcpi_state)),
        ("ca_state", u64::from(i.tcpi_ca_state)),
        ("retransmits", u64::from(i.tcpi_retransmits)),
        ("probes", u64::from(i.tcpi_probes)),
        ("backoff", u64::from(i.tcpi_backoff)),
        ("rto", u64::from(i.tcpi_rto)),
        ("ato", u64::from(i.tcpi_ato)),
        ("snd_mss", u64::from(i.tcpi_snd_mss)),
        ("rcv_mss", u64::from(i.tcpi_rcv_mss)),
        ("unacked", u64::from(i.tcpi_unacked)),
        ("sacked", u64::from(i.tcpi_sacked)),
        ("lost", u64::from(i.tcpi_lost)),
        ("retrans", u64::from(i.tcpi_retrans)),
        ("last_data_sent", u64::from(i.tcpi_last_data_sent)),
        ("last_data_recv", u64::from(i.tcpi_last_data_recv)),
        ("last_ack_recv", u64::from(i.tcpi_last_ack_recv)),
        ("pmtu", u64::from(i.tcpi_pmtu)),
        ("rcv_ssthresh", u64::from(i.tcpi_rcv_ssthresh)),
        ("rtt", u64::from(i.tcpi_rtt)),
        ("rttvar", u64::from(i.tcpi_rttvar)),
        ("snd_ssthresh", u64::from(i.tcpi_snd_ssthresh)),
        ("cwnd", u64::from(i.tcpi_snd_cwnd)),
        ("advmss", u64::from(i.tcpi_advmss)),
        ("reordering", u64::from(i.tcpi_reordering)),
        ("rcv_rtt", u64::from(i.tcpi_rcv_rtt)),
        ("rcv_space", u64::from(i.tcpi_rcv_space)),
        ("total_retrans", u64::from(i.tcpi_total_retrans)),
    ]
}

/// The address of a std/tokio socket's peer or local end, for a hook.
pub(crate) fn inet(addr: std::io::Result<SocketAddr>) -> SocketAddress {
    SocketAddress::Inet(addr.unwrap_or_else(|_| SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn options_are_set_and_read_back_on_a_real_socket() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let fd = client.as_raw_fd();
        set_option(fd, "TCP_NODELAY", &OptionValue::Flag(true)).unwrap();
        assert_eq!(
            get_option(fd, "tcp_nodelay").unwrap(),
            OptionValue::Flag(true)
        );
        set_option(fd, "TCP_KEEPIDLE", &OptionValue::Int(33)).unwrap();
        assert_eq!(
            get_option(fd, "TCP_KEEPIDLE").unwrap(),
            OptionValue::Int(33)
        );
        set_option(fd, "SO_LINGER", &OptionValue::Int(2)).unwrap();
        assert_eq!(
            get_option(fd, "SO_LINGER").unwrap(),
            OptionValue::Linger(Some(2))
        );
        set_option(fd, "SO_LINGER", &OptionValue::Flag(false)).unwrap();
        assert_eq!(
            get_option(fd, "SO_LINGER").unwrap(),
            OptionValue::Linger(None)
        );
        let OptionValue::Text(cc) = get_option(fd, "TCP_CONGESTION").unwrap() else {
            panic!("a name");
        };
        assert!(!cc.is_empty());
        let OptionValue::Info(info) = get_option(fd, "TCP_INFO").unwrap() else {
            panic!("a table");
        };
        assert!(
            info.iter().any(|(k, v)| *k == "state" && *v == 1),
            "established: {info:?}"
        );
        let err = set_option(fd, "TCP_INFO", &OptionValue::Int(1)).unwrap_err();
        assert!(err.contains("only be read"), "{err}");
        let err = set_option(fd, "SO_NOSUCH", &OptionValue::Int(1)).unwrap_err();
        assert!(err.contains("unknown socket option 'SO_NOSUCH'"), "{err}");
        let err = set_option(fd, "TCP_NODELAY", &OptionValue::Text("x".into())).unwrap_err();
        assert!(err.contains("true or false"), "{err}");
        // Not a socket: refused before any option call.
        let file = std::fs::File::open("/dev/null").unwrap();
        assert!(get_option(file.as_raw_fd(), "TCP_NODELAY").is_err());
    }

    #[test]
    fn hooks_are_bits() {
        let hooks = SocketHooks::default().with(SocketHook::ServerClose);
        assert!(hooks.has(SocketHook::ServerClose));
        assert!(!hooks.has(SocketHook::ClientSocket));
    }
}
