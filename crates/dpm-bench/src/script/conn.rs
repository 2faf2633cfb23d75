//! The Lua face of a connection, for a script's workload function:
//! `conn:query(sql)` and `stmt:execute(...)` (after `conn:prepare(sql)`) return the rows
//! of a result set (`{ {v1, v2, ...}, ..., columns = {"name", ...} }`, values as strings
//! for text results, typed for binary ones, `nil` for NULL) or, for a statement without
//! one, the number of affected rows. They suspend the calling coroutine, never the
//! thread. A server's error is raised as a Lua error carrying its code (`FILE:LINE: error
//! 1213 (40001): Deadlock found ...`): uncaught, it ends the transaction, which counts as
//! failed with that code; `--ignore-errors` decides whether the run goes on.
//!
//! [`LuaConn`] is what the runner drives: one call of the workload function is one
//! transaction, and its queries are the calls of `query` and `execute` it made.

use std::os::fd::RawFd;

use dpm_protocol::{BinaryRow, BinaryValue};
use mlua::{AnyUserData, Function, Lua, Table, UserData, UserDataMethods, UserDataRefMut, Value};

use crate::client::{ClientError, Column, Conn, Param, RowSink, Statement};
use crate::runner::TxnError;
use dpm_lua::errors::error_line;

/// A failed query as a Lua error: the caller's position, and the error's code.
#[derive(Debug)]
pub struct QueryError {
    /// `FILE:LINE: ` of the call.
    pub place: String,
    /// The error code (server or client).
    pub code: u16,
    /// The message.
    pub message: String,
    /// True when the connection cannot go on.
    pub breaks: bool,
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.place, self.message)
    }
}

impl std::error::Error for QueryError {}

fn query_error(lua: &Lua, e: ClientError) -> mlua::Error {
    // The caller in the script: the first frame from a file (an async method is called
    // through mlua's own Lua wrapper, which is a string chunk).
    let place = (1..16)
        .find_map(|level| {
            lua.inspect_stack(level, |d| {
                let source = d.source();
                if !source.source.as_deref().is_some_and(|s| s.starts_with('@')) {
                    return None;
                }
                let line = d.current_line()?;
                Some(format!(
                    "{}:{line}: ",
                    source.short_src.as_deref().unwrap_or("?")
                ))
            })
            .flatten()
        })
        .unwrap_or_default();
    mlua::Error::external(QueryError {
        place,
        code: e.code(),
        breaks: e.breaks_connection(),
        message: e.to_string(),
    })
}

/// The userdata behind `conn`.
pub struct ConnObject {
    conn: Option<Conn>,
    /// Queries of the current transaction.
    queries: u64,
    /// Connection number (1-based, over all threads).
    number: usize,
    thread: usize,
}

impl ConnObject {
    fn conn(&mut self) -> mlua::Result<&mut Conn> {
        self.conn
            .as_mut()
            .ok_or_else(|| mlua::Error::runtime("the connection is closed"))
    }
}

/// The userdata behind a prepared statement: it belongs to one connection.
pub struct StmtObject {
    stmt: Option<Statement>,
    conn: AnyUserData,
}

impl UserData for ConnObject {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("id", |_, this, ()| Ok(this.number));
        methods.add_method("thread", |_, this, ()| Ok(this.thread));
        methods.add_method_mut("fd", |_, this, ()| Ok(this.conn()?.fd()));
        methods.add_async_method_mut(
            "query",
            |lua, mut this: UserDataRefMut<Self>, sql: mlua::String| async move {
                this.queries += 1;
                let mut sink = LuaRows::new(&lua, false)?;
                let conn = this.conn()?;
                match conn.query(&sql.as_bytes(), &mut sink).await {
                    Ok(outcome) => sink.result(outcome.result_sets, outcome.affected_rows),
                    Err(e) => Err(query_error(&lua, e)),
                }
            },
        );
        methods.add_async_function(
            "prepare",
            |lua, (this, sql): (AnyUserData, mlua::String)| async move {
                let stmt = {
                    let mut obj = this.borrow_mut::<ConnObject>()?;
                    obj.conn()?.prepare(&sql.as_bytes()).await
                };
                match stmt {
                    Ok(stmt) => lua.create_userdata(StmtObject {
                        stmt: Some(stmt),
                        conn: this,
                    }),
                    Err(e) => Err(query_error(&lua, e)),
                }
            },
        );
    }
}

impl UserData for StmtObject {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_async_method_mut(
            "execute",
            |lua, mut this: UserDataRefMut<Self>, args: mlua::MultiValue| async move {
                let this = &mut *this;
                let stmt = this
                    .stmt
                    .as_mut()
                    .ok_or_else(|| mlua::Error::runtime("the statement is closed"))?;
                let strings: Vec<Option<mlua::String>> = args
                    .iter()
                    .map(|v| match v {
                        Value::String(s) => Some(s.clone()),
                        _ => None,
                    })
                    .collect();
                let mut borrowed = Vec::with_capacity(args.len());
                for s in &strings {
                    borrowed.push(s.as_ref().map(|s| s.as_bytes()));
                }
                let mut params = Vec::with_capacity(args.len());
                for (v, s) in args.iter().zip(&borrowed) {
                    params.push(match v {
                        Value::Nil => Param::Null,
                        Value::Boolean(b) => Param::BigInt(i64::from(*b)),
                        Value::Integer(n) => Param::BigInt(*n),
                        Value::Number(n) => Param::Double(*n),
                        Value::String(_) => Param::Str(s.as_deref().unwrap_or_default()),
                        other => {
                            return Err(mlua::Error::runtime(format!(
                                "stmt:execute: a parameter cannot be a {}",
                                other.type_name()
                            )))
                        }
                    });
                }
                let mut obj = this.conn.borrow_mut::<ConnObject>()?;
                obj.queries += 1;
                let mut sink = LuaRows::new(&lua, true)?;
                match obj.conn()?.execute(stmt, &params, &mut sink).await {
                    Ok(outcome) => sink.result(outcome.result_sets, outcome.affected_rows),
                    Err(e) => Err(query_error(&lua, e)),
                }
            },
        );
        methods.add_async_method_mut(
            "close",
            |_, mut this: UserDataRefMut<Self>, ()| async move {
                if let Some(stmt) = this.stmt.take() {
                    let mut obj = this.conn.borrow_mut::<ConnObject>()?;
                    obj.conn()?
                        .close_statement(stmt)
                        .await
                        .map_err(mlua::Error::external)?;
                }
                Ok(())
            },
        );
    }
}

/// Rows as Lua tables.
struct LuaRows {
    lua: Lua,
    rows: Table,
    binary: bool,
    types: Vec<u8>,
}

impl LuaRows {
    fn new(lua: &Lua, binary: bool) -> mlua::Result<LuaRows> {
        Ok(LuaRows {
            lua: lua.clone(),
            rows: lua.create_table()?,
            binary,
            types: Vec::new(),
        })
    }

    /// The rows, or the affected count when no result set came.
    fn result(self, result_sets: u32, affected: u64) -> mlua::Result<Value> {
        if result_sets == 0 {
            return Ok(Value::Integer(affected as i64));
        }
        Ok(Value::Table(self.rows))
    }

    fn fill(&mut self, payload: &[u8], columns: &[Column]) -> mlua::Result<()> {
        let row = self.lua.create_table_with_capacity(columns.len(), 0)?;
        if self.binary {
            let bytes = bytes::Bytes::copy_from_slice(payload);
            let decoded = BinaryRow::decode(&bytes, &self.types)
                .map_err(|e| mlua::Error::runtime(format!("binary row: {e}")))?;
            for (i, (v, c)) in decoded.values.iter().zip(columns).enumerate() {
                row.raw_set(i + 1, binary_value(&self.lua, v, c.unsigned)?)?;
            }
        } else {
            let mut buf = payload;
            for i in 0..columns.len() {
                let v = dpm_protocol::get_lenenc_str(&mut buf)
                    .map_err(|e| mlua::Error::runtime(format!("text row: {e}")))?;
                if let Some(v) = v {
                    row.raw_set(i + 1, self.lua.create_string(v)?)?;
                }
            }
        }
        self.rows.raw_push(row)
    }
}

impl RowSink for LuaRows {
    const DECODES: bool = true;

    fn columns(&mut self, columns: &[Column]) -> Result<(), ClientError> {
        self.types = columns.iter().map(|c| c.column_type).collect();
        let names = || -> mlua::Result<()> {
            let t = self.lua.create_table()?;
            for c in columns {
                t.raw_push(c.name.as_str())?;
            }
            self.rows.raw_set("columns", t)
        };
        names().map_err(|e| ClientError::Protocol(e.to_string()))
    }

    fn row(&mut self, payload: &[u8], columns: &[Column]) -> Result<(), ClientError> {
        self.fill(payload, columns)
            .map_err(|e| ClientError::Protocol(e.to_string()))
    }
}

fn binary_value(lua: &Lua, v: &BinaryValue, unsigned: bool) -> mlua::Result<Value> {
    Ok(match *v {
        BinaryValue::Null => Value::Nil,
        BinaryValue::Int1(n) if unsigned => Value::Integer(i64::from(n)),
        BinaryValue::Int1(n) => Value::Integer(i64::from(n as i8)),
        BinaryValue::Int2(n) if unsigned => Value::Integer(i64::from(n)),
        BinaryValue::Int2(n) => Value::Integer(i64::from(n as i16)),
        BinaryValue::Int4(n) if unsigned => Value::Integer(i64::from(n)),
        BinaryValue::Int4(n) => Value::Integer(i64::from(n as i32)),
        BinaryValue::Int8(n) if unsigned && n > i64::MAX as u64 => Value::Number(n as f64),
        BinaryValue::Int8(n) => Value::Integer(n as i64),
        BinaryValue::Float(f) => Value::Number(f64::from(f)),
        BinaryValue::Double(f) => Value::Number(f),
        BinaryValue::DateTime(d) => Value::String(lua.create_string(format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            d.year, d.month, d.day, d.hour, d.minute, d.second
        ))?),
        BinaryValue::Time(t) => Value::String(lua.create_string(format!(
            "{}{:02}:{:02}:{:02}",
            if t.negative { "-" } else { "" },
            u32::from(t.hours) + t.days * 24,
            t.minutes,
            t.seconds
        ))?),
        BinaryValue::Bytes(ref b) => Value::String(lua.create_string(b)?),
    })
}

/// A connection the runner drives with the script's workload function.
pub struct LuaConn {
    object: AnyUserData,
    workload: Function,
    state: Value,
    fd: RawFd,
}

impl LuaConn {
    /// Wraps `conn`; runs `setup(conn)` once if given, whose result is passed to every
    /// call of `workload` as its second argument.
    pub async fn new(
        lua: &Lua,
        conn: Conn,
        number: usize,
        thread: usize,
        workload: Function,
        setup: Option<Function>,
    ) -> Result<LuaConn, TxnError> {
        let fd = conn.fd();
        let object = lua
            .create_userdata(ConnObject {
                conn: Some(conn),
                queries: 0,
                number,
                thread,
            })
            .map_err(|e| TxnError::Script(error_line(&e)))?;
        let state = match setup {
            Some(setup) => setup
                .call_async::<Value>(object.clone())
                .await
                .map_err(lua_error)?,
            None => Value::Nil,
        };
        Ok(LuaConn {
            object,
            workload,
            state,
            fd,
        })
    }

    /// The socket's descriptor.
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// One call of the workload function; returns the queries it ran.
    pub async fn transaction(&mut self) -> Result<u64, TxnError> {
        if let Ok(mut obj) = self.object.borrow_mut::<ConnObject>() {
            obj.queries = 0;
        }
        self.workload
            .call_async::<()>((self.object.clone(), self.state.clone()))
            .await
            .map_err(lua_error)?;
        Ok(self
            .object
            .borrow::<ConnObject>()
            .map(|o| o.queries)
            .unwrap_or(0))
    }

    /// Says goodbye to the server.
    pub fn quit(&mut self) {
        if let Ok(mut obj) = self.object.borrow_mut::<ConnObject>() {
            if let Some(conn) = obj.conn.as_mut() {
                conn.quit();
            }
            obj.conn = None;
        }
    }
}

/// A Lua error from the workload: a query's (with its code) or the script's own.
fn lua_error(e: mlua::Error) -> TxnError {
    if let Some(q) = find_query_error(&e) {
        return TxnError::Query {
            code: q.code,
            message: q.to_string(),
            breaks: q.breaks,
        };
    }
    TxnError::Script(error_line(&e))
}

fn find_query_error(e: &mlua::Error) -> Option<&QueryError> {
    match e {
        mlua::Error::CallbackError { cause, .. } => find_query_error(cause),
        mlua::Error::WithContext { cause, .. } => find_query_error(cause),
        mlua::Error::ExternalError(inner) => inner.downcast_ref::<QueryError>(),
        _ => None,
    }
}
