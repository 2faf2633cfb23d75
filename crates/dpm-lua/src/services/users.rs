//! `dpm.users{ { user = "app", password_hash = "*…", plugin = "mysql_native_password",
//! service = app, max_connections = 100, backend_user = "…", backend_password = "…" },
//! …, file = "users.json", rsa_private_key = "key.pem" }`: the proxy-held users (in the
//! startup file, or a JSON file of the same fields), checked by dpm itself
//! (`dpm_engine::authenticator`), and `dpm.login_throttle{ failures, window, delay }`.
//! Hashes only: a plain `password` field is refused.

use std::time::Duration;

use dpm_auth::{Plugin, StoredCredential};
use dpm_engine::authenticator::{
    define_users, set_login_throttle, set_rsa_key_file, BackendCredentials, LoginThrottle, Secret,
    UserSpec,
};
use mlua::{Lua, Table, Value};

use super::fields::{check_fields, opt_string, req_string};
use crate::errors::raise;

const USER_FIELDS: &[&str] = &[
    "user",
    "password_hash",
    "plugin",
    "service",
    "max_connections",
    "backend_user",
    "backend_password",
];

/// `dpm.users{...}`.
pub fn users(lua: &Lua, spec: Value) -> mlua::Result<()> {
    let what = "dpm.users";
    let Value::Table(spec) = spec else {
        return Err(raise(
            lua,
            "dpm.users: expects a list { { user = ..., password_hash = ..., service = ... }, ... }",
        ));
    };
    let mut users = Vec::new();
    for pair in spec.pairs::<Value, Value>() {
        let (key, value) = pair?;
        match (key, value) {
            (Value::Integer(_), Value::Table(entry)) => users.push(user(lua, what, &entry)?),
            (Value::String(k), Value::String(path)) if k.to_string_lossy() == "rsa_private_key" => {
                set_rsa_key_file(path.to_string_lossy().into())
                    .map_err(|e| raise(lua, format!("{what}: rsa_private_key: {e}")))?
            }
            (Value::String(k), Value::String(path)) if k.to_string_lossy() == "file" => {
                users.extend(user_file(lua, &path.to_string_lossy())?)
            }
            (k, _) => {
                return Err(raise(
                    lua,
                    format!(
                        "{what}: expects user tables, file = \"users.json\" and rsa_private_key = \"key.pem\", not {}",
                        match k {
                            Value::String(s) => format!("field '{}'", s.to_string_lossy()),
                            other => format!("a {}", other.type_name()),
                        }
                    ),
                ))
            }
        }
    }
    define_users(users).map_err(|e| raise(lua, format!("{what}: {e}")))
}

/// A user file: a JSON array of user objects with the fields of a user table
/// (`service` by name). Errors name the file and the entry.
fn user_file(lua: &Lua, path: &str) -> mlua::Result<Vec<UserSpec>> {
    let what = format!("dpm.users: {path}");
    let text = std::fs::read_to_string(path).map_err(|e| raise(lua, format!("{what}: {e}")))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        // serde_json names the line and column, never more of the file than that.
        raise(lua, format!("{what}: not JSON: {e}"))
    })?;
    let serde_json::Value::Array(entries) = json else {
        return Err(raise(lua, format!("{what}: expects a JSON array of users")));
    };
    let mut users = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let Value::Table(t) = super::json::to_lua(lua, entry)? else {
            return Err(raise(
                lua,
                format!("{what}: entry {} is not an object", i + 1),
            ));
        };
        users.push(user(lua, &format!("{what}: entry {}", i + 1), &t)?);
    }
    Ok(users)
}

fn user(lua: &Lua, what: &str, entry: &Table) -> mlua::Result<UserSpec> {
    if !matches!(entry.get::<Value>("password")?, Value::Nil) {
        return Err(raise(
            lua,
            format!("{what}: give password_hash (`dpm hash-password` prints one), never a plain password"),
        ));
    }
    check_fields(lua, what, entry, USER_FIELDS)?;
    let name = req_string(lua, what, entry, "user")?;
    let what = format!("{what}: user '{name}'");
    let plugin = match opt_string(lua, &what, entry, "plugin")? {
        None => Plugin::MysqlNativePassword,
        Some(p) => Plugin::from_name(&p).map_err(|e| raise(lua, format!("{what}: {e}")))?,
    };
    let hash = req_string(lua, &what, entry, "password_hash")?;
    let credential =
        StoredCredential::parse(plugin, &hash).map_err(|e| raise(lua, format!("{what}: {e}")))?;
    let service = match entry.get::<Value>("service")? {
        Value::String(s) => {
            let name = s.to_string_lossy();
            // A misspelled name would leave the real service silently pass-through. (The
            // file's own services: at a reload, those of the file being loaded.)
            if dpm_engine::service::defined_service(&name).is_none() {
                return Err(raise(
                    lua,
                    format!("{what}: no service '{name}' is defined (define a service before its users)"),
                ));
            }
            name
        }
        Value::UserData(ud) => match ud.borrow::<super::ServiceObject>() {
            Ok(s) => s.0.shared.name.clone(),
            Err(_) => {
                return Err(raise(
                    lua,
                    format!("{what}: service must be a dpm.service or its name"),
                ))
            }
        },
        Value::Nil => {
            return Err(raise(
                lua,
                format!("{what}: field 'service' is required (the service it logs in to)"),
            ))
        }
        other => {
            return Err(raise(
                lua,
                format!(
                    "{what}: service must be a dpm.service or its name, not {}",
                    other.type_name()
                ),
            ))
        }
    };
    let max_connections = match entry.get::<Value>("max_connections")? {
        Value::Nil => None,
        Value::Integer(n) if n > 0 => Some(u32::try_from(n).unwrap_or(u32::MAX)),
        _ => {
            return Err(raise(
                lua,
                format!("{what}: max_connections must be a positive integer"),
            ))
        }
    };
    let backend = backend_credentials(lua, &what, entry)?;
    Ok(UserSpec {
        user: name,
        plugin,
        credential,
        service,
        max_connections,
        backend,
    })
}

/// `backend_user` and `backend_password` of a user or server table (both or neither).
pub fn backend_credentials(
    lua: &Lua,
    what: &str,
    spec: &Table,
) -> mlua::Result<Option<BackendCredentials>> {
    let user = opt_string(lua, what, spec, "backend_user")?;
    let password = opt_string(lua, what, spec, "backend_password")?;
    match (user, password) {
        (None, None) => Ok(None),
        (Some(user), Some(password)) => Ok(Some(BackendCredentials {
            user,
            password: Secret::new(password),
        })),
        _ => Err(raise(
            lua,
            format!("{what}: give both backend_user and backend_password, or neither"),
        )),
    }
}

/// `dpm.login_throttle{ failures = 5, window = 60, delay = 2 }`.
pub fn login_throttle(lua: &Lua, spec: Table) -> mlua::Result<()> {
    let what = "dpm.login_throttle";
    check_fields(lua, what, &spec, &["failures", "window", "delay"])?;
    let defaults = LoginThrottle::default();
    let seconds = |field: &str, default: Duration| -> mlua::Result<Duration> {
        match spec.get::<Value>(field)? {
            Value::Nil => Ok(default),
            Value::Integer(n) if n >= 0 => Ok(Duration::from_secs(n as u64)),
            Value::Number(n) if n >= 0.0 => Duration::try_from_secs_f64(n).map_err(|_| {
                raise(
                    lua,
                    format!("{what}: {field} = {n} seconds is out of range"),
                )
            }),
            _ => Err(raise(
                lua,
                format!("{what}: {field} must be a number of seconds, 0 or more"),
            )),
        }
    };
    let failures = match spec.get::<Value>("failures")? {
        Value::Nil => defaults.failures,
        Value::Integer(n) if n >= 0 => u32::try_from(n).unwrap_or(u32::MAX),
        _ => {
            return Err(raise(
                lua,
                format!("{what}: failures must be an integer, 0 or more"),
            ))
        }
    };
    set_login_throttle(LoginThrottle {
        failures,
        window: seconds("window", defaults.window)?,
        delay: seconds("delay", defaults.delay)?,
    });
    Ok(())
}
