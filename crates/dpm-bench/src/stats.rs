//! What a thread counts: transactions, queries, errors (by code) and an HDR histogram of
//! transaction latency, kept by the thread alone (no lock, no atomic per transaction but
//! three relaxed counters the progress line reads), merged by the main thread after the
//! run.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;

/// Latencies are recorded in microseconds, from 1 µs to 1 hour, 3 significant digits.
pub const LATENCY_MAX_US: u64 = 3_600_000_000;

/// Counters the main thread reads every second for the progress line.
#[derive(Debug, Default)]
pub struct Live {
    /// Transactions so far.
    pub transactions: AtomicU64,
    /// Queries so far.
    pub queries: AtomicU64,
    /// Errors so far.
    pub errors: AtomicU64,
}

impl Live {
    /// (transactions, queries, errors).
    pub fn read(&self) -> (u64, u64, u64) {
        (
            self.transactions.load(Ordering::Relaxed),
            self.queries.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        )
    }
}

/// One thread's figures.
#[derive(Clone, Debug)]
pub struct ThreadStats {
    /// Completed transactions.
    pub transactions: u64,
    /// Queries of the completed transactions.
    pub queries: u64,
    /// Failed transactions (ignored errors, and the fatal one if any), by error code.
    pub errors: BTreeMap<u16, u64>,
    /// Connections made again after an ignored error broke one.
    pub reconnects: u64,
    /// Transaction latency, µs.
    pub latency: Histogram<u64>,
}

impl Default for ThreadStats {
    fn default() -> Self {
        ThreadStats {
            transactions: 0,
            queries: 0,
            errors: BTreeMap::new(),
            reconnects: 0,
            latency: new_histogram(),
        }
    }
}

/// An empty latency histogram.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MAX_US, 3).expect("valid histogram bounds")
}

impl ThreadStats {
    /// A transaction completed.
    #[inline]
    pub fn transaction(&mut self, live: &Live, latency: Duration, queries: u64) {
        self.transactions += 1;
        self.queries += queries;
        self.latency
            .saturating_record((latency.as_micros() as u64).clamp(1, LATENCY_MAX_US));
        live.transactions.fetch_add(1, Ordering::Relaxed);
        live.queries.fetch_add(queries, Ordering::Relaxed);
    }

    /// A transaction failed with error `code`.
    pub fn error(&mut self, live: &Live, code: u16) {
        *self.errors.entry(code).or_default() += 1;
        live.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Errors of every code.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Adds `other` (another thread's figures) to these.
    pub fn merge(&mut self, other: &ThreadStats) {
        self.transactions += other.transactions;
        self.queries += other.queries;
        self.reconnects += other.reconnects;
        for (code, n) in &other.errors {
            *self.errors.entry(*code).or_default() += n;
        }
        let _ = self.latency.add(&other.latency);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_merge_and_percentiles_come_from_the_histogram() {
        let live = Live::default();
        let mut a = ThreadStats::default();
        let mut b = ThreadStats::default();
        for us in 1..=100u64 {
            a.transaction(&live, Duration::from_micros(us * 10), 2);
        }
        b.transaction(&live, Duration::from_millis(50), 1);
        b.error(&live, 1213);
        a.merge(&b);
        assert_eq!(a.transactions, 101);
        assert_eq!(a.queries, 201);
        assert_eq!(a.error_count(), 1);
        assert_eq!(live.read(), (101, 201, 1));
        let p50 = a.latency.value_at_quantile(0.5);
        assert!((490..=520).contains(&p50), "{p50}");
        assert!(a.latency.max() >= 49_900);
    }
}
