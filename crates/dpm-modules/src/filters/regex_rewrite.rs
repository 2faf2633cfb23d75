//! `regex` — rewrites statements (MaxScale's `regexfilter`): `match`/`replace` pairs in
//! Rust regex syntax with capture groups (`$1`, `${name}`), applied in order, each to
//! the result of the one before, optionally only for one user or client address. The
//! rewritten statement is what the router, the query log and the server see.
//!
//! Every rule's pattern is also in one `RegexSet`: a statement that no rule matches —
//! the common case — costs one pass over its text, however many rules there are.

use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use dpm_engine::pipeline::{
    sql_of, Action, Filter, FilterSession, Interest, Reply, Request, SessionRef, Step,
};
use dpm_engine::service::{
    FilterDefinition, Maturity, ModuleInfo, ModuleType, OptionKind, OptionSpec, Options,
};
use regex::bytes::{Regex, RegexSet};

use super::common::scope::{self, one_line, Scope};
use super::common::session_facts::SessionFacts;

const OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        name: "match",
        kind: OptionKind::Str,
        default: None,
        description: "a regex (Rust syntax; (?i) for case-insensitive) to rewrite",
    },
    OptionSpec {
        name: "replace",
        kind: OptionKind::Str,
        default: None,
        description: "what a match of 'match' becomes ($1, ${name} insert capture groups)",
    },
    OptionSpec {
        name: "rules",
        kind: OptionKind::Table,
        default: None,
        description: "more pairs, applied in order after match/replace: { { match = \"...\", replace = \"...\" }, ... }",
    },
    scope::OPTIONS[2],
    scope::OPTIONS[3],
];

/// The module's declaration.
pub static INFO: ModuleInfo = ModuleInfo {
    kind: ModuleType::Filter,
    name: "regex",
    maturity: Maturity::Beta,
    version: "1.0.0",
    description: "Rewrites statements with regex match/replace pairs (capture groups), optionally per user or client",
    options: OPTIONS,
};

/// One match/replace pair.
struct Rule {
    pattern: Regex,
    replacement: Vec<u8>,
}

/// The process-wide rewriter.
pub struct RegexRewrite {
    name: String,
    rules: Vec<Rule>,
    any: RegexSet,
    scope: Scope,
    rewritten: AtomicU64,
    unchanged: AtomicU64,
}

impl RegexRewrite {
    /// A rewriter named `name` from checked options.
    pub fn create(name: &str, options: &Options) -> Result<Arc<dyn FilterDefinition>, String> {
        Ok(Arc::new(RegexRewrite::build(name, options)?))
    }

    fn build(name: &str, options: &Options) -> Result<RegexRewrite, String> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        match (options.str("match"), options.str("replace")) {
            (Some(m), Some(r)) => pairs.push((m.to_string(), r.to_string())),
            (None, None) => {}
            _ => return Err("filter 'regex': give 'match' and 'replace' together".into()),
        }
        if let Some(list) = options.table("rules") {
            let list = list.as_array().ok_or(
                "filter 'regex': option 'rules' must be a list of { match = ..., replace = ... }",
            )?;
            for (i, rule) in list.iter().enumerate() {
                let field = |f: &str| rule.get(f).and_then(|v| v.as_str()).map(str::to_string);
                match (field("match"), field("replace")) {
                    (Some(m), Some(r)) if rule.as_object().is_some_and(|o| o.len() == 2) => {
                        pairs.push((m, r))
                    }
                    _ => {
                        return Err(format!(
                            "filter 'regex': rules[{}] must be {{ match = \"regex\", replace = \"text\" }}",
                            i + 1
                        ))
                    }
                }
            }
        }
        if pairs.is_empty() {
            return Err("filter 'regex': give 'match' and 'replace', or 'rules'".into());
        }
        let mut rules = Vec::with_capacity(pairs.len());
        for (i, (m, r)) in pairs.iter().enumerate() {
            let pattern = scope::compile(m)
                .map_err(|e| format!("filter 'regex': rule {} ('{m}'): {e}", i + 1))?;
            rules.push(Rule {
                pattern,
                replacement: r.clone().into_bytes(),
            });
        }
        let any = RegexSet::new(pairs.iter().map(|(m, _)| m))
            .map_err(|e| format!("filter 'regex': {}", one_line(&e.to_string())))?;
        Ok(RegexRewrite {
            name: name.to_string(),
            rules,
            any,
            scope: Scope::sessions_only(options),
            rewritten: AtomicU64::new(0),
            unchanged: AtomicU64::new(0),
        })
    }

    /// The SQL after every rule, or None when no rule matched.
    fn rewrite(&self, sql: &[u8]) -> Option<Vec<u8>> {
        // The common case, no rule matches, stops at the cheaper question.
        if !self.any.is_match(sql) {
            return None;
        }
        let first = self.any.matches(sql).into_iter().next()?;
        let mut text = sql.to_vec();
        // From the first rule that matched the original on: a later rule may match
        // what an earlier one produced.
        for rule in &self.rules[first..] {
            if let std::borrow::Cow::Owned(next) =
                rule.pattern.replace_all(&text, rule.replacement.as_slice())
            {
                text = next;
            }
        }
        Some(text)
    }
}

impl FilterDefinition for RegexRewrite {
    fn name(&self) -> &str {
        &self.name
    }

    fn worker_filter(self: Arc<Self>) -> Rc<dyn Filter> {
        Rc::new(WorkerRegex(self))
    }
}

struct WorkerRegex(Arc<RegexRewrite>);

impl Filter for WorkerRegex {
    fn info(&self) -> &'static ModuleInfo {
        &INFO
    }

    fn name(&self) -> &str {
        &self.0.name
    }

    fn new_session(&self, session: &SessionRef) -> Rc<dyn FilterSession> {
        Rc::new(RegexSession {
            filter: self.0.clone(),
            client: SessionFacts::of(session).client,
        })
    }

    fn diagnostics(&self) -> serde_json::Value {
        serde_json::json!({
            "rules": self.0.rules.len(),
            "rewritten": self.0.rewritten.load(Ordering::Relaxed),
            "unchanged": self.0.unchanged.load(Ordering::Relaxed),
        })
    }
}

struct RegexSession {
    filter: Arc<RegexRewrite>,
    client: Option<String>,
}

impl FilterSession for RegexSession {
    fn name(&self) -> &str {
        &self.filter.name
    }

    fn interest(&self) -> Interest {
        Interest {
            requests: true,
            replies: false,
        }
    }

    /// Statements some rule matches: the others are not even stopped for.
    fn wants(&self, payload: &[u8]) -> bool {
        sql_of(payload).is_some_and(|sql| self.filter.any.is_match(sql))
    }

    fn route_query(self: Rc<Self>, session: SessionRef, request: Rc<Request>) -> Step<Action> {
        let f = &self.filter;
        let Some(sql) = request.sql() else {
            return Step::Ready(Action::Forward);
        };
        let user = SessionFacts::user(&session);
        if !f
            .scope
            .covers_session(user.as_deref(), self.client.as_deref())
        {
            return Step::Ready(Action::Forward);
        }
        match f.rewrite(sql) {
            Some(text) if text != sql => {
                f.rewritten.fetch_add(1, Ordering::Relaxed);
                let mut payload = BytesMut::with_capacity(1 + text.len());
                payload.put_u8(request.command);
                payload.put_slice(&text);
                Step::Ready(Action::Replace(Bytes::from(payload)))
            }
            _ => {
                f.unchanged.fetch_add(1, Ordering::Relaxed);
                Step::Ready(Action::Forward)
            }
        }
    }

    fn client_reply(self: Rc<Self>, _: SessionRef, _: Rc<Reply>) -> Step<()> {
        Step::Ready(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpm_engine::service::OptionValue;

    fn make(opts: Vec<(&str, OptionValue)>) -> Result<RegexRewrite, String> {
        let given = opts.into_iter().map(|(k, v)| (k.to_string(), v));
        RegexRewrite::build("rw", &Options::validate(&INFO, given)?)
    }

    fn rewriter(pairs: &[(&str, &str)]) -> RegexRewrite {
        let rules = pairs
            .iter()
            .map(|(m, r)| serde_json::json!({"match": m, "replace": r}))
            .collect();
        make(vec![(
            "rules",
            OptionValue::Table(serde_json::Value::Array(rules)),
        )])
        .unwrap()
    }

    #[test]
    fn rules_apply_in_order_with_capture_groups() {
        let r = rewriter(&[
            (r"(?i)from\s+old_(\w+)", "FROM new_$1"),
            (r"new_orders", "orders_v2"),
        ]);
        assert_eq!(
            r.rewrite(b"select * from old_orders where id=1").unwrap(),
            b"select * FROM orders_v2 where id=1"
        );
        assert_eq!(r.rewrite(b"select 1"), None);
        // A later rule alone.
        assert_eq!(
            r.rewrite(b"select * from new_orders").unwrap(),
            b"select * from orders_v2"
        );
    }

    #[test]
    fn options_are_checked() {
        assert_eq!(
            make(vec![("match", OptionValue::Str("x".into()))])
                .err()
                .unwrap(),
            "filter 'regex': give 'match' and 'replace' together"
        );
        assert!(make(vec![
            ("match", OptionValue::Str("(".into())),
            ("replace", OptionValue::Str("y".into()))
        ])
        .err()
        .unwrap()
        .starts_with("filter 'regex': rule 1 ('('): regex parse error:"));
        assert_eq!(
            make(vec![(
                "rules",
                OptionValue::Table(serde_json::json!([{"match": "a"}]))
            )])
            .err()
            .unwrap(),
            "filter 'regex': rules[1] must be { match = \"regex\", replace = \"text\" }"
        );
        assert!(make(vec![
            ("match", OptionValue::Str("a".into())),
            ("replace", OptionValue::Str("b".into()))
        ])
        .is_ok());
    }
}
