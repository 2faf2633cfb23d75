//! `dpm.admin{ listen, users, tokens }` (the admin API's listener), `dpm.digests{
//! capacity }` (query digests), `dpm.set_log_level` and `dpm.log_level`: what the
//! startup file says about operating the process. The engine keeps the declarations
//! (`dpm_engine::control::admin`, `dpm_engine::digests`); the binary serves the API.

use mlua::{Lua, Table, Value};

use crate::contexts;
use crate::errors::raise;
use crate::services::fields::check_fields;

/// Registers `dpm.admin`, `dpm.set_log_level` and `dpm.log_level` on `dpm`.
pub fn register(lua: &Lua, dpm: &Table) -> mlua::Result<()> {
    dpm.set("admin", lua.create_function(admin)?)?;
    dpm.set("digests", lua.create_function(digests)?)?;
    dpm.set(
        "set_log_level",
        lua.create_function(|lua, level: String| {
            dpm_engine::control::log_level::set(&level)
                .map_err(|e| raise(lua, format!("dpm.set_log_level: {e}")))
        })?,
    )?;
    dpm.set(
        "log_level",
        lua.create_function(|_, ()| Ok(dpm_engine::control::log_level::current()))?,
    )?;
    Ok(())
}

/// `dpm.digests{ capacity = 10000 }`: query digests of every service session's
/// statements, the top `capacity` per worker.
fn digests(lua: &Lua, spec: Option<Table>) -> mlua::Result<()> {
    let what = "dpm.digests";
    contexts::in_body(lua, what)?;
    let capacity = match &spec {
        Some(spec) => {
            check_fields(lua, what, spec, &["capacity"])?;
            match spec.get::<Value>("capacity")? {
                Value::Nil => DEFAULT_DIGEST_CAPACITY,
                Value::Integer(n) if n > 0 => n as usize,
                _ => {
                    return Err(raise(
                        lua,
                        format!("{what}: capacity must be an integer of 1 or more"),
                    ))
                }
            }
        }
        None => DEFAULT_DIGEST_CAPACITY,
    };
    use dpm_modules::classifier::{digest_hash_cached, digest_into};
    dpm_engine::digests::enable(capacity, digest_hash_cached, digest_into)
        .map_err(|e| raise(lua, e))
}

/// Digest entries kept per worker unless the startup file says otherwise.
const DEFAULT_DIGEST_CAPACITY: usize = 10_000;

/// `dpm.admin{ listen = "127.0.0.1:8989", users = { admin = HASH }, tokens = { T } }`.
fn admin(lua: &Lua, spec: Table) -> mlua::Result<()> {
    let what = "dpm.admin";
    contexts::in_body(lua, what)?;
    check_fields(lua, what, &spec, &["listen", "users", "tokens"])?;
    let listen: String = match spec.get::<Value>("listen")? {
        Value::String(s) => s.to_str()?.to_string(),
        Value::Nil => {
            return Err(raise(
                lua,
                format!("{what}: listen (\"host:port\") is required"),
            ))
        }
        other => {
            return Err(raise(
                lua,
                format!(
                    "{what}: listen must be a \"host:port\" string, not a {}",
                    other.type_name()
                ),
            ))
        }
    };
    let listen = listen.parse().map_err(|_| {
        raise(
            lua,
            format!("{what}: listen = '{listen}' is not an IP address and port (\"127.0.0.1:8989\", \"[::1]:8989\")"),
        )
    })?;
    let mut users = Vec::new();
    match spec.get::<Value>("users")? {
        Value::Nil => {}
        Value::Table(t) => {
            for pair in t.pairs::<Value, Value>() {
                match pair? {
                    (Value::String(user), Value::String(hash)) => {
                        users.push((user.to_str()?.to_string(), hash.to_str()?.to_string()))
                    }
                    _ => {
                        return Err(raise(
                            lua,
                            format!(
                                "{what}: users must map user names to password hashes (strings)"
                            ),
                        ))
                    }
                }
            }
        }
        other => {
            return Err(raise(
                lua,
                format!("{what}: users must be a table, not a {}", other.type_name()),
            ))
        }
    }
    users.sort();
    let mut tokens = Vec::new();
    match spec.get::<Value>("tokens")? {
        Value::Nil => {}
        Value::Table(t) => {
            for token in t.sequence_values::<Value>() {
                match token? {
                    Value::String(s) => tokens.push(s.to_str()?.to_string()),
                    _ => {
                        return Err(raise(
                            lua,
                            format!("{what}: tokens must be a list of strings"),
                        ))
                    }
                }
            }
        }
        other => {
            return Err(raise(
                lua,
                format!("{what}: tokens must be a list, not a {}", other.type_name()),
            ))
        }
    }
    let spec = dpm_engine::control::admin::AdminSpec {
        listen,
        users,
        tokens,
    };
    let bind = !dpm_engine::control::check::check_only();
    dpm_engine::control::admin::declare(spec, bind).map_err(|e| raise(lua, e))
}
