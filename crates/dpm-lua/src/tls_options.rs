//! The `tls` tables of the startup file: what a listener or service offers clients
//! (`{ cert, key, min_version, require }`) and how dpm checks a server
//! (`{ ca, verify, server_name, min_version }`). Errors name the function and the field
//! and come out at the caller's `file:line`, like every other startup-file mistake.

use std::path::PathBuf;
use std::sync::Arc;

use dpm_engine::tls::{ClientTls, ClientTlsOptions, MinVersion, ServerTls, ServerTlsOptions};
use mlua::{Lua, Table};

use crate::errors::raise;
use crate::services::fields::{check_fields, opt_bool, opt_string, req_string};

/// Reads a client-facing `tls` table (certificate files are read now).
pub fn server_tls(lua: &Lua, what: &str, spec: &Table) -> mlua::Result<Arc<ServerTls>> {
    let what = format!("{what}: tls");
    check_fields(lua, &what, spec, &["cert", "key", "min_version", "require"])?;
    let options = ServerTlsOptions {
        cert: PathBuf::from(req_string(lua, &what, spec, "cert")?),
        key: PathBuf::from(req_string(lua, &what, spec, "key")?),
        min_version: min_version(lua, &what, spec)?,
        require: opt_bool(lua, &what, spec, "require")?.unwrap_or(false),
    };
    ServerTls::define(options).map_err(|e| raise(lua, format!("{what}: {e}")))
}

/// Reads a server-facing `tls` table (the CA file is read now).
pub fn client_tls(lua: &Lua, what: &str, spec: &Table) -> mlua::Result<Arc<ClientTls>> {
    let what = format!("{what}: tls");
    check_fields(
        lua,
        &what,
        spec,
        &["ca", "verify", "server_name", "min_version"],
    )?;
    let options = ClientTlsOptions {
        ca: opt_string(lua, &what, spec, "ca")?.map(PathBuf::from),
        verify: opt_bool(lua, &what, spec, "verify")?.unwrap_or(true),
        server_name: opt_string(lua, &what, spec, "server_name")?,
        min_version: min_version(lua, &what, spec)?,
    };
    ClientTls::define(options).map_err(|e| raise(lua, format!("{what}: {e}")))
}

fn min_version(lua: &Lua, what: &str, spec: &Table) -> mlua::Result<MinVersion> {
    match opt_string(lua, what, spec, "min_version")? {
        None => Ok(MinVersion::default()),
        Some(v) => MinVersion::parse(&v).map_err(|e| raise(lua, format!("{what}: {e}"))),
    }
}

/// `dpm.reload_tls()`: rereads every client-facing certificate. Returns true, or
/// nil and the errors (the certificates that failed keep the old ones).
pub fn reload_all(_: &Lua, _: ()) -> mlua::Result<(Option<bool>, Option<String>)> {
    let errors: Vec<String> = dpm_engine::tls::reload_all()
        .into_iter()
        .filter_map(|(_, result)| result.err().map(|e| e.to_string()))
        .collect();
    if errors.is_empty() {
        Ok((Some(true), None))
    } else {
        Ok((None, Some(errors.join("; "))))
    }
}
