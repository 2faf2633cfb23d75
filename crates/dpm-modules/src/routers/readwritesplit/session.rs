//! One readwritesplit session: applies what a statement wants (`rules.rs`) to the
//! session's state — the open transaction and where it runs, a pin to the primary, the
//! replica it reads from — and records each decision in the route log.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use dpm_engine::pipeline::{Decision, Request, Route, RouteContext, RouterSession, TrxStep};
use dpm_engine::service::{Server, ServerRole, RETRY_AFTER};
use dpm_engine::session::statements::statement_id;
use dpm_protocol::command::com;
use dpm_protocol::err::ErrPacket;

use super::reason::{Reason, RouteLog, Routed};
use super::rules::{want, Hint, Want};
use super::ReadWriteSplit;
use crate::classifier::{cached_classification, classify, Classification};

/// Why no server was found for a request now.
enum Miss {
    /// No primary yet, but one may come (a failover): ask again shortly.
    Wait,
    /// The client gets this error.
    Refuse(ErrPacket),
}

impl From<ErrPacket> for Miss {
    fn from(e: ErrPacket) -> Miss {
        Miss::Refuse(e)
    }
}

/// A readwritesplit session.
pub struct RwSession {
    router: Arc<ReadWriteSplit>,
    /// The service's servers (from the session's start).
    servers: Vec<Arc<Server>>,
    /// The replica this session reads from while it stays usable.
    replica: Option<Arc<Server>>,
    /// Where the open transaction runs (set when it begins).
    transaction: Option<Arc<Server>>,
    /// The last statement began a transaction (its OK may not be in yet).
    just_began: bool,
    /// Why the session is pinned, and to which server (the primary, or the replica of
    /// the read-only transaction the pinning statement ran in).
    pinned: Option<(Rc<str>, Arc<Server>)>,
    /// The session may have written on the primary since its last causal read.
    wrote: bool,
    /// A causal read did not find its replica caught up: it runs on the primary.
    causal_fallback: bool,
    /// The last decision was a causal read (until it is known to have run).
    causal_pending: bool,
    /// `transaction_replay`: where the statement being decided stands in a transaction
    /// on the primary; whether one is being kept; whether a statement of it went
    /// elsewhere (then it cannot be replayed).
    step: TrxStep,
    recording: bool,
    unreplayable: bool,
    /// Servers this session could not use lately (a backend could not be opened there,
    /// or it was lost), and when: skipped for `RETRY_AFTER`.
    unusable: Vec<(Arc<Server>, Instant)>,
    /// What each binary prepared statement the session executed wants, by the client's
    /// statement id (the engine's ids are never reused within a session).
    prepared: HashMap<u32, Prepared>,
    log: RouteLog,
}

/// How the executes of one prepared statement are routed.
struct Prepared {
    /// What the statement wants, as the SQL text it was prepared from would.
    want: Want,
    classification: Rc<Classification>,
    /// Long data was sent for it: its executes run on the primary, where the long data
    /// went, from then on (an execute routed again, after a lost backend or a wait for
    /// a primary, must not land elsewhere without it).
    long_data: bool,
    /// Where it was executed last: its cursor lives there.
    executed_on: Option<Arc<Server>>,
}

impl RwSession {
    pub fn new(router: Arc<ReadWriteSplit>) -> RwSession {
        RwSession {
            router,
            servers: Vec::new(),
            replica: None,
            transaction: None,
            just_began: false,
            pinned: None,
            wrote: false,
            causal_fallback: false,
            causal_pending: false,
            step: TrxStep::None,
            recording: false,
            unreplayable: false,
            unusable: Vec::new(),
            prepared: HashMap::new(),
            log: RouteLog::default(),
        }
    }

    /// What a command naming a prepared statement wants (`id`: the client's id, known to
    /// the engine), and the statement's classification. An execute wants what its SQL
    /// would as a query, except that a statement changing session state pins the
    /// session (an execute runs on one backend only); long data and the execute that
    /// uses it go to the primary.
    fn statement_want(
        &mut self,
        request: &Request,
        id: u32,
        sql: &[u8],
    ) -> (Want, Rc<Classification>) {
        let prepared = self.prepared.entry(id).or_insert_with(|| {
            let classification = Rc::new(classify(sql));
            let want = match want(com::QUERY, Some(sql), Some(&classification)) {
                Want::SessionCommand => {
                    Want::Pin("a prepared statement that changes session state")
                }
                want => want,
            };
            Prepared {
                want,
                classification,
                long_data: false,
                executed_on: None,
            }
        });
        let want = match request.command {
            com::STMT_SEND_LONG_DATA => {
                prepared.long_data = true;
                Want::Primary(Reason::PreparedStatement)
            }
            com::STMT_EXECUTE if prepared.long_data => Want::Primary(Reason::PreparedStatement),
            com::STMT_EXECUTE => prepared.want.clone(),
            command => want(command, None, None),
        };
        (want, prepared.classification.clone())
    }

    /// A cursor fetch goes where its statement was executed last.
    fn fetch(&self, id: u32, context: &RouteContext<'_>) -> Arc<Server> {
        self.prepared
            .get(&id)
            .and_then(|p| p.executed_on.clone())
            .filter(|s| context.open.iter().any(|o| Arc::ptr_eq(o, s)))
            .unwrap_or_else(|| context.current.clone())
    }

    /// A command naming a prepared statement was decided: the statement's bookkeeping.
    fn statement_routed(
        &mut self,
        request: &Request,
        id: u32,
        route: &Route,
        context: &RouteContext<'_>,
    ) {
        match request.command {
            com::STMT_CLOSE => {
                self.prepared.remove(&id);
            }
            com::STMT_EXECUTE => {
                if let Some(p) = self.prepared.get_mut(&id) {
                    p.executed_on = match route {
                        Route::To(s) => Some(s.clone()),
                        _ => Some(context.current.clone()),
                    };
                }
            }
            _ => {}
        }
    }

    /// True when `request` is known to be a read (an execute of a read statement too,
    /// unless long data went with it).
    fn is_read(&self, request: &Request) -> bool {
        let want = match statement_id(&request.payload) {
            Some(id) if request.command == com::STMT_EXECUTE => match self.prepared.get(&id) {
                Some(p) if !p.long_data => p.want.clone(),
                _ => return false,
            },
            _ => {
                let c = cached_classification(request);
                want(request.command, request.sql(), c.as_deref())
            }
        };
        want == Want::Read
    }

    fn usable(&self, server: &Arc<Server>, context: &RouteContext<'_>) -> bool {
        server.is_up()
            && !self
                .unusable
                .iter()
                .any(|(u, at)| Arc::ptr_eq(u, server) && at.elapsed() < RETRY_AFTER)
            && ((context.can_open && server.accepts_new_connections())
                || context.open.iter().any(|o| Arc::ptr_eq(o, server)))
    }

    fn primary(&self, context: &RouteContext<'_>) -> Option<Arc<Server>> {
        let current = context.current;
        if current.role() == ServerRole::Primary
            && !context.backend_lost
            && self.usable(current, context)
        {
            return Some(current.clone());
        }
        self.servers
            .iter()
            .find(|s| s.role() == ServerRole::Primary && self.usable(s, context))
            .cloned()
    }

    fn replica_ok(&self, server: &Arc<Server>, context: &RouteContext<'_>) -> bool {
        server.role() == ServerRole::Replica
            && self.usable(server, context)
            && self.router.lag_ok(server)
    }

    /// The replica to read from: the session's own while it stays usable, else the
    /// least-loaded usable one.
    fn pick_replica(&mut self, context: &RouteContext<'_>) -> Option<Arc<Server>> {
        if let Some(r) = &self.replica {
            if self.replica_ok(r, context) {
                return Some(r.clone());
            }
        }
        // A replica the session already has a backend to costs no new connection; then
        // the fewest connections. Sessions that start together all see the same counts (a
        // backend counts once it is open): equally good replicas are taken in turn.
        let rank = |s: &Arc<Server>| {
            let open = context.open.iter().any(|o| Arc::ptr_eq(o, s));
            (!open, s.sessions.load(Ordering::Relaxed))
        };
        let usable: Vec<&Arc<Server>> = self
            .servers
            .iter()
            .filter(|s| self.replica_ok(s, context))
            .collect();
        let best_rank = usable.iter().map(|s| rank(s)).min();
        let best = best_rank.and_then(|top| {
            let tied: Vec<&&Arc<Server>> = usable.iter().filter(|s| rank(s) == top).collect();
            let turn = self.router.replica_turn.fetch_add(1, Ordering::Relaxed) as usize;
            tied.get(turn % tied.len()).map(|s| (**s).clone())
        });
        self.replica = best.clone();
        best
    }

    /// The decision's place in a transaction kept for a replay (`transaction_replay`),
    /// from the step `decide` found; a statement of a kept transaction that goes
    /// elsewhere (a hint) makes it unreplayable.
    fn transaction_step(&mut self, route: &Route, context: &RouteContext<'_>) -> TrxStep {
        if self.router.replay_max == 0 {
            return TrxStep::None;
        }
        let mut step = std::mem::take(&mut self.step);
        if step == TrxStep::None && self.recording {
            let there = match (route, &self.transaction) {
                (Route::Current, Some(t)) => Arc::ptr_eq(context.current, t),
                (Route::To(s), Some(t)) => Arc::ptr_eq(s, t),
                (Route::SessionCommand, _) => return TrxStep::None,
                _ => false,
            };
            if there {
                step = TrxStep::Statement;
            } else {
                self.unreplayable = true;
            }
        }
        match step {
            TrxStep::Begin => {
                self.recording = true;
                self.unreplayable = false;
            }
            TrxStep::End => self.recording = false,
            _ => {}
        }
        step
    }

    /// Stops using `server` for a while.
    fn avoid(&mut self, server: &Arc<Server>) {
        if self
            .replica
            .as_ref()
            .is_some_and(|r| Arc::ptr_eq(r, server))
        {
            self.replica = None;
        }
        self.unusable.retain(|(u, _)| !Arc::ptr_eq(u, server));
        self.unusable.push((server.clone(), Instant::now()));
    }

    /// The primary, or — while none is up and the request has waited less than
    /// `delayed_retry_timeout` — a wait for one.
    fn primary_or_wait(&self, context: &RouteContext<'_>) -> Result<Arc<Server>, Miss> {
        match self.primary(context) {
            Some(p) => Ok(p),
            None if context.waited < self.router.delayed_retry => Err(Miss::Wait),
            None => Err(Miss::Refuse(self.no_primary())),
        }
    }

    fn no_primary(&self) -> ErrPacket {
        let states: Vec<String> = self
            .servers
            .iter()
            .map(|s| {
                format!(
                    "{} is {} ({})",
                    s.name,
                    s.role().as_str(),
                    if s.is_up() { "up" } else { "down" }
                )
            })
            .collect();
        ErrPacket::new(
            1105,
            *b"HY000",
            format!(
                "readwritesplit has no primary to run this statement on: {}",
                states.join(", ")
            ),
        )
    }

    fn decide(
        &mut self,
        request: &Request,
        target: Option<&str>,
        context: &RouteContext<'_>,
    ) -> Result<(Route, Routed), Miss> {
        let routed = |server: &Arc<Server>, reason| Routed {
            server: Some(server.clone()),
            reason,
            lag: None,
            detail: None,
        };
        if matches!(request.command, com::RESET_CONNECTION | com::CHANGE_USER) {
            // The server drops the session's statements; the engine's ids are new ones.
            self.prepared.clear();
        }
        let statement = statement_id(&request.payload)
            .and_then(|id| context.statements.resolve(id))
            .and_then(|id| Some((id, context.statements.sql(id)?)));
        let (mut wanted, classification, sql) = match statement {
            Some((id, _)) if request.command == com::STMT_FETCH => {
                let server = self.fetch(id, context);
                return Ok((
                    Route::To(server.clone()),
                    routed(&server, Reason::PreparedStatement),
                ));
            }
            Some((id, sql)) if request.command != com::STMT_CLOSE => {
                let (want, c) = self.statement_want(request, id, sql);
                (want, Some(c), Some(sql))
            }
            _ => {
                let c = cached_classification(request);
                (
                    want(request.command, request.sql(), c.as_deref()),
                    c,
                    request.sql(),
                )
            }
        };
        if self.router.strict_sp_calls
            && classification
                .as_deref()
                .is_some_and(|c| c.kind == crate::classifier::StatementType::Call)
        {
            // The procedure's body is unknown: what it leaves behind stays readable.
            wanted = Want::Pin("CALL (strict_sp_calls)");
        }
        if let Some(name) = target {
            // A filter's route request, like a hint, does not move what every backend
            // must share or what pins the session.
            if !matches!(wanted, Want::SessionCommand | Want::Pin(_)) {
                wanted = Want::Hint(Hint::Server(name.to_string()));
            }
        }
        let began = std::mem::take(&mut self.just_began);
        let mut in_trx = context.state.in_transaction() || began;
        self.step = TrxStep::None;
        if !in_trx && context.state.autocommit() {
            // The transaction ended (COMMIT, or implicitly): reads may move again.
            self.transaction = None;
            self.recording = false;
        }
        let read_only_trx = self
            .transaction
            .as_ref()
            .is_some_and(|t| t.role() != ServerRole::Primary);
        let ddl = classification
            .as_deref()
            .is_some_and(|c| c.kind == crate::classifier::StatementType::Ddl);
        if read_only_trx && (matches!(wanted, Want::Begin { .. }) || ddl) {
            // BEGIN and DDL commit the read-only transaction implicitly: what they start
            // or do is routed afresh.
            self.transaction = None;
            in_trx = false;
        }
        let to_primary = |this: &Self, reason| -> Result<(Route, Routed), Miss> {
            let p = this.primary_or_wait(context)?;
            Ok((Route::To(p.clone()), routed(&p, reason)))
        };
        match wanted {
            Want::SessionCommand => {
                let r = Routed {
                    server: None,
                    reason: Reason::SessionCommand,
                    lag: None,
                    detail: None,
                };
                return Ok((Route::SessionCommand, r));
            }
            Want::Pin(why) => return self.pin(sql, why, context),
            Want::Hint(hint) => return self.hinted(hint, context),
            Want::Current(_) if context.backend_lost => return self.read(context),
            Want::Current(reason) => {
                return Ok((Route::Current, routed(context.current, reason)));
            }
            _ => {}
        }
        if let Some(trx) = &self.transaction {
            let reason = if trx.role() == ServerRole::Primary {
                Reason::InTransaction
            } else {
                Reason::ReadOnlyTransaction
            };
            let trx = trx.clone();
            if reason == Reason::InTransaction {
                self.step = match wanted {
                    Want::End => TrxStep::End,
                    _ => TrxStep::Statement,
                };
            }
            if wanted == Want::End {
                self.transaction = None;
            }
            return Ok((Route::To(trx.clone()), routed(&trx, reason)));
        }
        if let Some((why, server)) = &self.pinned {
            let server = server.clone();
            let mut r = routed(&server, Reason::Pinned);
            r.detail = Some(why.clone());
            if matches!(wanted, Want::Begin { .. }) {
                self.transaction = Some(server.clone());
                self.just_began = true;
            }
            return Ok((Route::To(server), r));
        }
        if in_trx || !context.state.autocommit() {
            self.step = match wanted {
                Want::End => TrxStep::End,
                _ if self.recording => TrxStep::Statement,
                _ => TrxStep::Begin,
            };
            return to_primary(self, Reason::InTransaction);
        }
        match wanted {
            Want::Begin { read_only: true } => match self.pick_replica(context) {
                Some(r) => {
                    self.transaction = Some(r.clone());
                    self.just_began = true;
                    Ok((
                        Route::To(r.clone()),
                        routed(&r, Reason::ReadOnlyTransaction),
                    ))
                }
                None => self.begin_on_primary(context),
            },
            Want::Begin { .. } => self.begin_on_primary(context),
            Want::Read => self.read(context),
            Want::End => Ok((Route::Current, routed(context.current, Reason::Command))),
            Want::Primary(reason) => to_primary(self, reason),
            Want::SessionCommand | Want::Pin(_) | Want::Hint(_) | Want::Current(_) => {
                unreachable!()
            }
        }
    }

    /// A statement whose effect cannot be replayed elsewhere: it runs where the session's
    /// transaction runs, or on the primary, and the session stays on that server.
    fn pin(
        &mut self,
        sql: Option<&[u8]>,
        why: &'static str,
        context: &RouteContext<'_>,
    ) -> Result<(Route, Routed), Miss> {
        let server = match (&self.pinned, &self.transaction) {
            (Some((_, server)), _) => server.clone(),
            (None, Some(trx)) => trx.clone(),
            (None, None) => self.primary_or_wait(context)?,
        };
        let detail = match &self.pinned {
            Some((detail, _)) => detail.clone(),
            None => {
                let sql = sql
                    .map(|s| String::from_utf8_lossy(&s[..s.len().min(80)]).into_owned())
                    .unwrap_or_default();
                let detail: Rc<str> = format!("`{}` ({why})", sql.trim()).into();
                self.router.pinned_sessions.fetch_add(1, Ordering::Relaxed);
                self.pinned = Some((detail.clone(), server.clone()));
                detail
            }
        };
        let r = Routed {
            server: Some(server.clone()),
            reason: Reason::Pinned,
            lag: None,
            detail: Some(detail),
        };
        Ok((Route::To(server), r))
    }

    fn begin_on_primary(&mut self, context: &RouteContext<'_>) -> Result<(Route, Routed), Miss> {
        let p = self.primary_or_wait(context)?;
        self.transaction = Some(p.clone());
        self.just_began = true;
        self.step = TrxStep::Begin;
        let r = Routed {
            server: Some(p.clone()),
            reason: Reason::InTransaction,
            lag: None,
            detail: None,
        };
        Ok((Route::To(p), r))
    }

    fn read(&mut self, context: &RouteContext<'_>) -> Result<(Route, Routed), Miss> {
        if std::mem::take(&mut self.causal_fallback) {
            if let Some(p) = self.primary(context) {
                let routed = Routed {
                    server: Some(p.clone()),
                    reason: Reason::CausalReadOnPrimary,
                    lag: None,
                    detail: None,
                };
                return Ok((Route::To(p), routed));
            }
        }
        if let Some(r) = self.pick_replica(context) {
            let lag = r.lag();
            let routed = Routed {
                server: Some(r.clone()),
                reason: Reason::Read,
                lag,
                detail: None,
            };
            return Ok((Route::To(r), routed));
        }
        let (server, reason) = match self.primary(context) {
            Some(p) => (p, Reason::ReadOnPrimary),
            // No primary either: the server the session is on answers, whatever it is.
            None if !context.can_open => (context.current.clone(), Reason::ReadNoSpareBackend),
            None => (context.current.clone(), Reason::ReadOnPrimary),
        };
        let reason = if !context.can_open && reason == Reason::ReadOnPrimary {
            Reason::ReadNoSpareBackend
        } else {
            reason
        };
        let routed = Routed {
            server: Some(server.clone()),
            reason,
            lag: None,
            detail: None,
        };
        Ok((Route::To(server), routed))
    }

    fn hinted(&mut self, hint: Hint, context: &RouteContext<'_>) -> Result<(Route, Routed), Miss> {
        let (server, text) = match hint {
            Hint::Primary => (
                self.primary_or_wait(context)?,
                "route to primary".to_string(),
            ),
            Hint::Replica => match self.pick_replica(context) {
                Some(r) => (r, "route to replica".to_string()),
                None => return self.read(context),
            },
            Hint::Server(name) => {
                let found = self.servers.iter().find(|s| s.name == name).cloned();
                match found {
                    Some(s) if self.usable(&s, context) => (s, format!("route to server {name}")),
                    Some(_) => {
                        return Err(Miss::Refuse(ErrPacket::new(
                            1105,
                            *b"HY000",
                            format!("readwritesplit cannot route to server '{name}': it is down or this session cannot open a backend to it"),
                        )))
                    }
                    None => {
                        return Err(Miss::Refuse(ErrPacket::new(
                            1105,
                            *b"HY000",
                            format!("readwritesplit cannot route to server '{name}': the service has no such server"),
                        )))
                    }
                }
            }
        };
        let routed = Routed {
            server: Some(server.clone()),
            reason: Reason::Hint,
            lag: None,
            detail: Some(text.into()),
        };
        Ok((Route::To(server), routed))
    }
}

impl RouterSession for RwSession {
    fn candidates(&mut self, servers: &[Arc<Server>]) -> Vec<Arc<Server>> {
        if self.servers.is_empty() {
            self.servers = servers.to_vec();
        }
        // The primary first (writes need it, and its greeting is the client's), then the
        // replicas, least loaded first: reads still work while no primary is up.
        let recently_failed = |s: &Arc<Server>| {
            self.unusable
                .iter()
                .any(|(u, at)| Arc::ptr_eq(u, s) && at.elapsed() < RETRY_AFTER)
        };
        let mut usable: Vec<&Arc<Server>> = servers
            .iter()
            .filter(|s| s.accepts_new_connections() && !recently_failed(s))
            .collect();
        usable.sort_by_key(|s| {
            (
                s.role() != ServerRole::Primary,
                s.sessions.load(Ordering::Relaxed),
            )
        });
        usable.into_iter().cloned().collect()
    }

    fn connected(&mut self, _server: &Arc<Server>) {
        self.router.sessions.fetch_add(1, Ordering::Relaxed);
    }

    fn refused(&mut self) {
        self.router.refused.fetch_add(1, Ordering::Relaxed);
    }

    fn route_query(
        &mut self,
        request: &Request,
        target: Option<&str>,
        context: &RouteContext<'_>,
    ) -> Result<Decision, ErrPacket> {
        let (route, routed) = match self.decide(request, target, context) {
            Ok(decided) => decided,
            Err(Miss::Wait) => {
                return Ok(Decision {
                    route: Route::Wait,
                    see_reply: false,
                    causal: None,
                    transaction: TrxStep::None,
                })
            }
            Err(Miss::Refuse(e)) => return Err(e),
        };
        // Read-your-writes: anything on the primary that is not known to be a read may
        // have written there, and makes the session's next read on a replica wait for
        // that replica to apply it.
        let on_primary = routed
            .server
            .as_ref()
            .is_some_and(|s| s.role() == ServerRole::Primary);
        let known_read = matches!(
            routed.reason,
            Reason::ReadOnPrimary
                | Reason::CausalReadOnPrimary
                | Reason::LastInsertId
                | Reason::PreviousStatement
        );
        if on_primary && !known_read {
            self.wrote = true;
        }
        let causal = match (&route, routed.reason) {
            (Route::To(_), Reason::Read) if self.wrote => self.router.causal_reads,
            _ => None,
        };
        // The write is forgotten once a causal read ran; until then (the read may be
        // routed again) it is remembered in `causal_pending`.
        self.causal_pending = causal.is_some();
        if causal.is_some() {
            self.wrote = false;
        }
        if let Some(id) =
            statement_id(&request.payload).and_then(|id| context.statements.resolve(id))
        {
            self.statement_routed(request, id, &route, context);
        }
        let transaction = self.transaction_step(&route, context);
        self.router.reasons.count(routed.reason);
        let mut routed = routed;
        if causal.is_some() {
            routed.detail = Some("causal".into());
        }
        self.log.push(routed);
        Ok(Decision {
            route,
            see_reply: false,
            causal,
            transaction,
        })
    }

    fn replay_transaction(&mut self, lost: &Arc<Server>) -> bool {
        if self.router.replay_max == 0 || self.unreplayable || self.pinned.is_some() {
            return false;
        }
        let ran_there = self
            .transaction
            .as_ref()
            .is_none_or(|t| Arc::ptr_eq(t, lost));
        if !ran_there {
            return false;
        }
        self.avoid(lost);
        self.transaction = None;
        true
    }

    fn route_transaction_replay(&mut self, context: &RouteContext<'_>) -> Result<Route, ErrPacket> {
        match self.primary_or_wait(context) {
            Ok(p) => {
                self.router.replays.fetch_add(1, Ordering::Relaxed);
                self.transaction = Some(p.clone());
                self.log.push(Routed {
                    server: Some(p.clone()),
                    reason: Reason::TransactionReplayed,
                    lag: None,
                    detail: None,
                });
                Ok(Route::To(p))
            }
            Err(Miss::Wait) => Ok(Route::Wait),
            Err(Miss::Refuse(e)) => Err(e),
        }
    }

    fn causal_read_missed(&mut self, _server: &Arc<Server>) {
        self.router.causal_misses.fetch_add(1, Ordering::Relaxed);
        // The read runs on the primary, and the write is still not known to be on a
        // replica: the next read there must wait for it again.
        self.wrote |= std::mem::take(&mut self.causal_pending);
        self.causal_fallback = true;
    }

    fn open_failed(&mut self, server: &Arc<Server>, _why: &str) {
        self.router.open_failures.fetch_add(1, Ordering::Relaxed);
        // The causal read did not run: the next try must wait for the write again.
        self.wrote |= std::mem::take(&mut self.causal_pending);
        self.avoid(server);
        if self
            .transaction
            .as_ref()
            .is_some_and(|t| Arc::ptr_eq(t, server))
        {
            self.transaction = None;
        }
    }

    fn handle_error(
        &mut self,
        server: &Arc<Server>,
        _error: &str,
        in_flight: Option<&Request>,
        never_read: bool,
    ) -> bool {
        // A transaction open there is lost with it: the client must hear it (the
        // engine then ends the session with an error). Otherwise the next statement is
        // routed elsewhere; one in flight only if it is a read (a write may have been
        // applied before the server went).
        if self
            .transaction
            .as_ref()
            .is_some_and(|t| Arc::ptr_eq(t, server))
        {
            return false;
        }
        // What pinned the session (a temporary table, a lock) lived on that server.
        if self.pinned.is_some() {
            return false;
        }
        if let Some(request) = in_flight {
            // A causal read routed again must wait for the write again.
            self.wrote |= std::mem::take(&mut self.causal_pending);
            if !self.is_read(request) && !never_read {
                return false;
            }
            self.router.reads_retried.fetch_add(1, Ordering::Relaxed);
        }
        self.router.backends_lost.fetch_add(1, Ordering::Relaxed);
        self.avoid(server);
        true
    }

    fn route_log(&self) -> Vec<String> {
        self.log.describe()
    }

    fn pin_reason(&self) -> Option<String> {
        let (why, server) = self.pinned.as_ref()?;
        Some(format!("pinned to {} since {why}", server.name))
    }

    fn close_session(&mut self) {
        if self.pinned.is_some() {
            self.router.pinned_sessions.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpm_engine::service::{OptionValue, Options, ServerAddress};
    use dpm_engine::session::SessionState;

    fn server(name: &str, role: ServerRole) -> Arc<Server> {
        Arc::new(Server::new(
            name.into(),
            ServerAddress::Unix(format!("/{name}")),
            role,
        ))
    }

    /// p1, the primary, and r1, a replica.
    fn primary_and_replica() -> Vec<Arc<Server>> {
        vec![
            server("p1", ServerRole::Primary),
            server("r1", ServerRole::Replica),
        ]
    }

    fn router(options: Vec<(String, OptionValue)>) -> Arc<ReadWriteSplit> {
        let options = Options::validate(&super::super::INFO, options).unwrap();
        Arc::new(ReadWriteSplit::new(&options).unwrap())
    }

    fn decide(
        s: &mut RwSession,
        sql: &str,
        current: &Arc<Server>,
        state: &SessionState,
    ) -> Decision {
        let request = Request::new(bytes::Bytes::from(format!("\x03{sql}")));
        let open = [current.clone()];
        let context = RouteContext {
            current,
            open: &open,
            statements: &Default::default(),
            can_open: true,
            state,
            waited: std::time::Duration::ZERO,
            backend_lost: false,
        };
        s.route_query(&request, None, &context).unwrap()
    }

    fn route(s: &mut RwSession, sql: &str, current: &Arc<Server>, state: &SessionState) -> String {
        match decide(s, sql, current, state).route {
            Route::To(server) => server.name.clone(),
            Route::Current => "current".into(),
            Route::SessionCommand => "all".into(),
            Route::Wait => "wait".into(),
        }
    }

    #[test]
    fn sessions_starting_together_spread_over_equally_loaded_replicas() {
        let servers = vec![
            server("p1", ServerRole::Primary),
            server("r1", ServerRole::Replica),
            server("r2", ServerRole::Replica),
        ];
        let rw = router(vec![]);
        let mut state = SessionState::default();
        state.status = dpm_engine::session::state::SERVER_STATUS_AUTOCOMMIT;
        let mut picked = Vec::new();
        for _ in 0..4 {
            let mut s = RwSession::new(rw.clone());
            s.candidates(&servers);
            picked.push(route(&mut s, "SELECT 1", &servers[0], &state));
        }
        picked.sort();
        assert_eq!(picked, ["r1", "r1", "r2", "r2"]);
    }

    #[test]
    fn writes_wait_for_a_primary_until_delayed_retry_timeout() {
        let servers = vec![
            server("p1", ServerRole::Replica),
            server("r1", ServerRole::Replica),
        ];
        let rw = router(vec![(
            "delayed_retry_timeout".into(),
            OptionValue::Int(1000),
        )]);
        let mut state = SessionState::default();
        state.status = dpm_engine::session::state::SERVER_STATUS_AUTOCOMMIT;
        let mut s = RwSession::new(rw);
        s.candidates(&servers);
        assert_eq!(
            route(&mut s, "INSERT INTO t VALUES (1)", &servers[1], &state),
            "wait"
        );
        let request = Request::new(bytes::Bytes::from_static(b"\x03DELETE FROM t"));
        let open = [servers[1].clone()];
        let context = RouteContext {
            current: &servers[1],
            open: &open,
            statements: &Default::default(),
            can_open: true,
            state: &state,
            waited: std::time::Duration::from_millis(1500),
            backend_lost: false,
        };
        let err = s.route_query(&request, None, &context).unwrap_err();
        let message = String::from_utf8_lossy(&err.message).into_owned();
        assert!(message.contains("no primary"), "{message}");
    }

    #[test]
    fn after_a_causal_read_ran_on_the_primary_the_next_read_still_waits_for_the_write() {
        let servers = primary_and_replica();
        let rw = router(vec![(
            "causal_reads".into(),
            OptionValue::Str("local".into()),
        )]);
        let state = with_status(dpm_engine::session::state::SERVER_STATUS_AUTOCOMMIT);
        let mut s = RwSession::new(rw);
        s.candidates(&servers);
        let read = |s: &mut RwSession| {
            let decision = decide(s, "SELECT a FROM t", &servers[0], &state);
            let Route::To(server) = decision.route else {
                panic!("a read goes to a server")
            };
            (server.name.clone(), decision.causal.is_some())
        };
        assert_eq!(
            route(&mut s, "INSERT INTO t VALUES (1)", &servers[0], &state),
            "p1"
        );
        assert_eq!(read(&mut s), ("r1".into(), true));
        // r1 had not applied the write in time: the read runs on the primary...
        s.causal_read_missed(&servers[1]);
        assert_eq!(read(&mut s), ("p1".into(), false));
        // ...and r1 has still not been seen to have it: the next read waits again, it
        // does not read what r1 had before the write.
        assert_eq!(read(&mut s), ("r1".into(), true));
        assert_eq!(read(&mut s), ("r1".into(), false), "r1 applied it");
    }

    fn with_status(status: u16) -> SessionState {
        let mut state = SessionState::default();
        state.status = status;
        state
    }

    #[test]
    fn with_strict_sp_calls_a_call_pins_the_session() {
        use dpm_engine::session::state::SERVER_STATUS_AUTOCOMMIT;
        let servers = primary_and_replica();
        let idle = with_status(SERVER_STATUS_AUTOCOMMIT);
        for strict in [false, true] {
            let rw = router(vec![("strict_sp_calls".into(), OptionValue::Bool(strict))]);
            let mut s = RwSession::new(rw);
            s.candidates(&servers);
            assert_eq!(route(&mut s, "CALL p()", &servers[0], &idle), "p1");
            let after = route(&mut s, "SELECT @set_by_p", &servers[0], &idle);
            assert_eq!(
                after,
                if strict { "p1" } else { "r1" },
                "strict_sp_calls = {strict}"
            );
        }
        assert_eq!(
            s_pin_reason(),
            Some("pinned to p1 since `CALL p()` (CALL (strict_sp_calls))".to_string())
        );
    }

    /// The pin reason of a strict_sp_calls session after a CALL.
    fn s_pin_reason() -> Option<String> {
        use dpm_engine::session::state::SERVER_STATUS_AUTOCOMMIT;
        let servers = primary_and_replica();
        let rw = router(vec![("strict_sp_calls".into(), OptionValue::Bool(true))]);
        let mut s = RwSession::new(rw);
        s.candidates(&servers);
        route(
            &mut s,
            "CALL p()",
            &servers[0],
            &with_status(SERVER_STATUS_AUTOCOMMIT),
        );
        s.pin_reason()
    }

    #[test]
    fn a_pin_inside_a_transaction_holds_after_it() {
        use dpm_engine::session::state::{SERVER_STATUS_AUTOCOMMIT, SERVER_STATUS_IN_TRANS};
        let servers = primary_and_replica();
        let mut s = RwSession::new(router(vec![]));
        s.candidates(&servers);
        let idle = with_status(SERVER_STATUS_AUTOCOMMIT);
        let in_trx = with_status(SERVER_STATUS_AUTOCOMMIT | SERVER_STATUS_IN_TRANS);
        assert_eq!(route(&mut s, "BEGIN", &servers[0], &idle), "p1");
        let pin = "SET @a = (SELECT id FROM t WHERE id = 1)";
        assert_eq!(route(&mut s, pin, &servers[0], &in_trx), "p1");
        assert_eq!(route(&mut s, "COMMIT", &servers[0], &in_trx), "p1");
        assert_eq!(
            route(&mut s, "SELECT @a", &servers[0], &idle),
            "p1",
            "pinned"
        );
        assert!(s
            .route_log()
            .last()
            .unwrap()
            .starts_with("p1: pinned since `SET @a"));
    }

    #[test]
    fn begin_or_ddl_inside_a_read_only_transaction_is_routed_afresh() {
        use dpm_engine::session::state::{SERVER_STATUS_AUTOCOMMIT, SERVER_STATUS_IN_TRANS};
        let servers = primary_and_replica();
        let idle = with_status(SERVER_STATUS_AUTOCOMMIT);
        let in_trx = with_status(SERVER_STATUS_AUTOCOMMIT | SERVER_STATUS_IN_TRANS);
        for next in ["BEGIN", "CREATE TABLE t2 (a INT)"] {
            let mut s = RwSession::new(router(vec![]));
            s.candidates(&servers);
            let ro = "START TRANSACTION READ ONLY";
            assert_eq!(route(&mut s, ro, &servers[0], &idle), "r1");
            assert_eq!(route(&mut s, "SELECT 1", &servers[1], &in_trx), "r1");
            assert_eq!(route(&mut s, next, &servers[1], &in_trx), "p1", "{next}");
            let after = if next == "BEGIN" { &in_trx } else { &idle };
            let write = route(&mut s, "INSERT INTO t VALUES (1)", &servers[0], after);
            assert_eq!(write, "p1", "after {next}");
        }
    }
}
