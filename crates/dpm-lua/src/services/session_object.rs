//! The objects a Lua filter is handed: the session (`session:get_priv()`,
//! `session:set_priv(v)`, its server, user, schema and transaction state, its route log
//! and backends), the query
//! (`query:sql()`, `query:set_sql(s)`, `query:command()`, `query:classify()`) and the
//! reply (`reply.rows`, `reply.type`, …). Each filter session makes one of each, on first
//! use, and reuses them: a statement costs no Lua allocation for them.

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;
use dpm_engine::pipeline::{Reply, ReplyKind, Request, SessionRef};
use mlua::{UserData, UserDataMethods, Value};

/// `session` in a filter: one client session seen by one filter.
pub struct SessionObject {
    /// The engine's session.
    pub session: SessionRef,
    /// This filter's private value for the session.
    pub private: Rc<RefCell<Value>>,
}

impl UserData for SessionObject {
    fn add_fields<F: mlua::UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field("__name", "dpm.session");
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("id", |_, this, ()| Ok(this.session.id()));
        methods.add_method("get_priv", |_, this, ()| Ok(this.private.borrow().clone()));
        methods.add_method("set_priv", |_, this, value: Value| {
            *this.private.borrow_mut() = value;
            Ok(())
        });
        methods.add_method("server", |_, this, ()| {
            Ok(this.session.server().map(|s| s.name.clone()))
        });
        methods.add_method("service", |_, this, ()| {
            Ok(this
                .session
                .session
                .pipeline()
                .map(|p| p.service.shared.name.clone()))
        });
        methods.add_method("client_address", |_, this, ()| {
            Ok(this.session.client_address())
        });
        methods.add_method("user", |lua, this, ()| {
            let state = this.session.session.state.borrow();
            state
                .user
                .as_ref()
                .map(|u| lua.create_string(u))
                .transpose()
        });
        methods.add_method("schema", |lua, this, ()| {
            let state = this.session.session.state.borrow();
            state
                .schema
                .as_ref()
                .map(|s| lua.create_string(s))
                .transpose()
        });
        methods.add_method("in_transaction", |_, this, ()| {
            Ok(this.session.session.state.borrow().in_transaction())
        });
        methods.add_method("autocommit", |_, this, ()| {
            Ok(this.session.session.state.borrow().autocommit())
        });
        methods.add_method("status", |_, this, ()| {
            Ok(this.session.session.state.borrow().status)
        });
        methods.add_method("prepared_statements", |_, this, ()| {
            Ok(this.session.session.state.borrow().prepared.clone())
        });
        // Where the router sent the session's last statements and why (readwritesplit;
        // other routers keep none), oldest first.
        methods.add_method("route_log", |_, this, ()| {
            let log = this.session.session.pipeline().map(|p| {
                p.router
                    .try_borrow()
                    .map(|r| r.route_log())
                    .unwrap_or_default()
            });
            Ok(log.unwrap_or_default())
        });
        // The servers the session has a backend to, the one in use first.
        methods.add_method("backends", |_, this, ()| {
            let backends = this.session.session.backends.borrow();
            if backends.single() {
                return Ok(this
                    .session
                    .server()
                    .map(|s| s.name.clone())
                    .into_iter()
                    .collect());
            }
            Ok(backends
                .open()
                .iter()
                .map(|s| s.name.clone())
                .collect::<Vec<_>>())
        });
    }
}

/// The request a filter's `query` object describes now, and the SQL set with `set_sql`.
#[derive(Default)]
pub struct QueryState {
    /// The request being routed.
    pub request: RefCell<Option<Rc<Request>>>,
    /// SQL set with `set_sql`, sent instead of the original when the filter passes.
    pub rewritten: RefCell<Option<Bytes>>,
    /// The table `query:classify()` returns, reused from statement to statement, and the
    /// classification it describes now.
    classified: RefCell<Option<Classified>>,
}

/// `query:classify()`'s table (see `classify::Reuse`).
struct Classified {
    table: mlua::Table,
    describes: Rc<dpm_modules::classifier::Classification>,
    reuse: super::classify::Reuse,
}

impl QueryState {
    /// Points the object at a new request.
    pub fn start(&self, request: Rc<Request>) {
        *self.request.borrow_mut() = Some(request);
        *self.rewritten.borrow_mut() = None;
    }

    fn request(&self, lua: &mlua::Lua) -> mlua::Result<Rc<Request>> {
        self.request
            .borrow()
            .clone()
            .ok_or_else(|| crate::errors::raise(lua, "query: no request is being routed"))
    }
}

/// `query` in a filter's `route_query`. One object per filter session, reused: it
/// describes the request being routed now (keep `query:sql()`, not the object).
pub struct QueryObject(pub Rc<QueryState>);

impl UserData for QueryObject {
    fn add_fields<F: mlua::UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field("__name", "dpm.query");
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("command", |lua, this, ()| Ok(this.0.request(lua)?.command));
        methods.add_method("sql", |lua, this, ()| {
            let request = this.0.request(lua)?;
            let rewritten = this.0.rewritten.borrow();
            match rewritten.as_deref().or(request.sql()) {
                Some(sql) => Ok(Value::String(lua.create_string(sql)?)),
                None => Ok(Value::Nil),
            }
        });
        methods.add_method("set_sql", |lua, this, sql: mlua::String| {
            if this.0.request(lua)?.sql().is_none() {
                return Err(crate::errors::raise(
                    lua,
                    "query:set_sql: only COM_QUERY and COM_STMT_PREPARE carry SQL",
                ));
            }
            *this.0.rewritten.borrow_mut() = Some(Bytes::copy_from_slice(&sql.as_bytes()));
            Ok(())
        });
        methods.add_method("payload", |lua, this, ()| {
            lua.create_string(&this.0.request(lua)?.payload)
        });
        methods.add_method("classify", |lua, this, ()| {
            // Classified once per request: later filters (and the router) reuse it. The
            // table is this filter session's, refilled for each statement.
            let request = this.0.request(lua)?;
            let Some(c) = dpm_modules::classifier::cached_classification(&request) else {
                return Ok(Value::Nil);
            };
            let mut slot = this.0.classified.borrow_mut();
            if let Some(done) = slot.as_ref().filter(|s| Rc::ptr_eq(&s.describes, &c)) {
                return Ok(Value::Table(done.table.clone()));
            }
            let classified = match slot.take() {
                Some(mut s) => {
                    super::classify::fill(lua, &s.table, &c, &mut s.reuse)?;
                    s.describes = c;
                    s
                }
                None => {
                    let mut reuse = super::classify::Reuse::default();
                    let table = lua.create_table()?;
                    super::classify::fill(lua, &table, &c, &mut reuse)?;
                    Classified {
                        table,
                        describes: c,
                        reuse,
                    }
                }
            };
            let table = classified.table.clone();
            *slot = Some(classified);
            Ok(Value::Table(table))
        });
    }
}

/// `reply` in a filter's `client_reply`: the reply that just passed. One object per
/// filter session, reused for each reply; its fields are read on access.
pub struct ReplyObject(pub Rc<RefCell<Option<Rc<Reply>>>>);

impl UserData for ReplyObject {
    fn add_fields<F: mlua::UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field("__name", "dpm.reply");
        fields.add_field_method_get("command", |_, this| Ok(this.get(|r| r.command as i64)));
        fields.add_field_method_get("type", |_, this| {
            Ok(this.0.borrow().as_ref().map(|r| match r.kind {
                ReplyKind::Ok => "ok",
                ReplyKind::Err => "error",
                ReplyKind::ResultSet => "resultset",
            }))
        });
        fields.add_field_method_get("rows", |_, this| Ok(this.get(|r| r.rows as i64)));
        fields.add_field_method_get("affected_rows", |_, this| {
            Ok(this.get(|r| r.affected_rows as i64))
        });
        fields.add_field_method_get("insert_id", |_, this| {
            Ok(this.get(|r| r.last_insert_id as i64))
        });
        fields.add_field_method_get("status", |_, this| Ok(this.get(|r| r.status as i64)));
        fields.add_field_method_get("duration_us", |_, this| {
            Ok(this.get(|r| r.duration.as_micros() as i64))
        });
        fields.add_field_method_get("error_code", |_, this| {
            Ok(this
                .0
                .borrow()
                .as_ref()
                .filter(|r| r.kind == ReplyKind::Err)
                .map(|r| r.error_code))
        });
        fields.add_field_method_get("error_message", |lua, this| {
            let reply = this.0.borrow();
            match reply.as_ref().filter(|r| r.kind == ReplyKind::Err) {
                Some(r) => Ok(Value::String(lua.create_string(&r.error_message)?)),
                None => Ok(Value::Nil),
            }
        });
        fields.add_field_method_get("server", |_, this| {
            Ok(this
                .0
                .borrow()
                .as_ref()
                .and_then(|r| r.server.as_ref().map(|s| s.name.clone())))
        });
    }
}

impl ReplyObject {
    fn get(&self, f: impl Fn(&Reply) -> i64) -> Option<i64> {
        self.0.borrow().as_deref().map(f)
    }
}
