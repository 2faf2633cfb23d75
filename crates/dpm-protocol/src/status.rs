//! Server status flags, carried in OK and EOF packets and the initial handshake.

/// A transaction is active.
pub const SERVER_STATUS_IN_TRANS: u16 = 1;
/// Autocommit mode is on.
pub const SERVER_STATUS_AUTOCOMMIT: u16 = 2;
/// More result sets follow this one.
pub const SERVER_MORE_RESULTS_EXISTS: u16 = 8;
/// The query used a bad index.
pub const SERVER_QUERY_NO_GOOD_INDEX_USED: u16 = 16;
/// The query used no index.
pub const SERVER_QUERY_NO_INDEX_USED: u16 = 32;
/// A read-only cursor was opened by `COM_STMT_EXECUTE`; fetch rows with `COM_STMT_FETCH`.
pub const SERVER_STATUS_CURSOR_EXISTS: u16 = 64;
/// The last row of an open cursor was sent.
pub const SERVER_STATUS_LAST_ROW_SENT: u16 = 128;
/// The current database was dropped.
pub const SERVER_STATUS_DB_DROPPED: u16 = 256;
/// `NO_BACKSLASH_ESCAPES` is in the SQL mode.
pub const SERVER_STATUS_NO_BACKSLASH_ESCAPES: u16 = 512;
/// Result metadata changed since the statement was prepared (re-prepare).
pub const SERVER_STATUS_METADATA_CHANGED: u16 = 1024;
/// The query was logged as slow.
pub const SERVER_QUERY_WAS_SLOW: u16 = 2048;
/// This result set carries the OUT parameters of a stored procedure.
pub const SERVER_PS_OUT_PARAMS: u16 = 4096;
/// The active transaction is read-only.
pub const SERVER_STATUS_IN_TRANS_READONLY: u16 = 8192;
/// Session state changed; the OK packet carries session-state-tracking data.
pub const SERVER_SESSION_STATE_CHANGED: u16 = 16384;

/// Every status flag with its name, in bit order.
pub const STATUS_NAMES: &[(u16, &str)] = &[
    (SERVER_STATUS_IN_TRANS, "SERVER_STATUS_IN_TRANS"),
    (SERVER_STATUS_AUTOCOMMIT, "SERVER_STATUS_AUTOCOMMIT"),
    (SERVER_MORE_RESULTS_EXISTS, "SERVER_MORE_RESULTS_EXISTS"),
    (
        SERVER_QUERY_NO_GOOD_INDEX_USED,
        "SERVER_QUERY_NO_GOOD_INDEX_USED",
    ),
    (SERVER_QUERY_NO_INDEX_USED, "SERVER_QUERY_NO_INDEX_USED"),
    (SERVER_STATUS_CURSOR_EXISTS, "SERVER_STATUS_CURSOR_EXISTS"),
    (SERVER_STATUS_LAST_ROW_SENT, "SERVER_STATUS_LAST_ROW_SENT"),
    (SERVER_STATUS_DB_DROPPED, "SERVER_STATUS_DB_DROPPED"),
    (
        SERVER_STATUS_NO_BACKSLASH_ESCAPES,
        "SERVER_STATUS_NO_BACKSLASH_ESCAPES",
    ),
    (
        SERVER_STATUS_METADATA_CHANGED,
        "SERVER_STATUS_METADATA_CHANGED",
    ),
    (SERVER_QUERY_WAS_SLOW, "SERVER_QUERY_WAS_SLOW"),
    (SERVER_PS_OUT_PARAMS, "SERVER_PS_OUT_PARAMS"),
    (
        SERVER_STATUS_IN_TRANS_READONLY,
        "SERVER_STATUS_IN_TRANS_READONLY",
    ),
    (SERVER_SESSION_STATE_CHANGED, "SERVER_SESSION_STATE_CHANGED"),
];

/// The names of the flags set in `status`, for logs.
pub fn status_names(status: u16) -> impl Iterator<Item = &'static str> {
    STATUS_NAMES
        .iter()
        .filter(move |(b, _)| status & b != 0)
        .map(|(_, n)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let n: Vec<_> =
            status_names(SERVER_STATUS_AUTOCOMMIT | SERVER_MORE_RESULTS_EXISTS).collect();
        assert_eq!(
            n,
            ["SERVER_STATUS_AUTOCOMMIT", "SERVER_MORE_RESULTS_EXISTS"]
        );
        assert_eq!(SERVER_SESSION_STATE_CHANGED, 0x4000);
    }
}
