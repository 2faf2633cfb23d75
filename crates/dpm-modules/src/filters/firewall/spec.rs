//! Rules and users lines given as structured values (what a Lua table of rules becomes):
//! [`RuleSpec`] and [`UsersSpec`] → [`Definitions`], errors as `rule 'NAME': message` and
//! `users #N: message` (N counts from 1). Values use the rule file's syntax (`"select|update"`,
//! `"db.*,t"`, `"09:00-17:00"`).

use super::ast::{Definitions, MatchMode, RuleDef, RuleError, RuleKind, UsersDef};
use super::users::UserPattern;

/// One rule: `name` and exactly one of `regex`, `no_where_clause`, `types`, `tables`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleSpec {
    pub name: String,
    pub regex: Option<String>,
    pub no_where_clause: bool,
    /// Statement types, `|`- or `,`-separated.
    pub types: Option<String>,
    /// Table patterns, `,`- or `|`-separated.
    pub tables: Option<String>,
    /// Time windows, `,`-separated.
    pub at_times: Option<String>,
    /// Statement types the rule is restricted to.
    pub on_queries: Option<String>,
}

/// One users line: patterns, `mode` (`any`, `all`, `strict_all`) and rule names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsersSpec {
    pub patterns: Vec<String>,
    pub mode: String,
    pub rules: Vec<String>,
}

/// The definitions of `rules` and `users`, in order.
pub fn from_specs(rules: &[RuleSpec], users: &[UsersSpec]) -> Result<Definitions, RuleError> {
    let mut defs = Definitions::default();
    for r in rules {
        let origin = format!("rule '{}': ", r.name);
        let def = rule(r, origin.clone()).map_err(|e| RuleError::at(&origin, e))?;
        defs.rules.push(def);
    }
    for (n, u) in users.iter().enumerate() {
        let origin = format!("users #{}: ", n + 1);
        let def = users_line(u, origin.clone()).map_err(|e| RuleError::at(&origin, e))?;
        defs.users.push(def);
    }
    Ok(defs)
}

fn rule(r: &RuleSpec, origin: String) -> Result<RuleDef, String> {
    if r.name.is_empty() {
        return Err("a rule needs a name".to_string());
    }
    let given = [
        r.regex.is_some(),
        r.no_where_clause,
        r.types.is_some(),
        r.tables.is_some(),
    ]
    .into_iter()
    .filter(|g| *g)
    .count();
    if given != 1 {
        return Err("give exactly one of regex, no_where_clause = true, type, table".to_string());
    }
    let kind = if let Some(re) = &r.regex {
        RuleKind::regex(re)?
    } else if let Some(t) = &r.types {
        RuleKind::types(t)?
    } else if let Some(t) = &r.tables {
        RuleKind::tables(t)?
    } else {
        RuleKind::NoWhereClause
    };
    RuleDef::new(
        &r.name,
        kind,
        r.at_times.as_deref(),
        r.on_queries.as_deref(),
        origin,
    )
}

fn users_line(u: &UsersSpec, origin: String) -> Result<UsersDef, String> {
    if u.patterns.is_empty() {
        return Err("no user pattern".to_string());
    }
    if u.rules.is_empty() {
        return Err("names no rules".to_string());
    }
    let mode = MatchMode::parse(&u.mode).ok_or_else(|| {
        format!(
            "unknown match mode '{}' (expected any, all or strict_all)",
            u.mode
        )
    })?;
    let patterns = u
        .patterns
        .iter()
        .map(|p| UserPattern::parse(p))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(UsersDef {
        patterns,
        mode,
        rules: u.rules.clone(),
        origin,
    })
}
