//! The firewall's rule engine (a MaxScale dbfwfilter-like rule language): parse rules from
//! a rule file ([`RuleSet::parse`]) or structured specs ([`RuleSet::from_specs`], what
//! the Lua side builds), or both ([`RuleSet::from_sources`]), and decide on a statement
//! ([`RuleSet::check`]) in block (deny-list) or allow (allow-list) [`Mode`].
//! `docs/firewall.md` describes the language; `examples/firewall.rules` shows every
//! feature.
//!
//! `filter` is the pipeline filter that applies the rules to a session's statements.
//!
//! Files: `tokens` (a rule-file line's tokens), `rules` (rule file → definitions), `spec`
//! (structured specs → definitions), `ast` (the definitions and errors), `types`
//! (statement-type sets), `tables` (table patterns), `time_window` (`at_times`),
//! `users` (`user@host` LIKE patterns), `compiled` (the matcher), `tests`.

mod ast;
mod compiled;
mod filter;
mod rules;
mod spec;
mod tables;
#[cfg(test)]
mod tests;
mod time_window;
mod tokens;
mod types;
mod users;

pub use ast::RuleError;
pub use compiled::{Mode, RuleSet, Statement, Verdict};
pub use filter::{Firewall, INFO};
pub use spec::{RuleSpec, UsersSpec};
pub use time_window::local_seconds_of_day;
