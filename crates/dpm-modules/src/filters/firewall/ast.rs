//! What a rule source says, before compilation: rule and users definitions as the rule
//! file parser ([`super::rules`]) and the structured specs ([`super::spec`]) produce them,
//! each with the prefix its errors carry (`FILE:LINE: `, `rule 'NAME': `, `users #N: `).
//! Values are already checked (regexes parse, types and tables are known shapes, times are
//! valid); cross-references (unknown or duplicate rule names) are checked when compiling.

use std::fmt;

use super::tables::TablePattern;
use super::time_window::TimeWindow;
use super::types::parse_types;
use super::users::UserPattern;

/// A rule-source error; the message starts with where (`FILE:LINE: `, `rule 'NAME': `,
/// `users #N: `) unless it concerns the whole set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    pub message: String,
}

impl RuleError {
    pub(crate) fn at(prefix: &str, message: impl fmt::Display) -> RuleError {
        RuleError {
            message: format!("{prefix}{message}"),
        }
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RuleError {}

/// What a rule matches.
#[derive(Clone, Debug)]
pub enum RuleKind {
    /// A regex (checked to parse) searched in the SQL text.
    Regex(String),
    /// An UPDATE/DELETE without WHERE.
    NoWhereClause,
    /// Statement types: bit `t as u32` set for each [`StatementType`](crate::classifier::StatementType).
    Types(u64),
    /// Any table the classifier found matches one of these.
    Tables(Vec<TablePattern>),
}

impl RuleKind {
    /// A regex rule, if `re` parses as the matcher will compile it (`regex::bytes`
    /// defaults: Unicode on, any byte allowed); the parser's message is condensed to one
    /// line.
    pub fn regex(re: &str) -> Result<RuleKind, String> {
        let parsed = regex_syntax::ParserBuilder::new()
            .utf8(false)
            .build()
            .parse(re);
        match parsed {
            Ok(_) => Ok(RuleKind::Regex(re.to_string())),
            Err(e) => {
                let (what, at) = match &e {
                    regex_syntax::Error::Parse(e) => (e.kind().to_string(), e.span().start.offset),
                    regex_syntax::Error::Translate(e) => {
                        (e.kind().to_string(), e.span().start.offset)
                    }
                    other => (one_line(&other.to_string()), 0),
                };
                Err(format!("bad regex '{re}': {what} (at offset {at})"))
            }
        }
    }

    /// A `type` rule from a list of statement type names.
    pub fn types(list: &str) -> Result<RuleKind, String> {
        parse_types(list).map(RuleKind::Types)
    }

    /// A `table` rule from a list of table patterns.
    pub fn tables(list: &str) -> Result<RuleKind, String> {
        TablePattern::parse_list(list).map(RuleKind::Tables)
    }
}

/// A multi-line message on one line (lines trimmed, joined by a space).
fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// One rule.
#[derive(Clone, Debug)]
pub struct RuleDef {
    pub name: String,
    pub kind: RuleKind,
    /// Empty: always active.
    pub at_times: Vec<TimeWindow>,
    /// Statement-type bits the rule is restricted to; `None`: all.
    pub on_queries: Option<u64>,
    /// Error prefix: `FILE:LINE: ` or `rule 'NAME': `.
    pub origin: String,
}

impl RuleDef {
    /// A rule with its optional `at_times` and `on_queries` values checked.
    pub fn new(
        name: &str,
        kind: RuleKind,
        at_times: Option<&str>,
        on_queries: Option<&str>,
        origin: String,
    ) -> Result<RuleDef, String> {
        let at_times = match at_times {
            Some(list) => TimeWindow::parse_list(list)?,
            None => Vec::new(),
        };
        let on_queries = on_queries.map(parse_types).transpose()?;
        Ok(RuleDef {
            name: name.to_string(),
            kind,
            at_times,
            on_queries,
            origin,
        })
    }
}

/// How a users line combines its rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchMode {
    /// Some listed rule matches.
    Any,
    /// Every listed rule matches.
    All,
    /// Every listed rule matches, evaluated in order up to the first that does not (the
    /// same result as `All`, which also stops there: rules have no side effects).
    StrictAll,
}

impl MatchMode {
    /// `any`, `all` or `strict_all` (case-insensitive).
    pub fn parse(word: &str) -> Option<MatchMode> {
        if word.eq_ignore_ascii_case("any") {
            Some(MatchMode::Any)
        } else if word.eq_ignore_ascii_case("all") {
            Some(MatchMode::All)
        } else if word.eq_ignore_ascii_case("strict_all") {
            Some(MatchMode::StrictAll)
        } else {
            None
        }
    }
}

/// One users line.
#[derive(Clone, Debug)]
pub struct UsersDef {
    pub patterns: Vec<UserPattern>,
    pub mode: MatchMode,
    /// Rule names, as written (checked against the rules when compiling).
    pub rules: Vec<String>,
    /// Error prefix: `FILE:LINE: ` or `users #N: `.
    pub origin: String,
}

/// The definitions of one or more sources, in order.
#[derive(Clone, Debug, Default)]
pub struct Definitions {
    pub rules: Vec<RuleDef>,
    pub users: Vec<UsersDef>,
}

impl Definitions {
    /// Appends `other`'s rules and users lines after this one's.
    pub fn extend(&mut self, other: Definitions) {
        self.rules.extend(other.rules);
        self.users.extend(other.users);
    }
}

/// The items of a list value (`a|b`, `a,b`, `a, b`): separated by `|` or `,`, trimmed. An
/// empty item (`a||b`, a trailing separator) is an error naming `what`.
pub fn list_items<'a>(list: &'a str, what: &str) -> Result<Vec<&'a str>, String> {
    let items: Vec<&str> = list.split([',', '|']).map(str::trim).collect();
    if items.iter().any(|i| i.is_empty()) {
        return Err(format!("empty {what} in '{list}'"));
    }
    Ok(items)
}
