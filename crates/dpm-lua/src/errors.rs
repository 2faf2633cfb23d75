//! Turning Lua errors into the one-line `file:line: message` form dpm logs and prints.

/// The first meaningful line of a Lua error: `file:line: message` when Lua knows the
/// position, without mlua's wrapping ("runtime error: …", tracebacks, callback frames).
pub fn error_line(error: &mlua::Error) -> String {
    let text = match error {
        mlua::Error::RuntimeError(message) => message.clone(),
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::CallbackError { cause, .. } => return error_line(cause),
        mlua::Error::WithContext { cause, .. } => return error_line(cause),
        mlua::Error::MemoryError(message) => format!("out of memory: {message}"),
        other => other.to_string(),
    };
    let first = text.lines().next().unwrap_or_default();
    first
        .strip_prefix("runtime error: ")
        .unwrap_or(first)
        .to_string()
}

/// A Lua error carrying `message` prefixed with the position of the nearest script
/// frame (`file:line: `), skipping the frames mlua's async functions run in (C, and its
/// own unnamed chunk): for errors raised inside a function that may wait.
pub fn raise_from_script(lua: &mlua::Lua, message: impl std::fmt::Display) -> mlua::Error {
    for level in 1..8 {
        let place = lua
            .inspect_stack(level, |debug| {
                let line = debug.current_line()?;
                let source = debug.source();
                let src = source.short_src.as_deref()?.to_string();
                (!src.starts_with("[string \"?\"]") && !src.starts_with("[C]"))
                    .then(|| format!("{src}:{line}: "))
            })
            .flatten();
        if let Some(place) = place {
            return mlua::Error::RuntimeError(format!("{place}{message}"));
        }
    }
    mlua::Error::RuntimeError(message.to_string())
}

/// A Lua error carrying `message` prefixed with the caller's position (`file:line: `),
/// as Lua's own `error(message)` would produce; for errors raised by dpm functions.
pub fn raise(lua: &mlua::Lua, message: impl std::fmt::Display) -> mlua::Error {
    let place = lua
        .inspect_stack(1, |debug| {
            let line = debug.current_line()?;
            let source = debug.source();
            let src = source.short_src.as_deref().unwrap_or("?").to_string();
            Some(format!("{src}:{line}: "))
        })
        .flatten()
        .unwrap_or_default();
    mlua::Error::RuntimeError(format!("{place}{message}"))
}

/// Raised by `txn:close()` and `txn:finish()` to end the running action there (the
/// seed: the transaction is terminated): the code that runs actions recognises it and
/// logs nothing. A `pcall` around the call catches it like any error; the transaction
/// is closed all the same.
#[derive(Debug)]
pub struct ActionEnded;

impl std::fmt::Display for ActionEnded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the transaction was closed (txn:close or txn:finish)")
    }
}

impl std::error::Error for ActionEnded {}

/// True for an error that is, or wraps, [`ActionEnded`].
pub fn is_action_end(error: &mlua::Error) -> bool {
    match error {
        mlua::Error::ExternalError(e) => e.downcast_ref::<ActionEnded>().is_some(),
        mlua::Error::CallbackError { cause, .. } | mlua::Error::WithContext { cause, .. } => {
            is_action_end(cause)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startfile_errors_name_file_and_line() {
        let lua = mlua::Lua::new();
        let err = lua
            .load("local x = 1\nerror('boom')")
            .set_name("@conf.lua")
            .exec()
            .unwrap_err();
        assert_eq!(error_line(&err), "conf.lua:2: boom");
        let err = lua
            .load("local = 1")
            .set_name("@conf.lua")
            .exec()
            .unwrap_err();
        assert!(
            error_line(&err).starts_with("conf.lua:1: "),
            "{}",
            error_line(&err)
        );
    }

    #[test]
    fn errors_raised_from_rust_carry_the_callers_position() {
        let lua = mlua::Lua::new();
        let f = lua
            .create_function(|lua, ()| -> mlua::Result<()> { Err(raise(lua, "bad thing")) })
            .unwrap();
        lua.globals().set("f", f).unwrap();
        let err = lua.load("\n\nf()").set_name("@x.lua").exec().unwrap_err();
        assert_eq!(error_line(&err), "x.lua:3: bad thing");
    }
}
