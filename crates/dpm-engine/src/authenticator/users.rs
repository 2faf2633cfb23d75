//! The proxy-held users: accounts dpm checks itself (hashes only), each for one service,
//! with the credentials dpm logs in to servers with and a connection limit.
//!
//! Process-wide, like services: the startup file runs once per worker, so the first
//! worker to define a user makes it and the others must define the same one. A service
//! has proxy-held authentication when at least one user names it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock, RwLock};

use dpm_auth::{Plugin, StoredCredential};

/// A password dpm needs in clear (to log in to a server). Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: String) -> Secret {
        Secret(text)
    }

    /// The password, to compute a login token with.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<hidden>")
    }
}

/// The account dpm logs in to a server with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendCredentials {
    pub user: String,
    pub password: Secret,
}

/// What a user is defined from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserSpec {
    pub user: String,
    pub plugin: Plugin,
    pub credential: StoredCredential,
    /// The service it may log in to.
    pub service: String,
    /// Sessions it may have open at once (ERR 1203 beyond); `None`: no limit.
    pub max_connections: Option<u32>,
    /// The account dpm uses on the servers for this user; `None`: the server's own
    /// (`dpm.server{ backend_user, backend_password }`).
    pub backend: Option<BackendCredentials>,
}

/// A defined user.
#[derive(Debug)]
pub struct ProxyUser {
    pub spec: UserSpec,
    /// Sessions open now.
    connections: AtomicU32,
}

/// A session's hold on its user's connection count (released when dropped).
#[derive(Debug)]
pub struct UserSlot(Arc<ProxyUser>);

impl Drop for UserSlot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

impl UserSlot {
    pub fn user(&self) -> &Arc<ProxyUser> {
        &self.0
    }
}

impl ProxyUser {
    /// Takes one of the user's connections; `None` at `max_connections`.
    pub fn take_slot(self: &Arc<Self>) -> Option<UserSlot> {
        let limit = self.spec.max_connections.unwrap_or(u32::MAX);
        self.connections
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| UserSlot(self.clone()))
    }

    /// Sessions open now.
    pub fn connections(&self) -> u32 {
        self.connections.load(Ordering::Relaxed)
    }
}

/// Users by service, then by name: a service has proxy-held users exactly when it has
/// an entry (looked up at every accept).
type UsersByService = HashMap<String, HashMap<String, Arc<ProxyUser>>>;

static USERS: LazyLock<RwLock<UsersByService>> = LazyLock::new(Default::default);

/// Defines users (a second definition of the same user must be identical: it is
/// another worker's).
pub fn define_users(specs: Vec<UserSpec>) -> Result<(), String> {
    let mut users = USERS.write().unwrap_or_else(|e| e.into_inner());
    for spec in &specs {
        let existing = users.get(&spec.service).and_then(|s| s.get(&spec.user));
        if existing.is_some_and(|u| u.spec != *spec) {
            return Err(format!(
                "user '{}' of service '{}' is already defined differently",
                spec.user, spec.service
            ));
        }
    }
    for spec in specs {
        users
            .entry(spec.service.clone())
            .or_default()
            .entry(spec.user.clone())
            .or_insert_with(|| {
                Arc::new(ProxyUser {
                    spec,
                    connections: AtomicU32::new(0),
                })
            });
    }
    Ok(())
}

/// True when `service` authenticates its clients itself (a user names it).
pub fn service_has_users(service: &str) -> bool {
    let users = USERS.read().unwrap_or_else(|e| e.into_inner());
    users.contains_key(service)
}

/// The user `name` of `service`.
pub fn find(service: &str, name: &[u8]) -> Option<Arc<ProxyUser>> {
    let name = std::str::from_utf8(name).ok()?;
    let users = USERS.read().unwrap_or_else(|e| e.into_inner());
    users.get(service)?.get(name).cloned()
}

/// The users of `service`, for its diagnostics (names, plugins, open sessions, the
/// mapped account's name: never a hash or password).
pub fn diagnostics(service: &str) -> serde_json::Value {
    let users = USERS.read().unwrap_or_else(|e| e.into_inner());
    let mut list: Vec<_> = users
        .get(service)
        .into_iter()
        .flat_map(|s| s.values())
        .map(|u| {
            serde_json::json!({
                "user": u.spec.user,
                "plugin": u.spec.plugin.name(),
                "max_connections": u.spec.max_connections,
                "connections": u.connections(),
                "backend_user": u.spec.backend.as_ref().map(|b| b.user.clone()),
            })
        })
        .collect();
    list.sort_by(|a, b| a["user"].as_str().cmp(&b["user"].as_str()));
    serde_json::Value::Array(list)
}
