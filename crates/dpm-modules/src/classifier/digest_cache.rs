//! The digest hash of a statement without lexing it, when a statement of the same shape
//! was digested before on this thread.
//!
//! Statements that differ only in their literal values have the same digest (literals
//! become `?`). The shape of a statement is its bytes with the digits of plain numbers
//! and the contents of quoted strings left out; a small per-thread table maps shape
//! hashes to digest hashes, so `SELECT c FROM sbtest1 WHERE id=5012` after
//! `… WHERE id=17` costs one pass over its bytes instead of the lexer and the digest
//! writer.
//!
//! Soundness: two statements of one shape must have one digest, so the shape leaves out
//! only bytes the lexer certainly turns into a literal: a digit run between a space,
//! `(`, `,` or an operator and a space, `)`, `,`, `;`, an operator or the end (so not
//! `1.5`, `1e5`, `0x1F`, `t1` or `t.1col`, which are kept as they are), and what is
//! between quotes. A statement with anything that changes how those bytes are read —
//! a comment, a backslash, a user variable (`@`) — has no shape and is lexed every time.
//! A property test mutates exactly the bytes left out and checks the digest is the same.

use std::cell::RefCell;

/// Entries of the per-thread table (a power of two).
const SLOTS: usize = 4096;

/// Shape hash → digest hash slots, and the buffer a missed digest is written into.
type Table = (Box<[(u64, u64)]>, Vec<u8>);

thread_local! {
    static TABLE: RefCell<Table> =
        RefCell::new((vec![(0, 0); SLOTS].into_boxed_slice(), Vec::new()));
}

/// The digest hash of `sql` ([`super::digest_hash`] of its digest), from the per-thread
/// table when a statement of the same shape was digested before.
pub fn digest_hash_cached(sql: &[u8]) -> u64 {
    let Some(shape) = shape(sql, |_| {}) else {
        return TABLE.with(|t| match t.try_borrow_mut() {
            Ok(mut t) => super::digest_into(sql, &mut t.1),
            Err(_) => super::digest_into(sql, &mut Vec::new()),
        });
    };
    // 0 marks an empty slot.
    let shape = shape | 1;
    TABLE.with(|t| {
        let Ok(mut t) = t.try_borrow_mut() else {
            return super::digest_into(sql, &mut Vec::new());
        };
        let slot = (shape as usize) & (SLOTS - 1);
        if t.0[slot].0 == shape {
            return t.0[slot].1;
        }
        let (table, scratch) = &mut *t;
        let digest = super::digest_into(sql, scratch);
        table[slot] = (shape, digest);
        digest
    })
}

/// Blanks, the comma and the operators: a digit run between them is a literal.
fn separates(b: u8) -> bool {
    matches!(
        b,
        b' ' | b'\t' | b'\n' | b'\r' | b',' | b'=' | b'<' | b'>' | b'+' | b'-' | b'*' | b'/' | b'%'
    )
}

/// Bytes before a digit run that make it a literal of its own.
fn opens_number(b: u8) -> bool {
    separates(b) || b == b'('
}

/// Bytes after a digit run that end it as a literal.
fn closes_number(b: u8) -> bool {
    separates(b) || b == b')' || b == b';'
}

/// The shape hash of `sql` (see the module docs), or `None` when it has none. `left_out`
/// is told each range of bytes the shape leaves out (for the tests).
fn shape(sql: &[u8], mut left_out: impl FnMut(std::ops::Range<usize>)) -> Option<u64> {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h: u64 = 0x243F_6A88_85A3_08D3;
    let mut feed = |b: u8| h = (h ^ b as u64).wrapping_mul(K).rotate_left(26);
    let n = sql.len();
    let mut i = 0;
    while i < n {
        let c = sql[i];
        match c {
            b'\\' | b'@' | b'#' => return None,
            b'/' if sql.get(i + 1) == Some(&b'*') => return None,
            b'-' if sql.get(i + 1) == Some(&b'-') => return None,
            b'\'' | b'"' | b'`' => {
                // To the closing quote (a doubled quote closes and opens again).
                let start = i + 1;
                let mut j = start;
                while j < n && sql[j] != c {
                    j += 1;
                }
                if j == n {
                    return None; // unterminated
                }
                feed(c);
                if c == b'`' {
                    // An identifier: kept.
                    sql[start..j].iter().for_each(|&b| feed(b));
                } else {
                    left_out(start..j);
                }
                feed(c);
                i = j + 1;
            }
            b'0'..=b'9' if i == 0 || opens_number(sql[i - 1]) => {
                let mut j = i;
                while j < n && sql[j].is_ascii_digit() {
                    j += 1;
                }
                if j == n || closes_number(sql[j]) {
                    left_out(i..j);
                    feed(0);
                } else {
                    sql[i..j].iter().for_each(|&b| feed(b));
                }
                i = j;
            }
            _ => {
                feed(c);
                i += 1;
            }
        }
    }
    feed(0xFF);
    Some(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn full(sql: &[u8]) -> u64 {
        super::super::digest_into(sql, &mut Vec::new())
    }

    #[test]
    fn statements_of_one_shape_share_the_cached_digest() {
        for (a, b) in [
            (
                &b"SELECT c FROM sbtest1 WHERE id=5012"[..],
                &b"SELECT c FROM sbtest1 WHERE id=7"[..],
            ),
            (
                b"SELECT c FROM sbtest3 WHERE id BETWEEN 4971 AND 5070 ORDER BY c",
                b"SELECT c FROM sbtest3 WHERE id BETWEEN 1 AND 100 ORDER BY c",
            ),
            (
                b"INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'it''s')",
                b"INSERT INTO t (a, b) VALUES (3, ''), (4, 'y''z')",
            ),
            (
                b"SELECT `col 1` FROM `t2` WHERE a IN (1,2,3) LIMIT 10",
                b"SELECT `col 1` FROM `t2` WHERE a IN (7,8,9) LIMIT 5",
            ),
            (
                b"UPDATE t SET k=k+1 WHERE id=-5",
                b"UPDATE t SET k=k+1 WHERE id=-6",
            ),
        ] {
            let (sa, sb) = (shape(a, |_| {}), shape(b, |_| {}));
            assert!(sa.is_some() && sa == sb, "{:?}", std::str::from_utf8(a));
            assert_eq!(digest_hash_cached(a), full(a));
            assert_eq!(
                digest_hash_cached(b),
                full(b),
                "a hit gives the full digest"
            );
        }
    }

    #[test]
    fn what_the_lexer_reads_otherwise_keeps_its_bytes_or_has_no_shape() {
        // Kept: identifiers with digits, decimals, exponents, hex.
        for (a, b) in [
            (&b"SELECT 1.5"[..], &b"SELECT 1.6"[..]),
            (b"SELECT 1e5", b"SELECT 1e6"),
            (b"SELECT 0x1F", b"SELECT 0x2F"),
            (b"SELECT * FROM t1", b"SELECT * FROM t2"),
            (b"SELECT t.1a FROM t", b"SELECT t.2a FROM t"),
            (b"SELECT 1a FROM t", b"SELECT 2a FROM t"),
        ] {
            assert_ne!(
                shape(a, |_| {}),
                shape(b, |_| {}),
                "{:?}",
                std::str::from_utf8(a)
            );
        }
        for sql in [
            &b"SELECT /*+ MAX_EXECUTION_TIME(1) */ 1"[..],
            b"SELECT 1 -- 2",
            b"SELECT 1 # 2",
            b"SELECT @a := 1",
            b"SELECT 'a\\'b'",
            b"SELECT 'unterminated",
        ] {
            assert_eq!(shape(sql, |_| {}), None, "{:?}", std::str::from_utf8(sql));
            assert_eq!(digest_hash_cached(sql), full(sql));
        }
    }

    /// Statements made of pieces that exercise the lexer's edges.
    fn statement() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("SELECT ".to_string()),
            Just("FROM t1 ".to_string()),
            Just("WHERE ".to_string()),
            Just("a".to_string()),
            Just("x".to_string()),
            Just("e".to_string()),
            Just("_".to_string()),
            Just(".".to_string()),
            Just(" ".to_string()),
            Just("=".to_string()),
            Just("-".to_string()),
            Just("+".to_string()),
            Just("(".to_string()),
            Just(")".to_string()),
            Just(",".to_string()),
            Just(";".to_string()),
            Just("IN ".to_string()),
            Just("VALUES ".to_string()),
            Just("N".to_string()),
            Just("`b1`".to_string()),
            "[0-9]{1,3}".prop_map(|s| s),
            "'[a-z0-9 ]{0,3}'".prop_map(|s| s),
            "\"[a-z0-9 ]{0,3}\"".prop_map(|s| s),
        ];
        proptest::collection::vec(piece, 1..14).prop_map(|p| p.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        #[test]
        fn changing_what_the_shape_leaves_out_never_changes_the_digest(
            sql in statement(),
            fill in "[0-9]{1,4}",
            text in "[a-z0-9 ]{0,4}",
        ) {
            let bytes = sql.as_bytes();
            let mut spans = Vec::new();
            if shape(bytes, |r| spans.push(r)).is_none() {
                return Ok(());
            }
            // Each left-out range replaced: digits by other digits, string contents by
            // other text.
            let mut other = Vec::new();
            let mut at = 0;
            for r in spans {
                other.extend_from_slice(&bytes[at..r.start]);
                if bytes[r.start..r.end].iter().all(u8::is_ascii_digit) && !r.is_empty()
                    && !matches!(bytes.get(r.start.wrapping_sub(1)), Some(b'\'' | b'"'))
                {
                    other.extend_from_slice(fill.as_bytes());
                } else {
                    other.extend_from_slice(text.as_bytes());
                }
                at = r.end;
            }
            other.extend_from_slice(&bytes[at..]);
            prop_assert_eq!(shape(&other, |_| {}), shape(bytes, |_| {}));
            prop_assert_eq!(full(&other), full(bytes), "{:?} vs {:?}", sql, String::from_utf8_lossy(&other));
        }
    }
}
