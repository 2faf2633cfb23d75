//! Running a session's chain: a request through the filters (downstream) and the router
//! to the backend; a complete reply through the filters (upstream) to the client; and
//! the bookkeeping the forwarding loop does for sessions that are not stopped at all
//! (statements routed, rows of the reply being counted).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dpm_protocol::command::{com, response_shape, ResponseShape};
use dpm_protocol::err::ErrPacket;
use dpm_protocol::lenenc::get_lenenc_int;
use dpm_protocol::response::OkPacket;

use super::types::{
    Action, Decision, FilterSession, Interest, Reply, ReplyKind, ReplyPacket, Request, Route,
    RouteContext, RouterSession, SessionRef, TrxStep,
};
use crate::conn::Conn;
use crate::service::{Server, WorkerService};
use crate::session::Session;
use crate::tracker::{EofStyle, PacketKind};
use crate::worker::Worker;

/// A service session's filters and router, and what the reply in flight looks like.
pub struct Pipeline {
    /// The service, as this worker sees it.
    pub service: Rc<WorkerService>,
    /// The server the session's linked backend is connected to.
    server: RefCell<Arc<Server>>,
    /// Filter sessions, in chain order.
    pub filters: Vec<Rc<dyn FilterSession>>,
    /// The router session.
    pub router: RefCell<Box<dyn RouterSession>>,
    /// The union of the filters' interests.
    pub interest: Interest,
    /// Some filter (or the router) watches replies without asking for requests: it sees
    /// the reply of every command, also of those no filter wanted.
    replies_of_all: bool,
    /// The router routes each request: every request stops, whatever the filters want.
    router_wants_requests: bool,
    /// Session commands kept for backends opened later (the router's limit; 0: the
    /// router never uses more than one backend).
    history_limit: usize,
    /// Bytes of statements a transaction keeps for a replay (0: none kept).
    pub(crate) replay_limit: usize,
    /// The linked backend counts in its server's `sessions` (false while a session that
    /// lost its backend has none).
    pub(crate) counted: std::cell::Cell<bool>,
    /// Commands sent to the backend whose replies the filters still await, oldest first.
    awaiting: RefCell<VecDeque<Awaited>>,
    /// The reply in flight: rows so far, and whether it is a result set.
    reply_rows: std::cell::Cell<u64>,
    reply_is_rows: std::cell::Cell<bool>,
}

impl Pipeline {
    /// A pipeline for a session of `service` connected to `server`, with its filter
    /// sessions and its router session (`router`, made by the service's router, whose
    /// interest and limits it takes); `interest` is the union of everyone's.
    pub fn new(
        service: Rc<WorkerService>,
        server: Arc<Server>,
        filters: Vec<Rc<dyn FilterSession>>,
        router: Box<dyn RouterSession>,
        interest: Interest,
    ) -> Pipeline {
        let instance = &service.shared.router;
        let router_interest = instance.interest();
        let history_limit = instance.session_command_history();
        let replay_limit = instance.transaction_replay();
        // A router that asks for replies says per request which it sees (`Decision`);
        // only a filter can watch them all.
        let replies_of_all = filters.iter().any(|f| {
            let i = f.interest();
            i.replies && !i.requests
        });
        Pipeline {
            replies_of_all,
            router_wants_requests: router_interest.requests,
            history_limit,
            replay_limit,
            counted: std::cell::Cell::new(true),
            service,
            server: RefCell::new(server),
            filters,
            router: RefCell::new(router),
            interest,
            awaiting: RefCell::new(VecDeque::new()),
            reply_rows: Default::default(),
            reply_is_rows: Default::default(),
        }
    }

    /// The server the session's linked backend is connected to.
    #[inline]
    pub fn server(&self) -> Arc<Server> {
        self.server.borrow().clone()
    }

    /// A statement on the linked backend's server took `took` (counted in the service's
    /// metrics without cloning the server's `Arc`: its count is shared by every worker).
    #[inline]
    pub(crate) fn statement_took(&self, took: std::time::Duration) {
        self.service
            .metrics
            .statement_took(&self.server.borrow(), took);
    }

    /// The router may move the session between backends (it keeps a session-command
    /// history to replay on them).
    pub(crate) fn uses_several_backends(&self) -> bool {
        self.history_limit > 0
    }

    /// The client's id for the statement whose COM_STMT_PREPARE is answered now.
    pub(crate) fn statement_being_prepared(&self) -> Option<u32> {
        self.awaiting.borrow().front().and_then(|a| a.statement)
    }

    /// The request whose reply is awaited first, if the chain kept it.
    pub(crate) fn in_flight_request(&self) -> Option<Rc<Request>> {
        self.awaiting
            .borrow()
            .front()
            .and_then(|a| a.request.clone())
    }

    /// The session's link moved to a backend on `server`.
    pub(crate) fn set_server(&self, server: Arc<Server>) {
        self.server.replace(server);
    }

    /// The session ends: counters go down, filters close their sessions.
    pub(crate) fn close(&self) {
        if self.counted.get() {
            self.server
                .borrow()
                .sessions
                .fetch_sub(1, Ordering::Relaxed);
        }
        self.service.shared.sessions.fetch_sub(1, Ordering::Relaxed);
        for f in &self.filters {
            f.close_session();
        }
        self.router.borrow_mut().close_session();
    }
}

/// A command sent to the backend whose reply the filters (or the router) await.
struct Awaited {
    command: u8,
    /// False when no filter is to see the reply (no filter wanted the request, and none
    /// watches every reply).
    watched: bool,
    /// The router asked to see the reply, or it ends a session command (whose success
    /// decides whether it joins the session's history): the loop stops at its end.
    router: bool,
    session_command: bool,
    /// The request as the chain passed it on (none when the loop forwarded the command
    /// without stopping: no filter asked for requests).
    request: Option<Rc<Request>>,
    /// When it was sent, for the reply's duration (when watched).
    sent: Option<Instant>,
    /// A COM_STMT_PREPARE of a session with several backends: the id the client is to
    /// know the statement by (its PREPARE OK is rewritten to carry it).
    statement: Option<u32>,
}

/// True when some filter that asks for requests wants this one (`payload`: the whole
/// command, command byte first). Asked by the forwarding loop before it stops.
#[inline]
pub(crate) fn wanted(pipeline: &Pipeline, payload: &[u8]) -> bool {
    pipeline.router_wants_requests
        || pipeline
            .filters
            .iter()
            .any(|f| f.interest().requests && f.wants(payload))
}

/// A DPM callback dropped the last packet of a reply the filters awaited: the reply is
/// forgotten, so that the next reply is paired with its own request.
pub(crate) fn reply_dropped(pipeline: &Pipeline) {
    pipeline.awaiting.borrow_mut().pop_front();
    pipeline.reply_rows.set(0);
    pipeline.reply_is_rows.set(false);
}

/// A command is on its way to the backend (forwarded by the loop, `request` None — no
/// filter wanted it —, or by [`run_request`]): count it, and remember it when filters
/// await its reply.
#[inline]
pub(crate) fn note_request_sent(pipeline: &Pipeline, command: u8, request: Option<Rc<Request>>) {
    let shown = request.is_some();
    note_routed_request(pipeline, command, request, shown, None, None)
}

/// [`note_request_sent`] for a request the router decided about.
fn note_routed_request(
    pipeline: &Pipeline,
    command: u8,
    request: Option<Rc<Request>>,
    shown: bool,
    decision: Option<&Decision>,
    statement: Option<u32>,
) {
    // One relaxed atomic add per statement: the per-server "routed" counter is shared by
    // the workers, and a statement costs tens of microseconds of system calls anyway.
    pipeline
        .server
        .borrow()
        .routed
        .fetch_add(1, Ordering::Relaxed);
    if pipeline.interest.replies && response_shape(command) != ResponseShape::None {
        let session_command = decision.is_some_and(|d| matches!(d.route, Route::SessionCommand));
        let router = decision.is_some_and(|d| d.see_reply) || session_command;
        // Filters see the replies of requests some filter was shown (a router asking for
        // every request shows none to the filters), and every reply when one watches all.
        let watched = shown || pipeline.replies_of_all;
        pipeline.awaiting.borrow_mut().push_back(Awaited {
            command,
            watched,
            router,
            session_command,
            request,
            // Only a reply someone sees needs its duration (a clock read per statement).
            sent: if watched || router {
                Some(Instant::now())
            } else {
                None
            },
            statement,
        });
    }
}

/// A backend packet passed by. Returns true when it ends a reply the filters await (the
/// loop then stops before forwarding it and calls [`run_reply`]).
#[inline]
pub(crate) fn note_reply_packet(
    pipeline: &Pipeline,
    kind: PacketKind,
    ends_response: bool,
) -> bool {
    if !pipeline.interest.replies {
        return false;
    }
    {
        let mut awaiting = pipeline.awaiting.borrow_mut();
        match awaiting.front() {
            None => return false,
            Some(a) if !a.watched && !a.router => {
                // Nobody is to see this reply: it passes, and is forgotten at its end.
                if ends_response {
                    awaiting.pop_front();
                }
                return false;
            }
            Some(_) => {}
        }
    }
    match kind {
        PacketKind::Row => pipeline.reply_rows.set(pipeline.reply_rows.get() + 1),
        PacketKind::ResultSetHeader | PacketKind::PrepareOk | PacketKind::ColumnDef => {
            pipeline.reply_is_rows.set(true)
        }
        _ => {}
    }
    ends_response
}

/// Runs a client command through the filters and the router, then sends it to the
/// backend — or answers the client, as a filter or the router decides.
pub(crate) async fn run_request(
    worker: &Worker,
    client: &Rc<Conn>,
    session: &Rc<Session>,
    pipeline: Rc<Pipeline>,
    payload: Bytes,
) {
    let sref = SessionRef {
        worker: worker.clone(),
        session: session.clone(),
        service: pipeline.service.clone(),
    };
    crate::shared::WorkerGauges::bump(&worker.gauges().pipeline_runs);
    let started = Instant::now();
    let mut request = Rc::new(Request::new(payload));
    let mut target: Option<String> = None;
    let mut answer: Option<Answer> = None;
    // How many filters saw the request: those get the pipeline's own answer upstream.
    let mut seen = pipeline.filters.len();
    let mut shown = false;
    for (at, filter) in pipeline.filters.iter().enumerate() {
        if !filter.interest().requests || !filter.wants(&request.payload) {
            continue;
        }
        shown = true;
        let action = filter
            .clone()
            .route_query(sref.clone(), request.clone())
            .resolve()
            .await;
        if client.closing.get() {
            return;
        }
        let name = filter.name();
        answer = match action {
            Action::Forward => None,
            Action::Replace(payload) if !payload.is_empty() => {
                request = Rc::new(Request::new(payload));
                None
            }
            Action::Replace(_) => Some(Answer::error(format!(
                "filter '{name}' replaced a command with nothing"
            ))),
            Action::Drop => {
                pipeline.service.metrics.filter_stopped(true);
                Some(Answer::Nothing(name.to_string()))
            }
            Action::Reply(packets) => {
                pipeline.service.metrics.filter_stopped(false);
                Some(Answer::Packets(packets))
            }
            Action::Route(server) => {
                target = Some(server);
                None
            }
        };
        if answer.is_some() {
            // The filters before it; the one that answered knows its own answer.
            seen = at;
            break;
        }
    }
    let mut decision = None;
    if answer.is_none() {
        if pipeline.uses_several_backends() {
            // The answers to the client's earlier (pipelined) commands come first: they
            // may still be on their way from another backend, or be routed again after
            // losing theirs; this one must not overtake them. Nor a transaction being
            // replayed (`session::replay`), which it may belong to.
            await_earlier_responses(client).await;
            while session.replaying.get() && !client.closing.get() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            if client.closing.get() {
                return;
            }
            // A transaction that could not be replayed ended the session.
            let doomed = session.doomed.borrow_mut().take();
            if let Some(err) = doomed {
                write_error(client, &err);
                worker.close(client.id);
                return;
            }
        }
        match route(
            worker,
            client,
            session,
            &pipeline,
            &request,
            target.as_deref(),
        )
        .await
        {
            Ok(d) => decision = Some(d),
            Err(err) => answer = Some(Answer::Error(err)),
        }
        if client.closing.get() {
            return;
        }
    }
    let several = pipeline.uses_several_backends();
    let mut outgoing = request.payload.clone();
    // A command naming a prepared statement carries the linked backend's id for it (a
    // CLOSE goes to every backend with each one's id: `close_everywhere` below).
    if answer.is_none() && several && request.command != com::STMT_CLOSE {
        if let Some(backend) = session.backend() {
            use crate::session::backends::for_backend;
            match for_backend(session, client, backend, &request.payload) {
                Ok(payload) => outgoing = payload,
                // A command without an answer (CLOSE, SEND_LONG_DATA) is dropped, as a
                // server ignores one naming a statement it does not have.
                Err(_) if response_shape(request.command) == ResponseShape::None => {
                    answer = Some(Answer::Nothing(String::new()))
                }
                Err(missing) => answer = Some(Answer::Error(missing.error(request.command))),
            }
        }
    }
    match answer {
        None => {
            let Some(backend) = session.backend().and_then(|id| worker.get(id)) else {
                let message = format!(
                    "Lost connection to server '{}' of service '{}'",
                    pipeline.server().name,
                    pipeline.service.shared.name
                );
                return write_error(client, &ErrPacket::new(LOST_BACKEND, *b"08S01", message));
            };
            use crate::session::backends;
            let decision = decision.as_ref();
            let session_command =
                decision.is_some_and(|d| matches!(d.route, Route::SessionCommand));
            // A prepare on every backend: the id the client will know the statement by.
            let statement = (several && session_command && request.command == com::STMT_PREPARE)
                .then(|| {
                    let mut backends = session.backends.borrow_mut();
                    backends.statements_mut().preparing(&request.payload)
                });
            note_routed_request(
                &pipeline,
                request.command,
                Some(request.clone()),
                shown,
                decision,
                statement,
            );
            if several && request.command == com::STMT_CLOSE {
                return backends::close_everywhere(worker, client, session, &request.payload).await;
            }
            if session_command {
                backends::send_to_spares(worker, session, &request.payload, statement);
            }
            if let Some(d) = decision.filter(|d| d.transaction != TrxStep::None) {
                let limit = pipeline.replay_limit;
                let kept = backends::kept_form(session, client, &request.payload);
                crate::session::replay::record(session, d.transaction, &kept, limit);
            }
            crate::forward::deliver(worker, client, &backend, &outgoing).await;
            if several && request.command == com::CHANGE_USER {
                // The server dropped the session's statements (dpm did not run the login:
                // the session has this one backend).
                backends::statements_reset(session);
            }
        }
        Some(answer) => {
            let reply = answer.reply(&request, started.elapsed());
            answer_client(client, session, request.command, &answer).await;
            if let Some(reply) = reply {
                // The filters that saw the request see its answer on the way back, as
                // they would a server's (a query log records a denied statement too).
                let upstream = &pipeline.filters[..seen];
                pass_upstream(&sref, upstream, Rc::new(reply)).await;
            }
        }
    }
}

/// Asks the router where `request` goes and moves the session's link there. A server
/// the session cannot use (its backend could not be opened or given the session's
/// state) is reported to the router, which is asked again.
async fn route(
    worker: &Worker,
    client: &Rc<Conn>,
    session: &Rc<Session>,
    pipeline: &Pipeline,
    request: &Request,
    target: Option<&str>,
) -> Result<Decision, ErrPacket> {
    let mut failures = Vec::new();
    // Read only when the router waits: a clock read per statement is not free.
    let mut started: Option<Instant> = None;
    let waited = |started: &Option<Instant>| started.map_or(Duration::ZERO, |t| t.elapsed());
    let mut attempts = 0;
    while attempts < MAX_ROUTE_ATTEMPTS {
        let backend_lost = session.backend().is_none();
        let (decision, same_server) =
            ask_router(session, pipeline, waited(&started), |router, context| {
                let decision = router.route_query(request, target, context)?;
                let same =
                    matches!(&decision.route, Route::To(s) if Arc::ptr_eq(s, context.current));
                Ok::<_, ErrPacket>((decision, same))
            })?;
        let server = match &decision.route {
            Route::Wait if waited(&started) < MAX_ROUTE_WAIT => {
                started.get_or_insert_with(Instant::now);
                tokio::time::sleep(ROUTE_WAIT_STEP).await;
                if client.closing.get() {
                    break;
                }
                continue;
            }
            Route::Wait => {
                failures.push(format!("no server took it within {MAX_ROUTE_WAIT:?}"));
                break;
            }
            // A session that lost its backend (and had no other) opens a new one where
            // the router would start a session.
            Route::Current | Route::SessionCommand if backend_lost => {
                let servers = &pipeline.service.shared.servers;
                let first = pipeline.router.borrow_mut().candidates(servers);
                match first.into_iter().next() {
                    Some(server) => server,
                    None => {
                        failures.push("no server is usable".to_string());
                        break;
                    }
                }
            }
            Route::SessionCommand => {
                // Answered by the session's backend on the primary when it has one: the
                // primary's answer is the one that counts (a statement a replica cannot
                // prepare still succeeds; the replica leaves the session).
                let primary = crate::session::backends::primary_elsewhere(session, pipeline);
                if let Some(primary) = primary {
                    use crate::session::backends::{switch_to, SwitchError};
                    let moved = switch_to(worker, client, session, pipeline, &primary, None).await;
                    if let Err(SwitchError::Unusable(why) | SwitchError::NotCaughtUp(why)) = moved {
                        tracing::debug!(client = client.id, server = %primary.name, "a session command stays where the session is: {why}");
                    }
                }
                return Ok(decision);
            }
            Route::Current => return Ok(decision),
            Route::To(_) if same_server && !backend_lost => return Ok(decision),
            Route::To(server) => server.clone(),
        };
        let server = &server;
        attempts += 1;
        use crate::session::backends::{switch_to, SwitchError};
        match switch_to(worker, client, session, pipeline, server, decision.causal).await {
            Ok(()) => return Ok(decision),
            Err(SwitchError::Unusable(why)) => {
                tracing::warn!(client = client.id, server = %server.name, "cannot use server for this session: {why}");
                failures.push(format!("{}: {why}", server.name));
                pipeline.router.borrow_mut().open_failed(server, &why);
            }
            Err(SwitchError::NotCaughtUp(why)) => {
                tracing::info!(client = client.id, server = %server.name, "causal read not run there: {why}");
                failures.push(format!("{}: {why}", server.name));
                pipeline.router.borrow_mut().causal_read_missed(server);
            }
        }
        if client.closing.get() {
            break;
        }
    }
    Err(ErrPacket::new(
        1105,
        *b"HY000",
        format!(
            "service '{}' could not route the statement: {}",
            pipeline.service.shared.name,
            failures.join("; ")
        ),
    ))
}

/// Routes `request` again after the backend that was to answer it was lost before its
/// reply started (`session::backends::carry_on_without`): its reply is still awaited,
/// so it is only delivered — or answered with the error that stopped it.
pub(crate) async fn route_again(
    worker: &Worker,
    client: &Rc<Conn>,
    session: &Rc<Session>,
    pipeline: &Rc<Pipeline>,
    request: Rc<Request>,
) {
    let routed = route(worker, client, session, pipeline, &request, None).await;
    if client.closing.get() {
        return;
    }
    let backend = session.backend().and_then(|id| worker.get(id));
    let routed = routed.and_then(|_| match &backend {
        Some(b) => crate::session::backends::for_backend(session, client, b.id, &request.payload)
            .map_err(|missing| missing.error(request.command)),
        None => Err(ErrPacket::new(
            LOST_BACKEND,
            *b"08S01",
            "Lost connection to the server",
        )),
    });
    match (routed, backend) {
        (Ok(payload), Some(backend)) => {
            crate::forward::deliver(worker, client, &backend, &payload).await;
        }
        (routed, _) => {
            reply_dropped(pipeline);
            let err = routed.err().unwrap_or_else(|| {
                ErrPacket::new(LOST_BACKEND, *b"08S01", "Lost connection to the server")
            });
            write_error(client, &err);
        }
    }
}

/// Calls `f` with the session's router and what it is told about the session now
/// (`waited`: how long the request has waited for a server).
pub(crate) fn ask_router<R>(
    session: &Session,
    pipeline: &Pipeline,
    waited: Duration,
    f: impl FnOnce(&mut dyn RouterSession, &RouteContext<'_>) -> R,
) -> R {
    // Borrowed, not cloned: an Arc clone per statement would bounce its count's cache
    // line between the workers.
    let current = pipeline.server.borrow();
    let backends = session.backends.borrow();
    let state = session.state.borrow();
    let context = RouteContext {
        current: &current,
        open: backends.open(),
        statements: backends.statements(),
        can_open: pipeline.uses_several_backends()
            && backends.history_complete()
            && session.has_proxy_login(),
        state: &state,
        waited,
        backend_lost: session.backend().is_none(),
    };
    let mut router = pipeline.router.borrow_mut();
    f(router.as_mut(), &context)
}

/// How many servers a request may be routed to before the client gets an error.
const MAX_ROUTE_ATTEMPTS: usize = 4;
/// How often a request no server can take now is routed again ([`Route::Wait`]), and
/// the most it waits whatever the router says.
pub(crate) const ROUTE_WAIT_STEP: Duration = Duration::from_millis(100);
pub(crate) const MAX_ROUTE_WAIT: Duration = Duration::from_secs(60);

/// How the pipeline answers a command itself instead of sending it to a backend.
enum Answer {
    /// A filter's packets.
    Packets(Vec<ReplyPacket>),
    /// An error (a filter's own, a router's refusal).
    Error(ErrPacket),
    /// Nothing: a filter dropped the command.
    Nothing(String),
}

impl Answer {
    fn error(message: String) -> Answer {
        Answer::Error(ErrPacket::new(1105, *b"HY000", message))
    }

    /// The reply the filters upstream see for this answer; none for a command the
    /// protocol gives no response (nothing is written for it).
    fn reply(&self, request: &Rc<Request>, duration: Duration) -> Option<Reply> {
        if response_shape(request.command) == ResponseShape::None {
            return None;
        }
        let mut reply = Reply {
            command: request.command,
            kind: ReplyKind::Ok,
            rows: 0,
            affected_rows: 0,
            last_insert_id: 0,
            status: 0,
            error_code: 0,
            error_message: Bytes::new(),
            server: None,
            request: Some(request.clone()),
            duration,
        };
        let error = |reply: &mut Reply, err: &ErrPacket| {
            reply.kind = ReplyKind::Err;
            reply.error_code = err.code;
            reply.error_message = err.message.clone();
        };
        match self {
            Answer::Error(err) => error(&mut reply, err),
            Answer::Nothing(filter) => error(&mut reply, &dropped_error(filter)),
            Answer::Packets(packets) => match packets.as_slice() {
                [ReplyPacket::Ok {
                    affected_rows,
                    last_insert_id,
                    ..
                }] => {
                    reply.affected_rows = *affected_rows;
                    reply.last_insert_id = *last_insert_id;
                }
                [ReplyPacket::Raw(p)] if p.first() == Some(&0xFF) => {
                    if let Ok(err) = ErrPacket::decode(p) {
                        error(&mut reply, &err);
                    }
                }
                [ReplyPacket::Raw(p)] if p.first() == Some(&0x00) => {}
                packets => {
                    // Column count, definitions, EOF, rows, EOF: the rows follow the first EOF.
                    reply.kind = ReplyKind::ResultSet;
                    let rows = packets
                        .iter()
                        .skip_while(|p| !matches!(p, ReplyPacket::Eof))
                        .filter(|p| matches!(p, ReplyPacket::Raw(_)))
                        .count();
                    reply.rows = rows as u64;
                }
            },
        }
        Some(reply)
    }
}

/// The error a client gets when a filter dropped a command that expects an answer.
fn dropped_error(filter: &str) -> ErrPacket {
    let message = format!("filter '{filter}' dropped a command that expects an answer");
    ErrPacket::new(1105, *b"HY000", message)
}

/// Answers a command from the pipeline. A command the protocol gives no response
/// (COM_STMT_CLOSE, COM_STMT_SEND_LONG_DATA, COM_QUIT) gets none: whatever the pipeline
/// decided, it is dropped and no packet is written, or the client would read it as the
/// answer to its next command. A command that expects a response always gets one: a
/// filter that drops it makes an error.
async fn answer_client(client: &Conn, session: &Session, command: u8, answer: &Answer) {
    if response_shape(command) == ResponseShape::None {
        if !matches!(answer, Answer::Nothing(_)) {
            tracing::warn!(
                client = client.id,
                command,
                "the pipeline answered a command that has no response: the command is dropped, the answer is not sent"
            );
        }
        session.state.borrow_mut().answered_by_pipeline(command);
        return;
    }
    session.state.borrow_mut().answered_by_pipeline(command);
    await_earlier_responses(client).await;
    match answer {
        Answer::Packets(packets) => answer_with(client, session, packets),
        Answer::Error(err) => write_error(client, err),
        Answer::Nothing(filter) => write_error(client, &dropped_error(filter)),
    }
}

pub(crate) fn write_error(client: &Conn, err: &ErrPacket) {
    let mut p = bytes::BytesMut::new();
    err.encode(&mut p);
    crate::forward::write_packet(client, &p);
}

/// Answers the client's pending command with a plain OK (the session's status flags).
pub(crate) fn write_ok(client: &Conn, session: &Session) {
    let ok = ReplyPacket::Ok {
        affected_rows: 0,
        last_insert_id: 0,
        info: Bytes::new(),
    };
    answer_with(client, session, &[ok]);
}

/// Server status flag: an OK carries session-state-tracking data.
const SERVER_SESSION_STATE_CHANGED: u16 = 0x4000;

/// Error code a client gets when its session's backend is gone: the server's "got an
/// error reading communication packets", which drivers treat as a lost connection.
pub(crate) const LOST_BACKEND: u16 = 1158; // ER_NET_READ_ERROR

/// Waits until the responses to the client's earlier (pipelined) commands are written,
/// so that an answer from the pipeline cannot land in the middle of one of them. Only
/// pipelining clients ever wait here, and only while a backend is still answering: every
/// earlier command was sent to the backend (the pipeline answers or refuses the others
/// at once), and if the backend goes the session and its client close.
pub(crate) async fn await_earlier_responses(client: &Conn) {
    while client.tracker.borrow().pending_commands() > 1 && !client.closing.get() {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// Writes a filter's answer to the client.
fn answer_with(client: &Conn, session: &Session, packets: &[ReplyPacket]) {
    let status = session.state.borrow().status & !crate::session::state::SERVER_MORE_RESULTS_EXISTS;
    // Encoded for what the client negotiated (session tracking changes an OK's layout);
    // without state tracking data, so the flag saying there is some is cleared.
    let caps = client.tracker.borrow().negotiated_caps() | dpm_protocol::caps::CLIENT_PROTOCOL_41;
    let status = status & !SERVER_SESSION_STATE_CHANGED;
    for packet in packets {
        match packet {
            ReplyPacket::Raw(p) => {
                crate::forward::write_packet(client, p);
            }
            ReplyPacket::Ok {
                affected_rows,
                last_insert_id,
                info,
            } => {
                let mut p = bytes::BytesMut::new();
                OkPacket {
                    header: 0,
                    affected_rows: *affected_rows,
                    last_insert_id: *last_insert_id,
                    status_flags: status,
                    warnings: 0,
                    info: info.clone(),
                    session_state_changes: None,
                }
                .encode(&mut p, caps);
                crate::forward::write_packet(client, &p);
            }
            ReplyPacket::Eof => {
                let style = client.tracker.borrow_mut().take_eof_style();
                let mut p = bytes::BytesMut::new();
                match style {
                    EofStyle::Omit => continue,
                    EofStyle::Classic => {
                        dpm_protocol::response::EofPacket {
                            warnings: 0,
                            status_flags: status,
                        }
                        .encode(&mut p, caps);
                    }
                    EofStyle::OkAsEof => {
                        OkPacket {
                            header: 0xFE,
                            status_flags: status,
                            ..Default::default()
                        }
                        .encode(&mut p, caps);
                    }
                }
                crate::forward::write_packet(client, &p);
            }
        }
    }
}

/// What the last packet of a reply said, read while it passed (the packet itself is
/// gone to the client by the time the filters run).
#[derive(Clone, Debug)]
pub struct ReplyEnd {
    kind: PacketKind,
    affected_rows: u64,
    last_insert_id: u64,
    error_code: u16,
    error_message: Bytes,
}

impl ReplyEnd {
    /// Reads the facts of a reply's last packet (an OK's counts, an ERR's code and
    /// message); the status flags are the session's.
    pub fn of(kind: PacketKind, last: &[u8]) -> ReplyEnd {
        let mut end = ReplyEnd {
            kind,
            affected_rows: 0,
            last_insert_id: 0,
            error_code: 0,
            error_message: Bytes::new(),
        };
        match kind {
            PacketKind::Err => {
                if let Ok(err) = ErrPacket::decode(&Bytes::copy_from_slice(last)) {
                    end.error_code = err.code;
                    end.error_message = err.message;
                }
            }
            PacketKind::Ok if last.first() == Some(&0) => {
                let mut rest = &last[1..];
                end.affected_rows = get_lenenc_int(&mut rest).ok().flatten().unwrap_or(0);
                end.last_insert_id = get_lenenc_int(&mut rest).ok().flatten().unwrap_or(0);
            }
            _ => {}
        }
        end
    }
}

/// Runs a complete reply through the filters, upstream, and the router.
pub(crate) async fn run_reply(
    worker: &Worker,
    session: &Rc<Session>,
    pipeline: Rc<Pipeline>,
    end: ReplyEnd,
) {
    let Some(awaited) = pipeline.awaiting.borrow_mut().pop_front() else {
        return;
    };
    crate::shared::WorkerGauges::bump(&worker.gauges().pipeline_runs);
    let rows = pipeline.reply_rows.replace(0);
    let is_rows = pipeline.reply_is_rows.replace(false);
    let kind = match end.kind {
        PacketKind::Err => ReplyKind::Err,
        _ if is_rows => ReplyKind::ResultSet,
        _ => ReplyKind::Ok,
    };
    let reply = Rc::new(Reply {
        command: awaited.command,
        kind,
        rows,
        affected_rows: end.affected_rows,
        last_insert_id: end.last_insert_id,
        status: session.state.borrow().status,
        error_code: end.error_code,
        error_message: end.error_message,
        server: Some(pipeline.server()),
        request: awaited.request,
        duration: awaited.sent.map(|t| t.elapsed()).unwrap_or_default(),
    });
    let sref = SessionRef {
        worker: worker.clone(),
        session: session.clone(),
        service: pipeline.service.clone(),
    };
    if awaited.session_command {
        // Before anything that may suspend: a backend opened meanwhile must find the
        // command in the history.
        if let Some(request) = &reply.request {
            crate::session::backends::session_command_done(
                worker,
                session,
                request.payload.clone(),
                reply.kind != ReplyKind::Err,
                pipeline.history_limit,
                awaited.statement,
            );
        }
    }
    if awaited.watched {
        pass_upstream(&sref, &pipeline.filters, reply.clone()).await;
    }
    if awaited.watched || awaited.router {
        pipeline.router.borrow_mut().client_reply(&reply);
    }
}

/// Hands a complete reply to `filters` that watch replies, last first (upstream).
async fn pass_upstream(sref: &SessionRef, filters: &[Rc<dyn FilterSession>], reply: Rc<Reply>) {
    for filter in filters.iter().rev().filter(|f| f.interest().replies) {
        filter
            .clone()
            .client_reply(sref.clone(), reply.clone())
            .resolve()
            .await;
    }
}
