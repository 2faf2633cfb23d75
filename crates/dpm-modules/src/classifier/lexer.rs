//! The tokenizer: MariaDB's lexical rules over raw bytes (not necessarily UTF-8), producing
//! compact [`Token`]s (kind, keyword id, byte range) into a caller-owned buffer.
//!
//! Rules implemented (default `sql_mode`: backslash escapes on, `"` quotes strings):
//! * `'…'` and `"…"` strings with `\` escapes and doubled quotes; `N'…'`, `X'…'`, `B'…'`
//!   and `_charset'…'` prefixes are part of the literal.
//! * `` `…` `` identifiers with doubled backticks.
//! * numbers (`12`, `1.5`, `.5`, `1e-3`), `0x1F`, `0b101`; a digit run followed by letters
//!   (`1abc`) is an identifier, as in MariaDB.
//! * `@var`, `@'quoted var'`, `@@var`, `@@session.var`; `?` placeholders.
//! * comments: `/* … */`, `# …` and `-- …` (`--` must be followed by a space or a control
//!   character) are dropped; `/*+ … */` optimizer hints are kept as [`Tk::Hint`];
//!   `/*! … */` and `/*M! … */` executable comments are lexed as code (the version number
//!   after `!` is dropped) and their closing `*/` is ignored.
//! * anything else is a one- to three-byte operator; `;` is [`Tk::Semi`].
//!
//! An unterminated string, identifier, quoted variable or comment is a [`LexError`].

use super::keywords::{lookup, Kw};

/// Token kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tk {
    /// An unquoted word: keyword (see [`Token::kw`]) or identifier.
    Word,
    /// A backtick-quoted identifier; the range includes the backticks.
    Quoted,
    /// A string literal (`'…'`, `"…"`, `N'…'`, `_utf8'…'`).
    Str,
    /// A numeric literal (integer, decimal, exponent).
    Num,
    /// A hex or bit literal (`0x..`, `x'..'`, `0b..`, `b'..'`).
    HexBit,
    /// A user variable `@name` / `@'name'`.
    Var,
    /// A system variable `@@name` / `@@scope.name`.
    SysVar,
    /// A `?` placeholder.
    Param,
    /// An operator or punctuation.
    Op,
    /// `;`
    Semi,
    /// An optimizer hint comment `/*+ … */` (kept verbatim in digests).
    Hint,
}

/// One token: kind, keyword id (`Kw::None` if not a keyword) and byte range in the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    pub tk: Tk,
    pub kw: Kw,
    pub start: u32,
    pub end: u32,
}

impl Token {
    /// The token's bytes.
    #[inline]
    pub fn text<'a>(&self, sql: &'a [u8]) -> &'a [u8] {
        &sql[self.start as usize..self.end as usize]
    }
    /// True for a string, number or hex/bit literal.
    #[inline]
    pub fn is_literal(&self) -> bool {
        matches!(self.tk, Tk::Str | Tk::Num | Tk::HexBit)
    }
    /// True if this is the one-byte operator `c`.
    #[inline]
    pub fn is_op(&self, sql: &[u8], c: u8) -> bool {
        self.tk == Tk::Op && self.end - self.start == 1 && sql[self.start as usize] == c
    }
}

/// The input cannot be lexed (unterminated quote, identifier or comment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LexError {
    /// Byte offset where the unterminated construct starts.
    pub at: usize,
}

/// Identifier byte: ASCII letter, digit, `_`, `$`, or any byte ≥ 0x80 (multi-byte characters).
#[inline]
pub fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// Lex `sql` into `out` (cleared first). Whitespace and ordinary comments produce no token.
pub fn lex(sql: &[u8], out: &mut Vec<Token>) -> Result<(), LexError> {
    out.clear();
    // Inputs over 4 GiB cannot be addressed by u32 ranges; a proxy never sees them (the
    // protocol caps a packet at 16 MiB, max_allowed_packet at 1 GiB).
    if sql.len() > u32::MAX as usize {
        return Err(LexError { at: 0 });
    }
    let n = sql.len();
    let mut i = 0usize;
    let mut in_exec = false;
    while i < n {
        let c = sql[i];
        let start = i;
        let tk;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => {
                i += 1;
                continue;
            }
            b'\'' | b'"' => {
                i = scan_quoted(sql, i, c)?;
                tk = Tk::Str;
            }
            b'`' => {
                i = scan_quoted(sql, i, b'`')?;
                tk = Tk::Quoted;
            }
            b'#' => {
                i = skip_line(sql, i);
                continue;
            }
            b'-' if i + 2 < n && sql[i + 1] == b'-' && sql[i + 2] <= b' ' && sql[i + 2] != 0 => {
                i = skip_line(sql, i);
                continue;
            }
            b'/' if i + 1 < n && sql[i + 1] == b'*' => {
                let body = i + 2;
                if body < n && sql[body] == b'!' {
                    i = skip_version(sql, body + 1);
                    in_exec = true;
                    continue;
                }
                if body + 1 < n && sql[body] == b'M' && sql[body + 1] == b'!' {
                    i = skip_version(sql, body + 2);
                    in_exec = true;
                    continue;
                }
                let close = find_comment_end(sql, body).ok_or(LexError { at: start })?;
                i = close + 2;
                if body < n && sql[body] == b'+' {
                    tk = Tk::Hint;
                } else {
                    continue;
                }
            }
            b'*' if in_exec && i + 1 < n && sql[i + 1] == b'/' => {
                in_exec = false;
                i += 2;
                continue;
            }
            b';' => {
                i += 1;
                tk = Tk::Semi;
            }
            b'?' => {
                i += 1;
                tk = Tk::Param;
            }
            b'@' => {
                if i + 1 < n && sql[i + 1] == b'@' {
                    i += 2;
                    if i < n && sql[i] == b'`' {
                        i = scan_quoted(sql, i, b'`')?;
                    }
                    while i < n && (is_ident_byte(sql[i]) || sql[i] == b'.') {
                        i += 1;
                    }
                    tk = Tk::SysVar;
                } else if i + 1 < n && matches!(sql[i + 1], b'\'' | b'"' | b'`') {
                    i = scan_quoted(sql, i + 1, sql[i + 1])?;
                    tk = Tk::Var;
                } else {
                    i += 1;
                    while i < n && (is_ident_byte(sql[i]) || sql[i] == b'.') {
                        i += 1;
                    }
                    tk = if i - start > 1 { Tk::Var } else { Tk::Op };
                }
            }
            b'0'..=b'9' => {
                let (e, t) = scan_number_or_word(sql, i);
                i = e;
                tk = t;
            }
            b'.' if i + 1 < n && sql[i + 1].is_ascii_digit() && !after_name(out, sql) => {
                i = scan_fraction(sql, i);
                tk = Tk::Num;
            }
            _ if is_ident_byte(c) => {
                // Prefixed literals: N'..', X'..', B'..', _charset'..'
                let mut e = i + 1;
                while e < n && is_ident_byte(sql[e]) {
                    e += 1;
                }
                if e < n && sql[e] == b'\'' {
                    let w = &sql[i..e];
                    let prefix = if w.len() == 1 {
                        match w[0] | 0x20 {
                            b'n' => Some(Tk::Str),
                            b'x' | b'b' => Some(Tk::HexBit),
                            _ => None,
                        }
                    } else if w[0] == b'_' {
                        Some(Tk::Str)
                    } else {
                        None
                    };
                    if let Some(t) = prefix {
                        i = scan_quoted(sql, e, b'\'')?;
                        out.push(Token {
                            tk: t,
                            kw: Kw::None,
                            start: start as u32,
                            end: i as u32,
                        });
                        continue;
                    }
                }
                i = e;
                let kw = lookup(&sql[start..i]);
                out.push(Token {
                    tk: Tk::Word,
                    kw,
                    start: start as u32,
                    end: i as u32,
                });
                continue;
            }
            _ => {
                i += op_len(sql, i);
                tk = Tk::Op;
            }
        }
        out.push(Token {
            tk,
            kw: Kw::None,
            start: start as u32,
            end: i as u32,
        });
    }
    if in_exec {
        // An executable comment that is never closed is an unterminated comment.
        return Err(LexError { at: n });
    }
    Ok(())
}

/// After `name` + `.`, a digit run is a name part (`t.1col`), not a decimal: true if the
/// last token is an identifier-ish word directly before this `.`.
#[inline]
fn after_name(out: &[Token], sql: &[u8]) -> bool {
    match out.last() {
        Some(t) => {
            matches!(t.tk, Tk::Word | Tk::Quoted)
                && (t.end as usize) < sql.len()
                && sql[t.end as usize] == b'.'
        }
        None => false,
    }
}

/// Scan a quoted construct starting at the opening quote `q` at `i`; returns the index after
/// the closing quote. Doubled quotes continue; `\` escapes the next byte except in backticks.
#[inline]
fn scan_quoted(sql: &[u8], i: usize, q: u8) -> Result<usize, LexError> {
    let n = sql.len();
    let mut j = i + 1;
    let escapes = q != b'`';
    while j < n {
        let b = sql[j];
        if b == q {
            if j + 1 < n && sql[j + 1] == q {
                j += 2;
                continue;
            }
            return Ok(j + 1);
        }
        if b == b'\\' && escapes {
            j += 2;
            continue;
        }
        j += 1;
    }
    Err(LexError { at: i })
}

#[inline]
fn skip_line(sql: &[u8], mut i: usize) -> usize {
    while i < sql.len() && sql[i] != b'\n' {
        i += 1;
    }
    i
}

/// Skip the version number of an executable comment (up to 6 digits).
#[inline]
fn skip_version(sql: &[u8], mut i: usize) -> usize {
    let mut k = 0;
    while k < 6 && i < sql.len() && sql[i].is_ascii_digit() {
        i += 1;
        k += 1;
    }
    i
}

/// Index of the `*` of the `*/` closing a comment whose body starts at `i`.
#[inline]
fn find_comment_end(sql: &[u8], mut i: usize) -> Option<usize> {
    while i + 1 < sql.len() {
        if sql[i] == b'*' && sql[i + 1] == b'/' {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// `.` followed by digits, with an optional exponent.
#[inline]
fn scan_fraction(sql: &[u8], mut i: usize) -> usize {
    i += 1;
    while i < sql.len() && sql[i].is_ascii_digit() {
        i += 1;
    }
    scan_exponent(sql, i)
}

#[inline]
fn scan_exponent(sql: &[u8], i: usize) -> usize {
    let n = sql.len();
    if i < n && (sql[i] | 0x20) == b'e' {
        let mut j = i + 1;
        if j < n && (sql[j] == b'+' || sql[j] == b'-') {
            j += 1;
        }
        if j < n && sql[j].is_ascii_digit() {
            while j < n && sql[j].is_ascii_digit() {
                j += 1;
            }
            return j;
        }
    }
    i
}

/// A token starting with a digit: number, hex/bit literal or (`1abc`) identifier.
#[inline]
fn scan_number_or_word(sql: &[u8], i: usize) -> (usize, Tk) {
    let n = sql.len();
    let mut run = i;
    while run < n && is_ident_byte(sql[run]) {
        run += 1;
    }
    let w = &sql[i..run];
    if w.len() > 2 && w[0] == b'0' {
        if w[1] == b'x' && w[2..].iter().all(u8::is_ascii_hexdigit) {
            return (run, Tk::HexBit);
        }
        if w[1] == b'b' && w[2..].iter().all(|&b| b == b'0' || b == b'1') {
            return (run, Tk::HexBit);
        }
    }
    let mut j = i;
    while j < n && sql[j].is_ascii_digit() {
        j += 1;
    }
    if j == run {
        // All digits so far: maybe a fraction and/or exponent.
        if j < n && sql[j] == b'.' {
            return (scan_fraction(sql, j), Tk::Num);
        }
        return (j, Tk::Num);
    }
    // Digits followed by identifier bytes: an exponent (`1e5`, `1e-5`) or an identifier.
    let e = scan_exponent(sql, j);
    if e > j && (e >= n || !is_ident_byte(sql[e])) {
        return (e, Tk::Num);
    }
    (run, Tk::Word)
}

/// Length of the operator at `i` (1 to 3 bytes).
#[inline]
fn op_len(sql: &[u8], i: usize) -> usize {
    let a = sql[i];
    let b = sql.get(i + 1).copied().unwrap_or(0);
    let c = sql.get(i + 2).copied().unwrap_or(0);
    match (a, b) {
        (b'<', b'=') if c == b'>' => 3,
        (b'-', b'>') if c == b'>' => 3,
        (b'<', b'=') | (b'>', b'=') | (b'<', b'>') | (b'!', b'=') | (b':', b'=') | (b'|', b'|') => {
            2
        }
        (b'&', b'&') | (b'<', b'<') | (b'>', b'>') | (b'-', b'>') => 2,
        _ => 1,
    }
}

/// The keyword of token `i`, or `Kw::None` when it is not a word (or there is none).
#[inline]
pub(super) fn kw(toks: &[Token], i: usize) -> Kw {
    match toks.get(i) {
        Some(t) if t.tk == Tk::Word => t.kw,
        _ => Kw::None,
    }
}

/// True when token `i` is the operator character `c`.
#[inline]
pub(super) fn is_op(sql: &[u8], toks: &[Token], i: usize, c: u8) -> bool {
    toks.get(i).is_some_and(|t| t.is_op(sql, c))
}
