//! `mariadbmon` — watches MariaDB servers (MaxScale's `mariadbmon`): every `interval` it
//! checks each server with its own credentials — connect and query, each bounded by a
//! timeout — and finds whether it is up, its role (primary, replica, standalone, from
//! `@@read_only` and `SHOW ALL SLAVES STATUS`), its replication lag
//! (`Seconds_Behind_Master`) and its GTID positions.
//!
//! What it finds goes on the [`Server`]s (atomics that routers on every worker read
//! without a lock: a down server is skipped, a role follows the replication topology)
//! and, when something changed, out as server events on the process-wide bus
//! (`server_down`, `server_up`, `new_primary`, `lost_primary`, `lag_over`, `lag_under`).
//!
//! It runs on a thread of its own (a current-thread runtime), so a slow server never
//! holds up a worker; its checks of the servers run concurrently, and a server that
//! does not answer within the timeouts is down. Its connections are kept between checks.
//!
//! With `auto_failover`, a primary down for `failcount` checks in a row is replaced by
//! the replica furthest along in GTID, and the other replicas are pointed at it
//! (`failover.rs`).
//!
//! A reload that drops or redefines the monitor stops it (`Monitor::stop`): the check
//! under way finishes (a failover is never cut in half), its findings are not published,
//! and the thread ends.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dpm_engine::client::{BackendClient, ClientOptions, Response, ResultSet};
use dpm_engine::service::{
    raise_server_event, Maturity, ModuleInfo, ModuleType, Monitor, OptionKind, OptionSpec, Options,
    Server, ServerEvent, ServerRole,
};

use super::failover;
use super::observation::{events, lag_of, role_of, Observation, ReplicaStatus};

const OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        name: "monitor_user",
        kind: OptionKind::Str,
        default: None,
        description:
            "the user the monitor logs in as (required; needs REPLICATION CLIENT or SLAVE MONITOR)",
    },
    OptionSpec {
        name: "monitor_password",
        kind: OptionKind::Str,
        default: Some(""),
        description: "its password",
    },
    OptionSpec {
        name: "interval",
        kind: OptionKind::Millis,
        default: Some("1000"),
        description: "time between two checks of every server",
    },
    OptionSpec {
        name: "connect_timeout",
        kind: OptionKind::Millis,
        default: Some("3000"),
        description: "bound on connecting and logging in to a server",
    },
    OptionSpec {
        name: "query_timeout",
        kind: OptionKind::Millis,
        default: Some("3000"),
        description: "bound on one check's queries",
    },
    OptionSpec {
        name: "auto_failover",
        kind: OptionKind::Bool,
        default: Some("false"),
        description: "promote a replica when the primary has been down for failcount checks",
    },
    OptionSpec {
        name: "auto_rejoin",
        kind: OptionKind::Bool,
        default: Some("false"),
        description: "make a server that comes up writable while another is the primary (a returning old primary) its replica",
    },
    OptionSpec {
        name: "failcount",
        kind: OptionKind::Int,
        default: Some("5"),
        description: "checks the primary must fail in a row before a failover",
    },
    OptionSpec {
        name: "replication_user",
        kind: OptionKind::Str,
        default: None,
        description:
            "the account replicas replicate with after a failover (required with auto_failover)",
    },
    OptionSpec {
        name: "replication_password",
        kind: OptionKind::Str,
        default: Some(""),
        description: "its password",
    },
    OptionSpec {
        name: "lag_threshold",
        kind: OptionKind::Int,
        default: Some("10"),
        description: "replication lag in seconds above which lag_over is raised (0: no lag events)",
    },
];

/// The module's declaration.
pub static INFO: ModuleInfo = ModuleInfo {
    kind: ModuleType::Monitor,
    name: "mariadbmon",
    maturity: Maturity::Alpha,
    version: "0.1.0",
    description: "Checks MariaDB servers every interval: up/down, role from read_only and replication status, \
                  lag and GTID positions; publishes them to routers and raises server events",
    options: OPTIONS,
};

/// A running MariaDB monitor.
pub struct MariaDbMonitor {
    name: String,
    servers: Vec<Arc<Server>>,
    settings: Settings,
    /// The last check of each server (same order as `servers`).
    last: Mutex<Vec<Option<Observation>>>,
    checks: AtomicU64,
    events_raised: AtomicU64,
    failovers: AtomicU64,
    switchovers: AtomicU64,
    rejoins: AtomicU64,
    /// Requests to the monitor's thread (a switchover asked from Lua, a stop).
    commands: tokio::sync::mpsc::UnboundedSender<Command>,
    /// Stopped for good (`Monitor::stop`): nothing more is published.
    stopped: AtomicBool,
    /// The last candidate whose promotion failed, and when: passed over for a while.
    failed_candidate: Mutex<Option<(usize, std::time::Instant)>>,
}

/// How long a replica whose promotion failed is passed over when another can be promoted.
const FAILED_CANDIDATE_PASSED_OVER: std::time::Duration = std::time::Duration::from_secs(60);

/// A request to the monitor's thread.
enum Command {
    /// Make `to` (an index in `servers`) the primary; the outcome goes to `done`.
    Switchover {
        to: usize,
        done: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
    /// End the thread (`stopped` is set).
    Stop,
}

/// Which server is the primary, and for how many checks in a row it has been down.
#[derive(Default)]
struct PrimaryWatch {
    primary: Option<usize>,
    down_checks: u32,
}

impl PrimaryWatch {
    /// Follows the checks; the primary's index once it has been down `failcount` checks
    /// in a row (then the count starts again, so a failed failover is retried later).
    /// The primary followed stays it while it is up and writable; another writable
    /// server is only followed after the old one failed `failcount` checks in a row (it
    /// was promoted outside dpm), never on one missed check. At the start the primary is
    /// the writable server the replicas replicate from (else the first writable one).
    /// `address` gives a server's `host:port`.
    fn failed(
        &mut self,
        found: &[Observation],
        failcount: u32,
        address: impl Fn(usize) -> String,
    ) -> Option<usize> {
        let is_primary = |i: usize| found[i].up && found[i].role == Some(ServerRole::Primary);
        if self.primary.is_some_and(is_primary) {
            self.down_checks = 0;
            return None;
        }
        let writable: Vec<usize> = (0..found.len()).filter(|&i| is_primary(i)).collect();
        let Some(p) = self.primary else {
            let replicated = |i: usize| {
                let at = address(i);
                found
                    .iter()
                    .any(|o| o.up && o.replicates_from.as_deref() == Some(at.as_str()))
            };
            self.primary = writable
                .iter()
                .copied()
                .find(|&i| replicated(i))
                .or(writable.first().copied());
            return None;
        };
        self.down_checks += 1;
        if self.down_checks < failcount {
            return None;
        }
        self.down_checks = 0;
        if let Some(&other) = writable.first() {
            // Promoted outside dpm while the old primary stopped being one: follow it.
            self.primary = Some(other);
            return None;
        }
        if found[p].up {
            // Up but no longer primary (demoted by hand), and nothing writable.
            return None;
        }
        Some(p)
    }

    /// Servers out of place beside the primary followed: not replicating, writable or
    /// not (an old primary back after a failover, a promoted server restarted read-only,
    /// a replica reset by hand), or replicating from another server than the primary (a
    /// replica that came back pointing at an old primary). `address` gives a server's
    /// `host:port`.
    fn strays(&self, found: &[Observation], address: impl Fn(usize) -> String) -> Vec<usize> {
        let Some(p) = self.primary.filter(|&p| found[p].up) else {
            return Vec::new();
        };
        let primary = address(p);
        (0..found.len())
            .filter(|&i| i != p && found[i].up)
            .filter(|&i| match found[i].role {
                Some(ServerRole::Primary | ServerRole::Standalone) => true,
                Some(ServerRole::Replica) => {
                    found[i].replicates_from.as_deref() != Some(primary.as_str())
                }
                _ => false,
            })
            .collect()
    }
}

#[derive(Clone)]
struct Settings {
    user: String,
    password: String,
    interval: Duration,
    connect_timeout: Duration,
    query_timeout: Duration,
    lag_threshold: u64,
    /// Promote a replica when the primary fails.
    auto_failover: bool,
    /// Make a stray primary a replica of the primary.
    auto_rejoin: bool,
    /// The replication account (failover, switchover) and how many failed checks a
    /// failover takes.
    failover: Option<FailoverSettings>,
}

#[derive(Clone)]
struct FailoverSettings {
    failcount: u32,
    user: String,
    password: String,
}

impl MariaDbMonitor {
    /// A monitor named `name` of `servers`, from checked options, started on its own
    /// thread.
    pub fn start(
        name: &str,
        servers: Vec<Arc<Server>>,
        options: &Options,
    ) -> Result<Arc<dyn Monitor>, String> {
        let user = options
            .str("monitor_user")
            .ok_or("monitor 'mariadbmon': option 'monitor_user' is required")?;
        if servers.is_empty() {
            return Err("monitor 'mariadbmon': give at least one server".into());
        }
        let millis = |o: &str| Duration::from_millis(options.int(o).unwrap_or(1000).max(1) as u64);
        let replication = options
            .str("replication_user")
            .map(|user| FailoverSettings {
                failcount: options.int("failcount").unwrap_or(5).clamp(1, 1000) as u32,
                user: user.to_string(),
                password: options
                    .str("replication_password")
                    .unwrap_or("")
                    .to_string(),
            });
        let auto_failover = options.bool("auto_failover") == Some(true);
        let auto_rejoin = options.bool("auto_rejoin") == Some(true);
        if (auto_failover || auto_rejoin) && replication.is_none() {
            return Err(
                "monitor 'mariadbmon': auto_failover and auto_rejoin need 'replication_user'"
                    .into(),
            );
        }
        let settings = Settings {
            user: user.to_string(),
            password: options.str("monitor_password").unwrap_or("").to_string(),
            interval: millis("interval"),
            connect_timeout: millis("connect_timeout"),
            query_timeout: millis("query_timeout"),
            lag_threshold: options.int("lag_threshold").unwrap_or(10).max(0) as u64,
            auto_failover,
            auto_rejoin,
            failover: replication,
        };
        let (commands, requests) = tokio::sync::mpsc::unbounded_channel();
        let monitor = Arc::new(MariaDbMonitor {
            name: name.to_string(),
            last: Mutex::new(vec![None; servers.len()]),
            servers,
            settings,
            checks: AtomicU64::new(0),
            events_raised: AtomicU64::new(0),
            failovers: AtomicU64::new(0),
            switchovers: AtomicU64::new(0),
            rejoins: AtomicU64::new(0),
            commands,
            stopped: AtomicBool::new(false),
            failed_candidate: Mutex::new(None),
        });
        if dpm_engine::control::check::check_only() {
            // dpm --check: the options are checked; no server is asked anything.
            return Ok(monitor);
        }
        let running = monitor.clone();
        std::thread::Builder::new()
            .name(format!("dpm-monitor-{name}"))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!("monitor '{}': cannot start: {e}", running.name);
                        return;
                    }
                };
                let local = tokio::task::LocalSet::new();
                local.block_on(&runtime, running.run(requests));
            })
            .map_err(|e| format!("monitor '{name}': cannot start its thread: {e}"))?;
        Ok(monitor)
    }

    /// Checks every server each interval until it is stopped; between checks, carries
    /// out what was asked of it (a switchover).
    async fn run(self: Arc<Self>, mut requests: tokio::sync::mpsc::UnboundedReceiver<Command>) {
        let mut connections: Vec<Option<BackendClient>> =
            self.servers.iter().map(|_| None).collect();
        let mut ticker = tokio::time::interval(self.settings.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut primary = PrimaryWatch::default();
        let mut last: Vec<Observation> = Vec::new();
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                Some(command) = requests.recv() => {
                    match command {
                        Command::Stop => break,
                        Command::Switchover { to, done } => {
                            let outcome = self.switch_over(to, &last, &mut connections).await;
                            if outcome.is_ok() {
                                primary.primary = Some(to);
                                primary.down_checks = 0;
                            }
                            match &outcome {
                                Ok(()) => self.switchovers.fetch_add(1, Ordering::Relaxed),
                                Err(e) => {
                                    tracing::error!("monitor '{}': switchover to {} failed: {e}", self.name, self.servers[to].name);
                                    0
                                }
                            };
                            let _ = done.send(outcome);
                        }
                    }
                    // Check at once: the new roles are known before anyone routes.
                }
            }
            let checks = self
                .servers
                .iter()
                .zip(connections.iter_mut())
                .map(|(server, conn)| check(server, conn, &self.settings));
            let mut found = futures_util::future::join_all(checks).await;
            if self.stopped.load(Ordering::Acquire) {
                // Stopped while checking: another monitor may watch these servers now.
                break;
            }
            let failcount = self.settings.failover.as_ref().map_or(5, |f| f.failcount);
            let address = |i: usize| self.servers[i].address.to_string();
            let failed = primary.failed(&found, failcount, address);
            if let Some(failover) = &self.settings.failover {
                if let (true, Some(failed)) = (self.settings.auto_failover, failed) {
                    if let Some(new) = self
                        .fail_over(failed, &found, &mut connections, failover)
                        .await
                    {
                        // Published as the primary now, not at the next check.
                        found[new].role = Some(ServerRole::Primary);
                        found[new].read_only = Some(false);
                        primary.primary = Some(new);
                    }
                }
                if self.settings.auto_rejoin {
                    if let Some(p) = primary.primary {
                        for stray in primary.strays(&found, address) {
                            if self
                                .rejoin(stray, p, &found, &mut connections, failover)
                                .await
                            {
                                found[stray].role = Some(ServerRole::Replica);
                                found[stray].read_only = Some(true);
                                found[stray].replicates_from =
                                    Some(self.servers[p].address.to_string());
                            }
                        }
                    }
                }
            }
            // One primary: a second writable server beside the one followed is a stray,
            // published as standalone so that no router sends it writes.
            for (i, o) in found.iter_mut().enumerate() {
                if o.up && o.role == Some(ServerRole::Primary) && primary.primary != Some(i) {
                    o.role = Some(ServerRole::Standalone);
                }
            }
            last = found.clone();
            self.publish(found);
            self.checks.fetch_add(1, Ordering::Relaxed);
        }
        tracing::info!("monitor '{}' stopped", self.name);
    }

    /// Makes `stray` (see `PrimaryWatch::strays`) a replica of `primary`, unless it has
    /// transactions the primary lacks (it would diverge: that needs a person, and is
    /// logged).
    async fn rejoin(
        &self,
        stray: usize,
        primary: usize,
        found: &[Observation],
        connections: &mut [Option<BackendClient>],
        settings: &FailoverSettings,
    ) -> bool {
        let (s, p) = (&self.servers[stray], &self.servers[primary]);
        let theirs = found[stray].gtid_current_pos.as_deref().unwrap_or("");
        let ours = found[primary].gtid_current_pos.as_deref().unwrap_or("");
        if !failover::not_ahead(theirs, ours) {
            tracing::error!(
                "monitor '{}': rejoin: {} is writable but has transactions primary {} lacks (its gtid {theirs}, the primary's {ours}): not rejoined",
                self.name,
                s.name,
                p.name
            );
            return false;
        }
        let Some(client) = connections[stray].as_mut() else {
            return false;
        };
        // A server that replicated keeps its applied position; one that did not (an old
        // primary) starts from its own binlog position.
        let use_gtid = match found[stray].role {
            Some(ServerRole::Replica) => failover::UseGtid::SlavePos,
            _ => failover::UseGtid::CurrentPos,
        };
        let rejoined = async {
            failover::run_sql(client, "SET GLOBAL read_only = ON").await?;
            failover::replicate_from(client, p, &settings.user, &settings.password, use_gtid).await
        };
        match rejoined.await {
            Ok(()) => {
                self.rejoins.fetch_add(1, Ordering::Relaxed);
                let was = match found[stray].role {
                    Some(ServerRole::Replica) => format!(
                        "replicated from {}",
                        found[stray].replicates_from.as_deref().unwrap_or("?")
                    ),
                    Some(ServerRole::Standalone) => "was not replicating".to_string(),
                    _ => "was writable".to_string(),
                };
                tracing::warn!(
                    "monitor '{}': rejoin: {} {was} beside primary {}; it now replicates from it",
                    self.name,
                    s.name,
                    p.name
                );
                true
            }
            Err(e) => {
                tracing::error!(
                    "monitor '{}': rejoin of {} to {} failed: {e}",
                    self.name,
                    s.name,
                    p.name
                );
                false
            }
        }
    }

    /// The planned switch of the primary role to server `to`: the primary stops taking
    /// writes (`read_only`), `to` catches up with it (`MASTER_GTID_WAIT` on the
    /// primary's binlog position), is promoted, and the old primary and the other
    /// replicas replicate from it. If `to` cannot catch up in time, the old primary takes
    /// writes again and nothing else changed.
    async fn switch_over(
        &self,
        to: usize,
        last: &[Observation],
        connections: &mut [Option<BackendClient>],
    ) -> Result<(), String> {
        let primary = || ServerRole::Primary;
        let old = last
            .iter()
            .position(|o| o.up && o.role == Some(primary()))
            .ok_or("no primary is up")?;
        let target = &self.servers[to];
        if old == to {
            return Err(format!("{} is already the primary", target.name));
        }
        if !last
            .get(to)
            .is_some_and(|o| o.up && o.role == Some(ServerRole::Replica))
        {
            return Err(format!("{} is not a replica that is up", target.name));
        }
        let replication = self
            .settings
            .failover
            .as_ref()
            .ok_or("a switchover needs replication_user (the account replicas replicate with)")?
            .clone();
        let old_server = &self.servers[old];
        tracing::warn!(
            "monitor '{}': switchover: {} → {} (asked)",
            self.name,
            old_server.name,
            target.name
        );
        let old_conn = connections[old]
            .as_mut()
            .ok_or("no connection to the primary")?;
        failover::run_sql(old_conn, "SET GLOBAL read_only = ON").await?;
        let wait = self.settings.query_timeout.as_secs().max(10);
        // Until the target is promoted, any failure gives the old primary its writes back.
        let promoted = async {
            let old_conn = connections[old]
                .as_mut()
                .ok_or("no connection to the primary")?;
            let position = failover::binlog_position(old_conn).await?;
            let new_conn = connections[to]
                .as_mut()
                .ok_or("no connection to the new primary")?;
            failover::wait_for(new_conn, &position, wait)
                .await
                .map_err(|e| {
                    format!(
                        "{} did not catch up with {}: {e}",
                        target.name, old_server.name
                    )
                })?;
            failover::promote(new_conn, wait).await
        };
        if let Err(e) = promoted.await {
            if let Some(c) = connections[old].as_mut() {
                let _ = failover::run_sql(c, "SET GLOBAL read_only = OFF").await;
            }
            return Err(format!(
                "{e} (nothing changed: {} takes writes again)",
                old_server.name
            ));
        }
        // Promoted: from here on the target is the primary; the others are pointed at it
        // one by one, and a failure is reported but undoes nothing.
        let mut failures = Vec::new();
        for (i, conn) in connections.iter_mut().enumerate() {
            let follows = i == old || (last[i].up && last[i].role == Some(ServerRole::Replica));
            let (true, true, Some(client)) = (i != to, follows, conn.as_mut()) else {
                continue;
            };
            let use_gtid = if i == old {
                failover::UseGtid::CurrentPos
            } else {
                failover::UseGtid::SlavePos
            };
            let pointed = failover::replicate_from(
                client,
                target,
                &replication.user,
                &replication.password,
                use_gtid,
            );
            match pointed.await {
                Ok(()) => tracing::warn!(
                    "monitor '{}': switchover: {} now replicates from {}",
                    self.name,
                    self.servers[i].name,
                    target.name
                ),
                Err(e) => failures.push(format!("{}: {e}", self.servers[i].name)),
            }
        }
        if !failures.is_empty() {
            return Err(format!(
                "{} is the primary now, but not every server follows it: {}",
                target.name,
                failures.join("; ")
            ));
        }
        Ok(())
    }

    /// Promotes the furthest replica in place of the primary `failed`, points the other
    /// replicas at it; every step is logged with its reason. Returns the promoted server,
    /// whose role is published at once.
    async fn fail_over(
        &self,
        failed: usize,
        found: &[Observation],
        connections: &mut [Option<BackendClient>],
        settings: &FailoverSettings,
    ) -> Option<usize> {
        let old = &self.servers[failed];
        let avoid = self
            .failed_candidate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .filter(|(_, at)| at.elapsed() < FAILED_CANDIDATE_PASSED_OVER)
            .map(|(i, _)| i);
        let Some(new) = failover::pick_candidate(found, failed, avoid) else {
            tracing::error!(
                "monitor '{}': primary {} is down and no replica is up to take its place: no failover",
                self.name,
                old.name
            );
            return None;
        };
        let chosen = &self.servers[new];
        tracing::warn!(
            "monitor '{}': failover: primary {} down for {} checks; promoting {} (gtid {})",
            self.name,
            old.name,
            settings.failcount,
            chosen.name,
            found[new].gtid_current_pos.as_deref().unwrap_or("?")
        );
        let client = connections[new].as_mut()?;
        let apply_timeout = self.settings.query_timeout.as_secs().max(10);
        if let Err(e) = failover::promote(client, apply_timeout).await {
            tracing::error!(
                "monitor '{}': failover: promoting {} failed: {e}; another replica is tried first next time",
                self.name,
                chosen.name
            );
            // It stays a replica, fetching again.
            let _ = failover::run_sql(client, "START SLAVE IO_THREAD").await;
            *self
                .failed_candidate
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some((new, std::time::Instant::now()));
            return None;
        }
        self.failovers.fetch_add(1, Ordering::Relaxed);
        for (i, conn) in connections.iter_mut().enumerate() {
            let replica = found[i].up && found[i].role == Some(ServerRole::Replica);
            let (true, true, Some(client)) = (i != new && i != failed, replica, conn.as_mut())
            else {
                continue;
            };
            let server = &self.servers[i];
            let follows = failover::replicate_from(
                client,
                chosen,
                &settings.user,
                &settings.password,
                failover::UseGtid::SlavePos,
            );
            match follows.await {
                Ok(()) => tracing::warn!(
                    "monitor '{}': failover: {} now replicates from {}",
                    self.name,
                    server.name,
                    chosen.name
                ),
                Err(e) => tracing::error!(
                    "monitor '{}': failover: pointing {} at {} failed: {e}",
                    self.name,
                    server.name,
                    chosen.name
                ),
            }
        }
        Some(new)
    }

    /// Puts what the checks found on the servers and raises the events of the changes.
    fn publish(&self, found: Vec<Observation>) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        for ((server, now), before) in self.servers.iter().zip(found).zip(last.iter_mut()) {
            let role = now.role.unwrap_or(server.role());
            server.set_monitored(now.up, role, now.lag, now.to_json());
            for kind in events(before.as_ref(), &now, self.settings.lag_threshold) {
                let why = match &now.error {
                    Some(e) => e.clone(),
                    None => format!(
                        "role {}, lag {}",
                        role.as_str(),
                        now.lag.map_or("unknown".to_string(), |l| format!("{l} s"))
                    ),
                };
                tracing::warn!(
                    "monitor '{}': {kind} {} at {} ({why})",
                    self.name,
                    server.name,
                    server.address
                );
                self.events_raised.fetch_add(1, Ordering::Relaxed);
                raise_server_event(ServerEvent {
                    kind,
                    server: server.clone(),
                });
            }
            *before = Some(now);
        }
    }
}

impl Monitor for MariaDbMonitor {
    fn info(&self) -> &'static ModuleInfo {
        &INFO
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn servers(&self) -> Vec<Arc<Server>> {
        self.servers.clone()
    }

    fn switchover(
        &self,
        to: &str,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<(), String>>, String> {
        let to = self
            .servers
            .iter()
            .position(|s| s.name == to)
            .ok_or_else(|| format!("monitor '{}' does not watch a server '{to}'", self.name))?;
        if self.stopped.load(Ordering::Acquire) {
            return Err(format!("monitor '{}' is stopped", self.name));
        }
        let (done, outcome) = tokio::sync::oneshot::channel();
        self.commands
            .send(Command::Switchover { to, done })
            .map_err(|_| format!("monitor '{}' is not running", self.name))?;
        Ok(outcome)
    }

    fn stop(&self) {
        if !self.stopped.swap(true, Ordering::AcqRel) {
            // No thread to tell under `dpm --check`, nor once it ended: nothing to do.
            let _ = self.commands.send(Command::Stop);
        }
    }

    fn diagnostics(&self) -> serde_json::Value {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let servers: Vec<serde_json::Value> = self
            .servers
            .iter()
            .zip(last.iter())
            .map(|(s, o)| {
                let mut d = o.as_ref().map_or(
                    serde_json::json!({"state": "not checked yet"}),
                    Observation::to_json,
                );
                d["name"] = s.name.clone().into();
                d["address"] = s.address.to_string().into();
                d
            })
            .collect();
        serde_json::json!({
            "name": self.name,
            "module": INFO.name,
            "state": if self.stopped.load(Ordering::Acquire) { "stopped" } else { "running" },
            "interval_ms": self.settings.interval.as_millis() as u64,
            "lag_threshold": self.settings.lag_threshold,
            "checks": self.checks.load(Ordering::Relaxed),
            "events": self.events_raised.load(Ordering::Relaxed),
            "auto_failover": self.settings.auto_failover,
            "failovers": self.failovers.load(Ordering::Relaxed),
            "switchovers": self.switchovers.load(Ordering::Relaxed),
            "auto_rejoin": self.settings.auto_rejoin,
            "rejoins": self.rejoins.load(Ordering::Relaxed),
            "servers": servers,
        })
    }
}

/// One check of `server` over its kept connection (made first if there is none; dropped
/// when the check fails, so the next one connects again).
async fn check(server: &Server, conn: &mut Option<BackendClient>, s: &Settings) -> Observation {
    if conn.is_none() {
        let options = ClientOptions {
            address: server.address.clone(),
            user: s.user.clone(),
            password: s.password.clone(),
            schema: None,
            connect_timeout: s.connect_timeout,
        };
        match BackendClient::connect(&options).await {
            Ok(c) => *conn = Some(c),
            Err(e) => return Observation::down(format!("cannot connect: {e}")),
        }
    }
    let Some(client) = conn.as_mut() else {
        return Observation::down("no connection".into());
    };
    match tokio::time::timeout(s.query_timeout, ask(client)).await {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            *conn = None;
            Observation::down(e)
        }
        Err(_) => {
            *conn = None;
            Observation::down(format!(
                "no answer within {} ms",
                s.query_timeout.as_millis()
            ))
        }
    }
}

/// The two queries of a check, and what they say.
async fn ask(client: &mut BackendClient) -> Result<Observation, String> {
    let vars = rows(
        client
            .query("SELECT @@read_only, @@server_id, @@gtid_current_pos, @@gtid_slave_pos")
            .await,
    )?;
    let row = vars.rows.first().ok_or("no row from SELECT @@read_only")?;
    let text = |i: usize| {
        row.get(i)
            .cloned()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    };
    let read_only = text(0).map(|v| v == "1");
    let status = rows(client.query("SHOW ALL SLAVES STATUS").await)?;
    let replication = replica_statuses(&status);
    let role = role_of(read_only.unwrap_or(false), &replication);
    Ok(Observation {
        up: true,
        role: Some(role),
        lag: match role {
            ServerRole::Replica => lag_of(&replication),
            _ => Some(0),
        },
        server_id: text(1).and_then(|v| v.parse().ok()),
        read_only,
        gtid_current_pos: text(2),
        gtid_slave_pos: text(3),
        replicates_from: replication.first().map(|r| r.primary.clone()),
        error: None,
    })
}

/// The first result set of a response, or why there is none.
fn rows(response: Result<Response, dpm_engine::client::ClientError>) -> Result<ResultSet, String> {
    match response {
        Ok(Response::Rows(mut sets)) if !sets.is_empty() => Ok(sets.swap_remove(0)),
        Ok(Response::Rows(_)) | Ok(Response::Ok { .. }) => Ok(ResultSet {
            columns: Vec::new(),
            rows: Vec::new(),
            status: 0,
        }),
        Ok(Response::Err { code, message, .. }) => Err(format!("ERROR {code}: {message}")),
        Err(e) => Err(e.to_string()),
    }
}

/// The rows of `SHOW ALL SLAVES STATUS`, by column name.
fn replica_statuses(set: &ResultSet) -> Vec<ReplicaStatus> {
    let column = |name: &str| {
        set.columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(name))
    };
    let (io, sql, behind, host, port) = (
        column("Slave_IO_Running"),
        column("Slave_SQL_Running"),
        column("Seconds_Behind_Master"),
        column("Master_Host"),
        column("Master_Port"),
    );
    set.rows
        .iter()
        .map(|row| {
            let text = |i: Option<usize>| {
                i.and_then(|i| row.get(i).cloned().flatten())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
            };
            ReplicaStatus {
                io_running: text(io).unwrap_or_default(),
                sql_running: text(sql).unwrap_or_default(),
                seconds_behind: text(behind).and_then(|v| v.parse().ok()),
                primary: format!(
                    "{}:{}",
                    text(host).unwrap_or_default(),
                    text(port).unwrap_or_default()
                ),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpm_engine::service::{OptionValue, ServerAddress};

    #[test]
    fn a_stopped_monitor_ends_its_thread_and_says_so() {
        let options = [
            ("monitor_user", OptionValue::Str("monitor".into())),
            ("interval", OptionValue::Int(10)),
        ];
        let options = options.map(|(name, value)| (name.to_string(), value));
        let options = Options::validate(&INFO, options).unwrap();
        // A server nobody listens for: each check fails at once.
        let address = ServerAddress::Unix("/nonexistent/dpm-monitor-test.sock".into());
        let server = Arc::new(Server::new("db".into(), address, ServerRole::Unknown));
        let monitor = MariaDbMonitor::start("stopping", vec![server], &options).unwrap();
        assert_eq!(monitor.diagnostics()["state"], "running");

        monitor.stop();
        assert_eq!(monitor.diagnostics()["state"], "stopped");
        let running = monitor.switchover("db").unwrap_err();
        assert_eq!(running, "monitor 'stopping' is stopped");
        // The thread ends, letting go of the monitor.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while Arc::strong_count(&monitor) > 1 {
            assert!(
                std::time::Instant::now() < deadline,
                "the thread still runs"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
