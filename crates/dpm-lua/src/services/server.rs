//! `dpm.server{ name = "db1", address = "127.0.0.1:3306", role = "primary", tls = {…} }`: declares a
//! backend server. Servers are process-wide: every worker's startup file declares the
//! same ones and gets the same server back.

use std::sync::Arc;

use dpm_engine::service::{define_server, Server, ServerAddress, ServerRole};
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
    define_server(&name, address, role, tls, credentials)
        .map(ServerObject)
        .map_err(|e| raise(lua, format!("dpm.server: {e}")))
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
