//! The proxy-held users: accounts dpm checks itself (hashes only), each for one service,
//! with the credentials dpm logs in to servers with and a connection limit.
//!
//! Process-wide, like services: the startup file runs once per worker, so the first
//! worker to define a user makes it and the others must define the same one. A service
//! has proxy-held authentication when at least one user names it.
//!
//! At a reload the new file's users replace the old ones when it takes effect
//! (`crate::service::generations`): a service it gives no users goes back to
//! pass-through, and a user it defines again — changed or not — goes on counting the
//! sessions its old definition opened against its `max_connections`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use dpm_auth::{Plugin, StoredCredential};

use crate::service::generations::Registry;

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
    /// Sessions open now (shared with the user's earlier definitions, whose sessions
    /// may still be open after a reload).
    connections: Arc<AtomicU32>,
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

/// Users by (service, name): a service has proxy-held users exactly when a key starts
/// with its name.
static USERS: Registry<Arc<ProxyUser>, (String, String)> = Registry::new();

/// Defines users (a second definition of the same user must be identical: it is
/// another worker's). At a reload, an identical user is the one in force; a changed one
/// is new but shares its open-session count.
pub fn define_users(specs: Vec<UserSpec>) -> Result<(), String> {
    for spec in specs {
        let key = (spec.service.clone(), spec.user.clone());
        let same = |existing: &Arc<ProxyUser>| {
            (existing.spec == spec).then_some(()).ok_or_else(|| {
                format!(
                    "user '{}' of service '{}' is already defined differently",
                    spec.user, spec.service
                )
            })
        };
        USERS.define(key, same, |before| {
            Ok(Arc::new(ProxyUser {
                spec: spec.clone(),
                connections: before.map_or_else(Default::default, |u| u.connections.clone()),
            }))
        })?;
    }
    Ok(())
}

/// The users in force of `service`, by name.
fn users_of(service: &str) -> Vec<Arc<ProxyUser>> {
    let from = (service.to_string(), String::new());
    USERS.with_in_force(|all| {
        all.range(from..)
            .take_while(|((s, _), _)| s == service)
            .map(|(_, u)| u.clone())
            .collect()
    })
}

/// True when `service` authenticates its clients itself (a user names it).
pub fn service_has_users(service: &str) -> bool {
    let from = (service.to_string(), String::new());
    USERS.with_in_force(|all| {
        all.range(from..)
            .next()
            .is_some_and(|((s, _), _)| s == service)
    })
}

/// The user `name` of `service`.
pub fn find(service: &str, name: &[u8]) -> Option<Arc<ProxyUser>> {
    let name = std::str::from_utf8(name).ok()?;
    USERS.get(&(service.to_string(), name.to_string()))
}

/// The users of `service`, for its diagnostics (names, plugins, open sessions, the
/// mapped account's name: never a hash or password).
pub fn diagnostics(service: &str) -> serde_json::Value {
    let list: Vec<_> = users_of(service)
        .iter()
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
    serde_json::Value::Array(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::generations::{abort_load, begin_load, commit_load, serial_test};

    /// User `user` of `service`, allowed `max` sessions.
    fn spec(service: &str, user: &str, max: u32) -> UserSpec {
        let hash = "*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9";
        UserSpec {
            user: user.into(),
            plugin: Plugin::MysqlNativePassword,
            credential: StoredCredential::parse(Plugin::MysqlNativePassword, hash).unwrap(),
            service: service.into(),
            max_connections: Some(max),
            backend: None,
        }
    }

    #[test]
    fn a_reload_replaces_the_users_and_keeps_counting_their_sessions() {
        let _serial = serial_test();
        define_users(vec![spec("u-app", "alice", 1), spec("u-other", "bob", 1)]).unwrap();
        let old = find("u-app", b"alice").unwrap();
        let slot = old.take_slot().unwrap();
        assert!(old.take_slot().is_none());

        begin_load();
        define_users(vec![spec("u-app", "alice", 2)]).unwrap();
        // Another worker's different definition in the same load is an error.
        assert!(define_users(vec![spec("u-app", "alice", 3)]).is_err());
        // Logins go on with the users in force until the reload takes effect.
        assert!(service_has_users("u-other"));
        assert!(Arc::ptr_eq(&find("u-app", b"alice").unwrap(), &old));
        commit_load();

        let alice = find("u-app", b"alice").unwrap();
        assert_eq!(alice.spec.max_connections, Some(2));
        assert_eq!(
            alice.connections(),
            1,
            "the old definition's session counts"
        );
        let _second = alice.take_slot().unwrap();
        assert!(alice.take_slot().is_none());
        drop(slot);
        assert_eq!(alice.connections(), 1);
        assert!(!service_has_users("u-other"), "back to pass-through");
        assert!(find("u-other", b"bob").is_none());
        assert_eq!(diagnostics("u-app")[0]["connections"], 1);
    }

    #[test]
    fn a_reload_keeps_an_unchanged_user_and_an_abort_keeps_them_all() {
        let _serial = serial_test();
        define_users(vec![spec("ua-app", "carol", 1)]).unwrap();
        let carol = find("ua-app", b"carol").unwrap();

        begin_load();
        define_users(vec![spec("ua-app", "carol", 1)]).unwrap();
        commit_load();
        assert!(Arc::ptr_eq(&find("ua-app", b"carol").unwrap(), &carol));

        begin_load();
        define_users(vec![spec("ua-app", "carol", 5), spec("ua-app", "dave", 1)]).unwrap();
        abort_load();
        assert!(Arc::ptr_eq(&find("ua-app", b"carol").unwrap(), &carol));
        assert!(find("ua-app", b"dave").is_none());
    }
}
