//! The digest store's memory under many distinct statements (`bench/digest-memory`):
//! feeds N distinct (digest, user, service) keys — every one new, the worst case for a
//! bounded store — into a store of the default capacity (10,000), the way a worker does
//! (each statement started, then finished), and prints the process's resident memory
//! after 10,000 keys and after N.
//!
//!   cargo run --release -p dpm-engine --example digest_memory -- [N]   (default 10,000,000)

use std::time::{Duration, Instant};

use dpm_engine::digests::store::{DigestKey, DigestStore};

/// Resident memory in MiB, from /proc/self/statm.
fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1024.0 * 1024.0)
}

fn main() {
    let total: u64 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000_000);
    let mut store = DigestStore::new(10_000);
    let started = Instant::now();
    let mut at_10k = 0.0;
    for i in 0..total {
        let key = DigestKey {
            digest: i.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            who: 7,
        };
        // Texts made per statement, as a worker's digest and statement are.
        let digest = format!("SELECT c, pad FROM sbtest{i} WHERE id BETWEEN ? AND ? ORDER BY c");
        let sample =
            format!("SELECT c, pad FROM sbtest{i} WHERE id BETWEEN 4711 AND 4810 ORDER BY c");
        store.started(key, || {
            (digest.as_bytes(), sample.as_bytes(), "sbtest".into(), "app")
        });
        let took = Duration::from_micros(150 + i % 1000);
        store.finished(key, Instant::now(), took, 100, false);
        if i + 1 == 10_000 {
            at_10k = rss_mib();
            println!(
                "after {:>10} distinct statements: RSS {at_10k:7.1} MiB, {} entries kept",
                i + 1,
                store.len()
            );
        }
    }
    let at_end = rss_mib();
    println!(
        "after {total:>10} distinct statements: RSS {at_end:7.1} MiB, {} entries kept ({:.1} s, {:.0} ns per statement)",
        store.len(),
        started.elapsed().as_secs_f64(),
        started.elapsed().as_nanos() as f64 / total as f64
    );
    println!("growth: {:+.1} MiB", at_end - at_10k);
}
