//! The built-in workloads: sysbench 1.0.20's `oltp_point_select`, `oltp_read_only` and
//! `oltp_read_write` (`/usr/share/sysbench/oltp_*.lua` and `oltp_common.lua`), on the
//! tables `sysbench oltp_read_write prepare` makes (`sbtest1..N`): the same statements
//! in the same order, the same options and defaults, rows picked by sysbench's random
//! numbers ([`crate::rand`]), so that tps and qps compare with sysbench's.
//!
//! With `--db-ps-mode auto` (sysbench's default) every statement, `BEGIN` and `COMMIT`
//! included, is a server-side prepared statement executed with binary parameters
//! (integers as `LONG`, strings as `STRING`, as sysbench binds them); with `disable`,
//! each is a `COM_QUERY` whose text is the statement with the values written in, as
//! sysbench's emulation does. A transaction is sysbench's event; queries are counted as
//! sysbench counts them (`BEGIN` and `COMMIT` included). Rows are counted, never decoded.
//! In steady state nothing here allocates.

use std::io::Write;

use crate::client::{ClientError, Conn, CountRows, Param, Statement};
use crate::rand::{RandOptions, SbRand};

/// Which workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    /// One point select per transaction, no `BEGIN`/`COMMIT`.
    PointSelect,
    /// Point selects and the four range queries in a transaction.
    ReadOnly,
    /// `ReadOnly` plus the updates, a delete and an insert.
    ReadWrite,
}

impl Builtin {
    /// By sysbench's test name.
    pub fn from_name(name: &str) -> Option<Builtin> {
        Some(match name {
            "oltp_point_select" => Builtin::PointSelect,
            "oltp_read_only" => Builtin::ReadOnly,
            "oltp_read_write" => Builtin::ReadWrite,
            _ => return None,
        })
    }

    /// sysbench's test name.
    pub fn name(self) -> &'static str {
        match self {
            Builtin::PointSelect => "oltp_point_select",
            Builtin::ReadOnly => "oltp_read_only",
            Builtin::ReadWrite => "oltp_read_write",
        }
    }
}

/// sysbench's OLTP options, with its defaults.
#[derive(Clone, Debug)]
pub struct OltpOptions {
    /// `--tables` (sysbench's default: 1).
    pub tables: u32,
    /// `--table-size`.
    pub table_size: u32,
    /// `--range-size`.
    pub range_size: u32,
    /// `--point-selects` (oltp_point_select always does 1).
    pub point_selects: u32,
    /// `--simple-ranges`.
    pub simple_ranges: u32,
    /// `--sum-ranges`.
    pub sum_ranges: u32,
    /// `--order-ranges`.
    pub order_ranges: u32,
    /// `--distinct-ranges`.
    pub distinct_ranges: u32,
    /// `--index-updates`.
    pub index_updates: u32,
    /// `--non-index-updates`.
    pub non_index_updates: u32,
    /// `--delete-inserts`.
    pub delete_inserts: u32,
    /// `--range-selects`.
    pub range_selects: bool,
    /// `--skip-trx`.
    pub skip_trx: bool,
    /// `--db-ps-mode auto` (true) or `disable`.
    pub prepared: bool,
    /// `--rand-*`.
    pub rand: RandOptions,
}

impl Default for OltpOptions {
    fn default() -> Self {
        OltpOptions {
            tables: 1,
            table_size: 10_000,
            range_size: 100,
            point_selects: 10,
            simple_ranges: 1,
            sum_ranges: 1,
            order_ranges: 1,
            distinct_ranges: 1,
            index_updates: 1,
            non_index_updates: 1,
            delete_inserts: 1,
            range_selects: true,
            skip_trx: false,
            prepared: true,
            rand: RandOptions::default(),
        }
    }
}

/// `c_value_template`: 10 groups of 11 digits, 119 characters.
const C_TEMPLATE: &[u8; 119] = b"###########-###########-###########-###########-###########-###########-###########-###########-###########-###########";
/// `pad_value_template`: 5 groups, 59 characters.
const PAD_TEMPLATE: &[u8; 59] = b"###########-###########-###########-###########-###########";

/// The statements of sysbench's `stmt_defs`, by key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    PointSelect,
    SimpleRange,
    SumRange,
    OrderRange,
    DistinctRange,
    IndexUpdate,
    NonIndexUpdate,
    Delete,
    Insert,
}

impl Key {
    const ALL: [Key; 9] = [
        Key::PointSelect,
        Key::SimpleRange,
        Key::SumRange,
        Key::OrderRange,
        Key::DistinctRange,
        Key::IndexUpdate,
        Key::NonIndexUpdate,
        Key::Delete,
        Key::Insert,
    ];

    /// The statement's text around the table number (`sbtest%u`) and its `?`s.
    fn parts(self) -> &'static [&'static str] {
        match self {
            Key::PointSelect => &["SELECT c FROM sbtest", " WHERE id=", ""],
            Key::SimpleRange => &["SELECT c FROM sbtest", " WHERE id BETWEEN ", " AND ", ""],
            Key::SumRange => &[
                "SELECT SUM(k) FROM sbtest",
                " WHERE id BETWEEN ",
                " AND ",
                "",
            ],
            Key::OrderRange => &[
                "SELECT c FROM sbtest",
                " WHERE id BETWEEN ",
                " AND ",
                " ORDER BY c",
            ],
            Key::DistinctRange => &[
                "SELECT DISTINCT c FROM sbtest",
                " WHERE id BETWEEN ",
                " AND ",
                " ORDER BY c",
            ],
            Key::IndexUpdate => &["UPDATE sbtest", " SET k=k+1 WHERE id=", ""],
            Key::NonIndexUpdate => &["UPDATE sbtest", " SET c=", " WHERE id=", ""],
            Key::Delete => &["DELETE FROM sbtest", " WHERE id=", ""],
            Key::Insert => &[
                "INSERT INTO sbtest",
                " (id, k, c, pad) VALUES (",
                ", ",
                ", ",
                ", ",
                ")",
            ],
        }
    }

    /// The statement for table `t`, with `?` placeholders.
    fn sql(self, t: u32) -> Vec<u8> {
        let parts = self.parts();
        let mut sql = Vec::new();
        let _ = write!(sql, "{}{t}{}", parts[0], parts[1]);
        for p in &parts[2..] {
            sql.push(b'?');
            sql.extend_from_slice(p.as_bytes());
        }
        sql
    }

    fn used_by(self, kind: Builtin, o: &OltpOptions) -> bool {
        let ranges = kind != Builtin::PointSelect && o.range_selects;
        match self {
            Key::PointSelect => true,
            Key::SimpleRange | Key::SumRange | Key::OrderRange | Key::DistinctRange => ranges,
            _ => kind == Builtin::ReadWrite,
        }
    }
}

/// A parameter value of one execution.
#[derive(Clone, Copy)]
enum Value<'a> {
    Int(u32),
    Str(&'a [u8]),
}

/// One connection's state for a built-in workload: its statements (per table and key),
/// its random numbers and its buffers.
pub struct OltpConn {
    kind: Builtin,
    options: OltpOptions,
    /// `stmts[table - 1][key]`, prepared when `--db-ps-mode auto`.
    stmts: Vec<Vec<Option<Statement>>>,
    begin: Option<Statement>,
    commit: Option<Statement>,
    rand: SbRand,
    /// Statement text (`--db-ps-mode disable`).
    text: Vec<u8>,
    c_value: [u8; 119],
    pad_value: [u8; 59],
}

impl OltpConn {
    /// Prepares what the workload needs on `conn` (sysbench's `thread_init`).
    pub async fn new(
        conn: &mut Conn,
        kind: Builtin,
        options: &OltpOptions,
        seed: u64,
    ) -> Result<OltpConn, ClientError> {
        let mut options = options.clone();
        if kind == Builtin::PointSelect {
            options.point_selects = 1;
            options.skip_trx = true;
        }
        let mut state = OltpConn {
            kind,
            stmts: Vec::new(),
            begin: None,
            commit: None,
            rand: SbRand::new(&options.rand, seed),
            text: Vec::with_capacity(512),
            c_value: *C_TEMPLATE,
            pad_value: *PAD_TEMPLATE,
            options,
        };
        if state.options.prepared {
            if !state.options.skip_trx {
                state.begin = Some(conn.prepare(b"BEGIN").await?);
                state.commit = Some(conn.prepare(b"COMMIT").await?);
            }
            for t in 1..=state.options.tables {
                let mut per_key = Vec::with_capacity(Key::ALL.len());
                for key in Key::ALL {
                    per_key.push(if key.used_by(kind, &state.options) {
                        Some(conn.prepare(&key.sql(t)).await?)
                    } else {
                        None
                    });
                }
                state.stmts.push(per_key);
            }
        }
        Ok(state)
    }

    /// The workload.
    pub fn kind(&self) -> Builtin {
        self.kind
    }

    /// One transaction (sysbench's `event`); returns the queries it ran.
    pub async fn transaction(&mut self, conn: &mut Conn) -> Result<u64, ClientError> {
        let o = &self.options;
        let (trx, ranges, rw) = (
            !o.skip_trx,
            self.kind != Builtin::PointSelect && o.range_selects,
            self.kind == Builtin::ReadWrite,
        );
        let mut queries = 0;
        if trx {
            queries += self.plain(conn, b"BEGIN", true).await?;
        }
        queries += self.point_selects(conn).await?;
        if ranges {
            for (key, n) in [
                (Key::SimpleRange, self.options.simple_ranges),
                (Key::SumRange, self.options.sum_ranges),
                (Key::OrderRange, self.options.order_ranges),
                (Key::DistinctRange, self.options.distinct_ranges),
            ] {
                queries += self.ranges(conn, key, n).await?;
            }
        }
        if rw {
            queries += self.index_updates(conn).await?;
            queries += self.non_index_updates(conn).await?;
            queries += self.delete_inserts(conn).await?;
        }
        if trx {
            queries += self.plain(conn, b"COMMIT", false).await?;
        }
        Ok(queries)
    }

    async fn plain(
        &mut self,
        conn: &mut Conn,
        sql: &[u8],
        begin: bool,
    ) -> Result<u64, ClientError> {
        let stmt = if begin {
            &mut self.begin
        } else {
            &mut self.commit
        };
        match stmt {
            Some(stmt) => conn.execute(stmt, &[], &mut CountRows).await?,
            None => conn.query(sql, &mut CountRows).await?,
        };
        Ok(1)
    }

    fn table(&mut self) -> u32 {
        self.rand.uniform(1, self.options.tables)
    }

    fn id(&mut self) -> u32 {
        self.rand.default(1, self.options.table_size)
    }

    async fn point_selects(&mut self, conn: &mut Conn) -> Result<u64, ClientError> {
        let t = self.table();
        let n = self.options.point_selects;
        for _ in 0..n {
            let id = self.id();
            self.run(conn, t, Key::PointSelect, &[Value::Int(id)])
                .await?;
        }
        Ok(u64::from(n))
    }

    async fn ranges(&mut self, conn: &mut Conn, key: Key, n: u32) -> Result<u64, ClientError> {
        let t = self.table();
        for _ in 0..n {
            let id = self.id();
            let last = id.wrapping_add(self.options.range_size).wrapping_sub(1);
            self.run(conn, t, key, &[Value::Int(id), Value::Int(last)])
                .await?;
        }
        Ok(u64::from(n))
    }

    async fn index_updates(&mut self, conn: &mut Conn) -> Result<u64, ClientError> {
        let t = self.table();
        let n = self.options.index_updates;
        for _ in 0..n {
            let id = self.id();
            self.run(conn, t, Key::IndexUpdate, &[Value::Int(id)])
                .await?;
        }
        Ok(u64::from(n))
    }

    async fn non_index_updates(&mut self, conn: &mut Conn) -> Result<u64, ClientError> {
        let t = self.table();
        let n = self.options.non_index_updates;
        for _ in 0..n {
            let mut c = self.c_value;
            self.rand.fill_str(C_TEMPLATE, &mut c);
            let id = self.id();
            self.run(
                conn,
                t,
                Key::NonIndexUpdate,
                &[Value::Str(&c), Value::Int(id)],
            )
            .await?;
        }
        Ok(u64::from(n))
    }

    async fn delete_inserts(&mut self, conn: &mut Conn) -> Result<u64, ClientError> {
        let t = self.table();
        let n = self.options.delete_inserts;
        for _ in 0..n {
            let id = self.id();
            let k = self.id();
            let (mut c, mut pad) = (self.c_value, self.pad_value);
            self.rand.fill_str(C_TEMPLATE, &mut c);
            self.rand.fill_str(PAD_TEMPLATE, &mut pad);
            self.run(conn, t, Key::Delete, &[Value::Int(id)]).await?;
            let values = [
                Value::Int(id),
                Value::Int(k),
                Value::Str(&c),
                Value::Str(&pad),
            ];
            self.run(conn, t, Key::Insert, &values).await?;
        }
        Ok(u64::from(n) * 2)
    }

    /// Executes `key` on table `t` with `values`: prepared, or as text.
    async fn run(
        &mut self,
        conn: &mut Conn,
        t: u32,
        key: Key,
        values: &[Value<'_>],
    ) -> Result<(), ClientError> {
        if let Some(stmt) = self
            .stmts
            .get_mut(t as usize - 1)
            .and_then(|per_key| per_key[key as usize].as_mut())
        {
            // sysbench binds INT as a 4-byte integer: ids up to 2^31 - 1.
            let mut params = [Param::Null; 4];
            for (p, v) in params.iter_mut().zip(values) {
                *p = match *v {
                    Value::Int(n) => Param::Int(n as i32),
                    Value::Str(s) => Param::Str(s),
                };
            }
            conn.execute(stmt, &params[..values.len()], &mut CountRows)
                .await?;
            return Ok(());
        }
        let parts = key.parts();
        self.text.clear();
        let _ = write!(self.text, "{}{t}{}", parts[0], parts[1]);
        for (v, p) in values.iter().zip(&parts[2..]) {
            match *v {
                Value::Int(n) => {
                    let _ = write!(self.text, "{}", n as i32);
                }
                Value::Str(s) => {
                    self.text.push(b'\'');
                    self.text.extend_from_slice(s);
                    self.text.push(b'\'');
                }
            }
            self.text.extend_from_slice(p.as_bytes());
        }
        conn.query(&self.text, &mut CountRows).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_sysbenchs() {
        assert_eq!(Key::PointSelect.sql(3), b"SELECT c FROM sbtest3 WHERE id=?");
        assert_eq!(
            Key::DistinctRange.sql(1),
            b"SELECT DISTINCT c FROM sbtest1 WHERE id BETWEEN ? AND ? ORDER BY c"
        );
        assert_eq!(
            Key::Insert.sql(2),
            b"INSERT INTO sbtest2 (id, k, c, pad) VALUES (?, ?, ?, ?)"
        );
        assert_eq!(
            Key::NonIndexUpdate.sql(1),
            b"UPDATE sbtest1 SET c=? WHERE id=?"
        );
        assert_eq!(C_TEMPLATE.len(), 119);
        assert_eq!(PAD_TEMPLATE.len(), 59);
        let o = OltpOptions::default();
        assert!(!Key::SumRange.used_by(Builtin::PointSelect, &o));
        assert!(Key::SumRange.used_by(Builtin::ReadOnly, &o));
        assert!(!Key::Delete.used_by(Builtin::ReadOnly, &o));
        assert!(Key::Delete.used_by(Builtin::ReadWrite, &o));
    }
}
