//! Command bytes (`COM_*`), their names, and the shape of the server's response to each.

/// The first byte of every client command packet.
pub mod com {
    /// Internal server state; never sent by clients.
    pub const SLEEP: u8 = 0x00;
    /// Close the connection. No response.
    pub const QUIT: u8 = 0x01;
    /// Change the default schema.
    pub const INIT_DB: u8 = 0x02;
    /// Run a text-protocol query.
    pub const QUERY: u8 = 0x03;
    /// List a table's columns (deprecated).
    pub const FIELD_LIST: u8 = 0x04;
    /// Create a schema (deprecated).
    pub const CREATE_DB: u8 = 0x05;
    /// Drop a schema (deprecated).
    pub const DROP_DB: u8 = 0x06;
    /// Flush tables, logs, caches... (deprecated).
    pub const REFRESH: u8 = 0x07;
    /// Shut the server down (deprecated).
    pub const SHUTDOWN: u8 = 0x08;
    /// Get a human-readable statistics string.
    pub const STATISTICS: u8 = 0x09;
    /// List processes as a result set (deprecated).
    pub const PROCESS_INFO: u8 = 0x0A;
    /// Internal server state.
    pub const CONNECT: u8 = 0x0B;
    /// Kill a connection (deprecated; use `KILL`).
    pub const PROCESS_KILL: u8 = 0x0C;
    /// Dump debug info to the server log.
    pub const DEBUG: u8 = 0x0D;
    /// Check the server is alive.
    pub const PING: u8 = 0x0E;
    /// Internal server state.
    pub const TIME: u8 = 0x0F;
    /// Internal server state.
    pub const DELAYED_INSERT: u8 = 0x10;
    /// Re-authenticate as another user, resetting the session.
    pub const CHANGE_USER: u8 = 0x11;
    /// Start a binlog stream (replication).
    pub const BINLOG_DUMP: u8 = 0x12;
    /// Internal server state.
    pub const TABLE_DUMP: u8 = 0x13;
    /// Internal server state.
    pub const CONNECT_OUT: u8 = 0x14;
    /// Register a replica with the primary.
    pub const REGISTER_SLAVE: u8 = 0x15;
    /// Prepare a statement.
    pub const STMT_PREPARE: u8 = 0x16;
    /// Execute a prepared statement.
    pub const STMT_EXECUTE: u8 = 0x17;
    /// Send a chunk of a long parameter. No response.
    pub const STMT_SEND_LONG_DATA: u8 = 0x18;
    /// Deallocate a prepared statement. No response.
    pub const STMT_CLOSE: u8 = 0x19;
    /// Reset a prepared statement's long data and cursor.
    pub const STMT_RESET: u8 = 0x1A;
    /// Enable or disable multi-statements.
    pub const SET_OPTION: u8 = 0x1B;
    /// Fetch rows from an open cursor.
    pub const STMT_FETCH: u8 = 0x1C;
    /// Internal server state.
    pub const DAEMON: u8 = 0x1D;
    /// Start a GTID-based binlog stream (MySQL replication).
    pub const BINLOG_DUMP_GTID: u8 = 0x1E;
    /// Reset the session state without re-authenticating.
    pub const RESET_CONNECTION: u8 = 0x1F;
    /// MariaDB: execute a prepared statement for many parameter sets.
    pub const STMT_BULK_EXECUTE: u8 = 0xFA;
    /// MariaDB: several commands in one packet (removed in later versions).
    pub const MULTI: u8 = 0xFE;
}

/// The conventional name of a command byte (`"COM_QUERY"`), or `"COM_UNKNOWN"`.
pub fn command_name(byte: u8) -> &'static str {
    match byte {
        com::SLEEP => "COM_SLEEP",
        com::QUIT => "COM_QUIT",
        com::INIT_DB => "COM_INIT_DB",
        com::QUERY => "COM_QUERY",
        com::FIELD_LIST => "COM_FIELD_LIST",
        com::CREATE_DB => "COM_CREATE_DB",
        com::DROP_DB => "COM_DROP_DB",
        com::REFRESH => "COM_REFRESH",
        com::SHUTDOWN => "COM_SHUTDOWN",
        com::STATISTICS => "COM_STATISTICS",
        com::PROCESS_INFO => "COM_PROCESS_INFO",
        com::CONNECT => "COM_CONNECT",
        com::PROCESS_KILL => "COM_PROCESS_KILL",
        com::DEBUG => "COM_DEBUG",
        com::PING => "COM_PING",
        com::TIME => "COM_TIME",
        com::DELAYED_INSERT => "COM_DELAYED_INSERT",
        com::CHANGE_USER => "COM_CHANGE_USER",
        com::BINLOG_DUMP => "COM_BINLOG_DUMP",
        com::TABLE_DUMP => "COM_TABLE_DUMP",
        com::CONNECT_OUT => "COM_CONNECT_OUT",
        com::REGISTER_SLAVE => "COM_REGISTER_SLAVE",
        com::STMT_PREPARE => "COM_STMT_PREPARE",
        com::STMT_EXECUTE => "COM_STMT_EXECUTE",
        com::STMT_SEND_LONG_DATA => "COM_STMT_SEND_LONG_DATA",
        com::STMT_CLOSE => "COM_STMT_CLOSE",
        com::STMT_RESET => "COM_STMT_RESET",
        com::SET_OPTION => "COM_SET_OPTION",
        com::STMT_FETCH => "COM_STMT_FETCH",
        com::DAEMON => "COM_DAEMON",
        com::BINLOG_DUMP_GTID => "COM_BINLOG_DUMP_GTID",
        com::RESET_CONNECTION => "COM_RESET_CONNECTION",
        com::STMT_BULK_EXECUTE => "COM_STMT_BULK_EXECUTE",
        com::MULTI => "COM_MULTI",
        _ => "COM_UNKNOWN",
    }
}

/// What the server sends back to a command: a hint for a response tracker that has to know
/// where a response ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseShape {
    /// No response at all: `COM_QUIT`, `COM_STMT_CLOSE`, `COM_STMT_SEND_LONG_DATA`.
    None,
    /// One OK, ERR or EOF packet: `COM_PING`, `COM_INIT_DB`, `COM_RESET_CONNECTION`,
    /// `COM_SET_OPTION`, `COM_STMT_RESET`, `COM_REGISTER_SLAVE`, ... and unknown commands
    /// (the server answers those with an ERR).
    Simple,
    /// OK, ERR, `LOCAL INFILE` request, or one or more result sets chained by
    /// `SERVER_MORE_RESULTS_EXISTS`: `COM_QUERY`, `COM_STMT_EXECUTE`, `COM_PROCESS_INFO`,
    /// `COM_STMT_BULK_EXECUTE`.
    ResultSets,
    /// `COM_STMT_PREPARE`: ERR, or a prepare-OK followed by parameter and column definitions.
    Prepare,
    /// `COM_FIELD_LIST`: ERR, or column definitions ended by an EOF (or OK-as-EOF).
    FieldList,
    /// `COM_STATISTICS`: a single raw string packet (or ERR).
    Statistics,
    /// `COM_STMT_FETCH`: binary rows until an EOF (or OK-as-EOF), or an ERR.
    Fetch,
    /// `COM_CHANGE_USER`: an authentication exchange ending in OK or ERR.
    Auth,
    /// `COM_BINLOG_DUMP` / `COM_BINLOG_DUMP_GTID`: a stream of event packets until EOF or ERR.
    Stream,
}

/// The response shape of a command byte (unknown commands are [`ResponseShape::Simple`]).
///
/// `COM_MULTI` is reported as `Simple` too: it yields one response per embedded command,
/// which a tracker has to handle by decoding [`crate::ComMulti`].
pub fn response_shape(command: u8) -> ResponseShape {
    match command {
        com::QUIT | com::STMT_CLOSE | com::STMT_SEND_LONG_DATA => ResponseShape::None,
        com::QUERY | com::STMT_EXECUTE | com::PROCESS_INFO | com::STMT_BULK_EXECUTE => {
            ResponseShape::ResultSets
        }
        com::STMT_PREPARE => ResponseShape::Prepare,
        com::FIELD_LIST => ResponseShape::FieldList,
        com::STATISTICS => ResponseShape::Statistics,
        com::STMT_FETCH => ResponseShape::Fetch,
        com::CHANGE_USER => ResponseShape::Auth,
        com::BINLOG_DUMP | com::BINLOG_DUMP_GTID => ResponseShape::Stream,
        _ => ResponseShape::Simple,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(command_name(3), "COM_QUERY");
        assert_eq!(command_name(0x1F), "COM_RESET_CONNECTION");
        assert_eq!(command_name(0xFA), "COM_STMT_BULK_EXECUTE");
        assert_eq!(command_name(0x20), "COM_UNKNOWN");
        // Every byte 0x00..=0x1F has a name.
        for b in 0..=0x1Fu8 {
            assert_ne!(command_name(b), "COM_UNKNOWN", "{b:#x}");
        }
    }

    #[test]
    fn shapes() {
        assert_eq!(response_shape(com::QUIT), ResponseShape::None);
        assert_eq!(response_shape(com::STMT_CLOSE), ResponseShape::None);
        assert_eq!(
            response_shape(com::STMT_SEND_LONG_DATA),
            ResponseShape::None
        );
        assert_eq!(response_shape(com::PING), ResponseShape::Simple);
        assert_eq!(response_shape(com::QUERY), ResponseShape::ResultSets);
        assert_eq!(response_shape(com::STMT_EXECUTE), ResponseShape::ResultSets);
        assert_eq!(
            response_shape(com::STMT_BULK_EXECUTE),
            ResponseShape::ResultSets
        );
        assert_eq!(response_shape(com::PROCESS_INFO), ResponseShape::ResultSets);
        assert_eq!(response_shape(com::STMT_PREPARE), ResponseShape::Prepare);
        assert_eq!(response_shape(com::FIELD_LIST), ResponseShape::FieldList);
        assert_eq!(response_shape(com::STATISTICS), ResponseShape::Statistics);
        assert_eq!(response_shape(com::STMT_FETCH), ResponseShape::Fetch);
        assert_eq!(response_shape(com::CHANGE_USER), ResponseShape::Auth);
        assert_eq!(response_shape(com::BINLOG_DUMP), ResponseShape::Stream);
        assert_eq!(response_shape(com::BINLOG_DUMP_GTID), ResponseShape::Stream);
        assert_eq!(response_shape(0x99), ResponseShape::Simple);
    }
}
