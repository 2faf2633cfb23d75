//! `dpm.server{ name = "db1", address = "127.0.0.1:3306", role = "primary", tls = {…} }`: declares a
//! backend server. Servers are process-wide: every worker's startup file declares the
//! same ones and gets the same server back.

use std::sync::Arc;

use dpm_engine::service::{define_server, PoolSettings, Server, ServerAddress, ServerRole};
use mlua::{Lua, Table, UserData, UserDataMethods, Value};

use super::fields::{check_fields, opt_string, req_string};
use crate::errors::raise;

/// The `dpm.server` userdata.
#[derive(Clone)]
pub struct ServerObject(pub Arc<Server>);

impl UserData for ServerObject {
    fn add_fields<F: mlua::UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field("__name", "dpm.server");
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("name", |_, this, ()| Ok(this.0.name.clone()));
        methods.add_method("address", |_, this, ()| Ok(this.0.address.to_string()));
        methods.add_method("role", |_, this, ()| Ok(this.0.role().as_str()));
        methods.add_method("is_up", |_, this, ()| Ok(this.0.is_up()));
        methods.add_method("diagnostics", |lua, this, ()| {
            super::json::to_lua(lua, &this.0.diagnostics())
        });
    }
}

/// `dpm.server{...}`.
pub fn server(lua: &Lua, spec: Value) -> mlua::Result<ServerObject> {
    let Value::Table(spec) = spec else {
        return Err(raise(
            lua,
            "dpm.server: expects a table { name = ..., address = ... }",
        ));
    };
    check_fields(
        lua,
        "dpm.server",
        &spec,
        &[
            "name",
            "address",
            "role",
            "tls",
            "backend_user",
            "backend_password",
            "persistpoolmax",
            "persistmaxtime",
        ],
    )?;
    let name = req_string(lua, "dpm.server", &spec, "name")?;
    let address = req_string(lua, "dpm.server", &spec, "address")?;
    let address = ServerAddress::parse(&address)
        .map_err(|e| raise(lua, format!("dpm.server '{name}': {e}")))?;
    let role = match opt_string(lua, "dpm.server", &spec, "role")? {
        None => ServerRole::Unknown,
        Some(r) => ServerRole::parse(&r).ok_or_else(|| {
            raise(
                lua,
                format!("dpm.server '{name}': role must be primary or replica, not '{r}'"),
            )
        })?,
    };
    let what = format!("dpm.server '{name}'");
    let tls = match super::fields::opt_table(lua, &what, &spec, "tls")? {
        Some(t) => Some(crate::tls_options::client_tls(lua, &what, &t)?),
        None => None,
    };
    let credentials = super::users::backend_credentials(lua, &what, &spec)?;
    let pool = pool_settings(lua, &what, &spec)?;
    define_server(&name, address, role, tls, credentials, pool)
        .map(ServerObject)
        .map_err(|e| raise(lua, format!("dpm.server: {e}")))
}

/// `persistpoolmax` (connections kept per worker, an integer >= 0) and `persistmaxtime`
/// (seconds one may wait in the pool, a number > 0).
fn pool_settings(lua: &Lua, what: &str, spec: &Table) -> mlua::Result<PoolSettings> {
    let mut pool = PoolSettings::default();
    match spec.get::<Value>("persistpoolmax")? {
        Value::Nil => {}
        Value::Integer(n) if (0..=100_000).contains(&n) => pool.max = n as usize,
        other => {
            return Err(raise(
                lua,
                format!(
                    "{what}: field 'persistpoolmax' must be an integer from 0 to 100000, not {}",
                    describe(&other)
                ),
            ))
        }
    }
    match spec.get::<Value>("persistmaxtime")? {
        Value::Nil => {}
        Value::Integer(n) if n > 0 => pool.max_time = std::time::Duration::from_secs(n as u64),
        Value::Number(n) if n > 0.0 && n.is_finite() => {
            pool.max_time = std::time::Duration::from_secs_f64(n)
        }
        other => {
            return Err(raise(
                lua,
                format!(
                    "{what}: field 'persistmaxtime' must be a number of seconds > 0, not {}",
                    describe(&other)
                ),
            ))
        }
    }
    Ok(pool)
}

/// A bad value as an error message shows it: numbers by value, the rest by type.
fn describe(value: &Value) -> String {
    match value {
        Value::Integer(n) => n.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.type_name().to_string(),
    }
}

/// Reads a list of `dpm.server` objects.
pub fn server_list(lua: &Lua, what: &str, list: &Table) -> mlua::Result<Vec<Arc<Server>>> {
    let mut servers = Vec::new();
    for value in list.sequence_values::<Value>() {
        match value? {
            Value::UserData(ud) => match ud.borrow::<ServerObject>() {
                Ok(s) => servers.push(s.0.clone()),
                Err(_) => {
                    return Err(raise(
                        lua,
                        format!("{what}: servers must be dpm.server objects"),
                    ))
                }
            },
            _ => {
                return Err(raise(
                    lua,
                    format!("{what}: servers must be dpm.server objects"),
                ))
            }
        }
    }
    Ok(servers)
}
