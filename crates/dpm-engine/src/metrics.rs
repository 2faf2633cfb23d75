//! What a worker counts for the metrics endpoint (`/metrics` of the admin API): clients
//! accepted and refused, bytes read, server errors by code, Lua callbacks; and per
//! service ([`ServiceMetrics`], kept in the worker's `WorkerService`): statements by
//! command, filter drops and answers, and statement latency per server.
//!
//! Everything is a plain `Cell` on the worker's own thread — no atomic, no lock, no
//! allocation per statement — because the data path updates it: a statement costs a few
//! increments and one clock read when its response ends. Another thread never reads
//! these cells: the admin API asks each worker for a [`WorkerSnapshot`] through its
//! mailbox (`crate::control`), and the worker copies them out on its own thread.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::statement_kind::StatementKind;
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashMap;

use crate::service::Server;

/// Why a client was refused before it became a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusedReason {
    /// Its listener had `max_connections` clients.
    MaxConnections = 0,
    /// dpm was out of file descriptors.
    OutOfDescriptors = 1,
    /// No server of its service could take it.
    NoServer = 2,
    /// Its login failed (proxy-held users).
    LoginFailed = 3,
}

impl RefusedReason {
    const ALL: [RefusedReason; 4] = [
        RefusedReason::MaxConnections,
        RefusedReason::OutOfDescriptors,
        RefusedReason::NoServer,
        RefusedReason::LoginFailed,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusedReason::MaxConnections => "max_connections",
            RefusedReason::OutOfDescriptors => "out_of_descriptors",
            RefusedReason::NoServer => "no_server",
            RefusedReason::LoginFailed => "login_failed",
        }
    }
}

/// Upper bounds of the latency buckets, in microseconds (Prometheus' `le`, in seconds:
/// 100 µs … 10 s; the last bucket, +Inf, is implied).
pub const LATENCY_BOUNDS_US: [u64; 16] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// A latency histogram: counts per bucket (not cumulative; the last is +Inf), count and
/// sum.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Latency {
    /// One count per bound of [`LATENCY_BOUNDS_US`], then the +Inf bucket.
    pub buckets: [u64; 17],
    /// Statements timed.
    pub count: u64,
    /// Their total time, in microseconds.
    pub sum_us: u64,
}

impl Latency {
    pub(crate) fn record(&mut self, took: Duration) {
        let us = took.as_micros().min(u64::MAX as u128) as u64;
        let bucket = LATENCY_BOUNDS_US.partition_point(|&bound| bound < us);
        self.buckets[bucket] += 1;
        self.count += 1;
        self.sum_us = self.sum_us.saturating_add(us);
    }

    /// Adds another histogram's counts (another worker's).
    pub fn add(&mut self, other: &Latency) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a += b;
        }
        self.count += other.count;
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
    }
}

/// A worker's own counters (see the module docs).
#[derive(Default)]
pub struct WorkerMetrics {
    clients_accepted: Cell<u64>,
    refused: [Cell<u64>; 4],
    bytes_from_clients: Cell<u64>,
    bytes_from_servers: Cell<u64>,
    lua_errors: Cell<u64>,
    lua_nanos: Cell<u64>,
    /// ERR packets servers sent to service sessions, by error code.
    server_errors: RefCell<FxHashMap<u16, u64>>,
    /// Each service's counters, by name: kept by the worker rather than by the service's
    /// per-worker object, so that they go on counting across a hot reload (whose new
    /// Lua state makes new per-worker objects of the same services).
    services: RefCell<FxHashMap<String, Rc<ServiceMetrics>>>,
}

fn add(cell: &Cell<u64>, n: u64) {
    cell.set(cell.get().wrapping_add(n));
}

impl WorkerMetrics {
    /// The counters of service `name` on this worker (made at its first use).
    pub fn service(&self, name: &str) -> Rc<ServiceMetrics> {
        self.services
            .borrow_mut()
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    /// A client was accepted.
    pub fn client_accepted(&self) {
        add(&self.clients_accepted, 1);
    }

    /// A client was refused.
    pub fn client_refused(&self, why: RefusedReason) {
        add(&self.refused[why as usize], 1);
    }

    /// `n` bytes were read from a client (true) or from a server.
    #[inline]
    pub(crate) fn bytes_read(&self, from_client: bool, n: usize) {
        let cell = if from_client {
            &self.bytes_from_clients
        } else {
            &self.bytes_from_servers
        };
        add(cell, n as u64);
    }

    /// A Lua function ran for `took` (waits included) and failed or not.
    pub fn lua_call(&self, took: Duration, failed: bool) {
        add(
            &self.lua_nanos,
            took.as_nanos().min(u64::MAX as u128) as u64,
        );
        if failed {
            add(&self.lua_errors, 1);
        }
    }

    /// A server answered a service session with ERR `code`.
    pub(crate) fn server_error(&self, code: u16) {
        *self.server_errors.borrow_mut().entry(code).or_default() += 1;
    }
}

/// One service's counters on one worker.
pub struct ServiceMetrics {
    /// Commands by command byte.
    commands: [Cell<u64>; 256],
    /// Text statements by kind (`StatementKind as usize`).
    kinds: [Cell<u64>; StatementKind::ALL.len()],
    filter_drops: Cell<u64>,
    filter_answers: Cell<u64>,
    /// Statement latency by server (a service has few servers: a scan by pointer).
    latency: RefCell<Vec<(Arc<Server>, Latency)>>,
}

impl Default for ServiceMetrics {
    fn default() -> Self {
        ServiceMetrics {
            commands: std::array::from_fn(|_| Cell::new(0)),
            kinds: std::array::from_fn(|_| Cell::new(0)),
            filter_drops: Cell::new(0),
            filter_answers: Cell::new(0),
            latency: RefCell::new(Vec::new()),
        }
    }
}

impl ServiceMetrics {
    /// A client sent `command`.
    #[inline]
    pub(crate) fn command(&self, command: u8) {
        add(&self.commands[command as usize], 1);
    }

    /// A client sent the text statement `sql` (a `COM_QUERY`'s).
    #[inline]
    pub(crate) fn text_statement(&self, sql: &[u8]) {
        add(&self.kinds[StatementKind::of(sql) as usize], 1);
    }

    /// A filter dropped a command (true) or answered it itself.
    pub(crate) fn filter_stopped(&self, dropped: bool) {
        add(
            if dropped {
                &self.filter_drops
            } else {
                &self.filter_answers
            },
            1,
        );
    }

    /// A statement on `server` took `took`, from the command to the end of its response.
    pub(crate) fn statement_took(&self, server: &Arc<Server>, took: Duration) {
        let mut all = self.latency.borrow_mut();
        if let Some((_, h)) = all.iter_mut().find(|(s, _)| Arc::ptr_eq(s, server)) {
            h.record(took);
            return;
        }
        let mut h = Latency::default();
        h.record(took);
        all.push((server.clone(), h));
    }

    fn snapshot(&self, name: &str) -> ServiceSnapshot {
        ServiceSnapshot {
            service: name.to_string(),
            commands: self
                .commands
                .iter()
                .enumerate()
                .filter(|(_, c)| c.get() > 0)
                .map(|(byte, c)| (dpm_protocol::command::command_name(byte as u8), c.get()))
                .collect(),
            kinds: StatementKind::ALL
                .iter()
                .filter(|k| self.kinds[**k as usize].get() > 0)
                .map(|k| (k.as_str(), self.kinds[*k as usize].get()))
                .collect(),
            filter_drops: self.filter_drops.get(),
            filter_answers: self.filter_answers.get(),
            latency: self
                .latency
                .borrow()
                .iter()
                .map(|(s, h)| (s.name.clone(), h.clone()))
                .collect(),
        }
    }
}

/// One service's counters on one worker, copied out.
#[derive(Clone, Debug, Default)]
pub struct ServiceSnapshot {
    /// The service.
    pub service: String,
    /// Commands by name (`COM_QUERY`), those sent at least once.
    pub commands: Vec<(&'static str, u64)>,
    /// Text statements by kind (`select`, `ddl`, …), those sent at least once.
    pub kinds: Vec<(&'static str, u64)>,
    /// Commands a filter dropped.
    pub filter_drops: u64,
    /// Commands a filter answered itself.
    pub filter_answers: u64,
    /// Statement latency by server name.
    pub latency: Vec<(String, Latency)>,
}

/// A worker's counters, copied out on its thread for the metrics endpoint.
#[derive(Clone, Debug, Default)]
pub struct WorkerSnapshot {
    /// The worker.
    pub worker: usize,
    /// CPU time its thread has used, in seconds (its busy time).
    pub cpu_seconds: f64,
    /// Clients connected now.
    pub clients_connected: u64,
    /// Clients accepted.
    pub clients_accepted: u64,
    /// Clients refused, by reason.
    pub refused: Vec<(&'static str, u64)>,
    /// Bytes read from clients.
    pub bytes_from_clients: u64,
    /// Bytes read from servers.
    pub bytes_from_servers: u64,
    /// Lua functions entered.
    pub lua_calls: u64,
    /// Lua functions that failed.
    pub lua_errors: u64,
    /// Time spent in Lua functions (waits included), in seconds.
    pub lua_seconds: f64,
    /// ERR packets from servers, by code.
    pub server_errors: Vec<(u16, u64)>,
    /// Per service.
    pub services: Vec<ServiceSnapshot>,
}

impl crate::worker::Worker {
    /// This worker's counters.
    #[inline]
    pub fn metrics(&self) -> &WorkerMetrics {
        &self.inner.metrics
    }

    /// Copies this worker's counters out (on its own thread).
    pub(crate) fn metrics_snapshot(&self) -> WorkerSnapshot {
        let m = &self.inner.metrics;
        let mut services: Vec<ServiceSnapshot> = m
            .services
            .borrow()
            .iter()
            .map(|(name, counters)| counters.snapshot(name))
            .collect();
        services.sort_by(|a, b| a.service.cmp(&b.service));
        let mut server_errors: Vec<(u16, u64)> = m
            .server_errors
            .borrow()
            .iter()
            .map(|(c, n)| (*c, *n))
            .collect();
        server_errors.sort_unstable();
        WorkerSnapshot {
            worker: self.index(),
            cpu_seconds: thread_cpu_seconds(),
            clients_connected: self
                .inner
                .conns
                .borrow()
                .values()
                .filter(|c| c.role == crate::conn::Role::Client)
                .count() as u64,
            clients_accepted: m.clients_accepted.get(),
            refused: RefusedReason::ALL
                .iter()
                .map(|r| (r.as_str(), m.refused[*r as usize].get()))
                .collect(),
            bytes_from_clients: m.bytes_from_clients.get(),
            bytes_from_servers: m.bytes_from_servers.get(),
            lua_calls: self
                .gauges()
                .lua_calls
                .load(std::sync::atomic::Ordering::Relaxed),
            lua_errors: m.lua_errors.get(),
            lua_seconds: m.lua_nanos.get() as f64 / 1e9,
            server_errors,
            services,
        }
    }
}

/// CPU time the calling thread has used, in seconds.
fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_fall_into_their_buckets() {
        let mut h = Latency::default();
        h.record(Duration::from_micros(50));
        h.record(Duration::from_micros(100));
        h.record(Duration::from_micros(101));
        h.record(Duration::from_secs(60));
        assert_eq!(h.buckets[0], 2, "≤ 100 µs");
        assert_eq!(h.buckets[1], 1, "≤ 250 µs");
        assert_eq!(h.buckets[16], 1, "+Inf");
        assert_eq!((h.count, h.sum_us), (4, 60_000_251));
        let mut total = Latency::default();
        total.add(&h);
        total.add(&h);
        assert_eq!((total.count, total.buckets[0]), (8, 4));
    }
}
