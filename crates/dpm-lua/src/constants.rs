//! The constants of the `dpm` table: return codes, connection kinds, protocol states
//! (the callback states of [`crate::dpm_events`]), command codes, column types and
//! server status bits, with the original DPM's names and values (reference §4).

use mlua::{Lua, Result, Table};

use crate::dpm_events::State;

/// Return code: forward the packet (also the meaning of nil).
pub const DPM_OK: i64 = 0;
/// Return code: swallow the packet.
pub const DPM_NOPROXY: i64 = 1;
/// Return code: forward the packet, then unlink the pair.
pub const DPM_FLUSH_DISCONNECT: i64 = 2;
/// `conn:my_type()` of a backend.
pub const MY_SERVER: i64 = 0;
/// `conn:my_type()` of a client (and of a listener).
pub const MY_CLIENT: i64 = 1;

const COMMANDS: &[(&str, i64)] = &[
    ("COM_SLEEP", 0),
    ("COM_QUIT", 1),
    ("COM_INIT_DB", 2),
    ("COM_QUERY", 3),
    ("COM_FIELD_LIST", 4),
    ("COM_CREATE_DB", 5),
    ("COM_DROP_DB", 6),
    ("COM_REFRESH", 7),
    ("COM_SHUTDOWN", 8),
    ("COM_STATISTICS", 9),
    ("COM_PROCESS_INFO", 10),
    ("COM_CONNECT", 11),
    ("COM_PROCESS_KILL", 12),
    ("COM_DEBUG", 13),
    ("COM_PING", 14),
    ("COM_TIME", 15),
    ("COM_DELAYED_INSERT", 16),
    ("COM_CHANGE_USER", 17),
    ("COM_BINLOG_DUMP", 18),
    ("COM_TABLE_DUMP", 19),
    ("COM_CONNECT_OUT", 20),
    ("COM_REGISTER_SLAVE", 21),
    ("COM_STMT_PREPARE", 22),
    ("COM_STMT_EXECUTE", 23),
    ("COM_STMT_SEND_LONG_DATA", 24),
    ("COM_STMT_CLOSE", 25),
    ("COM_STMT_RESET", 26),
    ("COM_SET_OPTION", 27),
    ("COM_STMT_FETCH", 28),
    ("COM_DAEMON", 29),
    ("COM_BINLOG_DUMP_GTID", 30),
    ("COM_RESET_CONNECTION", 31),
    ("COM_STMT_BULK_EXECUTE", 0xFA),
];

const COLUMN_TYPES: &[(&str, i64)] = &[
    ("MYSQL_TYPE_DECIMAL", 0),
    ("MYSQL_TYPE_TINY", 1),
    ("MYSQL_TYPE_SHORT", 2),
    ("MYSQL_TYPE_LONG", 3),
    ("MYSQL_TYPE_FLOAT", 4),
    ("MYSQL_TYPE_DOUBLE", 5),
    ("MYSQL_TYPE_NULL", 6),
    ("MYSQL_TYPE_TIMESTAMP", 7),
    ("MYSQL_TYPE_LONGLONG", 8),
    ("MYSQL_TYPE_INT24", 9),
    ("MYSQL_TYPE_DATE", 10),
    ("MYSQL_TYPE_TIME", 11),
    ("MYSQL_TYPE_DATETIME", 12),
    ("MYSQL_TYPE_YEAR", 13),
    ("MYSQL_TYPE_NEWDATE", 14),
    ("MYSQL_TYPE_VARCHAR", 15),
    ("MYSQL_TYPE_BIT", 16),
    ("MYSQL_TYPE_JSON", 245),
    ("MYSQL_TYPE_NEWDECIMAL", 246),
    ("MYSQL_TYPE_ENUM", 247),
    ("MYSQL_TYPE_SET", 248),
    ("MYSQL_TYPE_TINY_BLOB", 249),
    ("MYSQL_TYPE_MEDIUM_BLOB", 250),
    ("MYSQL_TYPE_LONG_BLOB", 251),
    ("MYSQL_TYPE_BLOB", 252),
    ("MYSQL_TYPE_VAR_STRING", 253),
    ("MYSQL_TYPE_STRING", 254),
    ("MYSQL_TYPE_GEOMETRY", 255),
];

const SERVER_STATUS: &[(&str, i64)] = &[
    ("SERVER_STATUS_IN_TRANS", 1),
    ("SERVER_STATUS_AUTOCOMMIT", 2),
    ("SERVER_MORE_RESULTS_EXISTS", 8),
    ("SERVER_QUERY_NO_GOOD_INDEX_USED", 16),
    ("SERVER_QUERY_NO_INDEX_USED", 32),
    ("SERVER_STATUS_CURSOR_EXISTS", 64),
    ("SERVER_STATUS_LAST_ROW_SENT", 128),
    ("SERVER_STATUS_DB_DROPPED", 256),
    ("SERVER_STATUS_NO_BACKSLASH_ESCAPES", 512),
    ("SERVER_STATUS_METADATA_CHANGED", 1024),
    ("SERVER_QUERY_WAS_SLOW", 2048),
    ("SERVER_PS_OUT_PARAMS", 4096),
    ("SERVER_STATUS_IN_TRANS_READONLY", 8192),
    ("SERVER_SESSION_STATE_CHANGED", 16384),
];

/// Sets every constant on the `dpm` table.
pub fn register(_lua: &Lua, dpm: &Table) -> Result<()> {
    for (name, value) in [
        ("DPM_OK", DPM_OK),
        ("DPM_NOPROXY", DPM_NOPROXY),
        ("DPM_FLUSH_DISCONNECT", DPM_FLUSH_DISCONNECT),
        ("MY_SERVER", MY_SERVER),
        ("MY_CLIENT", MY_CLIENT),
    ] {
        dpm.set(name, value)?;
    }
    for (name, state) in State::ALL {
        dpm.set(*name, state.0 as i64)?;
    }
    for (name, value) in COMMANDS.iter().chain(COLUMN_TYPES).chain(SERVER_STATUS) {
        dpm.set(*name, *value)?;
    }
    Ok(())
}
