//! The rule file parser: text → [`Definitions`], one definition per line, errors as
//! `FILE:LINE: message`. Keywords are case-insensitive; rule names are not.
//!
//! ```text
//! rule NAME match|deny regex 'RE' | no_where_clause | type T[|T…] | table D.T[,D.T…]
//!      [at_times HH:MM[:SS]-HH:MM[:SS][,…]] [on_queries T[|T…]]
//! users PATTERN [PATTERN…] match any|all|strict_all rules NAME [NAME…]
//! ```
//!
//! A list value may be split over several tokens at its separators (`table a, b`).

use super::ast::{Definitions, MatchMode, RuleDef, RuleError, RuleKind, UsersDef};
use super::tokens::{tokenize, Tok};
use super::users::UserPattern;

/// Parses the rule file `text`; `file` names it in error messages.
pub fn parse_file(file: &str, text: &str) -> Result<Definitions, RuleError> {
    let mut defs = Definitions::default();
    for (n, line) in text.lines().enumerate() {
        let origin = || format!("{file}:{}: ", n + 1);
        let toks = tokenize(line).map_err(|e| RuleError::at(&origin(), e))?;
        let Some(first) = toks.first() else {
            continue;
        };
        if keyword(first, "rule") {
            let rule = parse_rule(&toks, origin()).map_err(|e| RuleError::at(&origin(), e))?;
            defs.rules.push(rule);
        } else if keyword(first, "users") {
            let users = parse_users(&toks, origin()).map_err(|e| RuleError::at(&origin(), e))?;
            defs.users.push(users);
        } else {
            return Err(RuleError::at(
                &origin(),
                format!("unknown keyword '{}' (expected rule or users)", first.text),
            ));
        }
    }
    Ok(defs)
}

/// An unquoted token equal to `word`, ignoring ASCII case.
fn keyword(t: &Tok, word: &str) -> bool {
    !t.quoted && t.text.eq_ignore_ascii_case(word)
}

/// The value at `*i`, joined with the following tokens while a list separator (`,` `|`)
/// dangles between them; advances `*i` past it.
fn take_value(toks: &[Tok], i: &mut usize, what: &str) -> Result<String, String> {
    let Some(t) = toks.get(*i) else {
        return Err(format!("{what} without a value"));
    };
    let mut value = t.text.clone();
    *i += 1;
    if t.quoted {
        return Ok(value);
    }
    let sep = |s: &str, at_end: bool| {
        let c = if at_end {
            s.chars().last()
        } else {
            s.chars().next()
        };
        matches!(c, Some(',' | '|'))
    };
    while let Some(next) = toks.get(*i) {
        if next.quoted || !(sep(&value, true) || sep(&next.text, false)) {
            break;
        }
        value.push_str(&next.text);
        *i += 1;
    }
    Ok(value)
}

fn parse_rule(toks: &[Tok], origin: String) -> Result<RuleDef, String> {
    let name = toks.get(1).ok_or("rule without a name")?.text.as_str();
    match toks.get(2) {
        Some(t) if keyword(t, "match") || keyword(t, "deny") => {}
        Some(t) => {
            return Err(format!(
                "expected 'match' after rule name '{name}', found '{}'",
                t.text
            ))
        }
        None => return Err(format!("rule '{name}' without 'match TYPE'")),
    }
    let kind_tok = toks
        .get(3)
        .ok_or_else(|| format!("rule '{name}' without a type after 'match'"))?;
    let mut i = 4;
    let kind = if keyword(kind_tok, "regex") {
        let re = toks.get(i).ok_or("regex without a pattern")?;
        i += 1;
        RuleKind::regex(&re.text)?
    } else if keyword(kind_tok, "no_where_clause") {
        RuleKind::NoWhereClause
    } else if keyword(kind_tok, "type") {
        RuleKind::types(&take_value(toks, &mut i, "type")?)?
    } else if keyword(kind_tok, "table") {
        RuleKind::tables(&take_value(toks, &mut i, "table")?)?
    } else {
        return Err(format!(
            "unknown rule type '{}' (expected regex, no_where_clause, type or table)",
            kind_tok.text
        ));
    };
    let mut at_times: Option<String> = None;
    let mut on_queries: Option<String> = None;
    while let Some(t) = toks.get(i) {
        i += 1;
        let slot = if keyword(t, "at_times") {
            &mut at_times
        } else if keyword(t, "on_queries") {
            &mut on_queries
        } else {
            return Err(format!(
                "unknown keyword '{}' (expected at_times or on_queries)",
                t.text
            ));
        };
        if slot.is_some() {
            return Err(format!("{} given twice", t.text.to_ascii_lowercase()));
        }
        *slot = Some(take_value(toks, &mut i, &t.text.to_ascii_lowercase())?);
    }
    RuleDef::new(
        name,
        kind,
        at_times.as_deref(),
        on_queries.as_deref(),
        origin,
    )
}

fn parse_users(toks: &[Tok], origin: String) -> Result<UsersDef, String> {
    let m = toks
        .iter()
        .position(|t| keyword(t, "match"))
        .ok_or("users line without 'match any|all|strict_all rules …'")?;
    if m == 1 {
        return Err("users line without a user pattern".to_string());
    }
    let patterns = toks[1..m]
        .iter()
        .map(|t| UserPattern::parse(&t.text))
        .collect::<Result<Vec<_>, _>>()?;
    let mode_tok = toks
        .get(m + 1)
        .ok_or("expected any, all or strict_all after 'match'")?;
    let mode = MatchMode::parse(&mode_tok.text).ok_or_else(|| {
        format!(
            "unknown match mode '{}' (expected any, all or strict_all)",
            mode_tok.text
        )
    })?;
    match toks.get(m + 2) {
        Some(t) if keyword(t, "rules") => {}
        Some(t) => {
            return Err(format!(
                "expected 'rules' after the match mode, found '{}'",
                t.text
            ))
        }
        None => return Err("expected 'rules NAME…' after the match mode".to_string()),
    }
    let rules: Vec<String> = toks[m + 3..].iter().map(|t| t.text.clone()).collect();
    if rules.is_empty() {
        return Err("users line names no rules".to_string());
    }
    Ok(UsersDef {
        patterns,
        mode,
        rules,
        origin,
    })
}
