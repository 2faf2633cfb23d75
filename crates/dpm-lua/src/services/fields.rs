//! Reading the tables a startup file passes to `dpm.server`, `dpm.service` and
//! `dpm.filter`: unknown fields and wrong types are errors naming the function, the
//! field and what it takes, at the caller's `file:line`.

use mlua::{Lua, Table, Value};

use crate::errors::raise;

/// Fails on a field not in `known`.
pub fn check_fields(lua: &Lua, what: &str, spec: &Table, known: &[&str]) -> mlua::Result<()> {
    for pair in spec.pairs::<Value, Value>() {
        let (key, _) = pair?;
        let name = match &key {
            Value::String(s) => s.to_string_lossy(),
            other => format!("{other:?}"),
        };
        if !known.contains(&name.as_str()) {
            return Err(raise(
                lua,
                format!(
                    "{what}: unknown field '{name}' (fields: {})",
                    known.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// A string field that must be present.
pub fn req_string(lua: &Lua, what: &str, spec: &Table, field: &str) -> mlua::Result<String> {
    opt_string(lua, what, spec, field)?.ok_or_else(|| {
        raise(
            lua,
            format!("{what}: field '{field}' is required (a string)"),
        )
    })
}

/// A string field that may be absent.
pub fn opt_string(
    lua: &Lua,
    what: &str,
    spec: &Table,
    field: &str,
) -> mlua::Result<Option<String>> {
    match spec.get::<Value>(field)? {
        Value::Nil => Ok(None),
        Value::String(s) => Ok(Some(s.to_str()?.to_string())),
        other => Err(raise(
            lua,
            format!(
                "{what}: field '{field}' must be a string, not {}",
                other.type_name()
            ),
        )),
    }
}

/// A table field that may be absent.
pub fn opt_table(lua: &Lua, what: &str, spec: &Table, field: &str) -> mlua::Result<Option<Table>> {
    match spec.get::<Value>(field)? {
        Value::Nil => Ok(None),
        Value::Table(t) => Ok(Some(t)),
        other => Err(raise(
            lua,
            format!(
                "{what}: field '{field}' must be a table, not {}",
                other.type_name()
            ),
        )),
    }
}

/// A function field that may be absent.
pub fn opt_function(
    lua: &Lua,
    what: &str,
    spec: &Table,
    field: &str,
) -> mlua::Result<Option<mlua::Function>> {
    match spec.get::<Value>(field)? {
        Value::Nil => Ok(None),
        Value::Function(f) => Ok(Some(f)),
        other => Err(raise(
            lua,
            format!(
                "{what}: field '{field}' must be a function, not {}",
                other.type_name()
            ),
        )),
    }
}

/// A boolean field that may be absent.
pub fn opt_bool(lua: &Lua, what: &str, spec: &Table, field: &str) -> mlua::Result<Option<bool>> {
    match spec.get::<Value>(field)? {
        Value::Nil => Ok(None),
        Value::Boolean(b) => Ok(Some(b)),
        other => Err(raise(
            lua,
            format!(
                "{what}: field '{field}' must be a boolean, not {}",
                other.type_name()
            ),
        )),
    }
}
