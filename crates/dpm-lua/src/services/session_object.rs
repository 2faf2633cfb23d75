//! The objects a Lua filter is handed: the session (`session:get_priv()`,
//! `session:set_priv(v)`, its server, user, schema and transaction state) and the query
//! (`query:sql()`, `query:set_sql(s)`, `query:command()`, `query:classify()`).

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;
use dpm_engine::pipeline::{Request, SessionRef};
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
    }
}

/// `query` in a filter's `route_query`.
pub struct QueryObject {
    /// The request.
    pub request: Rc<Request>,
    /// SQL set with `set_sql`, sent instead of the original when the filter passes.
    pub rewritten: Rc<RefCell<Option<Bytes>>>,
}

impl UserData for QueryObject {
    fn add_fields<F: mlua::UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field("__name", "dpm.query");
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("command", |_, this, ()| Ok(this.request.command));
        methods.add_method("sql", |lua, this, ()| {
            let current = this.rewritten.borrow();
            match current.as_deref().or(this.request.sql()) {
                Some(sql) => Ok(Value::String(lua.create_string(sql)?)),
                None => Ok(Value::Nil),
            }
        });
        methods.add_method("set_sql", |lua, this, sql: mlua::String| {
            if this.request.sql().is_none() {
                return Err(crate::errors::raise(
                    lua,
                    "query:set_sql: only COM_QUERY and COM_STMT_PREPARE carry SQL",
                ));
            }
            *this.rewritten.borrow_mut() = Some(Bytes::copy_from_slice(&sql.as_bytes()));
            Ok(())
        });
        methods.add_method("payload", |lua, this, ()| {
            lua.create_string(&this.request.payload)
        });
        methods.add_method("classify", |lua, this, ()| {
            use dpm_modules::classifier::{classify, Classification};
            // Classified once per request: later filters (and the router) reuse it.
            let cached = this
                .request
                .annotation
                .borrow()
                .clone()
                .and_then(|a| a.downcast::<Classification>().ok());
            let classified = match cached {
                Some(c) => c,
                None => match this.request.sql() {
                    Some(sql) => {
                        let c = Rc::new(classify(sql));
                        *this.request.annotation.borrow_mut() = Some(c.clone());
                        c
                    }
                    None => return Ok(Value::Nil),
                },
            };
            super::classify::to_table(lua, &classified).map(Value::Table)
        });
    }
}
