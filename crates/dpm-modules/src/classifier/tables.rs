//! Table names a statement mentions, from its tokens: `FROM` lists, `JOIN`, `INSERT/REPLACE
//! [INTO]`, `UPDATE` lists, `DELETE … USING`, `LOAD DATA … INTO TABLE`, `REFERENCES`, the
//! object of `CREATE/ALTER/DROP/RENAME/TRUNCATE TABLE|VIEW|SEQUENCE`, `CREATE INDEX/TRIGGER
//! … ON`, `LOCK TABLES`, `HANDLER`, `DESCRIBE`, `SHOW CREATE TABLE`, `SHOW COLUMNS/INDEX
//! FROM`, and `CHECK/OPTIMIZE/REPAIR/ANALYZE TABLE`.
//!
//! Names are `db.table` when qualified, backticks removed (doubled backticks undoubled),
//! in order of appearance, deduplicated (exact bytes). CTE names are not tables (the caller
//! removes them). `FROM` counts at statement level and directly inside a subquery's
//! parentheses, not inside function arguments (`EXTRACT(YEAR FROM d)`).

use super::keywords::Kw;
use super::lexer::{is_op, kw, Tk, Token};

/// At most this many distinct names are kept per classification (dedup is linear).
pub const MAX_TABLES: usize = 4096;

/// Index after the parenthesised group opening at `i` (or `toks.len()` if unbalanced).
pub fn skip_group(sql: &[u8], toks: &[Token], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < toks.len() {
        if toks[i].is_op(sql, b'(') {
            depth += 1;
        } else if toks[i].is_op(sql, b')') {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                return i + 1;
            }
        }
        i += 1;
    }
    i
}

/// An identifier token's name: a word that is not a reserved keyword, or a quoted identifier.
#[inline]
fn is_name(t: &Token) -> bool {
    (t.tk == Tk::Word && !t.kw.reserved()) || t.tk == Tk::Quoted
}

fn push_ident(sql: &[u8], t: &Token, out: &mut Vec<u8>) {
    let text = t.text(sql);
    if t.tk == Tk::Quoted {
        let inner = &text[1..text.len() - 1];
        let mut k = 0;
        while k < inner.len() {
            out.push(inner[k]);
            k += if inner[k] == b'`' { 2 } else { 1 };
        }
    } else {
        out.extend_from_slice(text);
    }
}

/// A table reference `name` or `db.name` at `i`: pushes it and returns the index after it.
pub fn table_ref(sql: &[u8], toks: &[Token], i: usize, out: &mut Vec<String>) -> Option<usize> {
    let t = toks.get(i)?;
    if !is_name(t) {
        return None;
    }
    let mut name = Vec::with_capacity(24);
    push_ident(sql, t, &mut name);
    let mut next = i + 1;
    if is_op(sql, toks, next, b'.') {
        if let Some(u) = toks.get(next + 1) {
            if matches!(u.tk, Tk::Word | Tk::Quoted) {
                name.push(b'.');
                push_ident(sql, u, &mut name);
                next += 2;
            }
        }
    }
    push_name(name, out);
    Some(next)
}

fn push_name(name: Vec<u8>, out: &mut Vec<String>) {
    if out.len() >= MAX_TABLES || out.iter().any(|s| s.as_bytes() == name.as_slice()) {
        return;
    }
    out.push(match String::from_utf8(name) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    });
}

/// A comma-separated list of table references with optional aliases, partitions and index
/// hints (`FROM a x, b AS y USE INDEX (i)`); parenthesised items are skipped (their
/// contents are seen by the generic scan).
pub fn table_list(sql: &[u8], toks: &[Token], mut i: usize, out: &mut Vec<String>) {
    loop {
        let mut j = if is_op(sql, toks, i, b'(') {
            skip_group(sql, toks, i)
        } else {
            match table_ref(sql, toks, i, out) {
                Some(j) => j,
                None => return,
            }
        };
        // alias
        if kw(toks, j) == Kw::AS {
            j += 2;
        } else if toks.get(j).is_some_and(is_name) {
            j += 1;
        }
        // PARTITION (p) and index hints USE|IGNORE|FORCE INDEX|KEY [FOR …] (…)
        while matches!(
            kw(toks, j),
            Kw::PARTITION | Kw::USE | Kw::IGNORE | Kw::FORCE
        ) {
            while j < toks.len() && !toks[j].is_op(sql, b'(') {
                j += 1;
            }
            j = skip_group(sql, toks, j);
        }
        if is_op(sql, toks, j, b',') {
            i = j + 1;
        } else {
            return;
        }
    }
}

/// The head-specific rule for the statement whose head keyword is at `h`.
pub fn head_rule(sql: &[u8], toks: &[Token], h: usize, out: &mut Vec<String>) {
    let n = toks.len();
    let mut j = h + 1;
    match kw(toks, h) {
        Kw::INSERT | Kw::REPLACE => {
            while matches!(
                kw(toks, j),
                Kw::LOW_PRIORITY | Kw::DELAYED | Kw::HIGH_PRIORITY | Kw::IGNORE
            ) {
                j += 1;
            }
            if kw(toks, j) != Kw::INTO {
                table_ref(sql, toks, j, out);
            }
        }
        Kw::UPDATE => {
            while matches!(kw(toks, j), Kw::LOW_PRIORITY | Kw::IGNORE) {
                j += 1;
            }
            table_list(sql, toks, j, out);
        }
        Kw::CREATE | Kw::ALTER | Kw::DROP | Kw::RENAME | Kw::TRUNCATE => {
            let head = kw(toks, h);
            // Find the object keyword within the first few tokens (after OR REPLACE,
            // TEMPORARY, ONLINE, IGNORE, ALGORITHM=…, DEFINER=…, SQL SECURITY …).
            let limit = (h + 16).min(n);
            while j < limit {
                match kw(toks, j) {
                    Kw::TABLE | Kw::TABLES | Kw::SEQUENCE | Kw::VIEW => break,
                    Kw::INDEX | Kw::TRIGGER => {
                        // … name ON table
                        let mut k = j + 1;
                        while k < n && kw(toks, k) != Kw::ON && toks[k].tk != Tk::Semi {
                            if toks[k].is_op(sql, b'(') {
                                break;
                            }
                            k += 1;
                        }
                        if kw(toks, k) == Kw::ON {
                            table_ref(sql, toks, k + 1, out);
                        }
                        return;
                    }
                    Kw::DATABASE
                    | Kw::SCHEMA
                    | Kw::PROCEDURE
                    | Kw::FUNCTION
                    | Kw::EVENT
                    | Kw::USER
                    | Kw::ROLE
                    | Kw::PREPARE => return,
                    _ => j += 1,
                }
            }
            if j >= limit {
                if head == Kw::TRUNCATE {
                    table_ref(sql, toks, h + 1, out);
                }
                return;
            }
            j += 1;
            if kw(toks, j) == Kw::IF {
                j += 1;
                if kw(toks, j) == Kw::NOT {
                    j += 1;
                }
                if kw(toks, j) == Kw::EXISTS {
                    j += 1;
                }
            }
            match head {
                Kw::DROP | Kw::RENAME => loop {
                    let Some(mut k) = table_ref(sql, toks, j, out) else {
                        return;
                    };
                    if kw(toks, k) == Kw::TO {
                        match table_ref(sql, toks, k + 1, out) {
                            Some(k2) => k = k2,
                            None => return,
                        }
                    }
                    if is_op(sql, toks, k, b',') {
                        j = k + 1;
                    } else {
                        return;
                    }
                },
                _ => {
                    if let Some(k) = table_ref(sql, toks, j, out) {
                        if kw(toks, k) == Kw::LIKE {
                            table_ref(sql, toks, k + 1, out);
                        }
                    }
                }
            }
        }
        Kw::LOCK => {
            if !matches!(kw(toks, j), Kw::TABLE | Kw::TABLES) {
                return;
            }
            j += 1;
            loop {
                if table_ref(sql, toks, j, out).is_none() {
                    return;
                }
                while j < n && !toks[j].is_op(sql, b',') {
                    j += 1;
                }
                j += 1;
                if j >= n {
                    return;
                }
            }
        }
        Kw::HANDLER | Kw::DESCRIBE | Kw::DESC | Kw::EXPLAIN => {
            table_ref(sql, toks, j, out);
        }
        Kw::SHOW => {
            while matches!(kw(toks, j), Kw::FULL | Kw::EXTENDED) {
                j += 1;
            }
            match kw(toks, j) {
                Kw::CREATE if matches!(kw(toks, j + 1), Kw::TABLE | Kw::VIEW | Kw::SEQUENCE) => {
                    table_ref(sql, toks, j + 2, out);
                }
                Kw::COLUMNS | Kw::FIELDS | Kw::INDEX | Kw::INDEXES | Kw::KEYS
                    if matches!(kw(toks, j + 1), Kw::FROM | Kw::IN) =>
                {
                    table_ref(sql, toks, j + 2, out);
                }
                _ => {}
            }
        }
        Kw::CHECK | Kw::CHECKSUM | Kw::OPTIMIZE | Kw::REPAIR | Kw::ANALYZE => {
            while matches!(kw(toks, j), Kw::NO_WRITE_TO_BINLOG | Kw::LOCAL) {
                j += 1;
            }
            if matches!(kw(toks, j), Kw::TABLE | Kw::TABLES) {
                table_list(sql, toks, j + 1, out);
            }
        }
        _ => {}
    }
}

/// The generic scan over a whole statement (see the module doc). `h` is the head index.
pub fn generic(sql: &[u8], toks: &[Token], h: usize, out: &mut Vec<String>) {
    let n = toks.len();
    let head = kw(toks, h);
    // Bit d of `query` is set when the paren at depth d+1 holds a query (or a table
    // reference); deeper than 64 levels counts as a query.
    let mut query: u64 = 0;
    let mut depth: usize = 0;
    for i in 0..n {
        let t = toks[i];
        match t.tk {
            Tk::Op => {
                if t.is_op(sql, b'(') {
                    let q = matches!(kw(toks, i + 1), Kw::SELECT | Kw::WITH | Kw::VALUES)
                        || is_op(sql, toks, i + 1, b'(')
                        || (i > 0
                            && matches!(kw(toks, i - 1), Kw::FROM | Kw::JOIN | Kw::STRAIGHT_JOIN));
                    if depth < 64 {
                        if q {
                            query |= 1 << depth;
                        } else {
                            query &= !(1 << depth);
                        }
                    }
                    depth += 1;
                } else if t.is_op(sql, b')') {
                    depth = depth.saturating_sub(1);
                }
            }
            Tk::Word => {
                let in_query = depth == 0 || depth > 64 || query & (1 << (depth - 1)) != 0;
                match t.kw {
                    Kw::FROM if in_query => table_list(sql, toks, i + 1, out),
                    Kw::JOIN if in_query => {
                        table_ref(sql, toks, i + 1, out);
                    }
                    Kw::STRAIGHT_JOIN if in_query && i > 0 => {
                        // `SELECT STRAIGHT_JOIN …` is a modifier; `a STRAIGHT_JOIN b` a join.
                        let p = toks[i - 1];
                        if is_name(&p) || p.is_op(sql, b')') {
                            table_ref(sql, toks, i + 1, out);
                        }
                    }
                    Kw::INTO if in_query => {
                        let after_insert = i > 0
                            && matches!(
                                kw(toks, i - 1),
                                Kw::INSERT
                                    | Kw::REPLACE
                                    | Kw::IGNORE
                                    | Kw::LOW_PRIORITY
                                    | Kw::DELAYED
                                    | Kw::HIGH_PRIORITY
                            );
                        if kw(toks, i + 1) == Kw::TABLE {
                            table_ref(sql, toks, i + 2, out);
                        } else if after_insert {
                            table_ref(sql, toks, i + 1, out);
                        }
                    }
                    // INSERT/REPLACE/UPDATE starting a statement inside a compound body.
                    Kw::INSERT | Kw::REPLACE | Kw::UPDATE if i > h && body_start(toks, i - 1) => {
                        head_rule(sql, toks, i, out);
                    }
                    Kw::REFERENCES => {
                        table_ref(sql, toks, i + 1, out);
                    }
                    Kw::USING
                        if head == Kw::DELETE && in_query && !is_op(sql, toks, i + 1, b'(') =>
                    {
                        table_list(sql, toks, i + 1, out)
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

/// The token before a statement inside a compound body (`;`, BEGIN, THEN, ELSE, DO, …).
#[inline]
fn body_start(toks: &[Token], p: usize) -> bool {
    let t = toks[p];
    t.tk == Tk::Semi
        || (t.tk == Tk::Word
            && matches!(
                t.kw,
                Kw::BEGIN | Kw::THEN | Kw::ELSE | Kw::DO | Kw::LOOP | Kw::REPEAT
            ))
}

/// Names of the CTEs of a `WITH` clause whose `WITH` is at `w`, and the index after the
/// clause (where the main statement starts).
pub fn cte_names(sql: &[u8], toks: &[Token], w: usize) -> (Vec<Vec<u8>>, usize) {
    let mut names = Vec::new();
    let mut j = w + 1;
    if kw(toks, j) == Kw::RECURSIVE {
        j += 1;
    }
    while let Some(t) = toks.get(j) {
        if !is_name(t) {
            break;
        }
        let mut name = Vec::new();
        push_ident(sql, t, &mut name);
        names.push(name);
        j += 1;
        if is_op(sql, toks, j, b'(') {
            j = skip_group(sql, toks, j);
        }
        if kw(toks, j) != Kw::AS {
            break;
        }
        j += 1;
        if !is_op(sql, toks, j, b'(') {
            break;
        }
        j = skip_group(sql, toks, j);
        if is_op(sql, toks, j, b',') {
            j += 1;
        } else {
            break;
        }
    }
    (names, j)
}
