//! `GET /v1/digests` and `DELETE /v1/digests`: the query digests of every worker
//! (`dpm_engine::digests`), merged per (digest, user, service), ordered and cut; and the
//! top ones for `/metrics`.

use std::collections::HashMap;

use dpm_engine::digests::store::{DigestEntry, DigestKey};
use dpm_engine::metrics::LATENCY_BOUNDS_US;
use serde_json::{json, Value};

/// What the digests are ordered by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Statements, most first.
    Count,
    /// Total time, most first.
    Time,
    /// Errors, most first.
    Errors,
}

impl Order {
    /// The order a query parameter names.
    pub fn parse(text: &str) -> Option<Order> {
        match text {
            "count" => Some(Order::Count),
            "time" => Some(Order::Time),
            "errors" => Some(Order::Errors),
            _ => None,
        }
    }
}

/// Every worker's entries merged by key: counts and times added, the longest kept, the
/// earliest first seen and latest last seen, the first worker's texts.
pub fn merge(entries: Vec<DigestEntry>) -> Vec<DigestEntry> {
    let mut merged: HashMap<DigestKey, DigestEntry> = HashMap::new();
    for e in entries {
        match merged.get_mut(&e.key) {
            None => {
                merged.insert(e.key, e);
            }
            Some(m) => {
                m.count += e.count;
                m.overcount += e.overcount;
                m.errors += e.errors;
                m.rows += e.rows;
                m.latency.add(&e.latency);
                m.max_us = m.max_us.max(e.max_us);
                m.first_seen_ms = m.first_seen_ms.min(e.first_seen_ms);
                m.last_seen_ms = m.last_seen_ms.max(e.last_seen_ms);
            }
        }
    }
    merged.into_values().collect()
}

/// Orders `entries` by `order` (ties: digest text) and keeps the first `limit`.
pub fn top(mut entries: Vec<DigestEntry>, order: Order, limit: usize) -> Vec<DigestEntry> {
    entries.sort_by(|a, b| {
        let key = |e: &DigestEntry| match order {
            Order::Count => e.count,
            Order::Time => e.latency.sum_us,
            Order::Errors => e.errors,
        };
        key(b).cmp(&key(a)).then_with(|| a.digest.cmp(&b.digest))
    });
    entries.truncate(limit);
    entries
}

/// The `q` quantile of an entry's latency in ms: the upper bound of the bucket it falls
/// in (the longest statement for the last bucket); `None` before any finished.
fn quantile_ms(e: &DigestEntry, q: f64) -> Option<f64> {
    let h = &e.latency;
    if h.count == 0 {
        return None;
    }
    let rank = ((h.count as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, n) in h.buckets.iter().enumerate() {
        seen += n;
        if seen >= rank {
            let us = LATENCY_BOUNDS_US.get(i).copied().unwrap_or(e.max_us);
            return Some(us.min(e.max_us.max(1)) as f64 / 1000.0);
        }
    }
    Some(e.max_us as f64 / 1000.0)
}

/// An entry as the API shows it.
pub fn to_json(e: &DigestEntry) -> Value {
    let finished = e.latency.count;
    json!({
        "digest": &*e.digest,
        "digest_hash": format!("{:016x}", e.key.digest),
        "user": &*e.user,
        "service": &*e.service,
        "count": e.count,
        "count_may_be_over_by": e.overcount,
        "errors": e.errors,
        "rows": e.rows,
        "total_ms": e.latency.sum_us as f64 / 1000.0,
        "mean_ms": if finished > 0 { Some(e.latency.sum_us as f64 / finished as f64 / 1000.0) } else { None },
        "max_ms": e.max_us as f64 / 1000.0,
        "p50_ms": quantile_ms(e, 0.50),
        "p95_ms": quantile_ms(e, 0.95),
        "p99_ms": quantile_ms(e, 0.99),
        "first_seen_ms": e.first_seen_ms,
        "last_seen_ms": e.last_seen_ms,
        "sample": &*e.sample,
    })
}
