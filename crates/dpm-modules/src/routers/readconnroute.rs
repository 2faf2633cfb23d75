//! `readconnroute`: MaxScale's connection router. Each new session is routed once, to
//! the server with the fewest sessions among those that are up and have the role given
//! by `router_options` (`primary`, `replica` or `running` = any); every statement of the
//! session then goes to that server. A server that refuses a connection is skipped (and
//! retried after a while); the client of a session none can take gets an error naming
//! the service and the servers tried.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dpm_engine::pipeline::{Decision, Request, RouteContext, Router, RouterSession};
use dpm_engine::service::{
    Maturity, ModuleInfo, ModuleType, OptionKind, OptionSpec, Options, Server, ServerRole,
};
use dpm_protocol::err::ErrPacket;

/// The module's declaration.
pub static INFO: ModuleInfo = ModuleInfo {
    kind: ModuleType::Router,
    name: "readconnroute",
    maturity: Maturity::Beta,
    version: "1.0.0",
    description:
        "Routes each session to the least-loaded server of a role; all its statements follow",
    options: &[
        OptionSpec {
            name: "router_options",
            kind: OptionKind::Enum(&["primary", "replica", "running", "master", "slave"]),
            default: Some("running"),
            description: "which servers take sessions: primary, replica, or running (any that is up)",
        },
        OptionSpec {
            name: "delayed_retry_timeout",
            kind: OptionKind::Millis,
            default: Some("0"),
            description: "how long a new session waits for a server of the role when none is up (a failover in progress) before it is refused",
        },
    ],
};

/// Which servers a readconnroute instance routes to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Wanted {
    Role(ServerRole),
    Running,
}

/// A readconnroute instance (one per service, shared by every worker).
pub struct ReadConnRoute {
    wanted: Wanted,
    delayed_retry: std::time::Duration,
    sessions: AtomicU64,
    refused: AtomicU64,
    misrouted: AtomicU64,
}

impl ReadConnRoute {
    /// Creates an instance from checked options.
    pub fn create(options: &Options) -> Result<Arc<dyn Router>, String> {
        let wanted = match options.str("router_options").unwrap_or("running") {
            "running" => Wanted::Running,
            role => Wanted::Role(
                ServerRole::parse(role).ok_or_else(|| format!("unknown role '{role}'"))?,
            ),
        };
        Ok(Arc::new(ReadConnRoute {
            wanted,
            delayed_retry: std::time::Duration::from_millis(
                options.int("delayed_retry_timeout").unwrap_or(0).max(0) as u64,
            ),
            sessions: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            misrouted: AtomicU64::new(0),
        }))
    }

    fn wants(&self, server: &Server) -> bool {
        match self.wanted {
            Wanted::Running => true,
            Wanted::Role(role) => server.role() == role,
        }
    }
}

impl Router for ReadConnRoute {
    fn info(&self) -> &'static ModuleInfo {
        &INFO
    }

    fn new_session(self: Arc<Self>) -> Box<dyn RouterSession> {
        Box::new(ReadConnSession { router: self })
    }

    fn diagnostics(&self) -> serde_json::Value {
        let relaxed = Ordering::Relaxed;
        serde_json::json!({
            "router_options": match self.wanted {
                Wanted::Running => "running",
                Wanted::Role(role) => role.as_str(),
            },
            "sessions_routed": self.sessions.load(relaxed),
            "sessions_refused": self.refused.load(relaxed),
            "route_requests_refused": self.misrouted.load(relaxed),
            "delayed_retry_timeout_ms": self.delayed_retry.as_millis() as u64,
        })
    }

    fn delayed_retry(&self) -> std::time::Duration {
        self.delayed_retry
    }
}

/// One session of a readconnroute instance.
struct ReadConnSession {
    router: Arc<ReadConnRoute>,
}

impl RouterSession for ReadConnSession {
    fn candidates(&mut self, servers: &[Arc<Server>]) -> Vec<Arc<Server>> {
        let mut usable: Vec<(usize, &Arc<Server>)> = servers
            .iter()
            .enumerate()
            .filter(|(_, s)| s.accepts_new_connections() && self.router.wants(s))
            .collect();
        // Least connections first; declaration order breaks ties (a stable sort).
        usable.sort_by_key(|(_, s)| s.sessions.load(Ordering::Relaxed));
        usable.into_iter().map(|(_, s)| s.clone()).collect()
    }

    fn connected(&mut self, _server: &Arc<Server>) {
        self.router.sessions.fetch_add(1, Ordering::Relaxed);
    }

    fn refused(&mut self) {
        self.router.refused.fetch_add(1, Ordering::Relaxed);
    }

    fn route_query(
        &mut self,
        _request: &Request,
        target: Option<&str>,
        context: &RouteContext<'_>,
    ) -> Result<Decision, ErrPacket> {
        let current = context.current;
        match target {
            None => Ok(Decision::current()),
            Some(name) if name == current.name => Ok(Decision::current()),
            Some(name) => {
                self.router.misrouted.fetch_add(1, Ordering::Relaxed);
                Err(ErrPacket::new(
                    1105,
                    *b"HY000",
                    format!(
                        "readconnroute cannot route to server '{name}': this session is connected to '{}' and readconnroute keeps one backend per session",
                        current.name
                    ),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpm_engine::service::{OptionValue, ServerAddress};

    fn server(name: &str, role: ServerRole, sessions: u64) -> Arc<Server> {
        let s = Server::new(name.into(), ServerAddress::Unix(format!("/{name}")), role);
        s.sessions.store(sessions, Ordering::Relaxed);
        Arc::new(s)
    }

    fn router(role: &str) -> Arc<dyn Router> {
        let options = Options::validate(
            &INFO,
            [("router_options".to_string(), OptionValue::Str(role.into()))],
        )
        .unwrap();
        ReadConnRoute::create(&options).unwrap()
    }

    fn names(servers: Vec<Arc<Server>>) -> Vec<String> {
        servers.iter().map(|s| s.name.clone()).collect()
    }

    #[test]
    fn least_connections_among_the_wanted_role_that_are_up() {
        let servers = vec![
            server("p1", ServerRole::Primary, 5),
            server("r1", ServerRole::Replica, 3),
            server("r2", ServerRole::Replica, 1),
            server("r3", ServerRole::Replica, 1),
        ];
        let mut s = router("replica").new_session();
        assert_eq!(names(s.candidates(&servers)), ["r2", "r3", "r1"]);
        servers[2].mark_down("refused");
        assert_eq!(names(s.candidates(&servers)), ["r3", "r1"]);
        let mut s = router("primary").new_session();
        assert_eq!(names(s.candidates(&servers)), ["p1"]);
        let mut s = router("running").new_session();
        assert_eq!(names(s.candidates(&servers)), ["r3", "r1", "p1"]);
        servers[0].mark_down("refused");
        let r = router("master");
        let mut s = r.clone().new_session();
        assert!(s.candidates(&servers).is_empty());
        s.refused();
        assert_eq!(r.diagnostics()["sessions_refused"], 1);
        assert_eq!(r.diagnostics()["sessions_routed"], 0);
    }

    #[test]
    fn a_filter_may_only_route_to_the_session_server() {
        let servers = [
            server("p1", ServerRole::Primary, 0),
            server("r1", ServerRole::Replica, 0),
        ];
        let r = router("running");
        let mut s = r.clone().new_session();
        let q = Request::new(bytes::Bytes::from_static(b"\x03SELECT 1"));
        let state = dpm_engine::session::SessionState::default();
        let context = RouteContext {
            current: &servers[0],
            open: &servers[..1],
            statements: &Default::default(),
            can_open: false,
            state: &state,
            waited: std::time::Duration::ZERO,
            backend_lost: false,
        };
        assert!(s.route_query(&q, None, &context).is_ok());
        assert!(s.route_query(&q, Some("p1"), &context).is_ok());
        let err = s.route_query(&q, Some("r1"), &context).unwrap_err();
        assert!(String::from_utf8_lossy(&err.message).contains("cannot route to server 'r1'"));
        assert_eq!(r.diagnostics()["route_requests_refused"], 1);
    }
}
