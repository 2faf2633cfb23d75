//! `listener:set_timeouts{ connect = secs, idle = secs }`: a listener's client timeouts.

use std::time::Duration;

use mlua::{Lua, MultiValue, Value};

use crate::errors::raise;

/// What a `set_timeouts` table asks for; `None` = leave as is.
#[derive(Debug, Default, PartialEq)]
pub struct TimeoutArgs {
    /// Time allowed to log in (> 0).
    pub connect: Option<Duration>,
    /// Time allowed without a command; zero = no limit.
    pub idle: Option<Duration>,
}

/// Parses the arguments of `set_timeouts`: one table with the keys `connect` and/or
/// `idle`, numbers of seconds. Errors are Lua errors at the caller's line.
pub fn parse(lua: &Lua, args: MultiValue) -> mlua::Result<TimeoutArgs> {
    const USAGE: &str = "set_timeouts takes one table: { connect = seconds, idle = seconds }";
    let mut args = args.into_iter();
    let (Some(Value::Table(table)), None) = (args.next(), args.next()) else {
        return Err(raise(lua, USAGE));
    };
    let mut out = TimeoutArgs::default();
    for pair in table.pairs::<Value, Value>() {
        let (key, value) = pair?;
        let name = match &key {
            Value::String(s) => s.to_string_lossy(),
            other => {
                return Err(raise(
                    lua,
                    format!(
                        "set_timeouts: unknown key {} (expected connect or idle)",
                        describe(other)
                    ),
                ))
            }
        };
        let seconds = match value {
            Value::Integer(n) => n as f64,
            Value::Number(n) => n,
            other => {
                return Err(raise(
                    lua,
                    format!(
                        "set_timeouts: '{name}' must be a number of seconds, got {}",
                        other.type_name()
                    ),
                ))
            }
        };
        let duration = match Duration::try_from_secs_f64(seconds) {
            Ok(d) => d,
            Err(_) if seconds < 0.0 => {
                return Err(raise(lua, format!("set_timeouts: '{name}' is negative")))
            }
            Err(_) => {
                return Err(raise(
                    lua,
                    format!("set_timeouts: '{name}' = {seconds} is out of range"),
                ))
            }
        };
        match name.as_str() {
            "connect" if duration.is_zero() => {
                return Err(raise(lua, "set_timeouts: 'connect' must be greater than 0"))
            }
            "connect" => out.connect = Some(duration),
            "idle" => out.idle = Some(duration),
            _ => {
                return Err(raise(
                    lua,
                    format!("set_timeouts: unknown key '{name}' (expected connect or idle)"),
                ))
            }
        }
    }
    Ok(out)
}

fn describe(value: &Value) -> String {
    match value {
        Value::Integer(n) => format!("[{n}]"),
        Value::Number(n) => format!("[{n}]"),
        other => format!("of type {}", other.type_name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::error_line;

    fn run(code: &str) -> Result<TimeoutArgs, String> {
        let lua = Lua::new();
        let out = std::rc::Rc::new(std::cell::RefCell::new(None));
        let sink = out.clone();
        let f = lua
            .create_function(move |lua, args: MultiValue| {
                *sink.borrow_mut() = Some(parse(lua, args)?);
                Ok(())
            })
            .unwrap();
        lua.globals().set("set_timeouts", f).unwrap();
        lua.load(code)
            .set_name("@conf.lua")
            .exec()
            .map_err(|e| error_line(&e))?;
        let parsed = out.borrow_mut().take().unwrap();
        Ok(parsed)
    }

    #[test]
    fn accepts_numbers_of_seconds() {
        assert_eq!(
            run("set_timeouts{ connect = 2, idle = 0.5 }").unwrap(),
            TimeoutArgs {
                connect: Some(Duration::from_secs(2)),
                idle: Some(Duration::from_millis(500)),
            }
        );
        assert_eq!(
            run("set_timeouts{ idle = 0 }").unwrap(),
            TimeoutArgs {
                connect: None,
                idle: Some(Duration::ZERO),
            }
        );
        assert_eq!(run("set_timeouts{}").unwrap(), TimeoutArgs::default());
    }

    #[test]
    fn mistakes_are_errors_at_the_callers_line() {
        let cases = [
            (
                "set_timeouts(5)",
                "conf.lua:1: set_timeouts takes one table: { connect = seconds, idle = seconds }",
            ),
            (
                "\nset_timeouts{ conect = 5 }",
                "conf.lua:2: set_timeouts: unknown key 'conect' (expected connect or idle)",
            ),
            (
                "set_timeouts{ 5 }",
                "conf.lua:1: set_timeouts: unknown key [1] (expected connect or idle)",
            ),
            (
                "set_timeouts{ idle = '5' }",
                "conf.lua:1: set_timeouts: 'idle' must be a number of seconds, got string",
            ),
            (
                "set_timeouts{ connect = 0 }",
                "conf.lua:1: set_timeouts: 'connect' must be greater than 0",
            ),
            (
                "set_timeouts{ idle = -1 }",
                "conf.lua:1: set_timeouts: 'idle' is negative",
            ),
            (
                "set_timeouts{ idle = 1/0 }",
                "conf.lua:1: set_timeouts: 'idle' = inf is out of range",
            ),
            (
                "set_timeouts({ idle = 1 }, 2)",
                "conf.lua:1: set_timeouts takes one table: { connect = seconds, idle = seconds }",
            ),
        ];
        for (code, want) in cases {
            assert_eq!(run(code).unwrap_err(), want, "{code}");
        }
    }
}
