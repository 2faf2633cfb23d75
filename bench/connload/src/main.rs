//! connload: the load generator of bench/connrate.
//!
//! N workers (tokio tasks) each loop, until S seconds have passed since the start:
//! connect over TCP, read the greeting, [SSLRequest + TLS handshake], log in with
//! mysql_native_password (following an auth switch to it), run one query (`SELECT 1`),
//! send COM_QUIT and wait for the server to close. One such cycle is counted when the
//! close arrives. Each cycle is bounded by --cycle-timeout; no cycle starts after the
//! deadline, so the whole run takes at most S + cycle-timeout seconds.
//!
//! The MySQL protocol is hand-rolled (about what a C connector does, nothing more), the
//! TLS is rustls with ring, one shared client configuration, session resumption off by
//! default (every cycle is a full handshake, as for a fresh client process; `--resume`
//! turns it on). The certificate is verified against --ca and --server-name.
//!
//! Prints one line of `key=value` on stdout, including the generator's own CPU
//! (getrusage) so that a caller can tell whether it was the bottleneck. The first few
//! errors go to stderr.
//!
//!   connload --port 3306 --user bench --password benchpw --workers 8 --seconds 10 \
//!            [--tls --ca ca.pem [--server-name 127.0.0.1]] [--threads 2] [--query "SELECT 1"]

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use sha1::{Digest, Sha1};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const CLIENT_LONG_PASSWORD: u32 = 0x1;
const CLIENT_LONG_FLAG: u32 = 0x4;
const CLIENT_PROTOCOL_41: u32 = 0x200;
const CLIENT_SSL: u32 = 0x800;
const CLIENT_TRANSACTIONS: u32 = 0x2000;
const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
const CLIENT_MULTI_RESULTS: u32 = 0x20000;
const CLIENT_PLUGIN_AUTH: u32 = 0x80000;
const NATIVE: &str = "mysql_native_password";
const CHARSET_UTF8MB4_GENERAL_CI: u8 = 45;
const MAX_PACKET: u32 = 16 * 1024 * 1024;

struct Config {
    addr: SocketAddr,
    user: String,
    password: String,
    query: String,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    cycle_timeout: Duration,
}

#[derive(Default)]
struct Stats {
    cycles: u64,
    errors: u64,
    timeouts: u64,
    lat_us: Vec<u32>,
    first_errors: Vec<String>,
}

fn err(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

async fn read_packet<S: AsyncRead + Unpin>(s: &mut S, buf: &mut Vec<u8>) -> io::Result<u8> {
    let mut h = [0u8; 4];
    s.read_exact(&mut h).await?;
    let len = u32::from_le_bytes([h[0], h[1], h[2], 0]) as usize;
    buf.clear();
    buf.resize(len, 0);
    s.read_exact(buf).await?;
    Ok(h[3])
}

async fn write_packet<S: AsyncWrite + Unpin>(s: &mut S, seq: u8, payload: &[u8]) -> io::Result<()> {
    let mut p = Vec::with_capacity(4 + payload.len());
    let len = payload.len() as u32;
    p.extend_from_slice(&len.to_le_bytes()[..3]);
    p.push(seq);
    p.extend_from_slice(payload);
    s.write_all(&p).await?;
    s.flush().await
}

/// An ERR packet's text: "ERROR 1045 (28000): ...".
fn err_packet(p: &[u8]) -> io::Error {
    if p.len() < 3 {
        return err("short ERR packet");
    }
    let code = u16::from_le_bytes([p[1], p[2]]);
    let msg = if p.len() >= 9 && p[3] == b'#' {
        format!(
            "ERROR {code} ({}): {}",
            String::from_utf8_lossy(&p[4..9]),
            String::from_utf8_lossy(&p[9..])
        )
    } else {
        format!("ERROR {code}: {}", String::from_utf8_lossy(&p[3..]))
    };
    err(msg)
}

fn cstr(p: &[u8], from: usize) -> (&[u8], usize) {
    let rest = p.get(from..).unwrap_or(&[]);
    match rest.iter().position(|&b| b == 0) {
        Some(n) => (&rest[..n], from + n + 1),
        None => (rest, p.len()),
    }
}

/// Greeting (protocol 10) -> (server capabilities, scramble, auth plugin).
fn parse_greeting(p: &[u8]) -> io::Result<(u32, Vec<u8>, String)> {
    match p.first() {
        Some(0xff) => return Err(err_packet(p)),
        Some(10) => {}
        _ => return Err(err("not a protocol-10 greeting")),
    }
    let (_, mut i) = cstr(p, 1);
    i += 4; // connection id
    let part1 = p
        .get(i..i + 8)
        .ok_or_else(|| err("short greeting"))?
        .to_vec();
    i += 9; // + filler
    let lo = u16::from_le_bytes([p[i], p[i + 1]]) as u32;
    i += 2;
    if i >= p.len() {
        return Ok((lo, part1, NATIVE.into()));
    }
    i += 1 + 2; // charset, status
    let hi = *p.get(i).unwrap_or(&0) as u32 | (*p.get(i + 1).unwrap_or(&0) as u32) << 8;
    i += 2;
    let caps = lo | hi << 16;
    let auth_len = *p.get(i).unwrap_or(&0) as usize;
    i += 1 + 10;
    let mut scramble = part1;
    if caps & CLIENT_SECURE_CONNECTION != 0 {
        let n = auth_len.saturating_sub(8).max(13);
        let part2 = p.get(i..(i + n).min(p.len())).unwrap_or(&[]);
        let part2 = part2.strip_suffix(&[0]).unwrap_or(part2);
        scramble.extend_from_slice(part2);
        i += n;
    }
    let plugin = if caps & CLIENT_PLUGIN_AUTH != 0 {
        String::from_utf8_lossy(cstr(p, i).0).into_owned()
    } else {
        NATIVE.into()
    };
    Ok((caps, scramble, plugin))
}

fn native_password(password: &[u8], scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let h1 = Sha1::digest(password);
    let h2 = Sha1::digest(h1);
    let mut h = Sha1::new();
    h.update(scramble);
    h.update(h2);
    let h3 = h.finalize();
    h1.iter().zip(h3.iter()).map(|(a, b)| a ^ b).collect()
}

fn response_head(caps: u32) -> Vec<u8> {
    let mut p = Vec::with_capacity(96);
    p.extend_from_slice(&caps.to_le_bytes());
    p.extend_from_slice(&MAX_PACKET.to_le_bytes());
    p.push(CHARSET_UTF8MB4_GENERAL_CI);
    p.extend_from_slice(&[0u8; 23]);
    p
}

/// After the greeting (and TLS, if any): log in, run the query, quit, wait for the close.
async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    cfg: &Config,
    caps: u32,
    mut seq: u8,
    scramble: &[u8],
    plugin: &str,
    buf: &mut Vec<u8>,
) -> io::Result<()> {
    let mut p = response_head(caps);
    p.extend_from_slice(cfg.user.as_bytes());
    p.push(0);
    let auth = if plugin == NATIVE {
        native_password(cfg.password.as_bytes(), scramble)
    } else {
        Vec::new() // the server will switch us to mysql_native_password (or refuse)
    };
    p.push(auth.len() as u8);
    p.extend_from_slice(&auth);
    if caps & CLIENT_PLUGIN_AUTH != 0 {
        p.extend_from_slice(NATIVE.as_bytes());
        p.push(0);
    }
    write_packet(s, seq, &p).await?;
    loop {
        seq = read_packet(s, buf).await?;
        match buf.first() {
            Some(0x00) => break,
            Some(0xff) => return Err(err_packet(buf)),
            Some(0xfe) => {
                let (name, i) = cstr(buf, 1);
                if name != NATIVE.as_bytes() {
                    return Err(err(format!(
                        "auth switch to {} (only {NATIVE} is implemented)",
                        String::from_utf8_lossy(name)
                    )));
                }
                let data = &buf[i.min(buf.len())..];
                let data = data.strip_suffix(&[0]).unwrap_or(data);
                let auth = native_password(cfg.password.as_bytes(), data);
                write_packet(s, seq.wrapping_add(1), &auth).await?;
            }
            _ => return Err(err("unexpected packet during the login")),
        }
    }
    let mut q = Vec::with_capacity(1 + cfg.query.len());
    q.push(0x03);
    q.extend_from_slice(cfg.query.as_bytes());
    write_packet(s, 0, &q).await?;
    read_packet(s, buf).await?;
    match buf.first() {
        Some(0x00) => {}
        Some(0xff) => return Err(err_packet(buf)),
        _ => {
            // column count, column definitions, EOF, rows, EOF (no CLIENT_DEPRECATE_EOF)
            let mut eofs = 0;
            while eofs < 2 {
                read_packet(s, buf).await?;
                match buf.first() {
                    Some(0xff) => return Err(err_packet(buf)),
                    Some(0xfe) if buf.len() < 9 => eofs += 1,
                    _ => {}
                }
            }
        }
    }
    write_packet(s, 0, &[0x01]).await?;
    // the server closes after COM_QUIT; wait for that (a TLS close_notify or a plain EOF)
    let mut junk = [0u8; 256];
    loop {
        match s.read(&mut junk).await {
            Ok(0) | Err(_) => return Ok(()),
            Ok(_) => {}
        }
    }
}

async fn cycle(cfg: &Config, buf: &mut Vec<u8>) -> io::Result<()> {
    let tcp = TcpStream::connect(cfg.addr).await?;
    tcp.set_nodelay(true)?;
    let mut tcp = BufReader::with_capacity(4096, tcp);
    let seq = read_packet(&mut tcp, buf).await?;
    let (server_caps, scramble, plugin) = parse_greeting(buf)?;
    let want = CLIENT_LONG_PASSWORD
        | CLIENT_LONG_FLAG
        | CLIENT_PROTOCOL_41
        | CLIENT_TRANSACTIONS
        | CLIENT_SECURE_CONNECTION
        | CLIENT_MULTI_RESULTS
        | CLIENT_PLUGIN_AUTH;
    let mut caps = want & server_caps;
    if caps & CLIENT_PROTOCOL_41 == 0 || caps & CLIENT_SECURE_CONNECTION == 0 {
        return Err(err(
            "server lacks CLIENT_PROTOCOL_41/CLIENT_SECURE_CONNECTION",
        ));
    }
    match &cfg.tls {
        None => {
            session(
                &mut tcp,
                cfg,
                caps,
                seq.wrapping_add(1),
                &scramble,
                &plugin,
                buf,
            )
            .await
        }
        Some((connector, name)) => {
            if server_caps & CLIENT_SSL == 0 {
                return Err(err(
                    "the server does not offer TLS (no CLIENT_SSL in its greeting)",
                ));
            }
            caps |= CLIENT_SSL;
            write_packet(&mut tcp, seq.wrapping_add(1), &response_head(caps)).await?;
            if !tcp.buffer().is_empty() {
                return Err(err("data after the greeting before TLS"));
            }
            let mut tls = connector.connect(name.clone(), tcp.into_inner()).await?;
            session(
                &mut tls,
                cfg,
                caps,
                seq.wrapping_add(2),
                &scramble,
                &plugin,
                buf,
            )
            .await
        }
    }
}

async fn worker(cfg: Arc<Config>, deadline: Instant) -> Stats {
    let mut st = Stats::default();
    let mut buf = Vec::with_capacity(256);
    while Instant::now() < deadline {
        let t0 = Instant::now();
        match tokio::time::timeout(cfg.cycle_timeout, cycle(&cfg, &mut buf)).await {
            Ok(Ok(())) => {
                st.cycles += 1;
                st.lat_us
                    .push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
            }
            Ok(Err(e)) => {
                st.errors += 1;
                if st.first_errors.len() < 3 {
                    st.first_errors.push(e.to_string());
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(_) => {
                st.timeouts += 1;
                if st.first_errors.len() < 3 {
                    st.first_errors
                        .push(format!("cycle timed out after {:?}", cfg.cycle_timeout));
                }
            }
        }
    }
    st
}

fn cpu_seconds() -> (f64, f64) {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (s(ru.ru_utime), s(ru.ru_stime))
}

struct Args {
    host: String,
    port: u16,
    user: String,
    password: String,
    query: String,
    workers: usize,
    seconds: f64,
    threads: usize,
    tls: bool,
    ca: Option<String>,
    server_name: Option<String>,
    resume: bool,
    cycle_timeout: f64,
}

const USAGE: &str = "usage: connload --port P [--host 127.0.0.1] [--user U] [--password PW] [--workers 8] \
[--seconds 10] [--threads 2] [--tls --ca CA.pem [--server-name NAME] [--resume]] [--query 'SELECT 1'] [--cycle-timeout 10]";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        host: "127.0.0.1".into(),
        port: 0,
        user: "bench".into(),
        password: "benchpw".into(),
        query: "SELECT 1".into(),
        workers: 8,
        seconds: 10.0,
        threads: 2,
        tls: false,
        ca: None,
        server_name: None,
        resume: false,
        cycle_timeout: 10.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or_else(|| format!("{k} needs a value"));
        let bad = |k: &str| format!("bad value for {k}");
        match k.as_str() {
            "--host" => a.host = v()?,
            "--port" => a.port = v()?.parse().map_err(|_| bad(&k))?,
            "--user" => a.user = v()?,
            "--password" => a.password = v()?,
            "--query" => a.query = v()?,
            "--workers" => a.workers = v()?.parse().map_err(|_| bad(&k))?,
            "--seconds" => a.seconds = v()?.parse().map_err(|_| bad(&k))?,
            "--threads" => a.threads = v()?.parse().map_err(|_| bad(&k))?,
            "--tls" => a.tls = true,
            "--ca" => a.ca = Some(v()?),
            "--server-name" => a.server_name = Some(v()?),
            "--resume" => a.resume = true,
            "--cycle-timeout" => a.cycle_timeout = v()?.parse().map_err(|_| bad(&k))?,
            "-h" | "--help" => return Err(USAGE.into()),
            _ => return Err(format!("unknown option {k}\n{USAGE}")),
        }
    }
    let positive = |x: f64| x.is_finite() && x > 0.0;
    if a.port == 0
        || a.workers == 0
        || a.threads == 0
        || !positive(a.seconds)
        || !positive(a.cycle_timeout)
    {
        return Err(USAGE.into());
    }
    if a.tls && a.ca.is_none() {
        return Err("--tls needs --ca".into());
    }
    Ok(a)
}

fn tls_connector(a: &Args) -> Result<(tokio_rustls::TlsConnector, ServerName<'static>), String> {
    let ca = a.ca.as_deref().unwrap_or_default();
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).map_err(|e| format!("{ca}: {e}"))? {
        roots
            .add(c.map_err(|e| format!("{ca}: {e}"))?)
            .map_err(|e| format!("{ca}: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!("{ca}: no certificate"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    if !a.resume {
        config.resumption = rustls::client::Resumption::disabled();
    }
    let name = a.server_name.clone().unwrap_or_else(|| a.host.clone());
    let name = ServerName::try_from(name).map_err(|e| format!("bad server name: {e}"))?;
    Ok((tokio_rustls::TlsConnector::from(Arc::new(config)), name))
}

fn main() -> ExitCode {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("connload: {e}");
            return ExitCode::from(2);
        }
    };
    let ip: IpAddr = match a.host.parse() {
        Ok(ip) => ip,
        Err(_) => {
            eprintln!("connload: --host must be an IP address");
            return ExitCode::from(2);
        }
    };
    let tls = if a.tls {
        match tls_connector(&a) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("connload: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        None
    };
    let cfg = Arc::new(Config {
        addr: SocketAddr::new(ip, a.port),
        user: a.user.clone(),
        password: a.password.clone(),
        query: a.query.clone(),
        tls,
        cycle_timeout: Duration::from_secs_f64(a.cycle_timeout),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(a.threads)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (c0u, c0s) = cpu_seconds();
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(a.seconds);
    let stats: Vec<Stats> = rt.block_on(async {
        let handles: Vec<_> = (0..a.workers)
            .map(|_| tokio::spawn(worker(cfg.clone(), deadline)))
            .collect();
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.expect("worker panicked"));
        }
        out
    });
    let wall = start.elapsed().as_secs_f64();
    let (c1u, c1s) = cpu_seconds();
    let mut all = Stats::default();
    for s in stats {
        all.cycles += s.cycles;
        all.errors += s.errors;
        all.timeouts += s.timeouts;
        all.lat_us.extend(s.lat_us);
        for e in s.first_errors {
            if all.first_errors.len() < 5 {
                all.first_errors.push(e);
            }
        }
    }
    all.lat_us.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.lat_us.is_empty() {
            return f64::NAN;
        }
        let i =
            ((all.lat_us.len() as f64 * p / 100.0).ceil() as usize).clamp(1, all.lat_us.len()) - 1;
        all.lat_us[i] as f64 / 1000.0
    };
    let (u, s) = (c1u - c0u, c1s - c0s);
    let per = |x: f64| {
        if all.cycles > 0 {
            x / all.cycles as f64 * 1e6
        } else {
            f64::NAN
        }
    };
    println!(
        "cycles={} errors={} timeouts={} wall_s={:.3} rate={:.1} p50_ms={:.3} p99_ms={:.3} max_ms={:.3} \
gen_user_s={:.3} gen_sys_s={:.3} gen_cores={:.3} gen_us_per_cycle={:.1} workers={} threads={} tls={} resume={}",
        all.cycles,
        all.errors,
        all.timeouts,
        wall,
        all.cycles as f64 / wall,
        pct(50.0),
        pct(99.0),
        pct(100.0),
        u,
        s,
        (u + s) / wall,
        per(u + s),
        a.workers,
        a.threads,
        a.tls as u8,
        a.resume as u8
    );
    for e in &all.first_errors {
        eprintln!("connload: error: {e}");
    }
    if all.cycles == 0 {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
