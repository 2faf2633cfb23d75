//! `dpm.classify(sql)` and the table a classification becomes in Lua:
//! `{ type = "select", write = false, trx = nil|"begin"|"commit"|"rollback",
//!    read_only = nil|bool, autocommit = nil|bool, session_change = bool,
//!    tables = { ... }, digest = "...", digest_hash = n, statements = n, lex_error = bool,
//!    missing_where = bool }`.

use dpm_modules::classifier::{classify, Classification};
use mlua::{Lua, Table, Value};

/// The Lua strings a classification table is made of, made once per Lua state: a
/// statement is classified per query, and interning the same twelve keys and a few type
/// names every time showed in the profile (`luaS_newlstr`).
struct Strings {
    keys: [mlua::String; 12],
    names: std::cell::RefCell<std::collections::HashMap<&'static str, mlua::String>>,
}

const KEYS: [&str; 12] = [
    "type",
    "write",
    "trx",
    "read_only",
    "autocommit",
    "session_change",
    "tables",
    "digest",
    "digest_hash",
    "statements",
    "lex_error",
    "missing_where",
];

impl Strings {
    fn of(lua: &Lua) -> mlua::Result<mlua::AppDataRef<'_, Strings>> {
        if lua.app_data_ref::<Strings>().is_none() {
            let keys = KEYS.map(|k| lua.create_string(k));
            let keys = match keys {
                [a, b, c, d, e, f, g, h, i, j, k, l] => {
                    [a?, b?, c?, d?, e?, f?, g?, h?, i?, j?, k?, l?]
                }
            };
            lua.set_app_data(Strings {
                keys,
                names: Default::default(),
            });
        }
        lua.app_data_ref::<Strings>()
            .ok_or_else(|| mlua::Error::runtime("classifier strings missing"))
    }

    /// A `'static` name (statement type, boundary) as a Lua string, made once.
    fn name(&self, lua: &Lua, name: &'static str) -> mlua::Result<mlua::String> {
        if let Some(s) = self.names.borrow().get(name) {
            return Ok(s.clone());
        }
        let s = lua.create_string(name)?;
        self.names.borrow_mut().insert(name, s.clone());
        Ok(s)
    }
}

/// A classification as a new Lua table.
pub fn to_table(lua: &Lua, c: &Classification) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, KEYS.len())?;
    fill(lua, &t, c, &mut Reuse::default())?;
    Ok(t)
}

/// What a reused classification table already holds, so that refilling it for the next
/// statement only touches what changed. Why: a filter classifies every statement, and
/// most statements of an application share their digest and tables with the one before
/// (sysbench's: always); a new digest string and `tables` list per statement are
/// allocations, and garbage for Lua's collector.
#[derive(Default)]
pub struct Reuse {
    digest: Option<String>,
    tables: Option<(Vec<String>, Table)>,
}

/// Sets every field of `t` to describe `c` (fields that are nil now are cleared).
pub fn fill(lua: &Lua, t: &Table, c: &Classification, reuse: &mut Reuse) -> mlua::Result<()> {
    let strings = Strings::of(lua)?;
    let [k_type, k_write, k_trx, k_read_only, k_autocommit, k_session_change, k_tables, k_digest, k_hash, k_statements, k_lex_error, k_missing_where] =
        &strings.keys;
    t.raw_set(k_type, strings.name(lua, c.kind.as_str())?)?;
    t.raw_set(k_write, c.may_write)?;
    match c.trx {
        Some(trx) => t.raw_set(k_trx, strings.name(lua, trx.as_str())?)?,
        None => t.raw_set(k_trx, Value::Nil)?,
    }
    t.raw_set(k_read_only, c.read_only_trx)?;
    t.raw_set(k_autocommit, c.autocommit)?;
    t.raw_set(k_session_change, c.session_change)?;
    let same_tables = reuse
        .tables
        .as_ref()
        .is_some_and(|(names, _)| *names == c.tables);
    if !same_tables {
        let tables = lua.create_table_with_capacity(c.tables.len(), 0)?;
        for (i, name) in c.tables.iter().enumerate() {
            tables.raw_set(i + 1, name.as_str())?;
        }
        t.raw_set(k_tables, &tables)?;
        reuse.tables = Some((c.tables.clone(), tables));
    }
    if reuse.digest.as_deref() != Some(c.digest.as_str()) {
        t.raw_set(k_digest, c.digest.as_str())?;
        reuse.digest = Some(c.digest.clone());
    }
    // The hash's 64 bits as a Lua integer (two's complement for the upper half).
    t.raw_set(k_hash, c.digest_hash as i64)?;
    t.raw_set(k_statements, c.statements)?;
    t.raw_set(k_lex_error, c.lex_error)?;
    t.raw_set(k_missing_where, c.missing_where)?;
    Ok(())
}

/// `dpm.classify(sql)`.
pub fn register(lua: &Lua, dpm: &Table) -> mlua::Result<()> {
    dpm.set(
        "classify",
        lua.create_function(|lua, sql: mlua::String| to_table(lua, &classify(&sql.as_bytes())))?,
    )
}

#[cfg(test)]
mod tests {
    use mlua::Lua;

    #[test]
    fn table_has_every_key() {
        let lua = Lua::new();
        let dpm = lua.create_table().unwrap();
        super::register(&lua, &dpm).unwrap();
        lua.globals().set("dpm", dpm).unwrap();
        let (missing, present, lex_error, n): (bool, bool, bool, usize) = lua
            .load(
                r#"
                local c = dpm.classify("DELETE FROM t")
                local n = 0
                for _ in pairs(c) do n = n + 1 end
                return c.missing_where, dpm.classify("DELETE FROM t WHERE 1").missing_where,
                       c.lex_error, n
                "#,
            )
            .eval()
            .unwrap();
        assert!(missing);
        assert!(!present);
        assert!(!lex_error);
        // Every key but `trx` (nil without a boundary) and read_only/autocommit (nil).
        assert_eq!(n, super::KEYS.len() - 3);
    }
}
