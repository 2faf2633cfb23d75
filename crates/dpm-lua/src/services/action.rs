//! What a Lua filter's `route_query` returns, turned into a pipeline [`Action`]:
//!
//! * `nil` or `true`: pass the query on (rewritten if the filter called `query:set_sql`);
//! * `{ sql = "..." }`: pass this SQL on instead;
//! * `{ error = "message", code = 1105, sqlstate = "HY000" }`: block it with that ERR;
//! * `{ ok = true, affected_rows = n, insert_id = n, info = "..." }`: answer OK;
//! * `{ columns = { "a", ... }, rows = { { v, ... }, ... } }`: answer with a result set
//!   (a `nil` value is SQL NULL);
//! * `{ route = "db2" }`: pass it on and ask the router for that server.
//!
//! Anything else is an invalid action: the client gets an ERR naming the filter. So is an
//! answer the command cannot have: a result set for anything but COM_QUERY (a prepared
//! statement's execution expects binary rows), an OK for COM_STMT_PREPARE.

use bytes::{Bytes, BytesMut};
use dpm_engine::pipeline::{Action, ReplyPacket};
use dpm_protocol::caps::MARIADB_CLIENT_CACHE_METADATA;
use dpm_protocol::column::{ColumnCount, ColumnDefinition41};
use dpm_protocol::command::com;
use dpm_protocol::err::ErrPacket;
use dpm_protocol::lenenc::put_lenenc_opt_str;
use mlua::{Table, Value};

/// Error code of errors dpm raises itself (ER_UNKNOWN_ERROR's neighbour used by servers
/// for "generic error").
pub const GENERIC_ERROR: u16 = 1105;

/// An ERR reply.
pub fn error_action(code: u16, sql_state: [u8; 5], message: String) -> Action {
    let mut p = BytesMut::new();
    ErrPacket::new(code, sql_state, message).encode(&mut p);
    Action::Reply(vec![ReplyPacket::Raw(p.freeze())])
}

/// Turns a filter's return value into an action; `Err` says why it is invalid.
pub fn from_lua(
    value: &Value,
    rewritten: Option<Bytes>,
    command: u8,
    caps: u64,
) -> Result<Action, String> {
    let table = match value {
        Value::Nil | Value::Boolean(true) => {
            return Ok(match rewritten {
                Some(sql) => Action::Replace(with_command(command, &sql)),
                None => Action::Forward,
            })
        }
        Value::Table(t) => t,
        other => {
            return Err(format!(
                "returned {} where nil or an action table was expected",
                other.type_name()
            ))
        }
    };
    let field = |name: &str| table.get::<Value>(name).unwrap_or(Value::Nil);
    if let Value::String(message) = field("error") {
        let code = match field("code") {
            Value::Integer(c) if (1..=65535).contains(&c) => c as u16,
            Value::Nil => GENERIC_ERROR,
            _ => return Err("returned an error whose code is not a number from 1 to 65535".into()),
        };
        let state = match field("sqlstate") {
            Value::String(s) if s.as_bytes().len() == 5 => {
                let b = s.as_bytes();
                [b[0], b[1], b[2], b[3], b[4]]
            }
            Value::Nil => *b"HY000",
            _ => return Err("returned an error whose sqlstate is not 5 characters".into()),
        };
        return Ok(error_action(code, state, message.to_string_lossy()));
    }
    if let Value::String(sql) = field("sql") {
        return Ok(Action::Replace(with_command(command, &sql.as_bytes())));
    }
    if let Value::String(server) = field("route") {
        return Ok(Action::Route(server.to_string_lossy()));
    }
    if let Value::Table(columns) = field("columns") {
        if command != com::QUERY {
            return Err(format!(
                "answered command {command:#04x} with a result set (only COM_QUERY, a statement, takes a text result set)"
            ));
        }
        let rows = match field("rows") {
            Value::Table(rows) => Some(rows),
            Value::Nil => None,
            _ => return Err("returned a result set whose rows are not a table".into()),
        };
        return result_set(&columns, rows.as_ref(), caps).map(Action::Reply);
    }
    if !matches!(field("ok"), Value::Nil | Value::Boolean(false)) {
        if matches!(
            command,
            com::STMT_PREPARE | com::STMT_FETCH | com::STATISTICS | com::FIELD_LIST
        ) {
            return Err(format!(
                "answered command {command:#04x} with an OK, which is not a response it can have"
            ));
        }
        let int = |name: &str| match field(name) {
            Value::Integer(n) if n >= 0 => n as u64,
            _ => 0,
        };
        let info = match field("info") {
            Value::String(s) => Bytes::copy_from_slice(&s.as_bytes()),
            _ => Bytes::new(),
        };
        return Ok(Action::Reply(vec![ReplyPacket::Ok {
            affected_rows: int("affected_rows"),
            last_insert_id: int("insert_id"),
            info,
        }]));
    }
    Err("returned a table with none of: sql, error, ok, columns, route".into())
}

fn with_command(command: u8, sql: &[u8]) -> Bytes {
    let mut p = BytesMut::with_capacity(sql.len() + 1);
    p.extend_from_slice(&[command]);
    p.extend_from_slice(sql);
    p.freeze()
}

/// A text result set: column count, definitions, EOF, rows, EOF.
fn result_set(
    columns: &Table,
    rows: Option<&Table>,
    caps: u64,
) -> Result<Vec<ReplyPacket>, String> {
    // A text result set never carries MariaDB's metadata-skip byte (that is binary only).
    let caps = caps & !MARIADB_CLIENT_CACHE_METADATA;
    let names: Vec<Bytes> = columns
        .sequence_values::<Value>()
        .map(|v| match v {
            Ok(Value::String(s)) => Ok(Bytes::copy_from_slice(&s.as_bytes())),
            Ok(Value::Table(t)) => match t.get::<Value>("name") {
                Ok(Value::String(s)) => Ok(Bytes::copy_from_slice(&s.as_bytes())),
                _ => Err("returned a column table without a name".to_string()),
            },
            _ => Err("returned columns that are not names".to_string()),
        })
        .collect::<Result<_, _>>()?;
    if names.is_empty() {
        return Err("returned a result set without columns".into());
    }
    let mut packets = Vec::with_capacity(names.len() + 4);
    let mut p = BytesMut::new();
    ColumnCount {
        count: names.len() as u64,
        metadata_follows: None,
    }
    .encode(&mut p, caps);
    packets.push(ReplyPacket::Raw(p.split().freeze()));
    for name in &names {
        ColumnDefinition41 {
            catalog: Bytes::from_static(b"def"),
            name: name.clone(),
            org_name: name.clone(),
            character_set: 45, // utf8mb4_general_ci
            column_length: 1 << 24,
            column_type: 253, // VAR_STRING
            decimals: 0x1F,
            ..Default::default()
        }
        .encode(&mut p, caps);
        packets.push(ReplyPacket::Raw(p.split().freeze()));
    }
    packets.push(ReplyPacket::Eof);
    if let Some(rows) = rows {
        for row in rows.sequence_values::<Value>() {
            let Ok(Value::Table(row)) = row else {
                return Err("returned a row that is not a table".into());
            };
            for i in 1..=names.len() {
                let value = row.get::<Value>(i).unwrap_or(Value::Nil);
                let text = match &value {
                    Value::Nil => None,
                    Value::String(s) => Some(s.as_bytes().to_vec()),
                    Value::Integer(n) => Some(n.to_string().into_bytes()),
                    Value::Number(n) => Some(n.to_string().into_bytes()),
                    Value::Boolean(b) => Some((*b as u8).to_string().into_bytes()),
                    other => {
                        return Err(format!(
                            "returned a row value of type {}",
                            other.type_name()
                        ))
                    }
                };
                put_lenenc_opt_str(&mut p, text.as_deref());
            }
            packets.push(ReplyPacket::Raw(p.split().freeze()));
        }
    }
    packets.push(ReplyPacket::Eof);
    Ok(packets)
}
