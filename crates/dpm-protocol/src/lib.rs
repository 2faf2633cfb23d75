//! MySQL / MariaDB client–server protocol codec for dpm.
//!
//! This crate owns the **wire format**, and only that:
//!
//! - **framing** ([`frame`]): the 4-byte packet header, splitting payloads into 16 MiB
//!   frames and joining them back ([`PacketDecoder`], [`encode_packet`]);
//! - **primitive types**: length-encoded integers and strings ([`lenenc`]), fixed-size and
//!   NUL-terminated fields ([`reader`], [`writer`]);
//! - **constants**: capability flags including MariaDB's extended ones ([`caps`]), server
//!   status flags ([`status`]), command bytes and the response shape of each command
//!   ([`command`]), column types and flags ([`column_type`], [`column_flags`]);
//! - **every packet**, decoded and encoded in both directions: handshake and handshake
//!   response, SSL request, auth switch / more data, `COM_CHANGE_USER`, OK / ERR / EOF and
//!   MariaDB progress reports, session-state tracking, result-set metadata, text and binary
//!   rows, all prepared-statement commands (including MariaDB bulk execute and MySQL query
//!   attributes), `LOAD DATA LOCAL INFILE`, replication and other commands;
//! - **scrambles** ([`scramble`]): `mysql_native_password` hashing and verification.
//!
//! It must not know about sockets, async runtimes, Lua, TLS, or connection state: there is
//! no I/O here. Callers pass in payloads (and the negotiated capability flags, or counts and
//! types remembered from earlier packets, where the layout depends on them) and get typed
//! values back, or encode typed values into a `BytesMut`. Tracking which packet comes next
//! is the engine's job; [`response_shape`], [`is_eof_packet`], [`terminator_status`] and
//! [`ok_status`] are the allocation-free helpers it uses on the hot path.
//!
//! Conventions:
//! - `decode` functions take the payload **without** the frame header. Those returning byte
//!   strings take `&Bytes` and hand out zero-copy slices of it; the others take `&[u8]`.
//! - `encode` functions append the payload (no header) to a `BytesMut`; frame it with
//!   [`encode_packet`] or [`encode_packet_with`].
//! - Decoders never panic: truncated or malformed input yields a [`ProtocolError`].
//! - Where the wire format lets one value be written several ways, encoders pick the form
//!   MySQL and MariaDB use, so real packets re-encode byte for byte.
//!
//! ```
//! use bytes::BytesMut;
//! use dpm_protocol::*;
//!
//! // A server's OK packet arriving on the wire, framed with sequence id 1.
//! let mut wire = BytesMut::new();
//! let ok = OkPacket { status_flags: SERVER_STATUS_AUTOCOMMIT, ..Default::default() };
//! let caps = CLIENT_PROTOCOL_41 | CLIENT_TRANSACTIONS;
//! encode_packet_with(&mut wire, 1, |dst| ok.encode(dst, caps));
//!
//! let mut decoder = PacketDecoder::default();
//! let packet = decoder.decode(&mut wire)?.expect("complete packet");
//! assert_eq!(packet.seq, 1);
//! assert_eq!(ok_status(&packet.payload), Some(SERVER_STATUS_AUTOCOMMIT));
//! assert_eq!(OkPacket::decode(&packet.payload, caps)?, ok);
//! # Ok::<(), ProtocolError>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod binary_row;
pub mod bulk;
pub mod caps;
pub mod change_user;
pub mod column;
pub mod column_flags;
pub mod column_type;
pub mod command;
pub mod command_packet;
pub mod connect_attrs;
pub mod err;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod handshake_response;
pub mod lenenc;
pub mod local_infile;
pub mod multi;
pub mod param;
pub mod query;
pub mod reader;
pub mod replication;
pub mod response;
pub mod scramble;
pub mod session_track;
pub mod status;
pub mod stmt;
pub mod stmt_execute;
pub mod text_row;
pub mod value;
pub mod writer;

#[cfg(test)]
mod test_util;

pub use auth::{AuthMoreData, AuthNextFactor, AuthSwitchRequest, AuthSwitchResponse};
pub use binary_row::BinaryRow;
pub use bulk::{BulkValue, ComStmtBulkExecute};
pub use caps::*;
pub use change_user::ComChangeUser;
pub use column::{ColumnCount, ColumnDefinition41};
pub use command::{com, command_name, response_shape, ResponseShape};
pub use command_packet::{ComFieldList, ComInitDb, ComProcessKill, ComSetOption, Command};
pub use connect_attrs::ConnectAttrs;
pub use err::{is_err_packet, is_progress_report, ErrPacket, ProgressReport};
pub use error::{ProtocolError, Result};
pub use frame::{
    encode_packet, encode_packet_with, Packet, PacketDecoder, PacketHeader, HEADER_LEN,
    MAX_PAYLOAD_LEN,
};
pub use handshake::HandshakeV10;
pub use handshake_response::{is_ssl_request, HandshakeResponse41, SslRequest};
pub use lenenc::{
    get_lenenc_int, get_lenenc_str, lenenc_int_len, put_lenenc_int, put_lenenc_str, NULL_MARKER,
};
pub use local_infile::{is_local_infile_request, LocalInfileRequest};
pub use multi::ComMulti;
pub use param::{ParamType, PARAM_UNSIGNED};
pub use query::{ComQuery, QueryAttributes};
pub use replication::{ComBinlogDump, ComBinlogDumpGtid, ComRegisterSlave};
pub use response::{
    is_eof_packet, is_ok_packet, ok_status, terminator_status, EofPacket, OkPacket,
};
pub use scramble::{
    native_password_hash, native_password_scramble, native_password_verify, parse_stored_hash_hex,
};
pub use session_track::{decode_session_state, encode_session_state, SessionStateChange};
pub use status::*;
pub use stmt::{
    ComStmtClose, ComStmtFetch, ComStmtPrepare, ComStmtReset, ComStmtSendLongData, StmtPrepareOk,
};
pub use stmt_execute::ComStmtExecute;
pub use text_row::TextRow;
pub use value::{BinaryValue, DateTime, Time};
