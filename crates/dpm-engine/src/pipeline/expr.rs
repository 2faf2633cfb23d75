//! Sample expressions (HAProxy's sample fetches and converters), what a module option that
//! takes an expression holds: `lua.NAME` — a fetch the startup file registered with
//! `core.register_fetches` — followed by any number of `,lua.CONV` — converters
//! (`core.register_converters`) applied in order, e.g. `lua.tenant,lua.lower`.
//!
//! The engine parses and carries expressions; the [`Evaluator`] of the program's
//! generation (installed by `dpm-lua` in each Lua state, before its startup file runs)
//! checks their names and runs them: a session's expressions run in the state its
//! session started with, also after a hot reload. Only options that hold an expression pay: a session that asked for none
//! never reaches this module.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use super::{Request, SessionRef};
use crate::Worker;

/// A parsed expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expr {
    /// The fetch's name (after `lua.`).
    pub fetch: String,
    /// The converters' names (after `lua.`), in order.
    pub converters: Vec<String>,
    text: String,
}

/// Runs expressions: one per generation of each worker's program.
pub trait Evaluator {
    /// `expr`'s value for `request` of `session`; `None` when the fetch or a converter
    /// gave nothing (nil) or failed (the evaluator logged why).
    fn eval(&self, expr: &Expr, session: &SessionRef, request: Option<&Request>)
        -> Option<Vec<u8>>;
    /// `Err` naming the first fetch or converter of `expr` that is not registered.
    fn check(&self, expr: &Expr) -> Result<(), String>;
}

thread_local! {
    /// The evaluator of the startup file loading (or last loaded) on this thread: what
    /// names are checked against while it loads. Weak: it keeps no state alive.
    static LOADING: RefCell<Option<Weak<dyn Evaluator>>> = const { RefCell::new(None) };
}

/// Installs the evaluator of the generation `worker` (a script's handle) acts for, as
/// its startup file starts loading.
pub fn set_evaluator(worker: &Worker, evaluator: Rc<dyn Evaluator>) {
    LOADING.with_borrow_mut(|e| *e = Some(Rc::downgrade(&evaluator)));
    worker.generation().set_evaluator(evaluator);
}

impl Expr {
    /// Parses `lua.NAME[,lua.CONV]…`; the error says what an expression looks like.
    pub fn parse(text: &str) -> Result<Expr, String> {
        let bad = || {
            format!("'{text}' is not an expression (lua.FETCH, then any ,lua.CONVERTER: e.g. lua.tenant,lua.lower)")
        };
        let mut names = text.split(',').map(|part| {
            part.trim()
                .strip_prefix("lua.")
                .filter(|n| {
                    !n.is_empty()
                        && n.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                })
                .map(str::to_string)
                .ok_or_else(bad)
        });
        let fetch = names.next().ok_or_else(bad)??;
        let converters = names.collect::<Result<Vec<_>, _>>()?;
        Ok(Expr {
            fetch,
            converters,
            text: text.to_string(),
        })
    }

    /// [`Expr::parse`], then the names checked against what the startup file loading on
    /// this thread registered (no evaluator, as in unit tests: not checked).
    pub fn parse_registered(text: &str) -> Result<Expr, String> {
        let expr = Expr::parse(text)?;
        match LOADING.with_borrow(|e| e.as_ref().and_then(Weak::upgrade)) {
            Some(e) => e.check(&expr).map(|()| expr),
            None => Ok(expr),
        }
    }

    /// The value for `request` of `session` (`None`: nothing, or no evaluator).
    pub fn eval(&self, session: &SessionRef, request: Option<&Request>) -> Option<Vec<u8>> {
        // The session's handle acts for the session's generation (its client's).
        let evaluator = session.worker.generation().evaluator()?;
        evaluator.eval(self, session, request)
    }

    /// The expression as written.
    pub fn text(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::Expr;

    #[test]
    fn an_expression_is_a_fetch_then_converters() {
        let e = Expr::parse("lua.tenant, lua.lower,lua.x-y").unwrap();
        assert_eq!(e.fetch, "tenant");
        assert_eq!(e.converters, ["lower", "x-y"]);
        assert_eq!(e.text(), "lua.tenant, lua.lower,lua.x-y");
        for bad in ["", "tenant", "lua.", "lua.a,", "lua.a,b", "lua.a b"] {
            let err = Expr::parse(bad).unwrap_err();
            assert!(err.contains("is not an expression"), "{bad}: {err}");
        }
    }
}
