//! `GET /metrics`: the process's counters in the Prometheus/OpenMetrics text format,
//! encoded by `prometheus-client` (no hand-written exposition).
//!
//! Nothing is kept between scrapes: each scrape gathers the workers' counters through
//! their mailboxes (`dpm_engine::control::metrics`) and the servers' and services'
//! process-wide state, and a [`Collector`] writes them out as constant metrics.
//! Counters are summed over the workers; a worker's busy time is per worker.

use std::sync::atomic::Ordering::Relaxed;

use dpm_engine::metrics::{Latency, ServiceSnapshot, WorkerSnapshot, LATENCY_BOUNDS_US};
use dpm_engine::service;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// The content type of the text [`scrape`] returns.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A server's state, copied out.
#[derive(Debug)]
struct ServerState {
    name: String,
    up: bool,
    role: &'static str,
    admin_state: &'static str,
    lag: Option<u64>,
    sessions: u64,
    routed: u64,
    failed_connects: u64,
}

/// A service's process-wide counters, copied out.
#[derive(Debug)]
struct ServiceState {
    name: String,
    sessions: u64,
    total_sessions: u64,
    refused_sessions: u64,
}

/// Everything one scrape shows.
#[derive(Debug)]
struct Scrape {
    workers: Vec<WorkerSnapshot>,
    silent_workers: usize,
    servers: Vec<ServerState>,
    services: Vec<ServiceState>,
    /// The top query digests by statements, when digests are on.
    digests: Vec<dpm_engine::digests::store::DigestEntry>,
}

/// How many query digests `/metrics` shows (the most frequent).
pub const TOP_DIGESTS: usize = 20;

/// Gathers the counters and encodes them.
pub async fn scrape() -> Result<String, std::fmt::Error> {
    let gathered = dpm_engine::control::metrics().await;
    let digests = if dpm_engine::digests::config().is_some() {
        let all = crate::digests::merge(dpm_engine::control::digests().await.items);
        crate::digests::top(all, crate::digests::Order::Count, TOP_DIGESTS)
    } else {
        Vec::new()
    };
    let scrape = Scrape {
        digests,
        workers: gathered.items,
        silent_workers: gathered.silent_workers.len(),
        servers: service::servers()
            .iter()
            .map(|s| ServerState {
                name: s.name.clone(),
                up: s.is_up(),
                role: s.role().as_str(),
                admin_state: s.admin_state().as_str(),
                lag: s.lag(),
                sessions: s.sessions.load(Relaxed),
                routed: s.routed.load(Relaxed),
                failed_connects: s.failed_connects.load(Relaxed),
            })
            .collect(),
        services: service::services()
            .iter()
            .map(|s| ServiceState {
                name: s.name.clone(),
                sessions: s.sessions.load(Relaxed),
                total_sessions: s.total_sessions.load(Relaxed),
                refused_sessions: s.refused_sessions.load(Relaxed),
            })
            .collect(),
    };
    let mut registry = Registry::default();
    registry.register_collector(Box::new(scrape));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)?;
    Ok(text)
}

type Labels = Vec<(&'static str, String)>;

/// A sample's value: a count, or seconds.
#[derive(Clone, Copy)]
enum V {
    N(u64),
    S(f64),
}

/// Writes one metric family: `values` are (labels, value) pairs; a value without labels
/// is written without braces.
fn family(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    values: impl IntoIterator<Item = (Labels, V)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in values {
        if labels.is_empty() {
            // The one sample of a family without labels.
            return encode_value(kind, value, metric);
        }
        let labels = escaped(labels);
        encode_value(kind, value, metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// How many characters of a digest its label carries.
const DIGEST_LABEL_CHARS: usize = 200;

/// The first `max` characters of `text`.
fn cut(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// Label values in the exposition's escaped form. prometheus-client (0.24) writes label
/// values as they are, and some come from clients (a digest keeps identifiers and
/// optimizer hints as written, a user name is what the client sent): a quote, a
/// backslash or a newline in one would end the label, or the line, early.
fn escaped(labels: Labels) -> Labels {
    labels
        .into_iter()
        .map(|(name, value)| {
            let mut out = String::with_capacity(value.len());
            for c in value.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    c => out.push(c),
                }
            }
            (name, out)
        })
        .collect()
}

fn encode_value(
    kind: MetricType,
    value: V,
    encoder: prometheus_client::encoding::MetricEncoder,
) -> Result<(), std::fmt::Error> {
    match (kind, value) {
        (MetricType::Counter, V::N(n)) => ConstCounter::new(n).encode(encoder),
        (MetricType::Counter, V::S(s)) => ConstCounter::new(s).encode(encoder),
        (_, V::N(n)) => ConstGauge::new(n.min(i64::MAX as u64) as i64).encode(encoder),
        (_, V::S(s)) => ConstGauge::new(s).encode(encoder),
    }
}

/// One value without labels.
fn single(value: V) -> Vec<(Labels, V)> {
    vec![(Vec::new(), value)]
}

impl Scrape {
    /// Σ over workers of `f`.
    fn sum(&self, f: impl Fn(&WorkerSnapshot) -> u64) -> V {
        V::N(self.workers.iter().map(f).sum::<u64>())
    }

    /// Σ over workers of labelled counts (first label value → count).
    fn sum_by<K: Ord + Clone>(
        &self,
        f: impl Fn(&WorkerSnapshot) -> Vec<(K, u64)>,
    ) -> std::collections::BTreeMap<K, u64> {
        let mut all = std::collections::BTreeMap::new();
        for w in &self.workers {
            for (k, n) in f(w) {
                *all.entry(k).or_default() += n;
            }
        }
        all
    }
}

impl Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use MetricType::{Counter, Gauge};
        family(
            &mut e,
            "dpm_clients_connected",
            "Client connections open now",
            Gauge,
            single(self.sum(|w| w.clients_connected)),
        )?;
        family(
            &mut e,
            "dpm_clients_accepted",
            "Client connections accepted",
            Counter,
            single(self.sum(|w| w.clients_accepted)),
        )?;
        let refused = self.sum_by(|w| w.refused.clone());
        family(
            &mut e,
            "dpm_clients_refused",
            "Clients refused, by reason",
            Counter,
            refused
                .into_iter()
                .map(|(r, n)| (vec![("reason", r.to_string())], V::N(n))),
        )?;
        family(
            &mut e,
            "dpm_bytes_read",
            "Bytes read, from clients or from servers",
            Counter,
            [
                (
                    vec![("from", "clients".to_string())],
                    self.sum(|w| w.bytes_from_clients),
                ),
                (
                    vec![("from", "servers".to_string())],
                    self.sum(|w| w.bytes_from_servers),
                ),
            ],
        )?;
        for (name, help, label, counts) in [
            (
                "dpm_statements",
                "Commands clients sent to a service, by command",
                "command",
                (|s| &s.commands) as fn(&ServiceSnapshot) -> &Vec<(&'static str, u64)>,
            ),
            (
                "dpm_queries",
                "Text statements (COM_QUERY) clients sent to a service, by kind (first keyword)",
                "kind",
                |s| &s.kinds,
            ),
        ] {
            let summed = self.sum_by(|w| {
                w.services
                    .iter()
                    .flat_map(|s| counts(s).iter().map(|(k, n)| ((s.service.clone(), *k), *n)))
                    .collect()
            });
            family(
                &mut e,
                name,
                help,
                Counter,
                summed.into_iter().map(|((service, key), n)| {
                    (
                        vec![("service", service), (label, key.to_string())],
                        V::N(n),
                    )
                }),
            )?;
        }
        let errors = self.sum_by(|w| w.server_errors.clone());
        family(
            &mut e,
            "dpm_server_errors",
            "ERR packets servers sent to service sessions, by error code",
            Counter,
            errors
                .into_iter()
                .map(|(code, n)| (vec![("code", code.to_string())], V::N(n))),
        )?;
        let drops = self.sum_by(|w| {
            w.services
                .iter()
                .map(|s| (s.service.clone(), s.filter_drops))
                .collect()
        });
        family(
            &mut e,
            "dpm_filter_drops",
            "Commands a filter dropped",
            Counter,
            drops
                .into_iter()
                .map(|(s, n)| (vec![("service", s)], V::N(n))),
        )?;
        let answers = self.sum_by(|w| {
            w.services
                .iter()
                .map(|s| (s.service.clone(), s.filter_answers))
                .collect()
        });
        family(
            &mut e,
            "dpm_filter_answers",
            "Commands a filter answered itself",
            Counter,
            answers
                .into_iter()
                .map(|(s, n)| (vec![("service", s)], V::N(n))),
        )?;
        family(
            &mut e,
            "dpm_lua_calls",
            "Lua functions entered (callbacks, filters, tasks, timers)",
            Counter,
            single(self.sum(|w| w.lua_calls)),
        )?;
        family(
            &mut e,
            "dpm_lua_errors",
            "Lua functions that raised an error",
            Counter,
            single(self.sum(|w| w.lua_errors)),
        )?;
        family(
            &mut e,
            "dpm_lua_seconds",
            "Time spent in Lua functions, waits included",
            Counter,
            single(V::S(self.workers.iter().map(|w| w.lua_seconds).sum())),
        )?;
        family(
            &mut e,
            "dpm_worker_cpu_seconds",
            "CPU time each worker thread has used (its busy time)",
            Counter,
            self.workers
                .iter()
                .map(|w| (vec![("worker", w.worker.to_string())], V::S(w.cpu_seconds))),
        )?;
        family(
            &mut e,
            "dpm_workers_silent",
            "Workers that did not answer this scrape in time (busy in a long callback)",
            Gauge,
            single(V::N(self.silent_workers as u64)),
        )?;
        family(
            &mut e,
            "dpm_server_up",
            "1 when the server is up (monitors, connects, not in maintenance)",
            Gauge,
            self.servers
                .iter()
                .map(|s| (vec![("server", s.name.clone())], V::N(s.up as u64))),
        )?;
        family(
            &mut e,
            "dpm_server_role",
            "The server's role (1 for the role it has)",
            Gauge,
            self.servers.iter().map(|s| {
                (
                    vec![("server", s.name.clone()), ("role", s.role.to_string())],
                    V::N(1),
                )
            }),
        )?;
        family(
            &mut e,
            "dpm_server_admin_state",
            "What an operator set (1 for the state it is in)",
            Gauge,
            self.servers.iter().map(|s| {
                (
                    vec![
                        ("server", s.name.clone()),
                        ("state", s.admin_state.to_string()),
                    ],
                    V::N(1),
                )
            }),
        )?;
        family(
            &mut e,
            "dpm_server_lag_seconds",
            "Replication lag as its monitor last saw it",
            Gauge,
            self.servers
                .iter()
                .filter_map(|s| Some((vec![("server", s.name.clone())], V::N(s.lag?)))),
        )?;
        family(
            &mut e,
            "dpm_server_sessions",
            "Sessions whose backend is on the server now",
            Gauge,
            self.servers
                .iter()
                .map(|s| (vec![("server", s.name.clone())], V::N(s.sessions))),
        )?;
        family(
            &mut e,
            "dpm_server_routed_statements",
            "Statements routed to the server",
            Counter,
            self.servers
                .iter()
                .map(|s| (vec![("server", s.name.clone())], V::N(s.routed))),
        )?;
        family(
            &mut e,
            "dpm_server_failed_connects",
            "Connects to the server that failed",
            Counter,
            self.servers
                .iter()
                .map(|s| (vec![("server", s.name.clone())], V::N(s.failed_connects))),
        )?;
        family(
            &mut e,
            "dpm_service_sessions",
            "Sessions of the service open now",
            Gauge,
            self.services
                .iter()
                .map(|s| (vec![("service", s.name.clone())], V::N(s.sessions))),
        )?;
        family(
            &mut e,
            "dpm_service_sessions_started",
            "Sessions of the service ever started",
            Counter,
            self.services
                .iter()
                .map(|s| (vec![("service", s.name.clone())], V::N(s.total_sessions))),
        )?;
        family(
            &mut e,
            "dpm_service_sessions_refused",
            "Sessions refused because no server could take them",
            Counter,
            self.services
                .iter()
                .map(|s| (vec![("service", s.name.clone())], V::N(s.refused_sessions))),
        )?;
        self.encode_latency(&mut e)?;
        self.encode_digests(&mut e)
    }
}

impl Scrape {
    /// The top query digests: statements, time and errors per (digest, user, service).
    /// Gauges, not counters: an entry's figures drop when digests are reset or the entry
    /// leaves the store or the top (a counter that drops reads as a reset).
    fn encode_digests(&self, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if self.digests.is_empty() {
            return Ok(());
        }
        let labels = |d: &dpm_engine::digests::store::DigestEntry| {
            vec![
                ("digest", cut(&d.digest, DIGEST_LABEL_CHARS)),
                ("user", d.user.to_string()),
                ("service", d.service.to_string()),
            ]
        };
        family(
            e,
            "dpm_digest_statements",
            "Statements of the most frequent query digests",
            MetricType::Gauge,
            self.digests.iter().map(|d| (labels(d), V::N(d.count))),
        )?;
        family(
            e,
            "dpm_digest_time_seconds",
            "Time the statements of the most frequent query digests took",
            MetricType::Gauge,
            self.digests
                .iter()
                .map(|d| (labels(d), V::S(d.latency.sum_us as f64 / 1e6))),
        )?;
        family(
            e,
            "dpm_digest_errors",
            "Statements of the most frequent query digests answered with an ERR",
            MetricType::Gauge,
            self.digests.iter().map(|d| (labels(d), V::N(d.errors))),
        )
    }

    /// `dpm_statement_duration_seconds{service, server}`: from the command to the end of
    /// its response, as dpm saw them.
    fn encode_latency(&self, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut all: std::collections::BTreeMap<(String, String), Latency> = Default::default();
        for w in &self.workers {
            for s in &w.services {
                for (server, h) in &s.latency {
                    all.entry((s.service.clone(), server.clone()))
                        .or_default()
                        .add(h);
                }
            }
        }
        let mut metric = e.encode_descriptor(
            "dpm_statement_duration_seconds",
            "Statement latency per service and server, from the command to the end of its response",
            None,
            MetricType::Histogram,
        )?;
        for ((service, server), h) in all {
            let labels = escaped(vec![("service", service), ("server", server)]);
            let buckets: Vec<(f64, u64)> = LATENCY_BOUNDS_US
                .iter()
                .map(|us| *us as f64 / 1e6)
                .chain([f64::MAX])
                .zip(h.buckets)
                .collect();
            metric
                .encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(h.sum_us as f64 / 1e6, h.count, &buckets, None)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_and_digests_cut() {
        let labels = escaped(vec![("digest", "a\\b\"c\nd".to_string())]);
        assert_eq!(labels[0].1, "a\\\\b\\\"c\\nd");
        assert_eq!(cut("éééé", 2), "éé");
    }
}
