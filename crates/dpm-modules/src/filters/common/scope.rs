//! Which statements a filter acts on, the options MaxScale's filters share: `match` and
//! `exclude` (regexes on the SQL text, Rust syntax; `(?i)` for case-insensitive), `user`
//! (the session's user) and `source` (the client's IP address). A filter whose scope
//! rejects a statement leaves it alone. `match_on` takes an expression
//! ([`dpm_engine::pipeline::expr`], `lua.FETCH[,lua.CONV]…`): the regexes are then matched
//! against its value for each statement instead of the SQL.

use dpm_engine::pipeline::expr::Expr;
use dpm_engine::pipeline::{Request, SessionRef};
use dpm_engine::service::{OptionKind, OptionSpec, Options};
use regex::bytes::Regex;

/// The scope options, for a module's declaration.
pub const OPTIONS: [OptionSpec; 5] = [
    OptionSpec {
        name: "match",
        kind: OptionKind::Str,
        default: None,
        description: "only statements whose SQL this regex matches (Rust regex syntax)",
    },
    OptionSpec {
        name: "exclude",
        kind: OptionKind::Str,
        default: None,
        description: "not statements whose SQL this regex matches",
    },
    OptionSpec {
        name: "user",
        kind: OptionKind::Str,
        default: None,
        description: "only sessions of this user",
    },
    OptionSpec {
        name: "source",
        kind: OptionKind::Str,
        default: None,
        description: "only sessions from this client IP address",
    },
    OptionSpec {
        name: "match_on",
        kind: OptionKind::Str,
        default: None,
        description: "match and exclude apply to this expression's value (lua.FETCH[,lua.CONVERTER]...) instead of the SQL",
    },
];

/// A filter's scope (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct Scope {
    matches: Option<Regex>,
    excludes: Option<Regex>,
    user: Option<String>,
    source: Option<String>,
    /// What `matches`/`excludes` apply to, when not the SQL.
    on: Option<Expr>,
}

impl Scope {
    /// The scope the options give; a bad regex is an error naming the option.
    pub fn from_options(options: &Options) -> Result<Scope, String> {
        let regex = |name: &str| -> Result<Option<Regex>, String> {
            options
                .str(name)
                .map(|re| compile(re).map_err(|e| format!("option '{name}': {e}")))
                .transpose()
        };
        Ok(Scope {
            matches: regex("match")?,
            excludes: regex("exclude")?,
            user: options.str("user").map(str::to_string),
            source: options.str("source").map(str::to_string),
            on: options
                .str("match_on")
                .map(|e| Expr::parse_registered(e).map_err(|e| format!("option 'match_on': {e}")))
                .transpose()?,
        })
    }

    /// Only the session part of the scope (`user`, `source`), for a filter whose `match`
    /// option means something else (the regex filter's pattern).
    pub fn sessions_only(options: &Options) -> Scope {
        Scope {
            user: options.str("user").map(str::to_string),
            source: options.str("source").map(str::to_string),
            ..Scope::default()
        }
    }

    /// True when the session (its user, its client's `ip:port`) is in scope.
    pub fn covers_session(&self, user: Option<&[u8]>, client: Option<&str>) -> bool {
        if let Some(want) = &self.user {
            if user != Some(want.as_bytes()) {
                return false;
            }
        }
        if let Some(want) = &self.source {
            let ip = client.map(client_ip);
            if ip != Some(want.as_str()) {
                return false;
            }
        }
        true
    }

    /// True when the SQL text may be in scope (no `match`/`exclude`: every statement).
    /// With `match_on` the SQL decides nothing: true, and [`Scope::covers_statement`]
    /// decides once the statement's session is known.
    pub fn covers_sql(&self, sql: &[u8]) -> bool {
        self.on.is_some() || self.covers(sql)
    }

    fn covers(&self, subject: &[u8]) -> bool {
        self.matches.as_ref().is_none_or(|re| re.is_match(subject))
            && !self
                .excludes
                .as_ref()
                .is_some_and(|re| re.is_match(subject))
    }

    /// True when `request` of `session` is in scope of `match`/`exclude`: its SQL (none:
    /// out of scope), or with `match_on` the expression's value (nothing: the empty string).
    pub fn covers_statement(&self, session: &SessionRef, request: &Request) -> bool {
        if !self.filters_sql() {
            return true;
        }
        match &self.on {
            Some(expr) => self.covers(&expr.eval(session, Some(request)).unwrap_or_default()),
            None => request.sql().is_some_and(|sql| self.covers(sql)),
        }
    }

    /// True when the scope looks at the SQL text (or `match_on`'s value) at all.
    pub fn filters_sql(&self) -> bool {
        self.matches.is_some() || self.excludes.is_some()
    }
}

/// A regex, with the regex crate's error condensed to one line.
pub fn compile(re: &str) -> Result<Regex, String> {
    Regex::new(re).map_err(|e| one_line(&e.to_string()))
}

/// A multi-line error message on one line.
pub fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The IP of an `ip:port` or `[v6]:port` address (`localhost` for unix sockets as is).
pub fn client_ip(address: &str) -> &str {
    if let Some(rest) = address.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match address.rsplit_once(':') {
        Some((ip, port)) if !ip.contains(':') && port.parse::<u16>().is_ok() => ip,
        _ => address,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpm_engine::service::{Maturity, ModuleInfo, ModuleType, OptionValue};

    static INFO: ModuleInfo = ModuleInfo {
        kind: ModuleType::Filter,
        name: "t",
        maturity: Maturity::Alpha,
        version: "1",
        description: "t",
        options: &OPTIONS,
    };

    fn scope(opts: &[(&str, &str)]) -> Result<Scope, String> {
        let given = opts
            .iter()
            .map(|(k, v)| (k.to_string(), OptionValue::Str(v.to_string())));
        Scope::from_options(&Options::validate(&INFO, given)?)
    }

    #[test]
    fn match_exclude_user_and_source() {
        let s = scope(&[("match", "(?i)^select"), ("exclude", "secret")]).unwrap();
        assert!(s.covers_sql(b"SELECT 1"));
        assert!(!s.covers_sql(b"select * from secret"));
        assert!(!s.covers_sql(b"insert into t values (1)"));
        let s = scope(&[("user", "app"), ("source", "127.0.0.1")]).unwrap();
        assert!(s.covers_session(Some(b"app"), Some("127.0.0.1:4000")));
        assert!(!s.covers_session(Some(b"root"), Some("127.0.0.1:4000")));
        assert!(!s.covers_session(Some(b"app"), Some("10.0.0.1:4000")));
        assert!(!s.covers_session(None, None));
        assert!(Scope::default().covers_session(None, None));
        assert!(scope(&[("match", "(")])
            .unwrap_err()
            .starts_with("option 'match': regex parse error:"));
    }

    #[test]
    fn client_ips() {
        assert_eq!(client_ip("127.0.0.1:3306"), "127.0.0.1");
        assert_eq!(client_ip("[::1]:3306"), "::1");
        assert_eq!(client_ip("localhost"), "localhost");
    }
}
