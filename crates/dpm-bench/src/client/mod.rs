//! `dpm bench`'s own MySQL client, built to be cheap per query: a connection reuses one
//! read and one write buffer, a command is encoded straight into the write buffer and
//! sent with one `write`, and a response is walked in place ([`result`]); the built-in
//! workloads allocate nothing per query in steady state.
//!
//! It speaks text queries (`COM_QUERY`) and binary prepared statements
//! (`COM_STMT_PREPARE` / `COM_STMT_EXECUTE`, parameter types sent with the first execute
//! and again only when they change, as libmariadb does), logs in with
//! `mysql_native_password`, `caching_sha2_password` or `client_ed25519` ([`login`]), and
//! lets Lua packet hooks replace its socket reads and writes ([`io::PacketHooks`]). No
//! TLS, no compression, packets up to 16 MiB. Wire formats come from `dpm-protocol`.

mod error;
pub mod io;
mod login;
pub mod result;

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::time::Duration;

use dpm_protocol::{column_type, com, StmtPrepareOk, MARIADB_CLIENT_CACHE_METADATA};
use tokio::net::TcpSocket;

pub use error::ClientError;
pub use login::Credentials;
pub use result::{Column, CountRows, Outcome, RowSink};

use io::{Io, PacketHooks};

/// A parameter of [`Conn::execute`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Param<'a> {
    /// SQL NULL.
    Null,
    /// A 4-byte integer (`MYSQL_TYPE_LONG`, what sysbench binds for `INT`).
    Int(i32),
    /// An 8-byte integer (`MYSQL_TYPE_LONGLONG`).
    BigInt(i64),
    /// A double.
    Double(f64),
    /// A string (`MYSQL_TYPE_STRING`, what sysbench binds for `CHAR`).
    Str(&'a [u8]),
}

impl Param<'_> {
    fn wire_type(&self) -> u8 {
        match self {
            Param::Null => column_type::NULL,
            Param::Int(_) => column_type::LONG,
            Param::BigInt(_) => column_type::LONGLONG,
            Param::Double(_) => column_type::DOUBLE,
            Param::Str(_) => column_type::STRING,
        }
    }
}

/// A prepared statement of one connection.
#[derive(Debug)]
pub struct Statement {
    /// The server's statement id.
    pub id: u32,
    /// Number of `?` parameters.
    pub params: usize,
    /// The result columns from the prepare (kept for executes whose answers skip them).
    pub columns: Vec<Column>,
    /// The parameter types last sent (empty: none sent yet).
    sent_types: Vec<u8>,
}

/// One logged-in connection.
pub struct Conn {
    io: Io,
    capabilities: u64,
    cache_metadata: bool,
    connection_id: u32,
    /// Set while a command is in flight and left set if it did not finish: the
    /// connection is then out of step with the server and must be dropped.
    broken: bool,
}

/// Where and how to connect.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// The server.
    pub address: SocketAddr,
    /// Login.
    pub credentials: Credentials,
    /// Bound on connect plus login.
    pub timeout: Duration,
}

impl Conn {
    /// Connects and logs in. The socket gets `TCP_NODELAY` (as libmariadb sets it), then
    /// `on_socket` runs with its descriptor before the connect (the `client_socket` hook).
    pub async fn connect(
        options: &ConnectOptions,
        on_socket: impl FnOnce(RawFd) -> Result<(), String>,
        hooks: Option<Rc<dyn PacketHooks>>,
    ) -> Result<Conn, ClientError> {
        let target = options.address.to_string();
        let connect_error = |source| ClientError::Connect {
            target: target.clone(),
            source,
        };
        let socket = match options.address {
            SocketAddr::V4(_) => TcpSocket::new_v4(),
            SocketAddr::V6(_) => TcpSocket::new_v6(),
        }
        .map_err(connect_error)?;
        socket.set_nodelay(true).map_err(connect_error)?;
        let fd = socket.as_raw_fd();
        on_socket(fd).map_err(ClientError::Hook)?;
        let attempt = async {
            let stream = socket
                .connect(options.address)
                .await
                .map_err(connect_error)?;
            let mut io = Io::new(stream, fd, hooks);
            let session = login::login(&mut io, &options.credentials).await?;
            Ok::<_, ClientError>(Conn {
                io,
                capabilities: session.capabilities,
                cache_metadata: session.capabilities & MARIADB_CLIENT_CACHE_METADATA != 0,
                connection_id: session.connection_id,
                broken: false,
            })
        };
        tokio::time::timeout(options.timeout, attempt)
            .await
            .unwrap_or_else(|_| {
                Err(ClientError::Lost(format!(
                    "connect and login took more than {:?}",
                    options.timeout
                )))
            })
    }

    /// The socket's descriptor.
    pub fn fd(&self) -> RawFd {
        self.io.fd
    }

    /// The server's id for this connection.
    pub fn connection_id(&self) -> u32 {
        self.connection_id
    }

    /// Runs `sql` with `COM_QUERY`; rows go to `sink` (text protocol).
    pub async fn query<S: RowSink>(
        &mut self,
        sql: &[u8],
        sink: &mut S,
    ) -> Result<Outcome, ClientError> {
        self.start()?;
        self.io.begin_packet();
        self.io.wbuf.push(com::QUERY);
        self.io.wbuf.extend_from_slice(sql);
        self.io.finish_packet(0, 0)?;
        let mut columns = Vec::new();
        self.exchange(sink, &mut columns).await
    }

    /// Prepares `sql` (`COM_STMT_PREPARE`).
    pub async fn prepare(&mut self, sql: &[u8]) -> Result<Statement, ClientError> {
        self.start()?;
        self.io.begin_packet();
        self.io.wbuf.push(com::STMT_PREPARE);
        self.io.wbuf.extend_from_slice(sql);
        self.io.finish_packet(0, 0)?;
        self.io.send().await?;
        let (_, start, end) = self.io.next_packet().await?;
        let payload = self.io.payload(start, end);
        if payload.first() == Some(&0xff) {
            let e = login::server_error(payload);
            self.broken = false;
            return Err(e);
        }
        let ok = StmtPrepareOk::decode(payload, self.capabilities)
            .map_err(|e| ClientError::decode("prepare OK", e))?;
        // Parameter definitions (skipped), then the column definitions, each group
        // followed by an EOF.
        for _ in 0..ok.num_params {
            self.io.next_packet().await?;
        }
        if ok.num_params > 0 {
            self.io.next_packet().await?;
        }
        let mut columns = Vec::with_capacity(usize::from(ok.num_columns));
        for _ in 0..ok.num_columns {
            let (_, s, e) = self.io.next_packet().await?;
            let payload = bytes::Bytes::copy_from_slice(self.io.payload(s, e));
            let def = dpm_protocol::ColumnDefinition41::decode(&payload, self.capabilities)
                .map_err(|e| ClientError::decode("column definition", e))?;
            columns.push(Column {
                name: String::from_utf8_lossy(&def.name).into_owned(),
                column_type: def.column_type,
                unsigned: def.flags & dpm_protocol::column_flags::UNSIGNED_FLAG != 0,
            });
        }
        if ok.num_columns > 0 {
            self.io.next_packet().await?;
        }
        self.broken = false;
        Ok(Statement {
            id: ok.statement_id,
            params: usize::from(ok.num_params),
            columns,
            sent_types: Vec::new(),
        })
    }

    /// Executes `stmt` with `params` (`COM_STMT_EXECUTE`, binary protocol; the types go
    /// with the first execute and whenever they change). Rows go to `sink`.
    pub async fn execute<S: RowSink>(
        &mut self,
        stmt: &mut Statement,
        params: &[Param<'_>],
        sink: &mut S,
    ) -> Result<Outcome, ClientError> {
        if params.len() != stmt.params {
            return Err(ClientError::Protocol(format!(
                "the statement takes {} parameters, {} given",
                stmt.params,
                params.len()
            )));
        }
        self.start()?;
        let w = &mut self.io;
        w.begin_packet();
        w.wbuf.push(com::STMT_EXECUTE);
        w.wbuf.extend_from_slice(&stmt.id.to_le_bytes());
        w.wbuf.push(0); // no cursor
        w.wbuf.extend_from_slice(&1u32.to_le_bytes());
        if !params.is_empty() {
            let bitmap_at = w.wbuf.len();
            w.wbuf.resize(bitmap_at + params.len().div_ceil(8), 0);
            for (i, p) in params.iter().enumerate() {
                if matches!(p, Param::Null) {
                    w.wbuf[bitmap_at + i / 8] |= 1 << (i % 8);
                }
            }
            // A NULL keeps the type last sent for its place, so that it does not force
            // the types to be sent again.
            let changed = stmt.sent_types.len() != params.len()
                || params
                    .iter()
                    .zip(&stmt.sent_types)
                    .any(|(p, &t)| !matches!(p, Param::Null) && p.wire_type() != t);
            w.wbuf.push(u8::from(changed));
            if changed {
                stmt.sent_types.clear();
                for p in params {
                    let t = p.wire_type();
                    stmt.sent_types.push(t);
                    w.wbuf.extend_from_slice(&[t, 0]);
                }
            }
            for p in params {
                match *p {
                    Param::Null => {}
                    Param::Int(v) => w.wbuf.extend_from_slice(&v.to_le_bytes()),
                    Param::BigInt(v) => w.wbuf.extend_from_slice(&v.to_le_bytes()),
                    Param::Double(v) => w.wbuf.extend_from_slice(&v.to_le_bytes()),
                    Param::Str(s) => {
                        put_lenenc_len(&mut w.wbuf, s.len());
                        w.wbuf.extend_from_slice(s);
                    }
                }
            }
        }
        w.finish_packet(0, 0)?;
        self.exchange(sink, &mut stmt.columns).await
    }

    /// Closes `stmt` on the server (`COM_STMT_CLOSE`, which has no answer).
    pub async fn close_statement(&mut self, stmt: Statement) -> Result<(), ClientError> {
        self.start()?;
        self.io.begin_packet();
        self.io.wbuf.push(com::STMT_CLOSE);
        self.io.wbuf.extend_from_slice(&stmt.id.to_le_bytes());
        self.io.finish_packet(0, 0)?;
        self.io.send().await?;
        self.broken = false;
        Ok(())
    }

    /// Says goodbye (`COM_QUIT`) if the connection is in step and the socket takes it.
    pub fn quit(&mut self) {
        if !self.broken {
            let _ = self.io.stream.try_write(&[1, 0, 0, 0, com::QUIT]);
            self.broken = true;
        }
    }

    fn start(&mut self) -> Result<(), ClientError> {
        if self.broken {
            return Err(ClientError::Lost(
                "the connection is out of step after an earlier error".into(),
            ));
        }
        self.broken = true;
        Ok(())
    }

    async fn exchange<S: RowSink>(
        &mut self,
        sink: &mut S,
        columns: &mut Vec<Column>,
    ) -> Result<Outcome, ClientError> {
        self.io.send().await?;
        match self.read_response(sink, columns).await {
            Ok(outcome) => {
                self.broken = false;
                Ok(outcome)
            }
            Err(e) => {
                // A server's ERR ends its response: the connection is still in step.
                if !e.breaks_connection() {
                    self.broken = false;
                }
                Err(e)
            }
        }
    }
}

fn put_lenenc_len(dst: &mut Vec<u8>, n: usize) {
    let n = n as u64;
    if n < 251 {
        dst.push(n as u8);
    } else if n < 1 << 16 {
        dst.push(0xfc);
        dst.extend_from_slice(&(n as u16).to_le_bytes());
    } else if n < 1 << 24 {
        dst.push(0xfd);
        dst.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
    } else {
        dst.push(0xfe);
        dst.extend_from_slice(&n.to_le_bytes());
    }
}
