//! The kind of a text statement (`COM_QUERY`) for the metrics — `select`, `insert`,
//! `transaction`, `ddl`, … — from its first keyword. A sniff of a few bytes, not a parse
//! (the query classifier in `dpm-modules` parses): leading spaces, comments and
//! parentheses are skipped, the first word is compared case-insensitively. It runs for
//! every statement of a service session, so it allocates nothing and reads at most the
//! comments before the first word and that word.

/// What a text statement is, by its first keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatementKind {
    /// `SELECT`, `WITH`, `VALUES`, `TABLE`.
    Select,
    /// `INSERT`.
    Insert,
    /// `UPDATE`.
    Update,
    /// `DELETE`.
    Delete,
    /// `REPLACE`.
    Replace,
    /// `BEGIN`, `START`, `COMMIT`, `ROLLBACK`, `SAVEPOINT`, `RELEASE`, `XA`.
    Transaction,
    /// `SET`.
    Set,
    /// `SHOW`, `DESCRIBE`, `DESC`, `EXPLAIN`.
    Show,
    /// `USE`.
    Use,
    /// `CALL`.
    Call,
    /// `CREATE`, `ALTER`, `DROP`, `TRUNCATE`, `RENAME`.
    Ddl,
    /// Anything else (`GRANT`, `LOAD`, `DO`, `KILL`, …), or no word at all.
    Other,
}

impl StatementKind {
    /// Every kind, in index order.
    pub const ALL: [StatementKind; 12] = [
        StatementKind::Select,
        StatementKind::Insert,
        StatementKind::Update,
        StatementKind::Delete,
        StatementKind::Replace,
        StatementKind::Transaction,
        StatementKind::Set,
        StatementKind::Show,
        StatementKind::Use,
        StatementKind::Call,
        StatementKind::Ddl,
        StatementKind::Other,
    ];

    /// Its label value in the metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            StatementKind::Select => "select",
            StatementKind::Insert => "insert",
            StatementKind::Update => "update",
            StatementKind::Delete => "delete",
            StatementKind::Replace => "replace",
            StatementKind::Transaction => "transaction",
            StatementKind::Set => "set",
            StatementKind::Show => "show",
            StatementKind::Use => "use",
            StatementKind::Call => "call",
            StatementKind::Ddl => "ddl",
            StatementKind::Other => "other",
        }
    }

    /// The kind of the statement `sql`.
    pub fn of(sql: &[u8]) -> StatementKind {
        let start = skip_to_first_word(sql);
        let word_len = sql[start..]
            .iter()
            .take(10)
            .take_while(|b| b.is_ascii_alphabetic())
            .count();
        // The longest keyword below has 9 letters: a longer word is none of them.
        if word_len == 0 || word_len > 9 {
            return StatementKind::Other;
        }
        let mut word = [0u8; 9];
        for (to, from) in word.iter_mut().zip(&sql[start..start + word_len]) {
            *to = from.to_ascii_lowercase();
        }
        match &word[..word_len] {
            b"select" | b"with" | b"values" | b"table" => StatementKind::Select,
            b"insert" => StatementKind::Insert,
            b"update" => StatementKind::Update,
            b"delete" => StatementKind::Delete,
            b"replace" => StatementKind::Replace,
            b"begin" | b"start" | b"commit" | b"rollback" | b"savepoint" | b"release" | b"xa" => {
                StatementKind::Transaction
            }
            b"set" => StatementKind::Set,
            b"show" | b"describe" | b"desc" | b"explain" => StatementKind::Show,
            b"use" => StatementKind::Use,
            b"call" => StatementKind::Call,
            b"create" | b"alter" | b"drop" | b"truncate" | b"rename" => StatementKind::Ddl,
            _ => StatementKind::Other,
        }
    }
}

/// The offset of the first byte that is not a space, a comment (`/* */`, `-- `, `#`) or
/// an opening parenthesis.
fn skip_to_first_word(sql: &[u8]) -> usize {
    let mut i = 0;
    while i < sql.len() {
        match sql[i] {
            b' ' | b'\t' | b'\n' | b'\r' | b'(' => i += 1,
            b'/' if sql.get(i + 1) == Some(&b'*') => {
                i = match sql[i + 2..].windows(2).position(|w| w == b"*/") {
                    Some(end) => i + 2 + end + 2,
                    None => sql.len(),
                };
            }
            b'-' if sql.get(i + 1) == Some(&b'-') => i = line_end(sql, i),
            b'#' => i = line_end(sql, i),
            _ => break,
        }
    }
    i
}

/// The offset just past the end of the line `i` is on.
fn line_end(sql: &[u8], i: usize) -> usize {
    sql[i..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(sql.len(), |end| i + end + 1)
}

#[cfg(test)]
mod tests {
    use super::StatementKind::{self, *};

    #[test]
    fn a_statement_is_known_by_its_first_keyword() {
        let cases: &[(&str, StatementKind)] = &[
            ("SELECT 1", Select),
            ("  select * from t", Select),
            ("(SELECT 1) UNION (SELECT 2)", Select),
            ("WITH x AS (SELECT 1) SELECT * FROM x", Select),
            ("/* app:checkout */ INSERT INTO t VALUES (1)", Insert),
            ("-- a comment\nUpDaTe t SET a = 1", Update),
            ("# comment\n\tDELETE FROM t", Delete),
            ("REPLACE INTO t VALUES (1)", Replace),
            ("BEGIN", Transaction),
            ("START TRANSACTION READ ONLY", Transaction),
            ("commit", Transaction),
            ("XA START 'x'", Transaction),
            ("SET autocommit=0", Set),
            ("SHOW TABLES", Show),
            ("EXPLAIN SELECT 1", Show),
            ("USE db", Use),
            ("CALL p()", Call),
            ("CREATE TABLE t (a INT)", Ddl),
            ("TRUNCATE t", Ddl),
            ("GRANT ALL ON *.* TO x", Other),
            ("", Other),
            ("/* unterminated", Other),
            ("SELECTED", Other),
            ("transactions", Other),
            ("1", Other),
        ];
        for (sql, kind) in cases {
            assert_eq!(StatementKind::of(sql.as_bytes()), *kind, "{sql}");
        }
    }

    #[test]
    fn every_kind_has_its_place_in_all() {
        for (index, kind) in StatementKind::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, index, "{kind:?}");
        }
    }
}
