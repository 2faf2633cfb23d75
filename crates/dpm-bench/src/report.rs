//! The figures of a run and how they are printed: a text summary (tps, qps, errors,
//! latency percentiles p50/p95/p99/p99.9 from the merged HDR histogram, then one line per
//! thread), JSON (`--json`), and the progress line printed every second on a terminal.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde_json::json;

use crate::stats::ThreadStats;

/// A finished run.
#[derive(Clone, Debug)]
pub struct Report {
    /// What ran (`oltp_point_select`, or the script's path).
    pub workload: String,
    /// Threads.
    pub threads: usize,
    /// Connections.
    pub connections: usize,
    /// The measured window.
    pub elapsed: Duration,
    /// All threads together.
    pub total: ThreadStats,
    /// Each thread's own.
    pub per_thread: Vec<ThreadStats>,
    /// The error that stopped the run early, if one did.
    pub fatal: Option<String>,
}

/// Latency percentiles, milliseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Percentiles {
    /// Fastest.
    pub min: f64,
    /// Mean.
    pub avg: f64,
    /// 50th.
    pub p50: f64,
    /// 95th.
    pub p95: f64,
    /// 99th.
    pub p99: f64,
    /// 99.9th.
    pub p999: f64,
    /// Slowest.
    pub max: f64,
}

impl Percentiles {
    /// From a histogram in µs (all zero when empty).
    pub fn of(stats: &ThreadStats) -> Percentiles {
        let h = &stats.latency;
        if h.is_empty() {
            return Percentiles {
                min: 0.0,
                avg: 0.0,
                p50: 0.0,
                p95: 0.0,
                p99: 0.0,
                p999: 0.0,
                max: 0.0,
            };
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Percentiles {
            min: ms(h.min()),
            avg: h.mean() / 1000.0,
            p50: ms(h.value_at_quantile(0.50)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

impl Report {
    fn per_sec(&self, n: u64) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            n as f64 / secs
        } else {
            0.0
        }
    }

    /// Transactions per second.
    pub fn tps(&self) -> f64 {
        self.per_sec(self.total.transactions)
    }

    /// Queries per second.
    pub fn qps(&self) -> f64 {
        self.per_sec(self.total.queries)
    }

    /// The text summary.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let t = &self.total;
        let p = Percentiles::of(t);
        let _ = writeln!(
            s,
            "dpm bench: {} — {} threads, {} connections, {:.2} s",
            self.workload,
            self.threads,
            self.connections,
            self.elapsed.as_secs_f64()
        );
        let _ = writeln!(
            s,
            "transactions: {:>12} ({:.2} per sec.)",
            t.transactions,
            self.tps()
        );
        let _ = writeln!(
            s,
            "queries:      {:>12} ({:.2} per sec.)",
            t.queries,
            self.qps()
        );
        let _ = writeln!(
            s,
            "errors:       {:>12} ({:.2} per sec.){}",
            t.error_count(),
            self.per_sec(t.error_count()),
            error_codes(&t.errors)
        );
        let _ = writeln!(s, "reconnects:   {:>12}", t.reconnects);
        let _ = writeln!(
            s,
            "latency (ms): min {:.3}  avg {:.3}  p50 {:.3}  p95 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
            p.min, p.avg, p.p50, p.p95, p.p99, p.p999, p.max
        );
        let _ = writeln!(s, "per thread:");
        for (i, th) in self.per_thread.iter().enumerate() {
            let p = Percentiles::of(th);
            let _ = writeln!(
                s,
                "  thread {:>3}: transactions {:>10} ({:.2}/s)  queries {:>10}  errors {:>6}  p99 {:.3} ms",
                i + 1,
                th.transactions,
                self.per_sec(th.transactions),
                th.queries,
                th.error_count(),
                p.p99
            );
        }
        if let Some(fatal) = &self.fatal {
            let _ = writeln!(s, "FATAL: {fatal}");
        }
        s
    }

    /// The report as JSON (`--json`).
    pub fn json(&self) -> serde_json::Value {
        let latency = |st: &ThreadStats| {
            let p = Percentiles::of(st);
            json!({ "min": p.min, "avg": p.avg, "p50": p.p50, "p95": p.p95, "p99": p.p99,
                    "p999": p.p999, "max": p.max })
        };
        let codes = |st: &ThreadStats| -> serde_json::Map<String, serde_json::Value> {
            st.errors
                .iter()
                .map(|(c, n)| (c.to_string(), json!(n)))
                .collect()
        };
        json!({
            "workload": self.workload,
            "threads": self.threads,
            "connections": self.connections,
            "seconds": self.elapsed.as_secs_f64(),
            "transactions": self.total.transactions,
            "queries": self.total.queries,
            "errors": self.total.error_count(),
            "error_codes": codes(&self.total),
            "reconnects": self.total.reconnects,
            "tps": self.tps(),
            "qps": self.qps(),
            "latency_ms": latency(&self.total),
            "per_thread": self.per_thread.iter().enumerate().map(|(i, th)| json!({
                "thread": i + 1,
                "transactions": th.transactions,
                "queries": th.queries,
                "errors": th.error_count(),
                "error_codes": codes(th),
                "tps": self.per_sec(th.transactions),
                "latency_ms": latency(th),
            })).collect::<Vec<_>>(),
            "fatal": self.fatal,
        })
    }
}

fn error_codes(errors: &BTreeMap<u16, u64>) -> String {
    if errors.is_empty() {
        return String::new();
    }
    let list: Vec<String> = errors.iter().map(|(c, n)| format!("{c}: {n}")).collect();
    format!("  by code: {}", list.join(", "))
}

/// One progress line: the second, and the rates over the last interval.
pub fn progress_line(second: u64, interval: Duration, delta: (u64, u64, u64)) -> String {
    let secs = interval.as_secs_f64().max(1e-9);
    format!(
        "[ {second}s ] tps: {:.2} qps: {:.2} err/s: {:.2}",
        delta.0 as f64 / secs,
        delta.1 as f64 / secs,
        delta.2 as f64 / secs
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Live;

    #[test]
    fn the_report_says_tps_percentiles_and_threads_in_text_and_json() {
        let live = Live::default();
        let mut a = ThreadStats::default();
        for _ in 0..100 {
            a.transaction(&live, Duration::from_millis(2), 1);
        }
        a.error(&live, 1213);
        let report = Report {
            workload: "oltp_point_select".into(),
            threads: 1,
            connections: 2,
            elapsed: Duration::from_secs(2),
            total: a.clone(),
            per_thread: vec![a],
            fatal: None,
        };
        let text = report.text();
        assert!(
            text.contains("transactions:          100 (50.00 per sec.)"),
            "{text}"
        );
        assert!(text.contains("by code: 1213: 1"), "{text}");
        assert!(text.contains("thread   1:"), "{text}");
        let j = report.json();
        assert_eq!(j["tps"], 50.0);
        assert_eq!(j["per_thread"][0]["transactions"], 100);
        assert!((j["latency_ms"]["p99"].as_f64().unwrap() - 2.0).abs() < 0.01);
        assert_eq!(
            progress_line(3, Duration::from_secs(1), (10, 20, 0)),
            "[ 3s ] tps: 10.00 qps: 20.00 err/s: 0.00"
        );
    }
}
