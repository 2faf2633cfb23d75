//! `dpm.classify(sql)` and the table a classification becomes in Lua:
//! `{ type = "select", write = false, trx = nil|"begin"|"commit"|"rollback",
//!    read_only = nil|bool, autocommit = nil|bool, session_change = bool,
//!    tables = { ... }, digest = "...", digest_hash = n, statements = n, lex_error = bool }`.

use dpm_modules::classifier::{classify, Classification};
use mlua::{Lua, Table};

/// A classification as a Lua table.
pub fn to_table(lua: &Lua, c: &Classification) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("type", c.kind.as_str())?;
    t.set("write", c.may_write)?;
    t.set("trx", c.trx.map(|b| b.as_str()))?;
    t.set("read_only", c.read_only_trx)?;
    t.set("autocommit", c.autocommit)?;
    t.set("session_change", c.session_change)?;
    t.set(
        "tables",
        lua.create_sequence_from(c.tables.iter().map(String::as_str))?,
    )?;
    t.set("digest", c.digest.as_str())?;
    // The hash's 64 bits as a Lua integer (two's complement for the upper half).
    t.set("digest_hash", c.digest_hash as i64)?;
    t.set("statements", c.statements)?;
    t.set("lex_error", c.lex_error)?;
    Ok(t)
}

/// `dpm.classify(sql)`.
pub fn register(lua: &Lua, dpm: &Table) -> mlua::Result<()> {
    dpm.set(
        "classify",
        lua.create_function(|lua, sql: mlua::String| to_table(lua, &classify(&sql.as_bytes())))?,
    )
}
