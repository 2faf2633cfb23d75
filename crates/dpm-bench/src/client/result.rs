//! Reading a command's response: OK, ERR, or result sets (column count, column
//! definitions unless the server skipped them under `MARIADB_CLIENT_CACHE_METADATA`, EOF,
//! rows, EOF), repeated while the server says more results exist; a `LOCAL INFILE`
//! request is refused with an empty packet.
//!
//! Rows go to a [`RowSink`]. The built-in workloads use [`CountRows`], which only counts:
//! the payloads are looked at in the read buffer and nothing is decoded or copied. The
//! Lua API's sink builds Lua tables.

use dpm_protocol::{get_lenenc_int, ColumnDefinition41, SERVER_MORE_RESULTS_EXISTS};

use super::error::ClientError;
use super::login::server_error;
use super::Conn;

/// A column of a result set, for sinks that decode rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Column {
    /// The column's name (its `AS` name).
    pub name: String,
    /// Its type (`dpm_protocol::column_type`).
    pub column_type: u8,
    /// True for an unsigned integer.
    pub unsigned: bool,
}

/// Where a response's rows go.
pub trait RowSink {
    /// Whether the sink wants column definitions and rows at all (false: only counted).
    const DECODES: bool;
    /// A result set starts, with these columns (cached ones when the server skipped them).
    fn columns(&mut self, _columns: &[Column]) -> Result<(), ClientError> {
        Ok(())
    }
    /// One row's payload (text or binary protocol).
    fn row(&mut self, _payload: &[u8], _columns: &[Column]) -> Result<(), ClientError> {
        Ok(())
    }
}

/// A sink that counts rows and decodes nothing.
pub struct CountRows;

impl RowSink for CountRows {
    const DECODES: bool = false;
}

/// A response in short.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Rows of all result sets.
    pub rows: u64,
    /// Result sets.
    pub result_sets: u32,
    /// Affected rows of the last OK (0 for a result set).
    pub affected_rows: u64,
    /// The last OK's insert id.
    pub last_insert_id: u64,
}

const STATUS_ALWAYS_MORE: u16 = SERVER_MORE_RESULTS_EXISTS;

impl Conn {
    /// Reads a whole response. `cached` holds the columns of a prepared statement, used
    /// when the server skips the definitions.
    pub(crate) async fn read_response<S: RowSink>(
        &mut self,
        sink: &mut S,
        cached: &mut Vec<Column>,
    ) -> Result<Outcome, ClientError> {
        let mut outcome = Outcome::default();
        loop {
            let (seq, start, end) = self.io.next_packet().await?;
            let first = self.io.payload(start, end).first().copied();
            match first {
                Some(0x00) => {
                    let status = self.ok(start, end, &mut outcome)?;
                    if status & STATUS_ALWAYS_MORE == 0 {
                        return Ok(outcome);
                    }
                }
                Some(0xff) => return Err(server_error(self.io.payload(start, end))),
                Some(0xfb) => {
                    // LOCAL INFILE: refuse with an empty packet; OK or ERR follows.
                    self.io.begin_packet();
                    self.io.finish_packet(0, seq.wrapping_add(1))?;
                    self.io.send().await?;
                }
                None => return Err(ClientError::Protocol("an empty response packet".into())),
                Some(_) => {
                    let status = self
                        .result_set(start, end, sink, cached, &mut outcome)
                        .await?;
                    if status & STATUS_ALWAYS_MORE == 0 {
                        return Ok(outcome);
                    }
                }
            }
        }
    }

    fn ok(&mut self, start: usize, end: usize, outcome: &mut Outcome) -> Result<u16, ClientError> {
        let mut buf = &self.io.payload(start, end)[1..];
        let bad = |e| ClientError::decode("OK packet", e);
        outcome.affected_rows = get_lenenc_int(&mut buf).map_err(bad)?.unwrap_or(0);
        outcome.last_insert_id = get_lenenc_int(&mut buf).map_err(bad)?.unwrap_or(0);
        Ok(match buf {
            [a, b, ..] => u16::from_le_bytes([*a, *b]),
            _ => 0,
        })
    }

    /// One result set from its column-count packet; returns the final EOF's status.
    async fn result_set<S: RowSink>(
        &mut self,
        start: usize,
        end: usize,
        sink: &mut S,
        cached: &mut Vec<Column>,
        outcome: &mut Outcome,
    ) -> Result<u16, ClientError> {
        let mut buf = self.io.payload(start, end);
        let count = get_lenenc_int(&mut buf)
            .map_err(|e| ClientError::decode("column count", e))?
            .unwrap_or(0);
        let metadata_follows = !self.cache_metadata || buf.first().copied().unwrap_or(1) != 0;
        outcome.result_sets += 1;
        if metadata_follows {
            if S::DECODES {
                cached.clear();
            }
            for _ in 0..count {
                let (_, s, e) = self.io.next_packet().await?;
                if S::DECODES {
                    let payload = bytes::Bytes::copy_from_slice(self.io.payload(s, e));
                    let def = ColumnDefinition41::decode(&payload, self.capabilities)
                        .map_err(|e| ClientError::decode("column definition", e))?;
                    cached.push(Column {
                        name: String::from_utf8_lossy(&def.name).into_owned(),
                        column_type: def.column_type,
                        unsigned: def.flags & dpm_protocol::column_flags::UNSIGNED_FLAG != 0,
                    });
                }
            }
        }
        if S::DECODES {
            sink.columns(cached)?;
        }
        // The EOF after the column definitions (sent even when they were skipped).
        let (_, s, e) = self.io.next_packet().await?;
        if !is_eof(self.io.payload(s, e)) {
            return Err(ClientError::Protocol(
                "no EOF after the column definitions".into(),
            ));
        }
        loop {
            let (_, s, e) = self.io.next_packet().await?;
            let payload = self.io.payload(s, e);
            if is_eof(payload) {
                return Ok(u16::from_le_bytes([payload[3], payload[4]]));
            }
            if payload.first() == Some(&0xff) {
                return Err(server_error(payload));
            }
            outcome.rows += 1;
            if S::DECODES {
                sink.row(payload, cached)?;
            }
        }
    }
}

/// A classic EOF packet (`0xFE`, 5 bytes: warnings, status).
#[inline]
fn is_eof(payload: &[u8]) -> bool {
    payload.len() == 5 && payload[0] == 0xfe
}
