//! Services: a router, an ordered filter chain and a set of servers, under a name.
//!
//! The [`Service`] itself is process-wide: defined by the startup file, which runs once
//! per worker, so the first worker to define a name creates it and the others get the
//! same one back (at a reload, the one in force if nothing of it changed:
//! `super::generations`). The filters are per worker ([`WorkerService`]): a Lua filter's
//! functions live in its worker's Lua state.

use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::generations::Registry;
use super::server::{same_servers, Server, ServerAddress, ServerRole};
use crate::pipeline::{Filter, Router};

/// A service (see the module docs).
pub struct Service {
    /// Its name.
    pub name: String,
    /// Its router instance.
    pub router: Arc<dyn Router>,
    /// What the router was made from (module and options, as text): a definition with
    /// other text is another service.
    router_made_from: String,
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
    client_tls: Option<Arc<crate::tls::ServerTls>>,
}

impl Service {
    /// The TLS offered to the service's clients, if any.
    pub fn client_tls(&self) -> Option<Arc<crate::tls::ServerTls>> {
        self.client_tls.clone()
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
    /// This worker's counters of the service's statements (`crate::metrics`), shared by
    /// every generation's view of the service on the worker.
    pub metrics: Rc<crate::metrics::ServiceMetrics>,
}

impl WorkerService {
    /// The service as `worker` sees it, with `filters`.
    pub fn new(
        worker: &crate::Worker,
        shared: Arc<Service>,
        filters: Vec<Rc<dyn Filter>>,
    ) -> WorkerService {
        let metrics = worker.metrics().service(&shared.name);
        WorkerService {
            shared,
            filters,
            metrics,
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

/// Every server of the process, by name.
static SERVERS: Registry<Arc<Server>> = Registry::new();

/// Every service of the process, by name.
static SERVICES: Registry<Arc<Service>> = Registry::new();

/// Defines server `name`, or returns the one already defined with the same address,
/// declared role, TLS settings and credentials (the startup file runs once per worker;
/// at a reload, the one in force keeps its state: up or down, role, lag, admin state,
/// sessions).
pub fn define_server(
    name: &str,
    address: ServerAddress,
    role: ServerRole,
    tls: Option<Arc<crate::tls::ClientTls>>,
    credentials: Option<crate::authenticator::BackendCredentials>,
    pool: super::PoolSettings,
) -> Result<Arc<Server>, String> {
    let same = |existing: &Arc<Server>| {
        if existing.address != address {
            return Err(format!(
                "server '{name}' is already defined with address {}",
                existing.address
            ));
        }
        if existing.declared_role() != role {
            return Err(format!(
                "server '{name}' is already defined with role {}",
                existing.declared_role().as_str()
            ));
        }
        if existing.tls.as_ref().map(|t| &t.options) != tls.as_ref().map(|t| &t.options)
            || existing.credentials != credentials
        {
            return Err(format!(
                "server '{name}' is already defined with other TLS settings or credentials"
            ));
        }
        if existing.pool != pool {
            return Err(format!(
                "server '{name}' is already defined with other pool settings"
            ));
        }
        Ok(())
    };
    SERVERS.define(name.to_string(), same, |_| {
        let server = Server::new(name.to_string(), address.clone(), role)
            .with_tls(tls.clone())
            .with_credentials(credentials.clone())
            .with_pool(pool);
        Ok(Arc::new(server))
    })
}

/// Defines service `name`; `make_router` runs only for a new service. A second
/// definition (another worker's) must give the same router (`router_made_from`: its
/// module and options as text), server objects, filter names and client TLS; at a
/// reload, a definition equal to the service in force gives it back (with its router
/// and counters).
pub fn define_service(
    name: &str,
    router_made_from: &str,
    servers: Vec<Arc<Server>>,
    filter_names: Vec<String>,
    client_tls: Option<Arc<crate::tls::ServerTls>>,
    make_router: impl FnOnce() -> Result<Arc<dyn Router>, String>,
) -> Result<Arc<Service>, String> {
    let same = |existing: &Arc<Service>| {
        let same_tls = match (&existing.client_tls, &client_tls) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (a, b) => a.is_none() && b.is_none(),
        };
        if existing.router_made_from != router_made_from
            || !same_servers(&existing.servers, &servers)
            || existing.filter_names != filter_names
            || !same_tls
        {
            return Err(format!(
                "service '{name}' is already defined with another router, other router options, servers, filters or TLS settings"
            ));
        }
        Ok(())
    };
    SERVICES.define(name.to_string(), same, |_| {
        Ok(Arc::new(Service {
            name: name.to_string(),
            router: make_router()?,
            router_made_from: router_made_from.to_string(),
            servers: servers.clone(),
            filter_names: filter_names.clone(),
            sessions: AtomicU64::new(0),
            total_sessions: AtomicU64::new(0),
            refused_sessions: AtomicU64::new(0),
            client_tls: client_tls.clone(),
        }))
    })
}

/// The service in force named `name` (during a reload, the old file's: sessions starting
/// now still get it).
pub fn find_service(name: &str) -> Option<Arc<Service>> {
    SERVICES.get(name)
}

/// The service named `name` the startup file running now defined (the reload's file's
/// while one loads, else the one in force): what the file itself refers to by name.
pub fn defined_service(name: &str) -> Option<Arc<Service>> {
    SERVICES.defined(name)
}

/// Every service in force, by name.
pub fn services() -> Vec<Arc<Service>> {
    SERVICES.values()
}

/// Every server in force, by name.
pub fn servers() -> Vec<Arc<Server>> {
    SERVERS.values()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{Decision, Request, RouteContext, RouterSession};
    use crate::service::generations::{abort_load, begin_load, commit_load, serial_test};
    use crate::service::{AdminState, Maturity, ModuleInfo, ModuleType};

    static FIRST: ModuleInfo = ModuleInfo {
        kind: ModuleType::Router,
        name: "first",
        maturity: Maturity::Alpha,
        version: "0.0.0",
        description: "every session to the first server (a test router)",
        options: &[],
    };

    /// Sends every session to its service's first server, every statement with it.
    struct First;

    impl Router for First {
        fn info(&self) -> &'static ModuleInfo {
            &FIRST
        }
        fn new_session(self: Arc<Self>) -> Box<dyn RouterSession> {
            Box::new(First)
        }
        fn diagnostics(&self) -> serde_json::Value {
            serde_json::json!({})
        }
    }

    impl RouterSession for First {
        fn candidates(&mut self, servers: &[Arc<Server>]) -> Vec<Arc<Server>> {
            servers.iter().take(1).cloned().collect()
        }
        fn route_query(
            &mut self,
            _: &Request,
            _: Option<&str>,
            _: &RouteContext<'_>,
        ) -> Result<Decision, dpm_protocol::err::ErrPacket> {
            Ok(Decision::current())
        }
    }

    fn server(name: &str, port: u16) -> Arc<Server> {
        let address = ServerAddress::Tcp("127.0.0.1".into(), port);
        define_server(
            name,
            address,
            ServerRole::Primary,
            None,
            None,
            Default::default(),
        )
        .unwrap()
    }

    /// Defines service `name` over `server` with router options `options`; says
    /// whether a router was made.
    fn service(name: &str, options: &str, server: &Arc<Server>) -> (Arc<Service>, bool) {
        let mut made = false;
        let made_from = format!("router first, options {options}");
        let servers = vec![server.clone()];
        let service = define_service(name, &made_from, servers, vec![], None, || {
            made = true;
            Ok(Arc::new(First))
        })
        .unwrap();
        (service, made)
    }

    #[test]
    fn a_reload_keeps_servers_and_services_defined_the_same_with_their_state() {
        let _serial = serial_test();
        let db = server("keep-db", 3306);
        let (app, _) = service("keep-app", "{}", &db);
        db.set_admin_state(AdminState::Drain);
        app.total_sessions.fetch_add(3, Ordering::Relaxed);

        begin_load();
        let again = server("keep-db", 3306);
        let (app_again, made) = service("keep-app", "{}", &again);
        commit_load();

        assert!(Arc::ptr_eq(&again, &db) && Arc::ptr_eq(&app_again, &app));
        assert!(!made, "the router in force is kept");
        assert_eq!(db.admin_state(), AdminState::Drain);
        assert!(Arc::ptr_eq(&find_service("keep-app").unwrap(), &app));
        assert_eq!(app.total_sessions.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn other_router_options_make_a_new_service_when_the_reload_takes_effect() {
        let _serial = serial_test();
        let db = server("options-db", 3306);
        let (old, _) = service("options-app", r#"{"x":1}"#, &db);

        begin_load();
        let db = server("options-db", 3306);
        let (new, made) = service("options-app", r#"{"x":2}"#, &db);
        assert!(made && !Arc::ptr_eq(&new, &old));
        // Another worker of the same load agrees; the old file's sessions still get the
        // service in force.
        assert!(Arc::ptr_eq(
            &service("options-app", r#"{"x":2}"#, &db).0,
            &new
        ));
        assert!(Arc::ptr_eq(&find_service("options-app").unwrap(), &old));
        assert!(Arc::ptr_eq(&defined_service("options-app").unwrap(), &new));
        commit_load();

        assert!(Arc::ptr_eq(&find_service("options-app").unwrap(), &new));
    }

    #[test]
    fn a_moved_server_is_a_new_server_and_its_services_are_new() {
        let _serial = serial_test();
        let db = server("moved-db", 3306);
        let (app, _) = service("moved-app", "{}", &db);
        server("moved-gone", 3307);

        begin_load();
        let moved = server("moved-db", 3308);
        let (new_app, made) = service("moved-app", "{}", &moved);
        assert!(!Arc::ptr_eq(&moved, &db) && !Arc::ptr_eq(&new_app, &app) && made);
        // The servers in force are listed until the reload takes effect.
        let names = |all: Vec<Arc<Server>>| all.iter().any(|s| s.name == "moved-gone");
        assert!(names(servers()));
        commit_load();

        assert!(Arc::ptr_eq(
            &servers()
                .into_iter()
                .find(|s| s.name == "moved-db")
                .unwrap(),
            &moved
        ));
        assert!(
            !names(servers()),
            "a server the new file does not define leaves"
        );
        // Sessions that hold the old objects keep them.
        assert_eq!(app.servers[0].address.to_string(), "127.0.0.1:3306");
    }

    #[test]
    fn an_aborted_reload_leaves_servers_and_services_as_they_were() {
        let _serial = serial_test();
        let db = server("abort-db", 3306);
        let (app, _) = service("abort-app", "{}", &db);

        begin_load();
        let moved = server("abort-db", 3309);
        service("abort-app", "{}", &moved);
        service("abort-added", "{}", &db);
        abort_load();

        assert!(Arc::ptr_eq(&find_service("abort-app").unwrap(), &app));
        assert!(find_service("abort-added").is_none());
        let in_force = servers()
            .into_iter()
            .find(|s| s.name == "abort-db")
            .unwrap();
        assert!(Arc::ptr_eq(&in_force, &db));
    }
}
