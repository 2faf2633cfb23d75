//! A service's routing hint as an expression: `dpm.service{ route = "lua.pick" }` asks the
//! router, for every client command, for the server the expression names (a fetch,
//! `crate::fetches`, then converters), as a Lua filter's `{ route = "db2" }` does; when the
//! expression gives nothing (nil, an empty string), the router decides alone. It runs
//! last in the chain, after the service's filters (their answers and rewrites come
//! first), as a plain call: fetches do not wait.

use std::rc::Rc;

use dpm_engine::pipeline::expr::Expr;
use dpm_engine::pipeline::{
    Action, Filter, FilterSession, Interest, Reply, Request, SessionRef, Step,
};
use dpm_engine::service::ModuleInfo;

/// The hint of one service, on one worker.
pub struct RouteHint {
    name: String,
    expr: Rc<Expr>,
}

impl RouteHint {
    pub fn new(expr: Expr) -> RouteHint {
        RouteHint {
            name: format!("route {}", expr.text()),
            expr: Rc::new(expr),
        }
    }
}

impl Filter for RouteHint {
    fn info(&self) -> &'static ModuleInfo {
        &super::filter::INFO
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn new_session(&self, _: &SessionRef) -> Rc<dyn FilterSession> {
        Rc::new(RouteHintSession {
            name: self.name.clone(),
            expr: self.expr.clone(),
        })
    }

    fn diagnostics(&self) -> serde_json::Value {
        serde_json::json!({ "route": self.expr.text() })
    }
}

struct RouteHintSession {
    name: String,
    expr: Rc<Expr>,
}

impl FilterSession for RouteHintSession {
    fn name(&self) -> &str {
        &self.name
    }

    fn interest(&self) -> Interest {
        Interest {
            requests: true,
            replies: false,
        }
    }

    fn route_query(self: Rc<Self>, session: SessionRef, request: Rc<Request>) -> Step<Action> {
        Step::Ready(match self.expr.eval(&session, Some(&request)) {
            Some(server) if !server.is_empty() => {
                Action::Route(String::from_utf8_lossy(&server).into_owned())
            }
            _ => Action::Forward,
        })
    }

    fn client_reply(self: Rc<Self>, _: SessionRef, _: Rc<Reply>) -> Step<()> {
        Step::Ready(())
    }
}
