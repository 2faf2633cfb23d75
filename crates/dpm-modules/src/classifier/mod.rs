//! The query classifier: [`classify`] (SQL text) and [`classify_command`] (a COM_QUERY or
//! COM_STMT_PREPARE payload) return a [`Classification`]: statement type, whether it may
//! write, transaction boundary, autocommit and session-state changes, tables named, and a
//! normalized digest with a stable 64-bit hash. `docs/classifier.md` has the rules.
//!
//! Files: `lexer` (tokenizer), `keywords` (keyword table), `statement` (types, write and
//! transaction rules, statement splitting), `tables` (table names), `digest` (digest and
//! hash), `tests` (unit table and property tests).
//!
//! A multi-statement (`a; b`) combines as: `kind` of the first statement, `may_write`,
//! `session_change` and `missing_where` if any statement has them,
//! `trx`/`read_only_trx`/`autocommit` from the last statement that sets them, tables of
//! all statements, digest of the whole text, `statements` = number of non-empty statements. Input that cannot be lexed is `Unknown`
//! and `may_write` (and nothing else: no tables, empty digest).

mod cache;
mod digest;
mod digest_cache;
mod keywords;
mod lexer;
mod statement;
mod tables;
#[cfg(test)]
mod tests;

use std::cell::RefCell;

use dpm_engine::service::{Maturity, ModuleInfo, ModuleType};

pub use cache::cached_classification;
pub use digest::hash as digest_hash;
pub use digest_cache::digest_hash_cached;
pub use statement::{StatementType, TrxBoundary};

use lexer::Token;

/// The classifier's declaration.
pub static INFO: ModuleInfo = ModuleInfo {
    kind: ModuleType::QueryClassifier,
    name: "qc_lexer",
    maturity: Maturity::Alpha,
    version: "0.1.0",
    description: "Statement type, may-write, transaction boundaries, autocommit and session changes, tables \
                  and a normalized digest with a stable 64-bit hash, from a hand-written MariaDB lexer (no parser)",
    options: &[],
};

/// COM_QUERY command byte.
pub const COM_QUERY: u8 = 0x03;
/// COM_STMT_PREPARE command byte.
pub const COM_STMT_PREPARE: u8 = 0x16;

/// What the classifier knows about a SQL text (one or more statements).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Classification {
    /// Type of the first statement (`Other` with 0 statements; `Unknown` on a lex error).
    pub kind: StatementType,
    /// Some statement may write (or the text could not be lexed).
    pub may_write: bool,
    /// The last transaction boundary: BEGIN/START TRANSACTION/XA START/`SET autocommit=0` →
    /// Begin; COMMIT/XA COMMIT/`SET autocommit=1` → Commit; ROLLBACK/XA ROLLBACK → Rollback;
    /// COMMIT/ROLLBACK AND CHAIN → Begin.
    pub trx: Option<TrxBoundary>,
    /// START TRANSACTION READ ONLY → `Some(true)`, READ WRITE → `Some(false)`.
    pub read_only_trx: Option<bool>,
    /// The session's autocommit as last set by `SET [SESSION|@@[session.]]autocommit = …`.
    pub autocommit: Option<bool>,
    /// Changes session state: SET (session scope, incl. SET TRANSACTION, NAMES, ROLE), USE,
    /// user-variable assignment, CREATE/DROP TEMPORARY TABLE, PREPARE, DEALLOCATE, HANDLER
    /// OPEN/CLOSE.
    pub session_change: bool,
    /// Tables named (`db.table` qualified, backticks removed), in order, deduplicated.
    pub tables: Vec<String>,
    /// The normalized text.
    pub digest: String,
    /// [`digest_hash`] of `digest`.
    pub digest_hash: u64,
    /// Number of non-empty statements.
    pub statements: u32,
    /// The types of all its statements, one bit each (`1 << (type as u32)`): a
    /// multi-statement's `kind` is only its first statement's (a firewall must see all).
    pub kinds: u64,
    /// The text could not be lexed (unterminated quote, identifier or comment).
    pub lex_error: bool,
    /// Some UPDATE or DELETE statement has no top-level WHERE clause (`DELETE FROM t`,
    /// `UPDATE t SET a = 1 LIMIT 5`; a WHERE inside a subquery does not count). Also through
    /// `WITH … UPDATE|DELETE`, `SET STATEMENT … FOR` and `ANALYZE`; not `EXPLAIN` (it does
    /// not run the statement), not statements inside stored-program or compound bodies,
    /// and not unlexable text.
    pub missing_where: bool,
    /// Some statement assigns a user variable (`SET @x = …`, `SELECT @x := …`,
    /// `SELECT … INTO @x`) or may (`CALL p(@x)`: an OUT or INOUT parameter); such
    /// statements also count as `may_write` and `session_change`.
    pub assigns_user_var: bool,
}

impl Classification {
    /// A classification of no statement yet: type `kind`, no tables, no boundary.
    fn nothing(kind: StatementType, may_write: bool) -> Classification {
        Classification {
            kind,
            may_write,
            trx: None,
            read_only_trx: None,
            autocommit: None,
            session_change: false,
            tables: Vec::new(),
            digest: String::new(),
            digest_hash: 0,
            statements: 0,
            kinds: 1u64 << (kind as u32),
            lex_error: false,
            missing_where: false,
            assigns_user_var: false,
        }
    }
}

thread_local! {
    static TOKENS: RefCell<Vec<Token>> = const { RefCell::new(Vec::new()) };
}

/// Classify SQL text (any bytes; need not be UTF-8). Never panics.
pub fn classify(sql: &[u8]) -> Classification {
    TOKENS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut toks) => {
            let c = classify_with(sql, &mut toks);
            if toks.capacity() > 1 << 16 {
                // Do not keep a huge statement's buffer around per thread.
                *toks = Vec::new();
            }
            c
        }
        Err(_) => classify_with(sql, &mut Vec::new()),
    })
}

/// Only the digest of `sql`, written into `out` (cleared first), and its hash
/// ([`digest_hash`]): the lexer and the digest writer without the rest of the
/// classification, with this thread's token buffer (no allocation once warm). Unlexable
/// text has the empty digest, as in [`classify`]. For the digest store of the admin API.
pub fn digest_into(sql: &[u8], out: &mut Vec<u8>) -> u64 {
    out.clear();
    TOKENS.with(|cell| {
        let mut own = Vec::new();
        let mut borrowed = cell.try_borrow_mut();
        let toks = match borrowed.as_mut() {
            Ok(t) => &mut **t,
            Err(_) => &mut own,
        };
        if lexer::lex(sql, toks).is_ok() {
            digest::write_digest(sql, toks, out);
        }
        if toks.capacity() > 1 << 16 {
            *toks = Vec::new();
        }
    });
    digest::hash(out)
}

/// Classify a command packet's payload (command byte first): `Some` for COM_QUERY and
/// COM_STMT_PREPARE (the SQL follows the command byte), `None` for any other command.
pub fn classify_command(payload: &[u8]) -> Option<Classification> {
    match payload.split_first() {
        Some((&COM_QUERY, sql)) | Some((&COM_STMT_PREPARE, sql)) => Some(classify(sql)),
        _ => None,
    }
}

fn classify_with(sql: &[u8], toks: &mut Vec<Token>) -> Classification {
    if lexer::lex(sql, toks).is_err() {
        // Unlexable: unknown, may write (never routed as a read).
        return Classification {
            digest_hash: digest::hash(b""),
            lex_error: true,
            ..Classification::nothing(StatementType::Unknown, true)
        };
    }
    let mut c = Classification::nothing(StatementType::Other, false);
    let toks: &[Token] = toks;
    statement::split(sql, toks, |st| {
        let s = statement::classify_stmt(sql, st, &mut c.tables, 0);
        if c.statements == 0 {
            c.kind = s.kind;
            c.kinds = 0;
        }
        c.kinds |= 1u64 << (s.kind as u32);
        c.statements = c.statements.saturating_add(1);
        c.may_write |= s.may_write;
        c.session_change |= s.session_change;
        c.missing_where |= s.missing_where;
        c.assigns_user_var |= s.user_var;
        if s.trx.is_some() {
            c.trx = s.trx;
        }
        if s.read_only_trx.is_some() {
            c.read_only_trx = s.read_only_trx;
        }
        if s.autocommit.is_some() {
            c.autocommit = s.autocommit;
        }
    });
    let mut d = Vec::with_capacity(sql.len() + 16);
    digest::write_digest(sql, toks, &mut d);
    c.digest = match String::from_utf8(d) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    c.digest_hash = digest::hash(c.digest.as_bytes());
    c
}
