//! `tee` — mirrors statements to a second service (MaxScale's `tee`): each session of the
//! main service gets its own mirror connection to a server of the target service, and
//! every COM_QUERY and COM_INIT_DB in scope (`match`, `exclude`, `user`, `source`) is
//! sent there too; the mirror's replies are read and discarded. The client's result
//! comes only from the main path.
//!
//! The mirror never holds up the main path: statements go to the session's mirror task
//! through a bounded queue (a full queue drops and counts) and the main path never waits
//! for it; the task runs on the same worker (its reads and writes cost that worker CPU);
//! a statement the mirror takes longer than `mirror_timeout` over gives up its
//! connection; a mirror that is down or dies is reconnected by the task on its own, every
//! `reconnect_interval`; and the task ends with its session (after a short grace period
//! to send what was queued).
//!
//! The mirror logs in as `mirror_user` (dpm cannot reuse a client's password: it never
//! sees it), in the schema the client last chose with COM_INIT_DB, and with
//! multi-statements on. Prepared statements are not mirrored: their ids differ between
//! servers.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dpm_engine::client::{BackendClient, ClientOptions, ResponseSummary};
use dpm_engine::pipeline::{
    Action, Filter, FilterSession, Interest, Reply, Request, SessionRef, Step,
};
use dpm_engine::service::{
    find_service, FilterDefinition, Maturity, ModuleInfo, ModuleType, OptionKind, OptionSpec,
    Options,
};
use dpm_protocol::command::com;
use tokio::sync::mpsc;

use super::common::scope::{self, Scope};
use super::common::session_facts::SessionFacts;

const OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        name: "target",
        kind: OptionKind::Str,
        default: None,
        description: "the service statements are mirrored to (required)",
    },
    OptionSpec {
        name: "mirror_user",
        kind: OptionKind::Str,
        default: None,
        description: "the user the mirror connections log in as (required)",
    },
    OptionSpec {
        name: "mirror_password",
        kind: OptionKind::Str,
        default: Some(""),
        description: "its password",
    },
    OptionSpec {
        name: "queue_size",
        kind: OptionKind::Int,
        default: Some("1000"),
        description: "statements per session waiting for the mirror before new ones are dropped",
    },
    OptionSpec {
        name: "reconnect_interval",
        kind: OptionKind::Millis,
        default: Some("1000"),
        description: "how long a session's mirror waits before connecting again after a failure",
    },
    OptionSpec {
        name: "mirror_timeout",
        kind: OptionKind::Millis,
        default: Some("10000"),
        description:
            "how long the mirror may take over one statement before its connection is given up",
    },
    OptionSpec {
        name: "connect_timeout",
        kind: OptionKind::Millis,
        default: Some("2000"),
        description: "bound on a mirror's connect and login",
    },
    scope::OPTIONS[0],
    scope::OPTIONS[1],
    scope::OPTIONS[2],
    scope::OPTIONS[3],
    scope::OPTIONS[4],
];

/// The module's declaration.
pub static INFO: ModuleInfo = ModuleInfo {
    kind: ModuleType::Filter,
    name: "tee",
    maturity: Maturity::Beta,
    version: "1.0.0",
    description: "Mirrors statements to a second service through a bounded per-session queue; \
                  the mirror's replies are discarded, a slow or dead mirror never slows the main path",
    options: OPTIONS,
};

/// The largest per-session queue (statements are small `Bytes`, but a session's queue
/// is allocated as it fills; this bounds a mistyped option).
const MAX_QUEUE: i64 = 100_000;

/// How long a session's mirror may go on after the session ended, to send what was
/// queued before it is given up.
const GRACE_AFTER_CLOSE: Duration = Duration::from_secs(1);

/// The counters every session's mirror adds to.
#[derive(Default)]
struct Counters {
    queued: AtomicU64,
    mirrored: AtomicU64,
    dropped: AtomicU64,
    error_replies: AtomicU64,
    connects: AtomicU64,
    failed_connects: AtomicU64,
    disconnects: AtomicU64,
}

/// The process-wide tee.
pub struct Tee {
    name: String,
    target: String,
    user: String,
    password: String,
    queue_size: usize,
    reconnect_interval: Duration,
    connect_timeout: Duration,
    mirror_timeout: Duration,
    scope: Scope,
    counters: Counters,
}

impl Tee {
    /// A tee named `name` from checked options.
    pub fn create(name: &str, options: &Options) -> Result<Arc<dyn FilterDefinition>, String> {
        let required = |o: &str| {
            options
                .str(o)
                .map(str::to_string)
                .ok_or(format!("filter 'tee': option '{o}' is required"))
        };
        let millis = |o: &str| Duration::from_millis(options.int(o).unwrap_or(0).max(1) as u64);
        let queue_size = options.int("queue_size").unwrap_or(1000);
        if !(1..=MAX_QUEUE).contains(&queue_size) {
            return Err(format!(
                "filter 'tee': option 'queue_size' must be 1 to {MAX_QUEUE}"
            ));
        }
        Ok(Arc::new(Tee {
            name: name.to_string(),
            target: required("target")?,
            user: required("mirror_user")?,
            password: options.str("mirror_password").unwrap_or("").to_string(),
            queue_size: queue_size as usize,
            reconnect_interval: millis("reconnect_interval"),
            connect_timeout: millis("connect_timeout"),
            mirror_timeout: millis("mirror_timeout"),
            scope: Scope::from_options(options).map_err(|e| format!("filter 'tee': {e}"))?,
            counters: Counters::default(),
        }))
    }
}

impl FilterDefinition for Tee {
    fn name(&self) -> &str {
        &self.name
    }

    fn worker_filter(self: Arc<Self>) -> Rc<dyn Filter> {
        Rc::new(WorkerTee(self))
    }
}

struct WorkerTee(Arc<Tee>);

impl Filter for WorkerTee {
    fn info(&self) -> &'static ModuleInfo {
        &INFO
    }

    fn name(&self) -> &str {
        &self.0.name
    }

    fn new_session(&self, session: &SessionRef) -> Rc<dyn FilterSession> {
        Rc::new(TeeSession {
            tee: self.0.clone(),
            client: SessionFacts::of(session).client,
            queue: Cell::new(None),
            started: Cell::new(false),
            closed: Cell::new(None),
        })
    }

    fn diagnostics(&self) -> serde_json::Value {
        let c = &self.0.counters;
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        serde_json::json!({
            "target": self.0.target,
            "queued": get(&c.queued),
            "mirrored": get(&c.mirrored),
            "dropped": get(&c.dropped),
            "error_replies": get(&c.error_replies),
            "connects": get(&c.connects),
            "failed_connects": get(&c.failed_connects),
            "disconnects": get(&c.disconnects),
        })
    }
}

/// One session's tee: the queue to its mirror task (started with the first statement,
/// when the session's schema is known).
struct TeeSession {
    tee: Arc<Tee>,
    client: Option<String>,
    queue: Cell<Option<mpsc::Sender<Bytes>>>,
    started: Cell<bool>,
    /// Dropped when the session ends: tells the mirror task to finish up.
    closed: Cell<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl TeeSession {
    fn send(&self, payload: Bytes) {
        let counters = &self.tee.counters;
        let Some(queue) = self.queue.take() else {
            return;
        };
        match queue.try_send(payload) {
            Ok(()) => {
                counters.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.queue.set(Some(queue));
    }
}

impl FilterSession for TeeSession {
    fn name(&self) -> &str {
        &self.tee.name
    }

    fn interest(&self) -> Interest {
        Interest {
            requests: true,
            replies: false,
        }
    }

    /// COM_INIT_DB, and COM_QUERY in scope of `match`/`exclude`.
    fn wants(&self, payload: &[u8]) -> bool {
        match payload.split_first() {
            Some((&com::INIT_DB, _)) => true,
            Some((&com::QUERY, sql)) => self.tee.scope.covers_sql(sql),
            _ => false,
        }
    }

    fn route_query(self: Rc<Self>, session: SessionRef, request: Rc<Request>) -> Step<Action> {
        if !matches!(request.command, com::QUERY | com::INIT_DB) {
            return Step::Ready(Action::Forward);
        }
        let user = SessionFacts::user(&session);
        let tee = &self.tee;
        if !tee
            .scope
            .covers_session(user.as_deref(), self.client.as_deref())
        {
            return Step::Ready(Action::Forward);
        }
        if request.command == com::QUERY && !tee.scope.covers_statement(&session, &request) {
            return Step::Ready(Action::Forward);
        }
        if !self.started.replace(true) {
            let schema = session.session.state.borrow().schema.clone();
            let (queue, statements) = mpsc::channel(tee.queue_size);
            let (closed, on_close) = tokio::sync::oneshot::channel();
            self.queue.set(Some(queue));
            self.closed.set(Some(closed));
            let tee = tee.clone();
            tokio::task::spawn_local(async move {
                // The mirror ends with its session: it may finish what was queued within
                // a grace period, then it is dropped (and its connection closed).
                let deadline = async {
                    let _ = on_close.await;
                    tokio::time::sleep(GRACE_AFTER_CLOSE).await;
                };
                tokio::select! {
                    _ = mirror(tee, schema, statements) => {}
                    _ = deadline => {}
                }
            });
        }
        self.send(request.payload.clone());
        Step::Ready(Action::Forward)
    }

    fn client_reply(self: Rc<Self>, _: SessionRef, _: Rc<Reply>) -> Step<()> {
        Step::Ready(())
    }

    /// The queue closes: the mirror task ends once it sent what was queued, or after a
    /// grace period (and its connection with it).
    fn close_session(&self) {
        self.queue.take();
        self.closed.take();
    }
}

/// A session's mirror: sends each queued statement to a server of the target service and
/// discards the reply; reconnects after a failure. Ends when the session's queue closes.
async fn mirror(tee: Arc<Tee>, schema: Option<Bytes>, mut statements: mpsc::Receiver<Bytes>) {
    let c = &tee.counters;
    let mut schema = schema.map(|s| String::from_utf8_lossy(&s).into_owned());
    let mut connection: Option<BackendClient> = None;
    let mut failing = false;
    while let Some(payload) = statements.recv().await {
        if payload.first() == Some(&com::INIT_DB) {
            schema = Some(String::from_utf8_lossy(&payload[1..]).into_owned());
        }
        if connection.is_none() {
            match connect(&tee, schema.clone()).await {
                Ok(client) => {
                    c.connects.fetch_add(1, Ordering::Relaxed);
                    failing = false;
                    connection = Some(client);
                }
                Err(why) => {
                    c.failed_connects.fetch_add(1, Ordering::Relaxed);
                    if !failing {
                        // Once per outage and session, not once per attempt.
                        tracing::warn!("filter '{}': cannot mirror to service '{}': {why}; retrying every {:?}", tee.name, tee.target, tee.reconnect_interval);
                    }
                    failing = true;
                }
            }
            if connection.is_none() {
                c.dropped.fetch_add(1, Ordering::Relaxed);
                // Statements queued while the mirror was down are dropped, counted.
                tokio::time::sleep(tee.reconnect_interval).await;
                while statements.try_recv().is_ok() {
                    c.dropped.fetch_add(1, Ordering::Relaxed);
                }
                continue;
            }
        }
        let Some(client) = connection.as_mut() else {
            continue;
        };
        let sent = tokio::time::timeout(tee.mirror_timeout, client.command_discard(&payload));
        match sent
            .await
            .unwrap_or(Err(dpm_engine::client::ClientError::Timeout))
        {
            Ok(summary) => {
                c.mirrored.fetch_add(1, Ordering::Relaxed);
                if matches!(summary, ResponseSummary::Err { .. }) {
                    c.error_replies.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => {
                c.dropped.fetch_add(1, Ordering::Relaxed);
                c.disconnects.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("filter '{}': mirror connection lost: {e}", tee.name);
                connection = None;
            }
        }
    }
}

/// A logged-in mirror connection to the first server of the target service that takes
/// it, with multi-statements on, or why none did.
async fn connect(tee: &Tee, schema: Option<String>) -> Result<BackendClient, String> {
    let service =
        find_service(&tee.target).ok_or_else(|| format!("no service '{}'", tee.target))?;
    let candidates = service
        .router
        .clone()
        .new_session()
        .candidates(&service.servers);
    let mut last_error = "no server available".to_string();
    for server in candidates {
        let options = ClientOptions {
            address: server.address.clone(),
            user: tee.user.clone(),
            password: tee.password.clone(),
            schema: schema.clone(),
            connect_timeout: tee.connect_timeout,
        };
        let mut client = match BackendClient::connect(&options).await {
            Ok(client) => client,
            Err(e) => {
                last_error = format!("{} at {}: {e}", server.name, server.address);
                continue;
            }
        };
        // Clients may send several statements in one COM_QUERY: so may the mirror.
        const MULTI_STATEMENTS_ON: [u8; 3] = [com::SET_OPTION, 0, 0];
        match client.command_discard(&MULTI_STATEMENTS_ON).await {
            Ok(_) => return Ok(client),
            Err(e) => last_error = format!("{} at {}: {e}", server.name, server.address),
        }
    }
    Err(last_error)
}
