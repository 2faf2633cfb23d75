//! Table patterns of `table` rules: `db.tbl`, `tbl` (in any database) and `db.*`,
//! compared case-insensitively with the names the classifier found (`db.tbl` when the
//! statement qualified them, `tbl` otherwise). An unqualified name is taken to be in the
//! session's default database when the caller knows it; otherwise it matches only `tbl`
//! patterns.

use super::ast::list_items;

/// One table pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TablePattern {
    /// `None`: any database.
    db: Option<String>,
    /// `None`: any table (`db.*`).
    table: Option<String>,
}

impl TablePattern {
    /// A `,`-separated list of patterns.
    pub fn parse_list(list: &str) -> Result<Vec<TablePattern>, String> {
        list_items(list, "table")?
            .into_iter()
            .map(TablePattern::parse)
            .collect()
    }

    /// `db.tbl`, `tbl` or `db.*` (backticks around either part are removed).
    pub fn parse(text: &str) -> Result<TablePattern, String> {
        let bad = || format!("bad table '{text}' (expected db.table, table or db.*)");
        let unquote = |s: &str| -> Option<String> {
            let s = s
                .strip_prefix('`')
                .and_then(|s| s.strip_suffix('`'))
                .unwrap_or(s);
            (!s.is_empty() && !s.contains('`')).then(|| s.to_ascii_lowercase())
        };
        match text.split_once('.') {
            None if text == "*" => Err(bad()),
            None => Ok(TablePattern {
                db: None,
                table: Some(unquote(text).ok_or_else(bad)?),
            }),
            Some((db, table)) => {
                let db = unquote(db).filter(|d| d != "*").ok_or_else(bad)?;
                let table = if table == "*" {
                    None
                } else {
                    Some(unquote(table).ok_or_else(bad)?)
                };
                Ok(TablePattern {
                    db: Some(db),
                    table,
                })
            }
        }
    }

    /// Does the classifier's table name `name` match, with `default_db` the session's
    /// default database (if known)?
    pub fn matches(&self, name: &str, default_db: Option<&str>) -> bool {
        let (db, table) = match name.split_once('.') {
            Some((db, table)) => (Some(db), table),
            None => (default_db, name),
        };
        let table_ok = match &self.table {
            None => true,
            Some(t) => t.eq_ignore_ascii_case(table),
        };
        let db_ok = match (&self.db, db) {
            (None, _) => true,
            (Some(p), Some(d)) => p.eq_ignore_ascii_case(d),
            (Some(_), None) => false,
        };
        table_ok && db_ok
    }
}
