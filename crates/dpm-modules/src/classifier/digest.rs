//! The normalized digest of a token stream and its stable 64-bit hash.
//!
//! Rules: literals (strings, numbers, hex/bit; a `-` directly before a number when it cannot
//! be a binary minus) become `?`; `IN (…)` of literals/placeholders becomes `IN (...)` and
//! `VALUES (…), (…)` rows of literals become `VALUES (...)`; keywords are uppercased,
//! identifiers kept as written; backticks are dropped around identifiers that do not need
//! them (only identifier bytes, not all digits, not a keyword); `NULL`, `TRUE`, `FALSE`,
//! `DEFAULT` stay keywords; comments are gone (the lexer drops them) except `/*+ … */` hints,
//! kept verbatim; tokens are separated by one space except after `(` and `.`, before `)`,
//! `,`, `.` and `;`, and before a `(` that follows a non-clause word (`COUNT(*)`); statements
//! are separated by `; ` and trailing `;` are removed.

use super::keywords::Kw;
use super::lexer::{is_ident_byte, Tk, Token};

/// Append the digest of `toks` (lexed from `sql`) to `out`.
pub fn write_digest(sql: &[u8], toks: &[Token], out: &mut Vec<u8>) {
    let n = toks.len();
    let mut i = 0;
    // Spacing state: is a space needed before the next token?
    let mut glue = true; // start, after '(' or '.'
    let mut pending_semi = false;
    // Previous emitted token: is it an operand (so a following '-' is binary)?
    let mut prev_operand = false;
    // Previous emitted token allows `(` without a space (function-like word).
    let mut prev_fn = false;
    while i < n {
        let t = toks[i];
        if t.tk == Tk::Semi {
            if !out.is_empty() && !glue_is_statement_start(out) {
                pending_semi = true;
            }
            prev_operand = false;
            prev_fn = false;
            i += 1;
            continue;
        }
        if pending_semi {
            out.extend_from_slice(b"; ");
            pending_semi = false;
            glue = true;
        }
        // Folds.
        if t.tk == Tk::Word && (t.kw == Kw::IN || t.kw == Kw::VALUES || t.kw == Kw::VALUE) {
            let end = if t.kw == Kw::IN {
                fold_list(sql, toks, i + 1)
            } else {
                fold_rows(sql, toks, i + 1)
            };
            if let Some(end) = end {
                space(out, glue);
                out.extend_from_slice(t.kw.name().as_bytes());
                out.extend_from_slice(b" (...)");
                glue = false;
                prev_operand = true;
                prev_fn = false;
                i = end;
                continue;
            }
        }
        if t.tk == Tk::Op && !prev_operand && i + 1 < n && toks[i + 1].tk == Tk::Num {
            let b = sql[t.start as usize];
            if (b == b'-' || b == b'+') && t.end - t.start == 1 {
                space(out, glue);
                out.push(b'?');
                glue = false;
                prev_operand = true;
                prev_fn = false;
                i += 2;
                continue;
            }
        }
        let text = t.text(sql);
        match t.tk {
            Tk::Op => {
                let c = text[0];
                let one = text.len() == 1;
                if one && c == b'(' {
                    if !(prev_fn || glue) {
                        out.push(b' ');
                    }
                    out.push(b'(');
                    glue = true;
                    prev_operand = false;
                } else if one && (c == b')' || c == b',') {
                    out.push(c);
                    glue = false;
                    prev_operand = c == b')';
                } else if one && c == b'.' {
                    out.push(b'.');
                    glue = true;
                    prev_operand = false;
                } else {
                    space(out, glue);
                    out.extend_from_slice(text);
                    glue = false;
                    prev_operand = false;
                }
                prev_fn = false;
            }
            Tk::Word => {
                space(out, glue);
                if t.kw != Kw::None {
                    out.extend_from_slice(t.kw.name().as_bytes());
                    prev_fn = !t.kw.space_before_paren();
                    prev_operand =
                        !t.kw.reserved() || matches!(t.kw, Kw::NULL | Kw::TRUE | Kw::FALSE);
                } else {
                    out.extend_from_slice(text);
                    prev_fn = true;
                    prev_operand = true;
                }
                glue = false;
            }
            Tk::Quoted => {
                space(out, glue);
                let inner = &text[1..text.len() - 1];
                if plain_ident(inner) {
                    out.extend_from_slice(inner);
                } else {
                    out.extend_from_slice(text);
                }
                glue = false;
                prev_fn = true;
                prev_operand = true;
            }
            Tk::Str | Tk::Num | Tk::HexBit | Tk::Param => {
                space(out, glue);
                out.push(b'?');
                glue = false;
                prev_fn = false;
                prev_operand = true;
            }
            Tk::Var | Tk::SysVar | Tk::Hint => {
                space(out, glue);
                out.extend_from_slice(text);
                glue = false;
                prev_fn = false;
                prev_operand = t.tk != Tk::Hint;
            }
            Tk::Semi => unreachable!(),
        }
        i += 1;
    }
}

/// True when nothing has been written since the last statement separator (so a `;` there
/// is an empty statement and writes nothing).
#[inline]
fn glue_is_statement_start(out: &[u8]) -> bool {
    out.ends_with(b"; ")
}

#[inline]
fn space(out: &mut Vec<u8>, glue: bool) {
    if !glue && !out.is_empty() {
        out.push(b' ');
    }
}

/// A quoted identifier that reads the same unquoted.
fn plain_ident(inner: &[u8]) -> bool {
    !inner.is_empty()
        && inner.iter().all(|&b| is_ident_byte(b))
        && !inner.iter().all(u8::is_ascii_digit)
        && super::keywords::lookup(inner) == Kw::None
}

/// One list item a fold may swallow: a literal, `?`, `NULL`/`TRUE`/`FALSE`/`DEFAULT`, or a
/// signed number. Returns the index after it.
#[inline]
fn fold_item(sql: &[u8], toks: &[Token], i: usize) -> Option<usize> {
    let t = toks.get(i)?;
    if t.is_literal() || t.tk == Tk::Param {
        return Some(i + 1);
    }
    if t.tk == Tk::Word && matches!(t.kw, Kw::NULL | Kw::TRUE | Kw::FALSE | Kw::DEFAULT) {
        return Some(i + 1);
    }
    if (t.is_op(sql, b'-') || t.is_op(sql, b'+')) && toks.get(i + 1)?.tk == Tk::Num {
        return Some(i + 2);
    }
    None
}

/// `( item [, item]* )` starting at `i`; returns the index after `)`.
#[inline]
fn fold_list(sql: &[u8], toks: &[Token], i: usize) -> Option<usize> {
    if !toks.get(i)?.is_op(sql, b'(') {
        return None;
    }
    let mut j = fold_item(sql, toks, i + 1)?;
    loop {
        let t = toks.get(j)?;
        if t.is_op(sql, b')') {
            return Some(j + 1);
        }
        if !t.is_op(sql, b',') {
            return None;
        }
        j = fold_item(sql, toks, j + 1)?;
    }
}

/// `list [, list]*` starting at `i`; returns the index after the last `)`.
#[inline]
fn fold_rows(sql: &[u8], toks: &[Token], i: usize) -> Option<usize> {
    let mut j = fold_list(sql, toks, i)?;
    while j + 1 < toks.len() && toks[j].is_op(sql, b',') && toks[j + 1].is_op(sql, b'(') {
        j = fold_list(sql, toks, j + 1)?;
    }
    Some(j)
}

/// dpm's digest hash, version 1: stable across runs, machines and releases (it is part of
/// the classifier's output format; changing it is a breaking change).
///
/// Input bytes are read as little-endian 64-bit words (the tail zero-padded); each word is
/// mixed as `h = rotl((h ^ w) * 0x9E3779B97F4A7C15, 29)` starting from
/// `0x243F6A8885A308D3 ^ len`, then finalized with MurmurHash3's fmix64. Not cryptographic.
pub fn hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h: u64 = 0x243F_6A88_85A3_08D3 ^ bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().unwrap());
        h = (h ^ w).wrapping_mul(K).rotate_left(29);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut buf = [0u8; 8];
        buf[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(buf))
            .wrapping_mul(K)
            .rotate_left(29);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}
