//! `dpm bench`: a MySQL/MariaDB load generator scripted in Lua, after neper's script API.
//!
//! * [`client`]: a small, fast MySQL client (reused buffers, binary prepared statements,
//!   text queries; native, caching_sha2 and ed25519 logins) whose socket reads and writes
//!   Lua packet hooks can replace;
//! * [`oltp`] and [`rand`]: sysbench 1.0.20's `oltp_point_select`, `oltp_read_only` and
//!   `oltp_read_write`, with sysbench's random numbers, in Rust (no Lua per query);
//! * [`runner`]: N threads (one current-thread tokio runtime each), M connections spread
//!   over them, the measured window, stopping, bounds;
//! * [`script`]: the Lua side — hooks, `workload`, `collect`, `run()` — and what runs in
//!   which thread;
//! * [`stats`] and [`report`]: per-thread counts and HDR latency histograms, the text and
//!   JSON reports, the progress line.
//!
//! The binary's `bench` subcommand (crate `dpm`) parses the command line into a
//! [`runner::RunConfig`] and calls [`runner::run`] or [`script::run_script`].

pub mod client;
pub mod oltp;
pub mod rand;
pub mod report;
pub mod runner;
pub mod script;
pub mod stats;
