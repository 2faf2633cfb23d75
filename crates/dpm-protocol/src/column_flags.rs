//! Column definition flags (the 16-bit `flags` field of a column definition).
//!
//! Parameter types in `COM_STMT_EXECUTE` use a separate one-byte flag, see
//! [`crate::PARAM_UNSIGNED`].

/// The column cannot be NULL.
pub const NOT_NULL_FLAG: u16 = 1;
/// Part of the primary key.
pub const PRI_KEY_FLAG: u16 = 2;
/// Part of a unique key.
pub const UNIQUE_KEY_FLAG: u16 = 4;
/// Part of a non-unique key.
pub const MULTIPLE_KEY_FLAG: u16 = 8;
/// A BLOB or TEXT column.
pub const BLOB_FLAG: u16 = 16;
/// An unsigned numeric column.
pub const UNSIGNED_FLAG: u16 = 32;
/// A ZEROFILL numeric column.
pub const ZEROFILL_FLAG: u16 = 64;
/// A binary string column.
pub const BINARY_FLAG: u16 = 128;
/// An ENUM column.
pub const ENUM_FLAG: u16 = 256;
/// An AUTO_INCREMENT column.
pub const AUTO_INCREMENT_FLAG: u16 = 512;
/// A TIMESTAMP column.
pub const TIMESTAMP_FLAG: u16 = 1024;
/// A SET column.
pub const SET_FLAG: u16 = 2048;
/// The column has no default value.
pub const NO_DEFAULT_VALUE_FLAG: u16 = 4096;
/// The column is set to NOW() on UPDATE.
pub const ON_UPDATE_NOW_FLAG: u16 = 8192;
/// Part of some key (internal).
pub const PART_KEY_FLAG: u16 = 16384;
/// A numeric column.
pub const NUM_FLAG: u16 = 32768;
