//! Throughput of `dpm_modules::classifier::classify` (classification + digest + hash), one
//! thread, over (a) a generated corpus of the statements sysbench's oltp_read_write sends
//! and (b) the statements of SQL files. Run through `bench/classifier` (release build).
//!
//! Usage: classify_bench [--seconds S] [--transactions N] [--show N] [FILE.sql …]
//! (`--show N` prints the classification of each file's first N statements.)
//!
//! Files are split into statements the way the `mysql` client does: at the current
//! delimiter (`;`, changed by `DELIMITER` lines) outside quotes and comments; each
//! statement is classified as one COM_QUERY text (stored-program bodies stay whole).

use std::hint::black_box;
use std::time::{Duration, Instant};

use dpm_modules::classifier::classify;

/// xorshift64*: a deterministic generator so every run benches the same corpus.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    /// sysbench's `###########-…` strings: `groups` groups of 11 digits joined by `-`.
    fn digits(&mut self, groups: usize) -> String {
        let mut s = String::with_capacity(groups * 12);
        for g in 0..groups {
            if g > 0 {
                s.push('-');
            }
            for _ in 0..11 {
                s.push((b'0' + (self.next() % 10) as u8) as char);
            }
        }
        s
    }
}

/// The statements of `transactions` oltp_read_write transactions (sysbench defaults: 10
/// point selects, one each of the four range selects, one index update, one non-index
/// update, one delete, one insert; 10 tables of 10,000 rows, range size 100).
fn sysbench_corpus(transactions: usize) -> Vec<Vec<u8>> {
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let mut out = Vec::with_capacity(transactions * 20);
    for _ in 0..transactions {
        let t = |r: &mut Rng| r.range(1, 10);
        let id = |r: &mut Rng| r.range(1, 10_000);
        out.push("BEGIN".to_string());
        for _ in 0..10 {
            out.push(format!(
                "SELECT c FROM sbtest{} WHERE id={}",
                t(&mut r),
                id(&mut r)
            ));
        }
        let range = |r: &mut Rng| {
            let a = r.range(1, 9_900);
            (a, a + 99)
        };
        let (a, b) = range(&mut r);
        out.push(format!(
            "SELECT c FROM sbtest{} WHERE id BETWEEN {a} AND {b}",
            t(&mut r)
        ));
        let (a, b) = range(&mut r);
        out.push(format!(
            "SELECT SUM(k) FROM sbtest{} WHERE id BETWEEN {a} AND {b}",
            t(&mut r)
        ));
        let (a, b) = range(&mut r);
        out.push(format!(
            "SELECT c FROM sbtest{} WHERE id BETWEEN {a} AND {b} ORDER BY c",
            t(&mut r)
        ));
        let (a, b) = range(&mut r);
        out.push(format!(
            "SELECT DISTINCT c FROM sbtest{} WHERE id BETWEEN {a} AND {b} ORDER BY c",
            t(&mut r)
        ));
        out.push(format!(
            "UPDATE sbtest{} SET k=k+1 WHERE id={}",
            t(&mut r),
            id(&mut r)
        ));
        let c = r.digits(10);
        out.push(format!(
            "UPDATE sbtest{} SET c='{c}' WHERE id={}",
            t(&mut r),
            id(&mut r)
        ));
        let (tbl, del) = (t(&mut r), id(&mut r));
        out.push(format!("DELETE FROM sbtest{tbl} WHERE id={del}"));
        let (c, pad, k) = (r.digits(10), r.digits(5), id(&mut r));
        out.push(format!(
            "INSERT INTO sbtest{tbl} (id, k, c, pad) VALUES ({del}, {k}, '{c}', '{pad}')"
        ));
        out.push("COMMIT".to_string());
    }
    out.into_iter().map(String::into_bytes).collect()
}

/// Split a SQL script like the `mysql` client: DELIMITER lines, delimiter outside quotes
/// and comments. Empty statements are dropped.
fn split_script(text: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut delim: Vec<u8> = b";".to_vec();
    let mut cur: Vec<u8> = Vec::new();
    let mut i = 0;
    let n = text.len();
    let mut line_start = true;
    while i < n {
        if line_start {
            let rest = &text[i..];
            let trimmed = rest
                .iter()
                .position(|b| !b" \t".contains(b))
                .unwrap_or(rest.len());
            let r = &rest[trimmed..];
            if r.len() > 10 && r[..10].eq_ignore_ascii_case(b"delimiter ") {
                let eol = r.iter().position(|&b| b == b'\n').unwrap_or(r.len());
                let d = String::from_utf8_lossy(&r[10..eol])
                    .trim()
                    .as_bytes()
                    .to_vec();
                if !d.is_empty() {
                    delim = d;
                }
                i += trimmed + eol;
                continue;
            }
        }
        let c = text[i];
        line_start = c == b'\n';
        match c {
            b'\'' | b'"' | b'`' => {
                let mut j = i + 1;
                while j < n && text[j] != c {
                    if text[j] == b'\\' && c != b'`' {
                        j += 1;
                    }
                    j += 1;
                }
                let e = (j + 1).min(n);
                cur.extend_from_slice(&text[i..e]);
                i = e;
                continue;
            }
            b'/' if text.get(i + 1) == Some(&b'*') => {
                let mut j = i + 2;
                while j + 1 < n && !(text[j] == b'*' && text[j + 1] == b'/') {
                    j += 1;
                }
                let e = (j + 2).min(n);
                cur.extend_from_slice(&text[i..e]);
                i = e;
                continue;
            }
            b'#' => {
                let e = text[i..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(n, |p| i + p);
                i = e;
                continue;
            }
            b'-' if text.get(i + 1) == Some(&b'-')
                && text.get(i + 2).is_some_and(|&b| b <= b' ') =>
            {
                let e = text[i..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(n, |p| i + p);
                i = e;
                continue;
            }
            _ => {}
        }
        if text[i..].starts_with(&delim) {
            let s = std::mem::take(&mut cur);
            if s.iter().any(|b| !b.is_ascii_whitespace()) {
                out.push(s);
            }
            i += delim.len();
            continue;
        }
        cur.push(c);
        i += 1;
    }
    if cur.iter().any(|b| !b.is_ascii_whitespace()) {
        out.push(cur);
    }
    out
}

struct Row {
    name: String,
    statements: usize,
    avg_bytes: f64,
    secs: f64,
    per_sec: f64,
    ns: f64,
    writes: usize,
    errors: usize,
}

fn measure(name: &str, corpus: &[Vec<u8>], min: Duration) -> Row {
    // Warm-up pass (also gathers a few facts about the corpus).
    let mut writes = 0;
    let mut errors = 0;
    for s in corpus {
        let c = classify(s);
        writes += c.may_write as usize;
        errors += c.lex_error as usize;
    }
    let mut done = 0usize;
    let mut acc = 0u64;
    let start = Instant::now();
    loop {
        for s in corpus {
            let c = classify(black_box(s));
            acc ^= c.digest_hash ^ c.tables.len() as u64;
        }
        done += corpus.len();
        if start.elapsed() >= min {
            break;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    black_box(acc);
    let bytes: usize = corpus.iter().map(Vec::len).sum();
    Row {
        name: name.to_string(),
        statements: corpus.len(),
        avg_bytes: bytes as f64 / corpus.len().max(1) as f64,
        secs,
        per_sec: done as f64 / secs,
        ns: secs * 1e9 / done as f64,
        writes,
        errors,
    }
}

fn main() {
    let mut seconds = 2.0f64;
    let mut transactions = 500usize;
    let mut files = Vec::new();
    let mut show = 0usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seconds" => {
                seconds = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--seconds S")
            }
            "--transactions" => {
                transactions = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--transactions N")
            }
            "--show" => show = args.next().and_then(|v| v.parse().ok()).expect("--show N"),
            "-h" | "--help" => {
                println!(
                    "classify_bench [--seconds S] [--transactions N] [--show N] [FILE.sql ...]"
                );
                return;
            }
            f => files.push(f.to_string()),
        }
    }
    let min = Duration::from_secs_f64(seconds);
    let mut rows = Vec::new();
    let corpus = sysbench_corpus(transactions);
    rows.push(measure("sysbench oltp_read_write", &corpus, min));
    for f in &files {
        let text = std::fs::read(f).unwrap_or_else(|e| panic!("{f}: {e}"));
        let corpus = split_script(&text);
        for st in corpus.iter().take(show) {
            let c = classify(st);
            println!(
                "{} write={} tables={:?} trx={:?} {}",
                c.kind.as_str(),
                c.may_write,
                c.tables,
                c.trx,
                c.digest
            );
        }
        let short = f.rsplit('/').next().unwrap_or(f);
        rows.push(measure(short, &corpus, min));
    }
    println!(
        "{:<26} {:>10} {:>9} {:>7} {:>7} {:>8} {:>14} {:>10}",
        "corpus",
        "statements",
        "avg bytes",
        "writes",
        "lex err",
        "seconds",
        "statements/s",
        "ns/stmt"
    );
    for r in &rows {
        println!(
            "{:<26} {:>10} {:>9.1} {:>7} {:>7} {:>8.2} {:>14.0} {:>10.1}",
            r.name, r.statements, r.avg_bytes, r.writes, r.errors, r.secs, r.per_sec, r.ns
        );
    }
    println!("(one thread; classify() = lex + classify + tables + digest + hash; statements/s is per core)");
}
