//! One statement's meaning from its tokens: statement type, whether it may write,
//! transaction boundary, `START TRANSACTION READ ONLY/WRITE`, `autocommit` changes and
//! session-state changes. Also the splitting of a token stream into statements (compound
//! statements and stored-program bodies are not split at their inner `;`).
//!
//! Write rules: INSERT, UPDATE, DELETE, REPLACE, DDL, LOAD, CALL, EXECUTE, LOCK/UNLOCK,
//! GRANT/REVOKE, XA (except XA RECOVER), FLUSH, KILL and anything unrecognised may write.
//! A read statement (SELECT, DO, SET, SHOW, …) may write when it contains `FOR UPDATE`,
//! `FOR SHARE`, `LOCK IN SHARE MODE`, `GET_LOCK(`, `RELEASE_LOCK(`, `RELEASE_ALL_LOCKS(`,
//! `LAST_INSERT_ID(x)` (with an argument), `NEXTVAL(`, `SETVAL(`, `NEXT VALUE FOR`,
//! `INTO OUTFILE|DUMPFILE`, or assigns a user variable (`@x :=`, `INTO @x`, `SET @x =`).
//! BEGIN/COMMIT/ROLLBACK/SAVEPOINT, USE, SET of session variables, PREPARE, DEALLOCATE,
//! EXPLAIN/DESCRIBE, SHOW, HELP, CHECK/CHECKSUM TABLE, GET DIAGNOSTICS, SIGNAL and HANDLER
//! do not write.

use super::keywords::Kw;
use super::lexer::{is_op, kw, Tk, Token};
use super::tables;

/// The type of a statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatementType {
    Select,
    Insert,
    Update,
    Delete,
    Replace,
    /// CREATE/ALTER/DROP/RENAME/TRUNCATE (not of users, roles or prepared statements).
    Ddl,
    Set,
    Use,
    /// BEGIN [WORK], START TRANSACTION.
    Begin,
    Commit,
    /// ROLLBACK (ROLLBACK TO SAVEPOINT is `Savepoint`).
    Rollback,
    /// SAVEPOINT, RELEASE SAVEPOINT, ROLLBACK TO [SAVEPOINT].
    Savepoint,
    Xa,
    Call,
    Show,
    Lock,
    Unlock,
    Prepare,
    Execute,
    /// DEALLOCATE PREPARE, DROP PREPARE.
    Deallocate,
    /// LOAD DATA, LOAD XML.
    Load,
    Do,
    /// GRANT, REVOKE, CREATE/DROP/ALTER/RENAME USER|ROLE, SET PASSWORD, SET DEFAULT ROLE.
    Grant,
    /// EXPLAIN, DESCRIBE, DESC, ANALYZE <statement>.
    Explain,
    Handler,
    Flush,
    Kill,
    /// Recognised but not one of the above (admin statements, compound statements, HELP…).
    Other,
    /// Could not be lexed.
    Unknown,
}

impl StatementType {
    /// Every statement type, in declaration order (`t as u32` is its index here).
    pub const ALL: [StatementType; 29] = {
        use StatementType::*;
        [
            Select, Insert, Update, Delete, Replace, Ddl, Set, Use, Begin, Commit, Rollback,
            Savepoint, Xa, Call, Show, Lock, Unlock, Prepare, Execute, Deallocate, Load, Do, Grant,
            Explain, Handler, Flush, Kill, Other, Unknown,
        ]
    };

    /// The type whose [`as_str`](Self::as_str) is `name` (exact, lowercase).
    pub fn from_name(name: &str) -> Option<StatementType> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Lowercase name: "select", "insert", … "other", "unknown".
    pub fn as_str(self) -> &'static str {
        use StatementType::*;
        match self {
            Select => "select",
            Insert => "insert",
            Update => "update",
            Delete => "delete",
            Replace => "replace",
            Ddl => "ddl",
            Set => "set",
            Use => "use",
            Begin => "begin",
            Commit => "commit",
            Rollback => "rollback",
            Savepoint => "savepoint",
            Xa => "xa",
            Call => "call",
            Show => "show",
            Lock => "lock",
            Unlock => "unlock",
            Prepare => "prepare",
            Execute => "execute",
            Deallocate => "deallocate",
            Load => "load",
            Do => "do",
            Grant => "grant",
            Explain => "explain",
            Handler => "handler",
            Flush => "flush",
            Kill => "kill",
            Other => "other",
            Unknown => "unknown",
        }
    }
}

/// A transaction boundary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrxBoundary {
    Begin,
    Commit,
    Rollback,
}

impl TrxBoundary {
    /// "begin", "commit" or "rollback".
    pub fn as_str(self) -> &'static str {
        match self {
            TrxBoundary::Begin => "begin",
            TrxBoundary::Commit => "commit",
            TrxBoundary::Rollback => "rollback",
        }
    }
}

/// One statement's classification (tables go to a shared list).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stmt {
    pub kind: StatementType,
    pub may_write: bool,
    pub trx: Option<TrxBoundary>,
    pub read_only_trx: Option<bool>,
    pub autocommit: Option<bool>,
    pub session_change: bool,
    /// An UPDATE or DELETE without a top-level WHERE clause (also `WITH … UPDATE|DELETE`,
    /// `SET STATEMENT … FOR` and `ANALYZE` of one, which run it).
    pub missing_where: bool,
    /// Assigns a user variable (`SET @x =`, `@x :=`, `INTO @x`).
    pub user_var: bool,
}

impl Stmt {
    fn new(kind: StatementType, may_write: bool) -> Stmt {
        Stmt {
            kind,
            may_write,
            trx: None,
            read_only_trx: None,
            autocommit: None,
            session_change: false,
            missing_where: false,
            user_var: false,
        }
    }
}

/// No `WHERE` at parenthesis depth 0 from `start` on (a WHERE in a subquery, a CTE or a
/// function argument does not count).
fn lacks_where(sql: &[u8], toks: &[Token], start: usize) -> bool {
    let mut depth = 0usize;
    for t in toks.iter().skip(start) {
        match t.tk {
            Tk::Op if t.is_op(sql, b'(') => depth += 1,
            Tk::Op if t.is_op(sql, b')') => depth = depth.saturating_sub(1),
            Tk::Word if depth == 0 && t.kw == Kw::WHERE => return false,
            _ => {}
        }
    }
    true
}

/// Recursion bound for statements that wrap statements (EXPLAIN, ANALYZE, SET STATEMENT).
const MAX_NESTING: u32 = 8;

#[inline]
fn is_op2(sql: &[u8], toks: &[Token], i: usize, s: &[u8]) -> bool {
    toks.get(i)
        .is_some_and(|t| t.tk == Tk::Op && t.text(sql) == s)
}

/// Split `toks` into statements at `;`, except inside the BEGIN … END body of a compound
/// statement (`BEGIN NOT ATOMIC`, `label: BEGIN`, or a `CREATE`/`ALTER` of a stored
/// program). Calls `f` with each non-empty statement's tokens.
pub fn split<'t>(sql: &[u8], toks: &'t [Token], mut f: impl FnMut(&'t [Token])) {
    let n = toks.len();
    let mut start = 0;
    let mut i = 0;
    while i < n {
        // Statement start: decide whether BEGIN/END nesting is tracked.
        let compound = match kw(toks, start) {
            Kw::CREATE | Kw::ALTER => true,
            Kw::BEGIN => kw(toks, start + 1) == Kw::NOT,
            Kw::None => is_op(sql, toks, start + 1, b':'),
            _ => false,
        };
        let mut depth = 0usize;
        i = start;
        while i < n {
            let t = toks[i];
            if t.tk == Tk::Semi {
                if depth == 0 {
                    break;
                }
            } else if compound && t.tk == Tk::Word {
                match t.kw {
                    Kw::BEGIN | Kw::CASE => depth += 1,
                    Kw::END => match kw(toks, i + 1) {
                        Kw::IF | Kw::LOOP | Kw::WHILE | Kw::REPEAT => i += 1,
                        Kw::CASE => {
                            depth = depth.saturating_sub(1);
                            i += 1;
                        }
                        _ => depth = depth.saturating_sub(1),
                    },
                    _ => {}
                }
            }
            i += 1;
        }
        if i > start {
            f(&toks[start..i]);
        }
        i += 1;
        start = i;
    }
}

/// Things anywhere in a statement that make a read statement write or change the session.
#[derive(Default)]
struct Signals {
    write: bool,
    user_var: bool,
}

fn signals(sql: &[u8], toks: &[Token]) -> Signals {
    let mut s = Signals::default();
    for (i, t) in toks.iter().enumerate() {
        let writes = match (t.tk, t.kw) {
            (Tk::Var, _) => {
                s.user_var |= is_op2(sql, toks, i + 1, b":=");
                false
            }
            (
                Tk::Word,
                Kw::GET_LOCK | Kw::RELEASE_LOCK | Kw::RELEASE_ALL_LOCKS | Kw::NEXTVAL | Kw::SETVAL,
            ) => is_op(sql, toks, i + 1, b'('),
            (Tk::Word, Kw::LAST_INSERT_ID) => {
                is_op(sql, toks, i + 1, b'(') && !is_op(sql, toks, i + 2, b')')
            }
            (Tk::Word, Kw::NEXT) => kw(toks, i + 1) == Kw::VALUE && kw(toks, i + 2) == Kw::FOR,
            (Tk::Word, Kw::FOR) => matches!(kw(toks, i + 1), Kw::UPDATE | Kw::SHARE),
            (Tk::Word, Kw::LOCK) => kw(toks, i + 1) == Kw::IN && kw(toks, i + 2) == Kw::SHARE,
            (Tk::Word, Kw::INTO) => {
                s.user_var |= toks.get(i + 1).is_some_and(|n| n.tk == Tk::Var);
                matches!(kw(toks, i + 1), Kw::OUTFILE | Kw::DUMPFILE)
            }
            _ => false,
        };
        s.write |= writes;
    }
    s
}

/// Classify one statement (no `;` tokens at its top level); its tables are appended to
/// `tables`.
pub fn classify_stmt(sql: &[u8], toks: &[Token], tables: &mut Vec<String>, nesting: u32) -> Stmt {
    use StatementType as T;
    if nesting > MAX_NESTING {
        return Stmt::new(T::Other, true);
    }
    // Skip leading parentheses: `(SELECT …) UNION (SELECT …)`.
    let mut h = 0;
    while is_op(sql, toks, h, b'(') {
        h += 1;
    }
    let head = kw(toks, h);
    let mut generic_tables = false;
    let mut head_tables = false;
    let mut read_signals = false; // apply Signals to may_write
    let mut st = match head {
        Kw::SELECT | Kw::VALUES | Kw::TABLE => {
            generic_tables = true;
            read_signals = true;
            Stmt::new(T::Select, false)
        }
        Kw::WITH => {
            let (ctes, main) = tables::cte_names(sql, toks, h);
            let before = tables.len();
            tables::generic(sql, toks, h, tables);
            let mut k = main;
            while is_op(sql, toks, k, b'(') {
                k += 1;
            }
            let mut st = match kw(toks, k) {
                Kw::INSERT => Stmt::new(T::Insert, true),
                Kw::UPDATE => Stmt::new(T::Update, true),
                Kw::DELETE => Stmt::new(T::Delete, true),
                Kw::REPLACE => Stmt::new(T::Replace, true),
                _ => Stmt::new(T::Select, false),
            };
            if st.kind != T::Select {
                tables::head_rule(sql, toks, k, tables);
            }
            st.missing_where =
                matches!(st.kind, T::Update | T::Delete) && lacks_where(sql, toks, k);
            // CTE names are not tables.
            let mut idx = before;
            while idx < tables.len() {
                if ctes.iter().any(|c| c.as_slice() == tables[idx].as_bytes()) {
                    tables.remove(idx);
                } else {
                    idx += 1;
                }
            }
            read_signals = true;
            st
        }
        Kw::INSERT => {
            head_tables = true;
            generic_tables = true;
            Stmt::new(T::Insert, true)
        }
        Kw::UPDATE => {
            head_tables = true;
            generic_tables = true;
            let mut s = Stmt::new(T::Update, true);
            s.missing_where = lacks_where(sql, toks, h);
            s
        }
        Kw::DELETE => {
            generic_tables = true;
            let mut s = Stmt::new(T::Delete, true);
            s.missing_where = lacks_where(sql, toks, h);
            s
        }
        Kw::REPLACE => {
            head_tables = true;
            generic_tables = true;
            Stmt::new(T::Replace, true)
        }
        Kw::LOAD => {
            generic_tables = true;
            if matches!(kw(toks, h + 1), Kw::DATA | Kw::XML) {
                Stmt::new(T::Load, true)
            } else {
                Stmt::new(T::Other, true)
            }
        }
        Kw::CREATE | Kw::ALTER | Kw::DROP | Kw::RENAME | Kw::TRUNCATE => {
            let mut j = h + 1;
            let mut temporary = false;
            let mut object = Kw::None;
            while j < toks.len() && j < h + 16 {
                match kw(toks, j) {
                    Kw::TEMPORARY => temporary = true,
                    Kw::USER
                    | Kw::ROLE
                    | Kw::PREPARE
                    | Kw::TABLE
                    | Kw::TABLES
                    | Kw::VIEW
                    | Kw::INDEX
                    | Kw::SEQUENCE
                    | Kw::DATABASE
                    | Kw::SCHEMA
                    | Kw::PROCEDURE
                    | Kw::FUNCTION
                    | Kw::TRIGGER
                    | Kw::EVENT => {
                        object = kw(toks, j);
                        break;
                    }
                    _ => {}
                }
                j += 1;
            }
            match object {
                Kw::USER | Kw::ROLE => Stmt::new(T::Grant, true),
                Kw::PREPARE if head == Kw::DROP => {
                    let mut s = Stmt::new(T::Deallocate, false);
                    s.session_change = true;
                    s
                }
                _ => {
                    head_tables = true;
                    generic_tables = true;
                    let mut s = Stmt::new(T::Ddl, true);
                    s.session_change = temporary && matches!(head, Kw::CREATE | Kw::DROP);
                    s
                }
            }
        }
        Kw::SET => return classify_set(sql, toks, h, tables, nesting),
        Kw::USE => {
            let mut s = Stmt::new(T::Use, false);
            s.session_change = true;
            s
        }
        Kw::BEGIN => {
            if kw(toks, h + 1) == Kw::NOT {
                generic_tables = true;
                Stmt::new(T::Other, true)
            } else {
                let mut s = Stmt::new(T::Begin, false);
                s.trx = Some(TrxBoundary::Begin);
                s
            }
        }
        Kw::START => {
            if kw(toks, h + 1) == Kw::TRANSACTION {
                let mut s = Stmt::new(T::Begin, false);
                s.trx = Some(TrxBoundary::Begin);
                for k in h + 2..toks.len() {
                    if kw(toks, k) == Kw::READ {
                        match kw(toks, k + 1) {
                            Kw::ONLY => s.read_only_trx = Some(true),
                            Kw::WRITE => s.read_only_trx = Some(false),
                            _ => {}
                        }
                    }
                }
                s
            } else {
                Stmt::new(T::Other, true)
            }
        }
        Kw::COMMIT => {
            let mut s = Stmt::new(T::Commit, false);
            s.trx = Some(if chains(toks, h) {
                TrxBoundary::Begin
            } else {
                TrxBoundary::Commit
            });
            s
        }
        Kw::ROLLBACK => {
            let mut j = h + 1;
            if kw(toks, j) == Kw::WORK {
                j += 1;
            }
            if kw(toks, j) == Kw::TO {
                Stmt::new(T::Savepoint, false)
            } else {
                let mut s = Stmt::new(T::Rollback, false);
                s.trx = Some(if chains(toks, h) {
                    TrxBoundary::Begin
                } else {
                    TrxBoundary::Rollback
                });
                s
            }
        }
        Kw::SAVEPOINT => Stmt::new(T::Savepoint, false),
        Kw::RELEASE if kw(toks, h + 1) == Kw::SAVEPOINT => Stmt::new(T::Savepoint, false),
        Kw::XA => {
            let mut s = Stmt::new(T::Xa, true);
            match kw(toks, h + 1) {
                Kw::START | Kw::BEGIN => s.trx = Some(TrxBoundary::Begin),
                Kw::COMMIT => s.trx = Some(TrxBoundary::Commit),
                Kw::ROLLBACK => s.trx = Some(TrxBoundary::Rollback),
                Kw::RECOVER => s.may_write = false,
                _ => {}
            }
            s
        }
        Kw::CALL => {
            generic_tables = true;
            let mut s = Stmt::new(T::Call, true);
            // A user variable given to a procedure may be an OUT or INOUT parameter,
            // which the call sets.
            if toks.iter().any(|t| t.tk == Tk::Var) {
                s.user_var = true;
                s.session_change = true;
            }
            s
        }
        Kw::SHOW => {
            head_tables = true;
            Stmt::new(T::Show, false)
        }
        Kw::LOCK => {
            head_tables = true;
            Stmt::new(T::Lock, true)
        }
        Kw::UNLOCK => Stmt::new(T::Unlock, true),
        Kw::PREPARE => {
            let mut s = Stmt::new(T::Prepare, false);
            s.session_change = true;
            s
        }
        Kw::EXECUTE => Stmt::new(T::Execute, true),
        Kw::DEALLOCATE => {
            let mut s = Stmt::new(T::Deallocate, false);
            s.session_change = true;
            s
        }
        Kw::DO => {
            generic_tables = true;
            read_signals = true;
            Stmt::new(T::Do, false)
        }
        Kw::GRANT | Kw::REVOKE => Stmt::new(T::Grant, true),
        Kw::EXPLAIN | Kw::DESCRIBE | Kw::DESC | Kw::ANALYZE => {
            let analyze = head == Kw::ANALYZE;
            // Skip EXTENDED, PARTITIONS, FORMAT=JSON and the like up to the statement; a
            // name right after the keyword is DESCRIBE's table.
            let mut j = h + 1;
            while j < toks.len().min(h + 8) {
                let t = toks[j];
                let stop = match t.tk {
                    Tk::Word => {
                        matches!(
                            t.kw,
                            Kw::SELECT
                                | Kw::WITH
                                | Kw::INSERT
                                | Kw::UPDATE
                                | Kw::DELETE
                                | Kw::REPLACE
                                | Kw::VALUES
                                | Kw::TABLE
                                | Kw::TABLES
                                | Kw::FOR
                        ) || (t.kw == Kw::None && j == h + 1)
                    }
                    Tk::Op => t.is_op(sql, b'('),
                    Tk::Quoted => true,
                    _ => false,
                };
                if stop {
                    break;
                }
                j += 1;
            }
            match kw(toks, j) {
                Kw::TABLE | Kw::TABLES if analyze => {
                    head_tables = true;
                    Stmt::new(T::Other, true)
                }
                Kw::SELECT
                | Kw::WITH
                | Kw::INSERT
                | Kw::UPDATE
                | Kw::DELETE
                | Kw::REPLACE
                | Kw::VALUES
                | Kw::TABLE => {
                    let inner = classify_stmt(sql, &toks[j..], tables, nesting + 1);
                    let mut s = Stmt::new(T::Explain, analyze && inner.may_write);
                    s.session_change = analyze && inner.session_change;
                    s.missing_where = analyze && inner.missing_where;
                    s
                }
                _ if is_op(sql, toks, j, b'(') => {
                    let inner = classify_stmt(sql, &toks[j..], tables, nesting + 1);
                    Stmt::new(T::Explain, analyze && inner.may_write)
                }
                _ => {
                    if analyze {
                        // ANALYZE NO_WRITE_TO_BINLOG TABLE … / unknown form
                        head_tables = true;
                        Stmt::new(T::Other, true)
                    } else {
                        head_tables = true;
                        Stmt::new(T::Explain, false)
                    }
                }
            }
        }
        Kw::HANDLER => {
            head_tables = true;
            let mut s = Stmt::new(T::Handler, false);
            s.session_change = matches!(kw(toks, h + 2), Kw::OPEN | Kw::CLOSE)
                || toks
                    .iter()
                    .skip(h + 1)
                    .take(4)
                    .any(|t| t.tk == Tk::Word && matches!(t.kw, Kw::OPEN | Kw::CLOSE));
            s
        }
        Kw::FLUSH => Stmt::new(T::Flush, true),
        Kw::KILL => Stmt::new(T::Kill, true),
        Kw::HELP | Kw::GET | Kw::SIGNAL | Kw::RESIGNAL => Stmt::new(T::Other, false),
        Kw::CHECK | Kw::CHECKSUM => {
            head_tables = true;
            Stmt::new(T::Other, false)
        }
        Kw::OPTIMIZE | Kw::REPAIR => {
            head_tables = true;
            Stmt::new(T::Other, true)
        }
        _ => {
            generic_tables = head == Kw::None; // labelled compound statement
            Stmt::new(T::Other, true)
        }
    };
    if head_tables {
        tables::head_rule(sql, toks, h, tables);
    }
    if generic_tables {
        tables::generic(sql, toks, h, tables);
    }
    if st.kind != T::Explain {
        let sig = signals(sql, toks);
        if read_signals && (sig.write || sig.user_var) {
            st.may_write = true;
        }
        if sig.user_var {
            st.session_change = true;
            st.user_var = true;
        }
    }
    st
}

/// COMMIT/ROLLBACK … AND CHAIN starts a new transaction right away.
fn chains(toks: &[Token], h: usize) -> bool {
    toks.iter()
        .enumerate()
        .skip(h + 1)
        .any(|(i, t)| t.tk == Tk::Word && t.kw == Kw::AND && kw(toks, i + 1) == Kw::CHAIN)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    Session,
    Global,
}

/// SET …: variables, NAMES, CHARACTER SET, TRANSACTION, PASSWORD, ROLE, STATEMENT … FOR.
fn classify_set(
    sql: &[u8],
    toks: &[Token],
    h: usize,
    tables: &mut Vec<String>,
    nesting: u32,
) -> Stmt {
    use StatementType as T;
    let mut s = Stmt::new(T::Set, false);
    let n = toks.len();
    let first = kw(toks, h + 1);
    match first {
        Kw::TRANSACTION => {
            s.session_change = true;
            return s;
        }
        Kw::SESSION | Kw::LOCAL if kw(toks, h + 2) == Kw::TRANSACTION => {
            s.session_change = true;
            return s;
        }
        Kw::GLOBAL if kw(toks, h + 2) == Kw::TRANSACTION => {
            s.may_write = true;
            return s;
        }
        Kw::PASSWORD => return Stmt::new(T::Grant, true),
        Kw::DEFAULT if kw(toks, h + 2) == Kw::ROLE => return Stmt::new(T::Grant, true),
        Kw::NAMES | Kw::CHARSET | Kw::CHARACTER | Kw::ROLE => {
            s.session_change = true;
            return s;
        }
        Kw::STATEMENT => {
            // SET STATEMENT var=value [, …] FOR <statement>: the statement decides.
            let mut depth = 0usize;
            for k in h + 2..n {
                if toks[k].is_op(sql, b'(') {
                    depth += 1;
                } else if toks[k].is_op(sql, b')') {
                    depth = depth.saturating_sub(1);
                } else if depth == 0 && kw(toks, k) == Kw::FOR {
                    return classify_stmt(sql, &toks[k + 1..], tables, nesting + 1);
                }
            }
            return Stmt::new(T::Other, true);
        }
        _ => {}
    }
    // Variable assignments, comma-separated at depth 0.
    let mut j = h + 1;
    while j < n {
        let mut scope = Scope::Session;
        match kw(toks, j) {
            Kw::GLOBAL => {
                scope = Scope::Global;
                j += 1;
            }
            Kw::SESSION | Kw::LOCAL => j += 1,
            _ => {}
        }
        let Some(target) = toks.get(j) else { break };
        let mut user_var = false;
        let mut name: &[u8] = b"";
        match target.tk {
            Tk::Var => user_var = true,
            Tk::SysVar => {
                let text = &target.text(sql)[2..];
                name = text;
                if let Some(dot) = text.iter().position(|&b| b == b'.') {
                    let prefix = &text[..dot];
                    if prefix.eq_ignore_ascii_case(b"global") {
                        scope = Scope::Global;
                        name = &text[dot + 1..];
                    } else if prefix.eq_ignore_ascii_case(b"session")
                        || prefix.eq_ignore_ascii_case(b"local")
                    {
                        name = &text[dot + 1..];
                    }
                }
            }
            _ => name = target.text(sql),
        }
        // Value: after `=` / `:=` up to the next depth-0 comma.
        let mut k = j + 1;
        while k < n
            && !is_op(sql, toks, k, b'=')
            && !is_op2(sql, toks, k, b":=")
            && !is_op(sql, toks, k, b',')
        {
            k += 1;
        }
        let vstart = k + 1;
        let mut depth = 0usize;
        k = vstart;
        while k < n {
            if toks[k].is_op(sql, b'(') {
                depth += 1;
            } else if toks[k].is_op(sql, b')') {
                depth = depth.saturating_sub(1);
            } else if depth == 0 && toks[k].is_op(sql, b',') {
                break;
            }
            k += 1;
        }
        if user_var {
            s.may_write = true;
            s.session_change = true;
            s.user_var = true;
        } else if scope == Scope::Global {
            s.may_write = true;
        } else {
            s.session_change = true;
            if name.eq_ignore_ascii_case(b"autocommit") && vstart < n {
                if let Some(v) = bool_value(sql, &toks[vstart..k.min(n)]) {
                    s.autocommit = Some(v);
                    s.trx = Some(if v {
                        TrxBoundary::Commit
                    } else {
                        TrxBoundary::Begin
                    });
                }
            }
        }
        j = k + 1;
    }
    // Expressions in values (SET @x = (SELECT … FOR UPDATE), GET_LOCK, NEXTVAL …).
    tables::generic(sql, toks, h, tables);
    if signals(sql, toks).write {
        s.may_write = true;
    }
    s
}

/// A boolean system-variable value: 1/0, ON/OFF, TRUE/FALSE, quoted or not.
fn bool_value(sql: &[u8], v: &[Token]) -> Option<bool> {
    if v.len() != 1 {
        return None;
    }
    let t = v[0];
    let mut text = t.text(sql);
    match t.tk {
        Tk::Str if text.len() >= 2 && (text[0] == b'\'' || text[0] == b'"') => {
            text = &text[1..text.len() - 1]
        }
        Tk::Num | Tk::Word => {}
        _ => return None,
    }
    if text == b"1" || text.eq_ignore_ascii_case(b"on") || text.eq_ignore_ascii_case(b"true") {
        Some(true)
    } else if text == b"0"
        || text.eq_ignore_ascii_case(b"off")
        || text.eq_ignore_ascii_case(b"false")
    {
        Some(false)
    } else {
        None
    }
}
