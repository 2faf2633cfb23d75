//! Users-line patterns: `user@host` with SQL LIKE wildcards (`%` any run of characters,
//! `_` one character, `\%` `\_` `\\` literal), split at the last `@`; `%` alone (or any
//! pattern without `@`) has host `%`. The user part is compared case-sensitively (MariaDB
//! account names are), the host part ASCII case-insensitively, against the session's user
//! and the client's IP address.

/// One element of a LIKE pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Like {
    /// `%`
    Any,
    /// `_`
    One,
    Char(char),
}

/// A `user@host` pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserPattern {
    user: Vec<Like>,
    host: Vec<Like>,
}

impl UserPattern {
    /// Parses `user@host` (see the module doc).
    pub fn parse(text: &str) -> Result<UserPattern, String> {
        let (user, host) = text.rsplit_once('@').unwrap_or((text, "%"));
        if user.is_empty() || host.is_empty() {
            return Err(format!(
                "bad user pattern '{text}' (expected user@host, % for any)"
            ));
        }
        Ok(UserPattern {
            user: like(user),
            host: like(host),
        })
    }

    /// Does the session `user` connected from `host` match?
    pub fn matches(&self, user: &str, host: &str) -> bool {
        like_match(&self.user, user, false) && like_match(&self.host, host, true)
    }
}

fn like(p: &str) -> Vec<Like> {
    let mut out = Vec::with_capacity(p.len());
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        out.push(match c {
            '%' => {
                if out.last() == Some(&Like::Any) {
                    continue;
                }
                Like::Any
            }
            '_' => Like::One,
            '\\' => Like::Char(chars.next().unwrap_or('\\')),
            c => Like::Char(c),
        });
    }
    out
}

/// LIKE matching with backtracking to the last `%` (linear-ish, no allocation).
fn like_match(p: &[Like], s: &str, fold_case: bool) -> bool {
    let eq = |a: char, b: char| a == b || (fold_case && a.eq_ignore_ascii_case(&b));
    let (mut pi, mut si) = (0usize, 0usize);
    // (pattern index after the last `%`, text index it is currently matched up to)
    let mut star: Option<(usize, usize)> = None;
    loop {
        let next = s[si..].chars().next();
        let step = match (p.get(pi), next) {
            (Some(Like::Any), _) => {
                star = Some((pi + 1, si));
                pi += 1;
                continue;
            }
            (Some(Like::One), Some(c)) => Some(c),
            (Some(Like::Char(pc)), Some(c)) if eq(*pc, c) => Some(c),
            (None, None) => return true,
            _ => None,
        };
        if let Some(c) = step {
            pi += 1;
            si += c.len_utf8();
            continue;
        }
        // Mismatch: let the last `%` swallow one more character.
        match star {
            Some((sp, ss)) if ss < s.len() => {
                let c = s[ss..].chars().next().map_or(1, char::len_utf8);
                star = Some((sp, ss + c));
                pi = sp;
                si = ss + c;
            }
            _ => return false,
        }
    }
}
