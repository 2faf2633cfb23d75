//! What a statement asks of readwritesplit, from the command and the classifier alone
//! (no session state): a read, a write, a session command, a transaction boundary, a
//! statement that pins the session to the primary, a hint. The session (`session.rs`)
//! then applies its state: an open transaction, a pin, the replica it reads from.

use dpm_protocol::command::com;

use super::reason::Reason;
use crate::classifier::{Classification, StatementType, TrxBoundary};

/// What a request wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Want {
    /// A read: a replica will do.
    Read,
    /// The primary, for this reason.
    Primary(Reason),
    /// The primary, and the session stays there: what cannot be replayed elsewhere
    /// (`why`: temporary table, GET_LOCK, LOCK TABLES).
    Pin(&'static str),
    /// The backend the session is on.
    Current(Reason),
    /// Every backend of the session.
    SessionCommand,
    /// A transaction starts (read-only ones may run on a replica).
    Begin { read_only: bool },
    /// The transaction ends (COMMIT, ROLLBACK): where it ran.
    End,
    /// A hint: `primary`, `replica` or `server <name>`.
    Hint(Hint),
}

/// A routing hint in a comment (`-- dpm: route to primary`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hint {
    Primary,
    Replica,
    Server(String),
}

/// What `command` (a COM_* byte) with this classification (of its SQL, if any) wants.
pub fn want(command: u8, sql: Option<&[u8]>, c: Option<&Classification>) -> Want {
    match command {
        com::QUERY => {}
        // Every backend prepares each statement (and resets and closes it): an execute
        // may then run on any of them (`session.rs` routes it as the statement it runs).
        com::INIT_DB
        | com::SET_OPTION
        | com::RESET_CONNECTION
        | com::STMT_PREPARE
        | com::STMT_RESET
        | com::STMT_CLOSE => return Want::SessionCommand,
        com::STMT_EXECUTE | com::STMT_SEND_LONG_DATA | com::STMT_FETCH | com::STMT_BULK_EXECUTE => {
            return Want::Primary(Reason::PreparedStatement)
        }
        com::PING
        | com::STATISTICS
        | com::FIELD_LIST
        | com::QUIT
        | com::DEBUG
        | com::PROCESS_INFO => return Want::Current(Reason::Command),
        _ => return Want::Primary(Reason::Command),
    }
    let statement = match c {
        Some(c) => of_statement(c),
        None => Want::Primary(Reason::Write),
    };
    match (statement, sql.and_then(hint)) {
        // State every backend must share, or that pins the session, goes where it must
        // whatever a hint says.
        (statement @ (Want::SessionCommand | Want::Pin(_)), _) => statement,
        (_, Some(hint)) => Want::Hint(hint),
        (statement, None) => statement,
    }
}

/// What a classified SQL statement wants.
fn of_statement(c: &Classification) -> Want {
    match c.trx {
        Some(TrxBoundary::Begin) if c.kind == StatementType::Begin => {
            return Want::Begin {
                read_only: c.read_only_trx == Some(true) && !c.may_write,
            }
        }
        Some(TrxBoundary::Commit | TrxBoundary::Rollback)
            if matches!(c.kind, StatementType::Commit | StatementType::Rollback) =>
        {
            return Want::End
        }
        _ => {}
    }
    let digest = c.digest.as_bytes();
    if c.kind == StatementType::Lock {
        return Want::Pin("LOCK TABLES");
    }
    if c.kind == StatementType::Ddl && contains_ci(digest, b"TEMPORARY") {
        return Want::Pin("temporary table");
    }
    if contains_ci(digest, b"GET_LOCK(") {
        return Want::Pin("GET_LOCK()");
    }
    if c.kind == StatementType::Set && contains_ci(digest, b"SQL_AUTO_IS_NULL") {
        // With it on, `WHERE id IS NULL` reads the row of the session's last insert:
        // only the primary, where the session inserted, has that.
        return Want::Pin("sql_auto_is_null");
    }
    if c.assigns_user_var {
        // A constant (or an expression of the session's own state) can be set on every
        // backend alike; a value read from tables, a sequence or the last insert could
        // differ from server to server, so the session stays where it was computed.
        let computed_elsewhere = !c.tables.is_empty()
            || c.kind != StatementType::Set
            || [
                &b"NEXTVAL("[..],
                b"SETVAL(",
                b"NEXT VALUE",
                b"LAST_INSERT_ID(",
                b"@@",
            ]
            .iter()
            .any(|f| contains_ci(digest, f));
        return match computed_elsewhere || !deterministic(digest) {
            false => Want::SessionCommand,
            true => Want::Pin("user variable set from a query"),
        };
    }
    if c.session_change && !c.may_write {
        return Want::SessionCommand;
    }
    if c.session_change {
        // `SET NAMES x; INSERT …`: the session change runs only where the write does.
        return Want::Pin("a statement that changes session state and writes");
    }
    if c.may_write || c.kind == StatementType::Unknown {
        return Want::Primary(Reason::Write);
    }
    if matches!(
        c.kind,
        StatementType::Execute | StatementType::Call | StatementType::Xa | StatementType::Kill
    ) {
        // An SQL-level EXECUTE may run a write; a procedure may write; XA and KILL act
        // on the primary's sessions.
        return Want::Primary(Reason::Write);
    }
    if contains_ci(digest, b"LAST_INSERT_ID(")
        || contains_ci(digest, b"@@LAST_INSERT_ID")
        || contains_ci(digest, b"@@IDENTITY")
    {
        return Want::Primary(Reason::LastInsertId);
    }
    let about_previous = [
        &b"FOUND_ROWS("[..],
        b"ROW_COUNT(",
        b"@@WARNING_COUNT",
        b"@@ERROR_COUNT",
    ];
    if about_previous.iter().any(|f| contains_ci(digest, f))
        || [
            &b"SHOW WARNINGS"[..],
            b"SHOW ERRORS",
            b"SHOW COUNT",
            b"GET ",
        ]
        .iter()
        .any(|p| digest.len() >= p.len() && digest[..p.len()].eq_ignore_ascii_case(p))
    {
        // The previous statement's counts, warnings and diagnostics live where it ran.
        return Want::Current(Reason::PreviousStatement);
    }
    Want::Read
}

/// Functions whose value is the same on every server for the same arguments: a user
/// variable set from them (and from constants and other variables) can be set on every
/// backend. Any other call (`UUID()`, `NOW()`, `RAND()`, `CONNECTION_ID()` …) could
/// differ from server to server.
const DETERMINISTIC: &[&str] = &[
    "ABS",
    "CAST",
    "CEIL",
    "CEILING",
    "CHAR_LENGTH",
    "COALESCE",
    "CONCAT",
    "CONCAT_WS",
    "CONVERT",
    "FLOOR",
    "GREATEST",
    "HEX",
    "IF",
    "IFNULL",
    "JSON_ARRAY",
    "JSON_OBJECT",
    "LCASE",
    "LEAST",
    "LEFT",
    "LENGTH",
    "LOWER",
    "LPAD",
    "LTRIM",
    "MD5",
    "NULLIF",
    "REPEAT",
    "REPLACE",
    "REVERSE",
    "RIGHT",
    "ROUND",
    "RPAD",
    "RTRIM",
    "SHA1",
    "SHA2",
    "SUBSTR",
    "SUBSTRING",
    "TRIM",
    "UCASE",
    "UNHEX",
    "UPPER",
];

/// Every function called in `digest` (a word right before `(`) is in [`DETERMINISTIC`].
fn deterministic(digest: &[u8]) -> bool {
    let mut word_start = None;
    for (i, &b) in digest.iter().enumerate() {
        if b.is_ascii_alphanumeric() || b == b'_' {
            word_start.get_or_insert(i);
            continue;
        }
        if b == b'(' {
            if let Some(start) = word_start {
                let name = &digest[start..i];
                if !DETERMINISTIC
                    .iter()
                    .any(|d| d.as_bytes().eq_ignore_ascii_case(name))
                {
                    return false;
                }
            }
        }
        word_start = None;
    }
    true
}

/// A `dpm: route to …` hint in the statement's comments.
fn hint(sql: &[u8]) -> Option<Hint> {
    let at = find(sql, b"dpm:")?;
    let rest = std::str::from_utf8(&sql[at + 4..]).ok()?;
    let mut words = rest.split_whitespace();
    if !words.next()?.eq_ignore_ascii_case("route") || !words.next()?.eq_ignore_ascii_case("to") {
        return None;
    }
    let clean = |w: &str| w.trim_end_matches("*/").to_ascii_lowercase();
    match clean(words.next()?).as_str() {
        "primary" | "master" => Some(Hint::Primary),
        "replica" | "slave" => Some(Hint::Replica),
        "server" => {
            let name = words.next()?.trim_end_matches("*/");
            (!name.is_empty()).then(|| Hint::Server(name.to_string()))
        }
        _ => None,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn contains_ci(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classifier::classify;

    fn q(sql: &str) -> Want {
        let c = classify(sql.as_bytes());
        want(com::QUERY, Some(sql.as_bytes()), Some(&c))
    }

    #[test]
    fn sql_auto_is_null_pins_the_session() {
        // `WHERE id IS NULL` then reads the session's last insert: only the primary has it.
        assert_eq!(q("SET sql_auto_is_null = 1"), Want::Pin("sql_auto_is_null"));
        assert_eq!(
            q("SET SESSION SQL_AUTO_IS_NULL=ON"),
            Want::Pin("sql_auto_is_null")
        );
        assert_eq!(q("SET autocommit = 1"), Want::SessionCommand);
    }

    #[test]
    fn statements_want_what_an_operator_expects() {
        assert_eq!(q("SELECT * FROM t WHERE id = 1"), Want::Read);
        assert_eq!(q("SHOW TABLES"), Want::Read);
        assert_eq!(q("INSERT INTO t VALUES (1)"), Want::Primary(Reason::Write));
        assert_eq!(
            q("SELECT * FROM t FOR UPDATE"),
            Want::Primary(Reason::Write)
        );
        assert_eq!(q("SET NAMES utf8mb4"), Want::SessionCommand);
        assert_eq!(q("SET @a = 1"), Want::SessionCommand);
        assert_eq!(q("SET @a = 1, @b = CONCAT('x', @a)"), Want::SessionCommand);
        for nondeterministic in ["UUID()", "NOW()", "RAND()", "CONNECTION_ID()"] {
            assert_eq!(
                q(&format!("SET @a = {nondeterministic}")),
                Want::Pin("user variable set from a query"),
                "{nondeterministic}"
            );
        }
        assert_eq!(
            q("SET NAMES utf8mb4; INSERT INTO t VALUES (1)"),
            Want::Pin("a statement that changes session state and writes")
        );
        assert_eq!(q("SHOW WARNINGS"), Want::Current(Reason::PreviousStatement));
        assert_eq!(
            q("SELECT @@warning_count"),
            Want::Current(Reason::PreviousStatement)
        );
        assert_eq!(
            q("GET DIAGNOSTICS @n = NUMBER"),
            Want::Current(Reason::PreviousStatement)
        );
        assert_eq!(
            q("SET @a = (SELECT MAX(id) FROM t)"),
            Want::Pin("user variable set from a query")
        );
        assert_eq!(
            q("SELECT a INTO @a FROM t LIMIT 1"),
            Want::Pin("user variable set from a query")
        );
        assert_eq!(
            q("SET @a = @@server_id"),
            Want::Pin("user variable set from a query")
        );
        // An OUT parameter sets the variable on the primary only.
        assert_eq!(
            q("CALL p(@cnt)"),
            Want::Pin("user variable set from a query")
        );
        assert_eq!(q("CALL p(1)"), Want::Primary(Reason::Write));
        assert_eq!(q("USE test"), Want::SessionCommand);
        assert_eq!(q("PREPARE s FROM 'SELECT 1'"), Want::SessionCommand);
        assert_eq!(q("EXECUTE s"), Want::Primary(Reason::Write));
        assert_eq!(q("BEGIN"), Want::Begin { read_only: false });
        assert_eq!(
            q("START TRANSACTION READ ONLY"),
            Want::Begin { read_only: true }
        );
        assert_eq!(q("COMMIT"), Want::End);
        assert_eq!(q("ROLLBACK"), Want::End);
        assert_eq!(
            q("CREATE TEMPORARY TABLE tt (a INT)"),
            Want::Pin("temporary table")
        );
        assert_eq!(q("LOCK TABLES t WRITE"), Want::Pin("LOCK TABLES"));
        assert_eq!(q("SELECT GET_LOCK('x', 1)"), Want::Pin("GET_LOCK()"));
        assert_eq!(
            q("SELECT LAST_INSERT_ID()"),
            Want::Primary(Reason::LastInsertId)
        );
        assert_eq!(
            q("SELECT FOUND_ROWS()"),
            Want::Current(Reason::PreviousStatement)
        );
        assert_eq!(
            q("SELECT 'LAST_INSERT_ID()'"),
            Want::Read,
            "not inside a string"
        );
    }

    #[test]
    fn hints_in_comments() {
        assert_eq!(
            q("SELECT 1 -- dpm: route to primary"),
            Want::Hint(Hint::Primary)
        );
        assert_eq!(
            q("/* dpm: route to server db2 */ SELECT 1"),
            Want::Hint(Hint::Server("db2".into()))
        );
        assert_eq!(
            q("SELECT 1 /* dpm: ROUTE TO replica*/"),
            Want::Hint(Hint::Replica)
        );
        assert_eq!(q("SELECT 1 /* dpm: hello */"), Want::Read);
        assert_eq!(
            q("SET NAMES latin1 /* dpm: route to server db2 */"),
            Want::SessionCommand,
            "session state goes everywhere whatever the hint"
        );
    }

    #[test]
    fn commands() {
        assert_eq!(want(com::INIT_DB, None, None), Want::SessionCommand);
        assert_eq!(want(com::PING, None, None), Want::Current(Reason::Command));
        assert_eq!(
            want(com::STMT_PREPARE, Some(b"SELECT 1"), None),
            Want::SessionCommand
        );
    }
}
