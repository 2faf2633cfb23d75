//! Lua values copied out of one Lua state into another ([`LuaCopy`]): nil, booleans,
//! numbers, strings, and tables of them, up to [`MAX_DEPTH`] levels deep. Each worker of
//! the proxy and each thread of `dpm bench` has its own Lua state; a value that crosses
//! threads (`dpm.collected`, `dpm bench`'s `collect`) crosses as one of these.
//!
//! It owns only the copy: functions, userdata and threads cannot cross and are an error
//! naming the caller's `FILE:LINE`, as is a table nested deeper than [`MAX_DEPTH`] (which
//! is where a table that contains itself stops).

use mlua::{Lua, Value};

use crate::errors::raise;

/// Nesting beyond which a table is not copied (a table that contains itself stops here).
pub const MAX_DEPTH: usize = 16;

/// A Lua value copied out of one Lua state, to be made again in another.
#[derive(Debug, Clone, PartialEq)]
pub enum LuaCopy {
    /// `nil`.
    Nil,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Num(f64),
    /// A string (any bytes).
    Str(Vec<u8>),
    /// A table: its pairs, in the order `pairs` gave them.
    Table(Vec<(LuaCopy, LuaCopy)>),
}

impl LuaCopy {
    /// Copies `value` out of `lua`.
    pub fn from_lua(lua: &Lua, value: &Value) -> mlua::Result<LuaCopy> {
        copy(lua, value, 0)
    }

    /// Makes the value again in `lua`.
    pub fn to_lua(&self, lua: &Lua) -> mlua::Result<Value> {
        Ok(match self {
            LuaCopy::Nil => Value::Nil,
            LuaCopy::Bool(b) => Value::Boolean(*b),
            LuaCopy::Int(n) => Value::Integer(*n),
            LuaCopy::Num(n) => Value::Number(*n),
            LuaCopy::Str(s) => Value::String(lua.create_string(s)?),
            LuaCopy::Table(pairs) => {
                let t = lua.create_table()?;
                for (k, v) in pairs {
                    t.set(k.to_lua(lua)?, v.to_lua(lua)?)?;
                }
                Value::Table(t)
            }
        })
    }
}

fn copy(lua: &Lua, value: &Value, depth: usize) -> mlua::Result<LuaCopy> {
    Ok(match value {
        Value::Nil => LuaCopy::Nil,
        Value::Boolean(b) => LuaCopy::Bool(*b),
        Value::Integer(n) => LuaCopy::Int(*n),
        Value::Number(n) => LuaCopy::Num(*n),
        Value::String(s) => LuaCopy::Str(s.as_bytes().to_vec()),
        Value::Table(t) if depth < MAX_DEPTH => {
            let mut pairs = Vec::new();
            for pair in t.pairs::<Value, Value>() {
                let (k, v) = pair?;
                pairs.push((copy(lua, &k, depth + 1)?, copy(lua, &v, depth + 1)?));
            }
            LuaCopy::Table(pairs)
        }
        Value::Table(_) => {
            return Err(raise(
                lua,
                format!("a collected table nests deeper than {MAX_DEPTH} levels"),
            ))
        }
        other => {
            return Err(raise(
                lua,
                format!("a collected value cannot be a {}", other.type_name()),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_copy_across_states_and_refuse_what_cannot_cross() {
        let a = Lua::new();
        let b = Lua::new();
        let value: Value = a
            .load("return { n = 3, name = 'w', on = true, ratio = 0.5, list = { 1, 2 } }")
            .eval()
            .unwrap();
        let copied = LuaCopy::from_lua(&a, &value).unwrap().to_lua(&b).unwrap();
        b.globals().set("v", copied).unwrap();
        let ok: bool = b
            .load(
                "return v.n == 3 and v.name == 'w' and v.on and v.ratio == 0.5 and v.list[2] == 2",
            )
            .eval()
            .unwrap();
        assert!(ok);
        let f: Value = a.load("return { f = print }").eval().unwrap();
        let err = LuaCopy::from_lua(&a, &f).unwrap_err().to_string();
        assert!(err.contains("cannot be a function"), "{err}");
        let cycle: Value = a.load("local t = {} t.t = t return t").eval().unwrap();
        let err = LuaCopy::from_lua(&a, &cycle).unwrap_err().to_string();
        assert!(err.contains("deeper than 16"), "{err}");
    }
}
