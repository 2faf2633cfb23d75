//! Services: a router, an ordered filter chain and a set of servers, under a name.
//!
//! The [`Service`] itself is process-wide: defined by the startup file, which runs once
//! per worker, so the first worker to define a name creates it and the others get the
//! same one back. The filters are per worker ([`WorkerService`]): a Lua filter's
//! functions live in its worker's Lua state.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use super::server::{Server, ServerAddress, ServerRole};
use crate::pipeline::{Filter, Router};

/// A service (see the module docs).
pub struct Service {
    /// Its name.
    pub name: String,
    /// Its router instance.
    pub router: Arc<dyn Router>,
    /// The servers it routes to, in declaration order.
    pub servers: Vec<Arc<Server>>,
    /// The names of its filters, in chain order.
    pub filter_names: Vec<String>,
    /// Sessions open now.
    pub sessions: AtomicU64,
    /// Sessions ever started.
    pub total_sessions: AtomicU64,
    /// Sessions refused because no server could be reached.
    pub refused_sessions: AtomicU64,
    /// TLS offered to its clients (given to every listener that serves it).
    client_tls: Mutex<Option<Arc<crate::tls::ServerTls>>>,
}

impl Service {
    /// Sets the TLS offered to the service's clients (the same on every worker: a
    /// second, different setting is an error).
    pub fn set_client_tls(&self, tls: Arc<crate::tls::ServerTls>) -> Result<(), String> {
        let mut current = self.client_tls.lock().unwrap_or_else(|e| e.into_inner());
        match current.as_ref() {
            Some(t) if !Arc::ptr_eq(t, &tls) => Err(format!(
                "service '{}' already has other TLS settings",
                self.name
            )),
            _ => {
                *current = Some(tls);
                Ok(())
            }
        }
    }

    /// The TLS offered to the service's clients, if any.
    pub fn client_tls(&self) -> Option<Arc<crate::tls::ServerTls>> {
        self.client_tls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Its diagnostics: counters, its router's, and each server's.
    pub fn diagnostics(&self) -> serde_json::Value {
        let relaxed = Ordering::Relaxed;
        serde_json::json!({
            "name": self.name,
            "router": self.router.info().name,
            "sessions": self.sessions.load(relaxed),
            "total_sessions": self.total_sessions.load(relaxed),
            "refused_sessions": self.refused_sessions.load(relaxed),
            "router_diagnostics": self.router.diagnostics(),
            "servers": self.servers.iter().map(|s| s.diagnostics()).collect::<Vec<_>>(),
            "filters": self.filter_names,
            "authentication": if crate::authenticator::service_has_users(&self.name) {
                "proxy-held users"
            } else {
                "pass-through"
            },
            "users": crate::authenticator::users::diagnostics(&self.name),
            "tls": self.client_tls().map(|t| t.options.cert.display().to_string()),
        })
    }
}

/// A service as one worker sees it: the shared part and this worker's filters.
pub struct WorkerService {
    /// The process-wide service.
    pub shared: Arc<Service>,
    /// This worker's filter instances, in chain order.
    pub filters: Vec<Rc<dyn Filter>>,
    /// This worker's counters of the service's statements (`crate::metrics`).
    pub metrics: crate::metrics::ServiceMetrics,
}

impl WorkerService {
    /// The service as this worker sees it, with `filters`.
    pub fn new(shared: Arc<Service>, filters: Vec<Rc<dyn Filter>>) -> WorkerService {
        WorkerService {
            shared,
            filters,
            metrics: Default::default(),
        }
    }
}

impl WorkerService {
    /// Diagnostics of the service with each filter's (summed over workers).
    pub fn diagnostics(&self) -> serde_json::Value {
        let mut d = self.shared.diagnostics();
        d["filters"] = self
            .filters
            .iter()
            .map(|f| {
                serde_json::json!({
                    "name": f.name(),
                    "module": f.info().name,
                    "diagnostics": f.diagnostics(),
                })
            })
            .collect();
        d
    }
}

/// Every server and service of the process, by name.
#[derive(Default)]
struct Registry {
    servers: HashMap<String, Arc<Server>>,
    services: HashMap<String, Arc<Service>>,
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Default::default);

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Defines server `name`, or returns the one already defined with the same address and
/// role (the startup file runs once per worker).
pub fn define_server(
    name: &str,
    address: ServerAddress,
    role: ServerRole,
    tls: Option<Arc<crate::tls::ClientTls>>,
    credentials: Option<crate::authenticator::BackendCredentials>,
) -> Result<Arc<Server>, String> {
    let mut reg = registry();
    if let Some(existing) = reg.servers.get(name) {
        if existing.address != address {
            return Err(format!(
                "server '{name}' is already defined with address {}",
                existing.address
            ));
        }
        if existing.tls.as_ref().map(|t| &t.options) != tls.as_ref().map(|t| &t.options)
            || existing.credentials != credentials
        {
            return Err(format!(
                "server '{name}' is already defined with other TLS settings or credentials"
            ));
        }
        return Ok(existing.clone());
    }
    let server = Arc::new(
        Server::new(name.to_string(), address, role)
            .with_tls(tls)
            .with_credentials(credentials),
    );
    reg.servers.insert(name.to_string(), server.clone());
    Ok(server)
}

/// Defines service `name`; `make_router` runs only for the first definition. A second
/// definition (another worker's) must name the same router, servers and filters.
pub fn define_service(
    name: &str,
    router_name: &str,
    servers: Vec<Arc<Server>>,
    filter_names: Vec<String>,
    make_router: impl FnOnce() -> Result<Arc<dyn Router>, String>,
) -> Result<Arc<Service>, String> {
    let mut reg = registry();
    if let Some(existing) = reg.services.get(name) {
        let same_servers = existing.servers.len() == servers.len()
            && existing
                .servers
                .iter()
                .zip(&servers)
                .all(|(a, b)| Arc::ptr_eq(a, b));
        if existing.router.info().name != router_name
            || !same_servers
            || existing.filter_names != filter_names
        {
            return Err(format!(
                "service '{name}' is already defined with another router, servers or filters"
            ));
        }
        return Ok(existing.clone());
    }
    let service = Arc::new(Service {
        name: name.to_string(),
        router: make_router()?,
        servers,
        filter_names,
        sessions: AtomicU64::new(0),
        total_sessions: AtomicU64::new(0),
        refused_sessions: AtomicU64::new(0),
        client_tls: Mutex::new(None),
    });
    reg.services.insert(name.to_string(), service.clone());
    Ok(service)
}

/// A defined service by name.
pub fn find_service(name: &str) -> Option<Arc<Service>> {
    registry().services.get(name).cloned()
}

/// Every defined service, by name.
pub fn services() -> Vec<Arc<Service>> {
    let mut all: Vec<_> = registry().services.values().cloned().collect();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    all
}

/// Every defined server, by name.
pub fn servers() -> Vec<Arc<Server>> {
    let mut all: Vec<_> = registry().servers.values().cloned().collect();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    all
}
