//! Servers: the MySQL/MariaDB backends services route to. Process-wide (every worker
//! sees the same ones) and read by routers without locks: state is atomics.
//!
//! Until a monitor publishes roles (a later module), a server's role is what the
//! startup file declared. Whether it is up is learnt from connecting: a server that
//! refused a connection is down for [`RETRY_AFTER`], then tried again.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// How long a server that refused a connection is skipped before it is tried again.
pub const RETRY_AFTER: Duration = Duration::from_secs(2);

/// `lag` of a server no monitor has looked at (-1: a monitor found no lag figure).
const NOT_MONITORED: i64 = -2;

/// Where a server listens.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ServerAddress {
    /// TCP host and port.
    Tcp(String, u16),
    /// A unix socket path.
    Unix(String),
}

impl fmt::Display for ServerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerAddress::Tcp(host, port) => write!(f, "{host}:{port}"),
            ServerAddress::Unix(path) => f.write_str(path),
        }
    }
}

impl ServerAddress {
    /// Parses `host:port`, `[v6]:port` or a unix socket path (starting with `/`).
    pub fn parse(text: &str) -> Result<ServerAddress, String> {
        if text.starts_with('/') {
            return Ok(ServerAddress::Unix(text.to_string()));
        }
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| format!("address '{text}' is not host:port or a socket path"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| format!("address '{text}' has an invalid port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains(['/', ' ']) {
            return Err(format!("address '{text}' has an invalid host"));
        }
        Ok(ServerAddress::Tcp(host.to_string(), port))
    }
}

/// A server's replication role.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum ServerRole {
    /// Not known (no declaration, no monitor).
    Unknown = 0,
    /// Takes writes.
    Primary = 1,
    /// Replicates from a primary.
    Replica = 2,
    /// Neither: writable or read-only, but not replicating and not known as a primary
    /// (what a monitor calls a server it cannot place).
    Standalone = 3,
}

impl ServerRole {
    /// The role's name (`primary`, `replica`, `unknown`).
    pub fn as_str(self) -> &'static str {
        match self {
            ServerRole::Unknown => "unknown",
            ServerRole::Primary => "primary",
            ServerRole::Replica => "replica",
            ServerRole::Standalone => "standalone",
        }
    }

    /// Parses a role name (`master`/`slave` accepted as MaxScale's old names).
    pub fn parse(text: &str) -> Option<ServerRole> {
        match text {
            "primary" | "master" => Some(ServerRole::Primary),
            "replica" | "slave" => Some(ServerRole::Replica),
            "unknown" => Some(ServerRole::Unknown),
            "standalone" => Some(ServerRole::Standalone),
            _ => None,
        }
    }

    fn from_u8(v: u8) -> ServerRole {
        match v {
            1 => ServerRole::Primary,
            2 => ServerRole::Replica,
            3 => ServerRole::Standalone,
            _ => ServerRole::Unknown,
        }
    }
}

/// What an operator set on a server (the admin API), over what monitors and connects
/// find.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AdminState {
    /// Routed to as its state allows.
    Active = 0,
    /// Taken out: routers treat it as down (no new session or statement goes to it;
    /// readwritesplit moves its sessions' reads off it), and the admin API kills the
    /// sessions that cannot move.
    Maintenance = 1,
    /// Being emptied: no new session or backend connection goes to it; the sessions
    /// already on it go on.
    Drain = 2,
}

impl AdminState {
    /// The name the admin API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            AdminState::Active => "active",
            AdminState::Maintenance => "maintenance",
            AdminState::Drain => "drain",
        }
    }

    /// The state of a name the admin API takes.
    pub fn parse(text: &str) -> Option<AdminState> {
        match text {
            "active" => Some(AdminState::Active),
            "maintenance" => Some(AdminState::Maintenance),
            "drain" => Some(AdminState::Drain),
            _ => None,
        }
    }

    fn from_u8(v: u8) -> AdminState {
        match v {
            1 => AdminState::Maintenance,
            2 => AdminState::Drain,
            _ => AdminState::Active,
        }
    }
}

/// The process's start, the origin of the millisecond clocks kept in atomics.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn now_ms() -> u64 {
    EPOCH.elapsed().as_millis() as u64 + 1
}

/// A backend server (see the module docs).
#[derive(Debug)]
pub struct Server {
    /// Its name in the startup file.
    pub name: String,
    /// Where it listens.
    pub address: ServerAddress,
    /// The role the startup file declared (what `role` starts as).
    declared_role: ServerRole,
    role: AtomicU8,
    /// What an operator set ([`AdminState`]).
    admin_state: AtomicU8,
    /// Sessions whose backend is connected to it now.
    pub sessions: AtomicU64,
    /// Sessions ever connected to it.
    pub total_sessions: AtomicU64,
    /// Statements routed to it.
    pub routed: AtomicU64,
    /// Connects that failed.
    pub failed_connects: AtomicU64,
    /// Until when (ms on the process clock) it counts as down; 0 = up.
    down_until: AtomicU64,
    /// Why it was last marked down.
    last_error: Mutex<Option<String>>,
    /// A monitor found it down (until it finds it up again): routers skip it.
    monitored_down: AtomicBool,
    /// Replication lag in seconds as a monitor last saw it; -1 when not known.
    lag: AtomicI64,
    /// What a monitor last found out about it (JSON), for diagnostics and Lua.
    monitored: Mutex<Option<serde_json::Value>>,
    /// TLS dpm uses towards it (`None`: plain, or TLS passed through from the client).
    pub tls: Option<std::sync::Arc<crate::tls::ClientTls>>,
    /// The account dpm logs in with for sessions whose users dpm holds
    /// (`crate::authenticator`), unless the user names its own.
    pub credentials: Option<crate::authenticator::BackendCredentials>,
    /// How many logged-in connections each worker keeps for the next session
    /// (`crate::session::pool`).
    pub pool: PoolSettings,
    /// Connections kept in the workers' pools now.
    pub pooled: AtomicU64,
    /// Sessions that got a kept connection instead of a new one.
    pub pool_reuses: AtomicU64,
}

/// A server's connection pool (MaxScale's `persistpoolmax` and `persistmaxtime`): the
/// connections of sessions whose users dpm holds are reset and kept for the next
/// session instead of closed (`crate::session::pool`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PoolSettings {
    /// Connections kept per worker; 0: none (the default).
    pub max: usize,
    /// How long a connection may wait in the pool before it is closed.
    pub max_time: Duration,
}

impl Default for PoolSettings {
    fn default() -> PoolSettings {
        PoolSettings {
            max: 0,
            max_time: Duration::from_secs(300),
        }
    }
}

impl Server {
    /// A server that is up, with the declared role.
    pub fn new(name: String, address: ServerAddress, role: ServerRole) -> Server {
        Server {
            name,
            address,
            declared_role: role,
            role: AtomicU8::new(role as u8),
            admin_state: AtomicU8::new(AdminState::Active as u8),
            sessions: AtomicU64::new(0),
            total_sessions: AtomicU64::new(0),
            routed: AtomicU64::new(0),
            failed_connects: AtomicU64::new(0),
            down_until: AtomicU64::new(0),
            last_error: Mutex::new(None),
            monitored_down: AtomicBool::new(false),
            lag: AtomicI64::new(NOT_MONITORED),
            monitored: Mutex::new(None),
            tls: None,
            credentials: None,
            pool: PoolSettings::default(),
            pooled: AtomicU64::new(0),
            pool_reuses: AtomicU64::new(0),
        }
    }

    /// The same server, with a connection pool.
    pub fn with_pool(mut self, pool: PoolSettings) -> Server {
        self.pool = pool;
        self
    }

    /// The same server, with the account dpm logs in with for proxy-held users.
    pub fn with_credentials(
        mut self,
        credentials: Option<crate::authenticator::BackendCredentials>,
    ) -> Server {
        self.credentials = credentials;
        self
    }

    /// The same server, reached with TLS.
    pub fn with_tls(mut self, tls: Option<std::sync::Arc<crate::tls::ClientTls>>) -> Server {
        self.tls = tls;
        self
    }

    /// The host name its TLS certificate is checked against by default.
    pub fn tls_host(&self) -> String {
        match &self.address {
            ServerAddress::Tcp(host, _) => host.clone(),
            ServerAddress::Unix(_) => "localhost".to_string(),
        }
    }

    /// The role the startup file declared (a monitor may have found another since).
    pub fn declared_role(&self) -> ServerRole {
        self.declared_role
    }

    /// Its role now.
    pub fn role(&self) -> ServerRole {
        ServerRole::from_u8(self.role.load(Ordering::Relaxed))
    }

    /// Sets its role (a monitor's job; the startup file declares the first one).
    pub fn set_role(&self, role: ServerRole) {
        self.role.store(role as u8, Ordering::Relaxed);
    }

    /// What an operator set.
    pub fn admin_state(&self) -> AdminState {
        AdminState::from_u8(self.admin_state.load(Ordering::Relaxed))
    }

    /// Sets what an operator wants (logged); returns the state before.
    pub fn set_admin_state(&self, state: AdminState) -> AdminState {
        let before = AdminState::from_u8(self.admin_state.swap(state as u8, Ordering::Relaxed));
        if before != state {
            tracing::warn!(server = %self.name, "server set to {} (was {}) by an operator", state.as_str(), before.as_str());
        }
        before
    }

    /// True unless a monitor found it down, it refused a connection less than
    /// [`RETRY_AFTER`] ago, or an operator put it into maintenance. Read by routers on
    /// every worker: relaxed loads, no lock.
    pub fn is_up(&self) -> bool {
        if self.monitored_down.load(Ordering::Relaxed)
            || self.admin_state.load(Ordering::Relaxed) == AdminState::Maintenance as u8
        {
            return false;
        }
        let until = self.down_until.load(Ordering::Relaxed);
        until == 0 || now_ms() >= until
    }

    /// True when a new session or backend connection may go to it: up, and not being
    /// drained.
    pub fn accepts_new_connections(&self) -> bool {
        self.is_up() && self.admin_state.load(Ordering::Relaxed) != AdminState::Drain as u8
    }

    /// Replication lag in seconds as a monitor last saw it (None: not known).
    pub fn lag(&self) -> Option<u64> {
        u64::try_from(self.lag.load(Ordering::Relaxed)).ok()
    }

    /// True when a monitor watches the server and found no lag to report: a replica
    /// whose SQL thread is stopped (`Seconds_Behind_Master` is NULL), which falls further
    /// behind with every write. One relaxed load.
    pub fn lag_unknown_to_monitor(&self) -> bool {
        self.lag.load(Ordering::Relaxed) == -1
    }

    /// A monitor's findings: up or down, role, lag, and the details (JSON) behind them.
    pub fn set_monitored(
        &self,
        up: bool,
        role: ServerRole,
        lag: Option<u64>,
        details: serde_json::Value,
    ) {
        // The role first: a server coming back up is never seen up with its old role.
        if up {
            self.role.store(role as u8, Ordering::Release);
        }
        self.monitored_down.store(!up, Ordering::Release);
        let lag = lag.map_or(-1, |l| l.min(i64::MAX as u64) as i64);
        self.lag.store(lag, Ordering::Relaxed);
        *self.monitored.lock().unwrap_or_else(|e| e.into_inner()) = Some(details);
    }

    /// What a monitor last found out about it, if one watches it.
    pub fn monitored(&self) -> Option<serde_json::Value> {
        self.monitored
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Records a failed connect: the server is skipped for [`RETRY_AFTER`].
    pub fn mark_down(&self, error: &str) {
        self.failed_connects.fetch_add(1, Ordering::Relaxed);
        self.down_until
            .store(now_ms() + RETRY_AFTER.as_millis() as u64, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error.to_string());
    }

    /// Records a successful connect.
    pub fn mark_up(&self) {
        if self.down_until.swap(0, Ordering::Relaxed) != 0 {
            tracing::info!(server = %self.name, address = %self.address, "server is up again");
        }
    }

    /// Why it was last marked down.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Its state as JSON (for diagnostics).
    pub fn diagnostics(&self) -> serde_json::Value {
        let relaxed = Ordering::Relaxed;
        serde_json::json!({
            "name": self.name,
            "address": self.address.to_string(),
            "role": self.role().as_str(),
            "state": if self.is_up() { "up" } else { "down" },
            "admin_state": self.admin_state().as_str(),
            "sessions": self.sessions.load(relaxed),
            "total_sessions": self.total_sessions.load(relaxed),
            "routed_statements": self.routed.load(relaxed),
            "failed_connects": self.failed_connects.load(relaxed),
            "pool": {
                "max_per_worker": self.pool.max,
                "max_time_s": self.pool.max_time.as_secs_f64(),
                "idle": self.pooled.load(relaxed),
                "reused": self.pool_reuses.load(relaxed),
            },
            "last_error": self.last_error(),
            "lag": self.lag(),
            "monitor": self.monitored(),
        })
    }
}

/// True when `a` and `b` are the same server objects in the same order (a service or
/// monitor of other server objects, even of the same names, is another one).
pub(crate) fn same_servers(a: &[std::sync::Arc<Server>], b: &[std::sync::Arc<Server>]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| std::sync::Arc::ptr_eq(a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_or_say_why_not() {
        assert_eq!(
            ServerAddress::parse("127.0.0.1:3306"),
            Ok(ServerAddress::Tcp("127.0.0.1".into(), 3306))
        );
        assert_eq!(
            ServerAddress::parse("[::1]:3307"),
            Ok(ServerAddress::Tcp("::1".into(), 3307))
        );
        assert_eq!(
            ServerAddress::parse("/run/mysqld/mysqld.sock"),
            Ok(ServerAddress::Unix("/run/mysqld/mysqld.sock".into()))
        );
        assert!(ServerAddress::parse("db1")
            .unwrap_err()
            .contains("host:port"));
        assert!(ServerAddress::parse("db1:x").unwrap_err().contains("port"));
    }

    #[test]
    fn a_refusing_server_is_down_then_retried() {
        let s = Server::new(
            "db1".into(),
            ServerAddress::Unix("/x".into()),
            ServerRole::Primary,
        );
        assert!(s.is_up());
        s.mark_down("111 \"Connection refused\"");
        assert!(!s.is_up());
        assert_eq!(
            s.last_error().as_deref(),
            Some("111 \"Connection refused\"")
        );
        s.down_until.store(1, Ordering::Relaxed); // the retry time has passed
        assert!(s.is_up());
        s.mark_up();
        assert_eq!(s.diagnostics()["state"], "up");
    }
}
