//! JSON (module diagnostics) as Lua values: objects become tables with string keys,
//! arrays sequences, null `nil`.

use mlua::{IntoLua, Lua, Value};

/// Converts a JSON value to a Lua value.
pub fn to_lua(lua: &Lua, json: &serde_json::Value) -> mlua::Result<Value> {
    Ok(match json {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Boolean(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Number(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => s.as_str().into_lua(lua)?,
        serde_json::Value::Array(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for item in items {
                t.push(to_lua(lua, item)?)?;
            }
            Value::Table(t)
        }
        serde_json::Value::Object(map) => {
            let t = lua.create_table_with_capacity(0, map.len())?;
            for (k, v) in map {
                t.set(k.as_str(), to_lua(lua, v)?)?;
            }
            Value::Table(t)
        }
    })
}

/// Converts a Lua value to JSON (a module option that is a table): a table whose keys
/// are 1..n is an array, any other a map with string keys. Functions, userdata and
/// tables nested more than 32 deep are errors naming the path.
pub fn from_lua(value: &Value, path: &str) -> Result<serde_json::Value, String> {
    from_lua_at(value, path, 0)
}

fn from_lua_at(value: &Value, path: &str, depth: usize) -> Result<serde_json::Value, String> {
    if depth > 32 {
        return Err(format!("{path}: nested too deeply"));
    }
    Ok(match value {
        Value::Nil => serde_json::Value::Null,
        Value::Boolean(b) => (*b).into(),
        Value::Integer(i) => (*i).into(),
        Value::Number(n) => serde_json::Number::from_f64(*n)
            .map(serde_json::Value::Number)
            .ok_or_else(|| format!("{path}: {n} is not a finite number"))?,
        Value::String(s) => s.to_string_lossy().into(),
        Value::Table(t) => {
            let len = t.raw_len();
            let pairs = t.clone().pairs::<Value, Value>().count();
            if pairs == len {
                let mut items = Vec::with_capacity(len);
                for (i, item) in t.clone().sequence_values::<Value>().enumerate() {
                    let item = item.map_err(|e| format!("{path}: {e}"))?;
                    items.push(from_lua_at(
                        &item,
                        &format!("{path}[{}]", i + 1),
                        depth + 1,
                    )?);
                }
                serde_json::Value::Array(items)
            } else {
                let mut map = serde_json::Map::new();
                for pair in t.clone().pairs::<Value, Value>() {
                    let (k, v) = pair.map_err(|e| format!("{path}: {e}"))?;
                    let key = match k {
                        Value::String(s) => s.to_string_lossy(),
                        Value::Integer(i) => i.to_string(),
                        other => {
                            return Err(format!(
                                "{path}: a key of type {} (keys must be strings)",
                                other.type_name()
                            ))
                        }
                    };
                    let v = from_lua_at(&v, &format!("{path}.{key}"), depth + 1)?;
                    map.insert(key, v);
                }
                serde_json::Value::Object(map)
            }
        }
        other => return Err(format!("{path}: a value of type {}", other.type_name())),
    })
}
