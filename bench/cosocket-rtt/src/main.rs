//! bench/cosocket's helper: `cosocket-rtt echo PORT` serves a line echo on 127.0.0.1:PORT
//! (each connection: read, write back what was read); `cosocket-rtt client PORT N` makes
//! N sequential round trips ("ping\n" out, a line back) from a current-thread tokio
//! runtime — what a plain Rust client pays — and prints `rtt_us=<mean>`.

use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args.get(2).and_then(|p| p.parse().ok()).expect("PORT");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match args.get(1).map(String::as_str) {
        Some("echo") => runtime.block_on(echo(port)),
        Some("client") => {
            let n: u32 = args.get(3).and_then(|n| n.parse().ok()).expect("N");
            runtime.block_on(client(port, n))
        }
        _ => panic!("usage: cosocket-rtt echo PORT | client PORT N"),
    }
}

async fn echo(port: u16) {
    let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
    loop {
        let Ok((mut s, _)) = listener.accept().await else { continue };
        tokio::spawn(async move {
            let _ = s.set_nodelay(true);
            let mut buf = vec![0u8; 16 * 1024];
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        });
    }
}

async fn client(port: u16, n: u32) {
    let s = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    s.set_nodelay(true).expect("nodelay");
    let (r, mut w) = s.into_split();
    let mut r = BufReader::new(r);
    let mut line = String::new();
    // Warm up, as the Lua task does.
    for _ in 0..100 {
        w.write_all(b"ping\n").await.expect("write");
        line.clear();
        r.read_line(&mut line).await.expect("read");
    }
    let started = Instant::now();
    for _ in 0..n {
        w.write_all(b"ping\n").await.expect("write");
        line.clear();
        r.read_line(&mut line).await.expect("read");
        assert_eq!(line, "ping\n");
    }
    let us = started.elapsed().as_secs_f64() * 1e6 / f64::from(n);
    println!("rtt_us={us:.2}");
}
