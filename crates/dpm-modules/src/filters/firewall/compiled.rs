//! The compiled matcher: [`RuleSet`] and its [`check`](RuleSet::check) of one statement.
//!
//! All regex rules are compiled into one `regex::bytes::RegexSet`. Per statement the set
//! runs at most once, and only when a users line covering the session has a regex rule:
//! `is_match` first (one pass over the SQL; the common no-hit case ends there with no
//! allocation), `matches` only on a hit to learn which rules matched. Other rule kinds
//! read the caller's [`Classification`]. A `users` line in `any` mode looks at its
//! non-regex rules only when the set had no hit, so 10,000 regex rules cost one set
//! search, not 10,000 rule checks.

use std::collections::HashMap;

use regex::bytes::{RegexSet, RegexSetBuilder, SetMatches};

use crate::classifier::Classification;

use super::ast::{Definitions, MatchMode, RuleError, RuleKind};
use super::rules::parse_file;
use super::spec::{from_specs, RuleSpec, UsersSpec};
use super::tables::TablePattern;
use super::time_window::TimeWindow;
use super::users::UserPattern;

/// What a statement matching the rules means (the filter's `action` option).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Deny-list: a statement matching is denied, naming the rule; users covered by no
    /// users line are allowed.
    Block,
    /// Allow-list: a statement is allowed only if it matches; users covered by no users
    /// line are denied.
    Allow,
}

impl Mode {
    /// `block` or `allow` (case-insensitive).
    pub fn parse(word: &str) -> Option<Mode> {
        if word.eq_ignore_ascii_case("block") {
            Some(Mode::Block)
        } else if word.eq_ignore_ascii_case("allow") {
            Some(Mode::Allow)
        } else {
            None
        }
    }
}

/// One statement to check, with what the rules may look at.
#[derive(Clone, Copy, Debug)]
pub struct Statement<'a> {
    /// The SQL text (any bytes).
    pub sql: &'a [u8],
    /// The classifier's view of `sql`; needed when [`RuleSet::needs_classification`]
    /// (without it, type, table, no_where_clause and on_queries conditions do not match).
    pub classification: Option<&'a Classification>,
    /// The session's user name.
    pub user: &'a str,
    /// The client's IP address.
    pub host: &'a str,
    /// The session's default database, if known: unqualified table names are taken to be
    /// in it (otherwise they match only table patterns without a database).
    pub database: Option<&'a str>,
    /// Local time, seconds since midnight (0..86400); needed when [`RuleSet::needs_time`]
    /// ([`local_seconds_of_day`](super::local_seconds_of_day) gives it).
    pub now_seconds_of_day: u32,
}

/// The decision on a statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict<'r> {
    Allow,
    /// `rule`: the rule that denied it (block mode), `None` when no rule allowed it (allow
    /// mode). `message` is meant for the client's error packet.
    Deny {
        rule: Option<&'r str>,
        message: String,
    },
}

#[derive(Debug)]
enum Matcher {
    /// Index in the regex set.
    Regex(usize),
    NoWhere,
    Types(u64),
    Tables(Vec<TablePattern>),
}

#[derive(Debug)]
struct Rule {
    name: String,
    matcher: Matcher,
    at_times: Vec<TimeWindow>,
    on_queries: Option<u64>,
}

#[derive(Debug)]
struct Line {
    /// Empty: covers everyone (the implicit line of a rule set without users lines).
    patterns: Vec<UserPattern>,
    mode: MatchMode,
    /// Rule indices in listing order.
    rules: Vec<usize>,
    /// The rules that are not regex rules, in listing order.
    non_regex: Vec<usize>,
    has_regex: bool,
}

impl Line {
    fn covers(&self, user: &str, host: &str) -> bool {
        self.patterns.is_empty() || self.patterns.iter().any(|p| p.matches(user, host))
    }
}

/// Compiled rules and users lines.
#[derive(Debug)]
pub struct RuleSet {
    rules: Vec<Rule>,
    set: Option<RegexSet>,
    lines: Vec<Line>,
    needs_classification: bool,
    needs_time: bool,
}

/// The regex set's result for the statement being checked, computed at most once.
enum Hits {
    NotRun,
    Miss,
    Hit(SetMatches),
}

impl RuleSet {
    /// Rules from a rule file's text; `file` names it in error messages (`FILE:LINE: …`).
    pub fn parse(file: &str, text: &str) -> Result<RuleSet, RuleError> {
        RuleSet::compile(parse_file(file, text)?)
    }

    /// Rules from structured specs (errors `rule 'NAME': …`, `users #N: …`).
    pub fn from_specs(rules: &[RuleSpec], users: &[UsersSpec]) -> Result<RuleSet, RuleError> {
        RuleSet::compile(from_specs(rules, users)?)
    }

    /// A rule file (`(name, text)`, if any) and specs together: one namespace of rule
    /// names (a name defined in both is a duplicate), users lines of either may name rules
    /// of either; the file's definitions come first.
    pub fn from_sources(
        file: Option<(&str, &str)>,
        rules: &[RuleSpec],
        users: &[UsersSpec],
    ) -> Result<RuleSet, RuleError> {
        let mut defs = match file {
            Some((name, text)) => parse_file(name, text)?,
            None => Definitions::default(),
        };
        defs.extend(from_specs(rules, users)?);
        RuleSet::compile(defs)
    }

    fn compile(defs: Definitions) -> Result<RuleSet, RuleError> {
        let mut by_name: HashMap<&str, usize> = HashMap::with_capacity(defs.rules.len());
        let mut patterns: Vec<&str> = Vec::new();
        let mut rules = Vec::with_capacity(defs.rules.len());
        for (i, def) in defs.rules.iter().enumerate() {
            if let Some(&first) = by_name.get(def.name.as_str()) {
                let at = defs.rules[first].origin.trim_end_matches([' ', ':']);
                return Err(RuleError::at(
                    &def.origin,
                    format!("duplicate rule name '{}' (first defined at {at})", def.name),
                ));
            }
            by_name.insert(&def.name, i);
            let matcher = match &def.kind {
                RuleKind::Regex(re) => {
                    patterns.push(re);
                    Matcher::Regex(patterns.len() - 1)
                }
                RuleKind::NoWhereClause => Matcher::NoWhere,
                RuleKind::Types(bits) => Matcher::Types(*bits),
                RuleKind::Tables(t) => Matcher::Tables(t.clone()),
            };
            rules.push(Rule {
                name: def.name.clone(),
                matcher,
                at_times: def.at_times.clone(),
                on_queries: def.on_queries,
            });
        }
        let set = if patterns.is_empty() {
            None
        } else {
            let set = RegexSetBuilder::new(&patterns)
                // Thousands of rules exceed the default 10 MiB program limit.
                .size_limit(1 << 30)
                .dfa_size_limit(64 << 20)
                .build()
                .map_err(|e| RuleError {
                    message: format!(
                        "compiling the {} regex rules failed: {}",
                        patterns.len(),
                        e.to_string()
                            .split_whitespace()
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                })?;
            Some(set)
        };
        let mut lines = Vec::with_capacity(defs.users.len().max(1));
        for u in &defs.users {
            let mut idx = Vec::with_capacity(u.rules.len());
            for name in &u.rules {
                match by_name.get(name.as_str()) {
                    Some(&i) => idx.push(i),
                    None => {
                        return Err(RuleError::at(
                            &u.origin,
                            format!("users line names unknown rule '{name}'"),
                        ))
                    }
                }
            }
            lines.push(line(&rules, u.patterns.clone(), u.mode, idx));
        }
        if defs.users.is_empty() {
            // No users lines: every rule applies to every user, as `match any`.
            lines.push(line(
                &rules,
                Vec::new(),
                MatchMode::Any,
                (0..rules.len()).collect(),
            ));
        }
        let needs_classification = rules
            .iter()
            .any(|r| r.on_queries.is_some() || !matches!(r.matcher, Matcher::Regex(_)));
        let needs_time = rules.iter().any(|r| !r.at_times.is_empty());
        Ok(RuleSet {
            rules,
            set,
            lines,
            needs_classification,
            needs_time,
        })
    }

    /// Some rule reads the statement's classification (type, table, no_where_clause,
    /// on_queries): the caller must classify and pass it.
    pub fn needs_classification(&self) -> bool {
        self.needs_classification
    }

    /// Some rule has `at_times`: the caller must pass the local time of day.
    pub fn needs_time(&self) -> bool {
        self.needs_time
    }

    /// Number of rules.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// The decision on `st` in `mode`. The session is covered by every users line with a
    /// matching pattern (all users when there are no users lines); a line matches when
    /// some (`any`) or each (`all`, `strict_all`) of its rules matches; a rule matches when
    /// its time windows (if any) contain the time, its `on_queries` (if any) contain the
    /// statement type, and its condition holds. Block mode denies when a covering line
    /// matches, allow mode allows when one does.
    pub fn check(&self, mode: Mode, st: &Statement) -> Verdict<'_> {
        let mut hits = Hits::NotRun;
        let mut covered = false;
        for line in &self.lines {
            if !line.covers(st.user, st.host) {
                continue;
            }
            covered = true;
            if let Some(named) = self.line_matches(line, mode, st, &mut hits) {
                return match mode {
                    Mode::Allow => Verdict::Allow,
                    Mode::Block => Verdict::Deny {
                        rule: Some(&self.rules[named].name),
                        message: self.deny_message(line, named),
                    },
                };
            }
        }
        match mode {
            Mode::Block => Verdict::Allow,
            Mode::Allow => Verdict::Deny {
                rule: None,
                message: if covered {
                    "Access denied: no firewall rule allows this statement".to_string()
                } else {
                    "Access denied: no firewall rule allows this statement (no users line covers this user)"
                        .to_string()
                },
            },
        }
    }

    /// The rule to name when `line` matches, or `None`: for `any` the first matching rule
    /// in listing order, for `all`/`strict_all` the first listed.
    fn line_matches(
        &self,
        line: &Line,
        mode: Mode,
        st: &Statement,
        hits: &mut Hits,
    ) -> Option<usize> {
        match line.mode {
            MatchMode::Any => {
                let regex_hit = line.has_regex && self.regex_hit(hits, st.sql);
                let candidates = if regex_hit {
                    &line.rules
                } else {
                    &line.non_regex
                };
                candidates
                    .iter()
                    .copied()
                    .find(|&r| self.rule_matches(r, mode, st, hits))
            }
            MatchMode::All | MatchMode::StrictAll => {
                // In order, up to the first rule that does not match.
                let all = line
                    .rules
                    .iter()
                    .all(|&r| self.rule_matches(r, mode, st, hits));
                (all && !line.rules.is_empty()).then(|| line.rules[0])
            }
        }
    }

    /// A multi-statement text has several types: a `type` rule (and `on_queries`)
    /// matches in block mode when *some* statement has a listed type, in allow mode only
    /// when *every* statement has one — so `SELECT 1; DROP TABLE t` is denied by a
    /// blocking `type ddl` and not allowed by an allowing `type select`.
    fn rule_matches(&self, r: usize, mode: Mode, st: &Statement, hits: &mut Hits) -> bool {
        let rule = &self.rules[r];
        if !rule.at_times.is_empty()
            && !rule
                .at_times
                .iter()
                .any(|w| w.contains(st.now_seconds_of_day))
        {
            return false;
        }
        let c = st.classification;
        let listed = |bits: u64| {
            c.is_some_and(|c| match mode {
                Mode::Block => bits & c.kinds != 0,
                Mode::Allow => c.kinds & !bits == 0,
            })
        };
        if let Some(bits) = rule.on_queries {
            if !listed(bits) {
                return false;
            }
        }
        match &rule.matcher {
            Matcher::Regex(i) => {
                self.regex_hit(hits, st.sql) && matches!(hits, Hits::Hit(m) if m.matched(*i))
            }
            Matcher::NoWhere => c.is_some_and(|c| c.missing_where),
            Matcher::Types(bits) => listed(*bits),
            Matcher::Tables(patterns) => c.is_some_and(|c| {
                c.tables
                    .iter()
                    .any(|t| patterns.iter().any(|p| p.matches(t, st.database)))
            }),
        }
    }

    /// Runs the regex set once per statement; true if some regex matched.
    fn regex_hit(&self, hits: &mut Hits, sql: &[u8]) -> bool {
        if let Hits::NotRun = hits {
            *hits = match &self.set {
                Some(set) if set.is_match(sql) => Hits::Hit(set.matches(sql)),
                _ => Hits::Miss,
            };
        }
        matches!(hits, Hits::Hit(_))
    }

    fn deny_message(&self, line: &Line, named: usize) -> String {
        if line.mode == MatchMode::Any || line.rules.len() == 1 {
            return format!(
                "Access denied by firewall rule '{}'",
                self.rules[named].name
            );
        }
        let mut names: Vec<String> = line
            .rules
            .iter()
            .take(3)
            .map(|&r| format!("'{}'", self.rules[r].name))
            .collect();
        if line.rules.len() > 3 {
            names.push("…".to_string());
        }
        format!(
            "Access denied by firewall rules {} (all matched)",
            names.join(", ")
        )
    }
}

fn line(rules: &[Rule], patterns: Vec<UserPattern>, mode: MatchMode, idx: Vec<usize>) -> Line {
    let non_regex: Vec<usize> = idx
        .iter()
        .copied()
        .filter(|&r| !matches!(rules[r].matcher, Matcher::Regex(_)))
        .collect();
    let has_regex = non_regex.len() != idx.len();
    Line {
        patterns,
        mode,
        rules: idx,
        non_regex,
        has_regex,
    }
}
