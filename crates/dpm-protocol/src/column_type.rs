//! Column type codes (`enum_field_types`, `MYSQL_TYPE_*`), used in column definitions,
//! binary rows and statement parameters.

/// `MYSQL_TYPE_DECIMAL` (old decimal; binary: length-encoded string).
pub const DECIMAL: u8 = 0;
/// `MYSQL_TYPE_TINY` (binary: 1 byte).
pub const TINY: u8 = 1;
/// `MYSQL_TYPE_SHORT` (binary: 2 bytes).
pub const SHORT: u8 = 2;
/// `MYSQL_TYPE_LONG` (binary: 4 bytes).
pub const LONG: u8 = 3;
/// `MYSQL_TYPE_FLOAT` (binary: 4-byte IEEE 754).
pub const FLOAT: u8 = 4;
/// `MYSQL_TYPE_DOUBLE` (binary: 8-byte IEEE 754).
pub const DOUBLE: u8 = 5;
/// `MYSQL_TYPE_NULL` (binary: no bytes; nullness is in the NULL bitmap).
pub const NULL: u8 = 6;
/// `MYSQL_TYPE_TIMESTAMP` (binary: date-time).
pub const TIMESTAMP: u8 = 7;
/// `MYSQL_TYPE_LONGLONG` (binary: 8 bytes).
pub const LONGLONG: u8 = 8;
/// `MYSQL_TYPE_INT24` (binary: 4 bytes).
pub const INT24: u8 = 9;
/// `MYSQL_TYPE_DATE` (binary: date-time).
pub const DATE: u8 = 10;
/// `MYSQL_TYPE_TIME` (binary: time).
pub const TIME: u8 = 11;
/// `MYSQL_TYPE_DATETIME` (binary: date-time).
pub const DATETIME: u8 = 12;
/// `MYSQL_TYPE_YEAR` (binary: 2 bytes).
pub const YEAR: u8 = 13;
/// `MYSQL_TYPE_NEWDATE` (internal; binary: date-time).
pub const NEWDATE: u8 = 14;
/// `MYSQL_TYPE_VARCHAR` (binary: length-encoded string).
pub const VARCHAR: u8 = 15;
/// `MYSQL_TYPE_BIT` (binary: length-encoded string).
pub const BIT: u8 = 16;
/// `MYSQL_TYPE_TIMESTAMP2` (internal; binary: date-time).
pub const TIMESTAMP2: u8 = 17;
/// `MYSQL_TYPE_DATETIME2` (internal; binary: date-time).
pub const DATETIME2: u8 = 18;
/// `MYSQL_TYPE_TIME2` (internal; binary: time).
pub const TIME2: u8 = 19;
/// `MYSQL_TYPE_TYPED_ARRAY` (MySQL replication only).
pub const TYPED_ARRAY: u8 = 20;
/// `MYSQL_TYPE_VECTOR` (MySQL 9; binary: length-encoded string).
pub const VECTOR: u8 = 242;
/// `MYSQL_TYPE_INVALID` (MySQL internal).
pub const INVALID: u8 = 243;
/// `MYSQL_TYPE_BOOL` (MySQL internal placeholder).
pub const BOOL: u8 = 244;
/// `MYSQL_TYPE_JSON` (binary: length-encoded string).
pub const JSON: u8 = 245;
/// `MYSQL_TYPE_NEWDECIMAL` (binary: length-encoded string).
pub const NEWDECIMAL: u8 = 246;
/// `MYSQL_TYPE_ENUM` (binary: length-encoded string).
pub const ENUM: u8 = 247;
/// `MYSQL_TYPE_SET` (binary: length-encoded string).
pub const SET: u8 = 248;
/// `MYSQL_TYPE_TINY_BLOB` (binary: length-encoded string).
pub const TINY_BLOB: u8 = 249;
/// `MYSQL_TYPE_MEDIUM_BLOB` (binary: length-encoded string).
pub const MEDIUM_BLOB: u8 = 250;
/// `MYSQL_TYPE_LONG_BLOB` (binary: length-encoded string).
pub const LONG_BLOB: u8 = 251;
/// `MYSQL_TYPE_BLOB` (binary: length-encoded string).
pub const BLOB: u8 = 252;
/// `MYSQL_TYPE_VAR_STRING` (binary: length-encoded string).
pub const VAR_STRING: u8 = 253;
/// `MYSQL_TYPE_STRING` (binary: length-encoded string).
pub const STRING: u8 = 254;
/// `MYSQL_TYPE_GEOMETRY` (binary: length-encoded string).
pub const GEOMETRY: u8 = 255;

/// The `MYSQL_TYPE_*` name of a type code, or `"MYSQL_TYPE_UNKNOWN"`.
pub fn type_name(t: u8) -> &'static str {
    match t {
        DECIMAL => "MYSQL_TYPE_DECIMAL",
        TINY => "MYSQL_TYPE_TINY",
        SHORT => "MYSQL_TYPE_SHORT",
        LONG => "MYSQL_TYPE_LONG",
        FLOAT => "MYSQL_TYPE_FLOAT",
        DOUBLE => "MYSQL_TYPE_DOUBLE",
        NULL => "MYSQL_TYPE_NULL",
        TIMESTAMP => "MYSQL_TYPE_TIMESTAMP",
        LONGLONG => "MYSQL_TYPE_LONGLONG",
        INT24 => "MYSQL_TYPE_INT24",
        DATE => "MYSQL_TYPE_DATE",
        TIME => "MYSQL_TYPE_TIME",
        DATETIME => "MYSQL_TYPE_DATETIME",
        YEAR => "MYSQL_TYPE_YEAR",
        NEWDATE => "MYSQL_TYPE_NEWDATE",
        VARCHAR => "MYSQL_TYPE_VARCHAR",
        BIT => "MYSQL_TYPE_BIT",
        TIMESTAMP2 => "MYSQL_TYPE_TIMESTAMP2",
        DATETIME2 => "MYSQL_TYPE_DATETIME2",
        TIME2 => "MYSQL_TYPE_TIME2",
        TYPED_ARRAY => "MYSQL_TYPE_TYPED_ARRAY",
        VECTOR => "MYSQL_TYPE_VECTOR",
        INVALID => "MYSQL_TYPE_INVALID",
        BOOL => "MYSQL_TYPE_BOOL",
        JSON => "MYSQL_TYPE_JSON",
        NEWDECIMAL => "MYSQL_TYPE_NEWDECIMAL",
        ENUM => "MYSQL_TYPE_ENUM",
        SET => "MYSQL_TYPE_SET",
        TINY_BLOB => "MYSQL_TYPE_TINY_BLOB",
        MEDIUM_BLOB => "MYSQL_TYPE_MEDIUM_BLOB",
        LONG_BLOB => "MYSQL_TYPE_LONG_BLOB",
        BLOB => "MYSQL_TYPE_BLOB",
        VAR_STRING => "MYSQL_TYPE_VAR_STRING",
        STRING => "MYSQL_TYPE_STRING",
        GEOMETRY => "MYSQL_TYPE_GEOMETRY",
        _ => "MYSQL_TYPE_UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(type_name(VAR_STRING), "MYSQL_TYPE_VAR_STRING");
        assert_eq!(type_name(JSON), "MYSQL_TYPE_JSON");
        assert_eq!(type_name(100), "MYSQL_TYPE_UNKNOWN");
        assert_eq!((VARCHAR, JSON, GEOMETRY), (15, 245, 255));
    }
}
