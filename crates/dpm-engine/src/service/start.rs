//! How a service session gets its backend: the router names the servers to try, best
//! first; each is connected in turn until one answers. A server that refuses is marked
//! down (skipped for a while) with a log line; when none answers, or none is usable, the
//! client — still waiting for a greeting — gets an ERR naming the service and the
//! servers tried, at once.

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::server::Server;
use super::service::WorkerService;
use crate::authenticator::{log_in_session, LoggedInSession, LoginOutcome, ServerSide};
use crate::conn::{Conn, Role};
use crate::connector::{establish, send_error, Target, BACKEND_UNREACHABLE};
use crate::pipeline::{Pipeline, SessionRef};
use crate::session::pool;
use crate::worker::Worker;

/// Starts the service session of a freshly accepted `client` (the listener's
/// `ClientAccepted` callback, if any, already ran and left it unlinked). With
/// `proxy_auth` (the service has proxy-held users) dpm runs the login itself before
/// either side is read (`crate::authenticator`); the client's reader starts after it.
pub(crate) async fn start_session(
    worker: Worker,
    client: Rc<Conn>,
    service: Rc<WorkerService>,
    proxy_auth: bool,
) {
    if client.session.borrow().is_none() {
        return;
    }
    let shared = &service.shared;
    let mut router = shared.router.clone().new_session();
    // Sessions over one backend may give it back to its server's pool at their end.
    let pooling = shared.router.session_command_history() == 0;
    let mut tried = Vec::new();
    // All attempts share one deadline, inside the backend connect timeout: servers that
    // drop connects silently cannot stack timeouts, and the client hears why it is
    // refused before its own handshake timeout closes it.
    let deadline = Instant::now() + worker.inner.config.connect_timeout.mul_f32(0.9);
    // A router may ask to wait for a server rather than refuse at once (a failover in
    // progress promotes one within seconds), within the same deadline.
    let wait_until = (Instant::now() + shared.router.delayed_retry()).min(deadline);
    loop {
        tried.clear();
        for server in router.candidates(&shared.servers) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let what = format!(
                    "{} at {} (not tried: no time left)",
                    server.name, server.address
                );
                tried.push((server, what));
                continue;
            }
            if proxy_auth {
                // The server's pool may serve the session: no connect before the login.
                if let Some(greeting) = pool::greeting(&worker, &server, &client.generation) {
                    let side = ServerSide::Pool(greeting);
                    match log_in_session(&worker, &client, side, &server, &shared.name, pooling)
                        .await
                    {
                        LoginOutcome::LoggedIn(done) => {
                            let backend = done.backend.clone();
                            begin(
                                &worker,
                                &client,
                                &backend,
                                &server,
                                &service,
                                router,
                                Some(done),
                            );
                        }
                        LoginOutcome::ServerFailed(_) | LoginOutcome::Ended => {
                            worker.close(client.id);
                        }
                    }
                    return;
                }
            }
            match connect(&worker, &server, left, !proxy_auth).await {
                Ok(backend) => {
                    if client.closing.get() {
                        worker.close(backend.id);
                        return;
                    }
                    let mut user = None;
                    if proxy_auth {
                        let side = ServerSide::Fresh(&backend);
                        match log_in_session(&worker, &client, side, &server, &shared.name, pooling)
                            .await
                        {
                            LoginOutcome::LoggedIn(done) => user = Some(done),
                            LoginOutcome::ServerFailed(error) => {
                                worker.close(backend.id);
                                tracing::warn!(service = %shared.name, server = %server.name, "server unusable ({error}); trying the next one");
                                server.mark_down(&error);
                                let what =
                                    format!("{} at {} ({error})", server.name, server.address);
                                tried.push((server, what));
                                continue;
                            }
                            LoginOutcome::Ended => {
                                worker.close(backend.id);
                                worker.close(client.id);
                                return;
                            }
                        }
                    }
                    begin(&worker, &client, &backend, &server, &service, router, user);
                    return;
                }
                Err(e) => {
                    let error = crate::error::describe_os_error(&e);
                    tracing::warn!(
                        service = %shared.name,
                        server = %server.name,
                        address = %server.address,
                        "cannot connect to server ({error}); trying the next one"
                    );
                    server.mark_down(&error);
                    let what = format!("{} at {} ({error})", server.name, server.address);
                    tried.push((server, what));
                }
            }
            if client.closing.get() {
                return;
            }
        }
        if Instant::now() + DELAYED_RETRY_STEP >= wait_until {
            break;
        }
        tokio::time::sleep(DELAYED_RETRY_STEP).await;
        if client.closing.get() {
            return;
        }
    }
    router.refused();
    shared.refused_sessions.fetch_add(1, Ordering::Relaxed);
    let why = crate::metrics::RefusedReason::NoServer;
    worker.metrics().client_refused(why);
    let message = refusal(&shared.name, &shared.servers, &tried);
    tracing::warn!(client = client.id, "{message}");
    send_error(&client, BACKEND_UNREACHABLE, *b"HY000", message);
    if proxy_auth {
        // Its writer was never started: the refusal leaves with it.
        crate::forward::start_io(&worker, &client);
    }
    worker.close(client.id);
}

/// Starts a session on `backend` (connected to `server`, logged in by dpm when `login`
/// is given): links the two, gives the session its pipeline and starts what is not
/// running yet.
fn begin(
    worker: &Worker,
    client: &Rc<Conn>,
    backend: &Rc<Conn>,
    server: &Arc<Server>,
    service: &Rc<WorkerService>,
    mut router: Box<dyn crate::pipeline::RouterSession>,
    login: Option<Box<LoggedInSession>>,
) {
    let Some(session) = client.session.borrow().clone() else {
        worker.close(backend.id);
        return;
    };
    let shared = &service.shared;
    server.mark_up();
    if worker.link(client.id, backend.id).is_err() {
        worker.close(backend.id);
        return;
    }
    router.connected(server);
    let sref = SessionRef {
        worker: worker.clone(),
        session: session.clone(),
        service: service.clone(),
    };
    let filters: Vec<_> = service
        .filters
        .iter()
        .map(|f| f.new_session(&sref))
        .collect();
    let interest = filters
        .iter()
        .fold(shared.router.interest(), |i, f| i.union(f.interest()));
    server.sessions.fetch_add(1, Ordering::Relaxed);
    server.total_sessions.fetch_add(1, Ordering::Relaxed);
    shared.sessions.fetch_add(1, Ordering::Relaxed);
    shared.total_sessions.fetch_add(1, Ordering::Relaxed);
    // Linked and given its pipeline with no await in between: no packet of
    // the session can pass unseen.
    session.set_pipeline(Rc::new(Pipeline::new(
        service.clone(),
        server.clone(),
        filters,
        router,
        interest,
    )));
    if shared.router.session_command_history() > 0 {
        session.backends.borrow_mut().started_on(server);
    }
    if let Some(done) = login {
        session.set_proxy_login(done.login);
        crate::forward::start_io(worker, client);
        if !done.backend_running {
            crate::forward::start_io(worker, backend);
        }
    }
    tracing::debug!(client = client.id, service = %shared.name, server = %server.name, "session routed");
}

/// How often a session waiting for a server (a router's delayed retry) looks again.
const DELAYED_RETRY_STEP: Duration = Duration::from_millis(100);

/// Opens a backend connection to `server` (reading at once with `start_reading`); on
/// failure the connection is gone again.
pub(crate) async fn connect(
    worker: &Worker,
    server: &Arc<Server>,
    timeout: Duration,
    start_reading: bool,
) -> std::io::Result<Rc<Conn>> {
    let backend = worker.register(Role::Backend, server.address.to_string());
    if let Some(tls) = &server.tls {
        let role = crate::tls::TlsRole::Connect {
            tls: tls.clone(),
            host: server.tls_host(),
        };
        let _ = backend.tls.set(role);
    }
    let target = Target::from(&server.address);
    match establish(worker, &backend, &target, timeout, start_reading).await {
        Ok(()) if !backend.closing.get() => Ok(backend),
        Ok(()) => Err(std::io::Error::other("closed while connecting")),
        Err(e) => {
            worker.close(backend.id);
            Err(e)
        }
    }
}

/// The message a refused client gets: the service, the servers tried and why each
/// other server was not.
fn refusal(service: &str, servers: &[Arc<Server>], tried: &[(Arc<Server>, String)]) -> String {
    let skipped: Vec<String> = servers
        .iter()
        .filter(|s| !tried.iter().any(|(t, _)| Arc::ptr_eq(t, s)))
        .map(|s| {
            if s.admin_state() == super::AdminState::Maintenance {
                format!("{} is in maintenance", s.name)
            } else if s.admin_state() == super::AdminState::Drain && s.is_up() {
                format!("{} is being drained", s.name)
            } else if s.is_up() {
                format!(
                    "{} is {} (not the role this service routes to)",
                    s.name,
                    s.role().as_str()
                )
            } else {
                format!(
                    "{} is down ({})",
                    s.name,
                    s.last_error().unwrap_or_else(|| "refused".into())
                )
            }
        })
        .collect();
    let tried: Vec<&str> = tried.iter().map(|(_, t)| t.as_str()).collect();
    match (tried.is_empty(), skipped.is_empty()) {
        (false, true) => format!(
            "Can't connect to any server of service '{service}': tried {}",
            tried.join(", ")
        ),
        (false, false) => format!(
            "Can't connect to any server of service '{service}': tried {}; {}",
            tried.join(", "),
            skipped.join(", ")
        ),
        (true, _) => format!(
            "Service '{service}' has no server available: {}",
            if skipped.is_empty() {
                "it has no servers".to_string()
            } else {
                skipped.join(", ")
            }
        ),
    }
}
