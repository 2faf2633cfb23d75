//! The pipeline's vocabulary: what a filter or router is given ([`Request`], [`Reply`],
//! [`SessionRef`]), what it answers ([`Action`]), and the module traits ([`Filter`],
//! [`FilterSession`], [`Router`], [`RouterSession`]) that mirror MaxScale's entry points
//! (create an instance from options, new/close session, route query, client reply,
//! handle error, diagnostics, capabilities).

use std::any::Any;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use dpm_protocol::err::ErrPacket;

use crate::service::{ModuleInfo, Server};
use crate::session::Session;
use crate::sink::LocalBoxFuture;
use crate::worker::Worker;

/// What a filter wants to see: requests (client commands), replies (complete
/// responses), both, or neither. The chain's union decides where the forwarding loop
/// stops; a session whose chain wants nothing is forwarded like a plain link.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Interest {
    /// Whole client commands, before they reach the router.
    pub requests: bool,
    /// Complete responses, before their last packet reaches the client.
    pub replies: bool,
}

impl Interest {
    /// The union of two interests.
    pub fn union(self, other: Interest) -> Interest {
        Interest {
            requests: self.requests || other.requests,
            replies: self.replies || other.replies,
        }
    }
}

/// The answer of an entry point that may have to wait (a Lua coroutine that sleeps, a
/// socket): `Ready` costs no allocation, `Later` is awaited by the session — the
/// session waits, the worker goes on.
pub enum Step<T> {
    /// Decided at once.
    Ready(T),
    /// Decided when the future completes.
    Later(LocalBoxFuture<T>),
}

impl<T> Step<T> {
    /// Waits for the answer.
    pub async fn resolve(self) -> T {
        match self {
            Step::Ready(v) => v,
            Step::Later(f) => f.await,
        }
    }
}

/// A client command on its way to a backend.
pub struct Request {
    /// The COM_* byte.
    pub command: u8,
    /// The whole payload, command byte first (frames of a ≥ 16 MiB packet joined).
    pub payload: Bytes,
    /// What a module found out about the request (the query classifier's result), kept so
    /// that later filters and the router do not compute it again.
    pub annotation: RefCell<Option<Rc<dyn Any>>>,
}

impl Request {
    /// A request for `payload` (which must not be empty).
    pub fn new(payload: Bytes) -> Request {
        Request {
            command: payload.first().copied().unwrap_or(0),
            payload,
            annotation: RefCell::new(None),
        }
    }

    /// The SQL text of a COM_QUERY or COM_STMT_PREPARE.
    pub fn sql(&self) -> Option<&[u8]> {
        sql_of(&self.payload)
    }
}

/// The SQL text of a COM_QUERY or COM_STMT_PREPARE payload (command byte first).
pub fn sql_of(payload: &[u8]) -> Option<&[u8]> {
    use dpm_protocol::command::com;
    match payload.split_first() {
        Some((&com::QUERY | &com::STMT_PREPARE, sql)) => Some(sql),
        _ => None,
    }
}

/// One packet of a reply a filter sends to the client instead of a backend.
#[derive(Clone, Debug)]
pub enum ReplyPacket {
    /// A packet written as given (OK, ERR, column count, column definition, row).
    Raw(Bytes),
    /// An end-of-result marker, encoded the way the client negotiated (classic EOF,
    /// OK-as-EOF, or nothing after column definitions under CLIENT_DEPRECATE_EOF).
    Eof,
    /// An OK packet; its status flags are the session's (so a client in a transaction
    /// stays in it).
    Ok {
        /// Rows affected.
        affected_rows: u64,
        /// Last insert id.
        last_insert_id: u64,
        /// The info text (`Rows matched: …`), may be empty.
        info: Bytes,
    },
}

/// What a filter decided about a request.
#[derive(Clone, Debug)]
pub enum Action {
    /// Pass it on unchanged.
    Forward,
    /// Pass this payload on instead (command byte first).
    Replace(Bytes),
    /// Swallow it: nothing is sent and nothing answered (for commands without a
    /// response, such as COM_STMT_CLOSE; a command that expects one would leave the
    /// client waiting, so filters answer those with `Reply`).
    Drop,
    /// Answer the client with these packets; the request goes no further.
    Reply(Vec<ReplyPacket>),
    /// Pass it on and ask the router to send it to the named server.
    Route(String),
}

/// The shape of a complete response.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReplyKind {
    /// An OK packet.
    Ok,
    /// An ERR packet.
    Err,
    /// One or more result sets (or a prepare response, a field list …).
    ResultSet,
}

/// A complete response, as the filters see it on its way back.
#[derive(Clone)]
pub struct Reply {
    /// The command it answers.
    pub command: u8,
    /// OK, ERR or result set(s).
    pub kind: ReplyKind,
    /// Rows in all its result sets.
    pub rows: u64,
    /// Affected rows of the final OK.
    pub affected_rows: u64,
    /// Last insert id of the final OK.
    pub last_insert_id: u64,
    /// Server status flags of the final OK/EOF.
    pub status: u16,
    /// Error code of an ERR.
    pub error_code: u16,
    /// Error message of an ERR.
    pub error_message: Bytes,
    /// The server that answered (none when the pipeline answered: a filter or the router).
    pub server: Option<Arc<Server>>,
    /// The request as it reached the server — after every rewrite — or as the pipeline
    /// answered it. None when no filter asked for requests (the command was forwarded
    /// without being looked at).
    pub request: Option<Rc<Request>>,
    /// From sending the request to the end of the reply (for an answer of the pipeline,
    /// from receiving the request to the answer).
    pub duration: std::time::Duration,
}

/// A filter's or router's handle on the session it serves.
#[derive(Clone)]
pub struct SessionRef {
    /// The worker the session lives on.
    pub worker: Worker,
    /// The session.
    pub session: Rc<Session>,
    /// The service the session serves (this worker's view of it).
    pub service: Rc<crate::service::WorkerService>,
}

impl SessionRef {
    /// The session's id (its client connection's id).
    pub fn id(&self) -> crate::ConnId {
        self.session.client
    }

    /// The server the session's backend is connected to.
    pub fn server(&self) -> Option<Arc<Server>> {
        self.session.server()
    }

    /// The name of the service the session serves.
    pub fn service_name(&self) -> &str {
        &self.service.shared.name
    }

    /// The client's address (`ip:port`), if still connected.
    pub fn client_address(&self) -> Option<String> {
        self.worker.info(self.session.client).and_then(|i| i.peer)
    }
}

/// A filter instance as one worker sees it (`createInstance`, `diagnostics`).
pub trait Filter {
    /// The module's declaration.
    fn info(&self) -> &'static ModuleInfo;
    /// The instance's name (unique within its service).
    fn name(&self) -> &str;
    /// A filter session for a new client session (`newSession`).
    fn new_session(&self, session: &SessionRef) -> Rc<dyn FilterSession>;
    /// Counters as JSON, summed over every worker.
    fn diagnostics(&self) -> serde_json::Value;
}

/// One session's filter (`routeQuery`, `clientReply`, `closeSession`). Downstream is
/// the next filter or the router, upstream the previous filter or the client: the
/// pipeline passes the request on when a filter answers `Forward`, `Replace` or `Route`.
pub trait FilterSession {
    /// The filter's instance name (for error messages).
    fn name(&self) -> &str;
    /// What this filter wants to see (its capabilities).
    fn interest(&self) -> Interest;
    /// Whether this request (`payload`: the whole command, command byte first) concerns
    /// the filter — a filter whose `match` does not match says no. When no filter wants a
    /// request, the forwarding loop sends it on without stopping (no [`Request`] is made)
    /// and its reply passes unseen unless a filter watches every reply. Called from the
    /// forwarding loop: cheap, synchronous. Default: every request.
    fn wants(&self, _payload: &[u8]) -> bool {
        true
    }
    /// A request on its way downstream.
    fn route_query(self: Rc<Self>, session: SessionRef, request: Rc<Request>) -> Step<Action>;
    /// A complete reply on its way upstream.
    fn client_reply(self: Rc<Self>, session: SessionRef, reply: Rc<Reply>) -> Step<()>;
    /// The session ends.
    fn close_session(&self) {}
}

/// A router instance, shared by every worker (`createInstance`, `diagnostics`).
pub trait Router: Send + Sync {
    /// The module's declaration.
    fn info(&self) -> &'static ModuleInfo;
    /// A router session for a new client session (`newSession`).
    fn new_session(self: Arc<Self>) -> Box<dyn RouterSession>;
    /// Counters as JSON.
    fn diagnostics(&self) -> serde_json::Value;
    /// What the router must see of a session (`getCapabilities`): a router that picks
    /// a backend once per session (readconnroute) needs nothing, one that routes each
    /// statement needs the requests. Joined with the filters' interests.
    fn interest(&self) -> Interest {
        Interest::default()
    }
    /// How long a new session may wait for a server to take it when none can now (a
    /// failover is promoting one), looking again every 100 ms, before its client is
    /// refused. Bounded by the backend connect timeout. Default: no wait.
    fn delayed_retry(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
    /// How many session commands a session keeps to replay on backends it opens later
    /// (0: the router never routes to more than one backend). Past it, the session
    /// opens no new backend.
    fn session_command_history(&self) -> usize {
        0
    }
    /// How many bytes of statements a transaction may keep for a replay
    /// (`transaction_replay`); 0: transactions are not kept.
    fn transaction_replay(&self) -> usize {
        0
    }
}

/// Where the router sends a request.
#[derive(Clone, Debug)]
pub enum Route {
    /// To the backend the session is using now.
    Current,
    /// To this server: the session switches its link to it (once the responses to the
    /// client's earlier commands are out), opening a backend to it if it has none —
    /// logged in like the first and brought to the session's state by replaying the
    /// session commands (see [`Route::SessionCommand`]).
    To(Arc<Server>),
    /// A command that changes session state (SET, USE, PREPARE, COM_INIT_DB …): the
    /// current backend answers the client, every other backend of the session runs it
    /// too (their answers are discarded; one that fails there is closed), and once it
    /// succeeded it joins the session's history, which a backend opened later replays.
    SessionCommand,
    /// No server can take it now (a failover is promoting one): the engine asks again
    /// in a moment ([`RouteContext::waited`] tells the router how long it has waited).
    Wait,
}

/// Where a request stands in a transaction the router wants kept for a replay
/// (`transaction_replay`): the engine keeps the statements of a transaction from `Begin`
/// to `End`, with checksums of their answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TrxStep {
    /// Not part of a kept transaction.
    #[default]
    None,
    /// Starts one (BEGIN, or the first statement with autocommit off).
    Begin,
    /// Inside it.
    Statement,
    /// Ends it (COMMIT, ROLLBACK).
    End,
}

/// What a router decided about one request.
#[derive(Clone, Debug)]
pub struct Decision {
    /// Where it goes.
    pub route: Route,
    /// The router wants to see its reply ([`RouterSession::client_reply`]).
    pub see_reply: bool,
    /// A causal read: before the server it goes to answers, it must have applied the
    /// session's last write on the primary (`@@last_gtid` there, `MASTER_GTID_WAIT` on
    /// it, within this time). When it does not, the router hears it
    /// ([`RouterSession::causal_read_missed`]) and is asked again.
    pub causal: Option<std::time::Duration>,
    /// Its place in a transaction kept for a replay.
    pub transaction: TrxStep,
}

impl Decision {
    /// To the current backend, reply unseen.
    pub fn current() -> Decision {
        Decision {
            route: Route::Current,
            see_reply: false,
            causal: None,
            transaction: TrxStep::None,
        }
    }
}

/// What a router is told about the session when it routes a request.
pub struct RouteContext<'a> {
    /// The server the session's linked backend is connected to.
    pub current: &'a Arc<Server>,
    /// The servers the session has a backend to, the current one first (kept only for
    /// routers that use several backends: empty for the others).
    pub open: &'a [Arc<Server>],
    /// The session's binary prepared statements by the client's ids (sessions with
    /// several backends): what an execute runs.
    pub statements: &'a crate::session::statements::Statements,
    /// The session may open a backend to a server it has none to: dpm can log in on
    /// the client's behalf (proxy-held users) and the session-command history is
    /// complete. When false, [`Route::To`] must name a server in `open`.
    pub can_open: bool,
    /// The session's state as the servers reported it (status flags: in transaction,
    /// autocommit).
    pub state: &'a crate::session::SessionState,
    /// How long this request has waited for a server so far ([`Route::Wait`]).
    pub waited: std::time::Duration,
    /// The session has no linked backend now (it lost it between statements): the
    /// current server is the one it had.
    pub backend_lost: bool,
}

/// One session's router.
pub trait RouterSession {
    /// The servers to try for the session's backend, best first. Empty: none is usable;
    /// the client gets an error at once.
    fn candidates(&mut self, servers: &[Arc<Server>]) -> Vec<Arc<Server>>;
    /// The session's backend is connected to `server`.
    fn connected(&mut self, _server: &Arc<Server>) {}
    /// No candidate could be reached: the client was refused.
    fn refused(&mut self) {}
    /// Where a request goes. `target` is a server a filter asked for. `Err` answers the
    /// client with that error.
    fn route_query(
        &mut self,
        request: &Request,
        target: Option<&str>,
        context: &RouteContext<'_>,
    ) -> Result<Decision, ErrPacket>;
    /// A backend to `server` could not be opened or brought to the session's state for
    /// the request just routed there (`why`): the router is asked again, and must now
    /// route elsewhere or refuse.
    fn open_failed(&mut self, _server: &Arc<Server>, _why: &str) {}
    /// A causal read routed to `server` could not run there: it had not applied the
    /// session's last write in time. The router is asked again.
    fn causal_read_missed(&mut self, _server: &Arc<Server>) {}
    /// A complete reply the router asked to see ([`Decision::see_reply`]), or every
    /// reply when its interest includes replies and it routes per session.
    fn client_reply(&mut self, _reply: &Reply) {}
    /// The session's linked backend on `server` failed (`handleError`): true if the
    /// session goes on without it. `in_flight` is the request it had not started to
    /// answer, if any: going on then means routing that request again — a read, which
    /// can safely run twice, or any request the server is known never to have read
    /// (`never_read`: it reset the connection with the request unread); a router that
    /// cannot must answer false.
    fn handle_error(
        &mut self,
        _server: &Arc<Server>,
        _error: &str,
        _in_flight: Option<&Request>,
        _never_read: bool,
    ) -> bool {
        false
    }
    /// The session's linked backend on `lost` died inside a transaction the engine kept
    /// whole: true to replay it on another server (the router then forgets where the
    /// transaction ran; [`RouterSession::route_transaction_replay`] names the server).
    fn replay_transaction(&mut self, _lost: &Arc<Server>) -> bool {
        false
    }
    /// Where a lost transaction is replayed: `Route::To(server)`, or `Route::Wait` while
    /// no server can take it (a failover in progress). Err gives up.
    fn route_transaction_replay(
        &mut self,
        _context: &RouteContext<'_>,
    ) -> Result<Route, ErrPacket> {
        Err(ErrPacket::new(
            1105,
            *b"HY000",
            "this router does not replay transactions",
        ))
    }
    /// Why the router keeps the session on one server, if it does (shown by the admin
    /// API): readwritesplit's "pinned since `LOCK TABLES …`".
    fn pin_reason(&self) -> Option<String> {
        None
    }

    /// Where the session's last statements went and why, oldest first (readwritesplit).
    fn route_log(&self) -> Vec<String> {
        Vec::new()
    }
    /// The session ends (`closeSession`).
    fn close_session(&mut self) {}
}
