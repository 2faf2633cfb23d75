//! dpm's integration tests and client-compatibility suite: real MariaDB,
//! real dpm processes, real clients (mariadb CLI, mysql_async, PyMySQL,
//! MariaDB Connector/Python, sysbench).
//!
//! `DPM_TEST_DIRECT=1 cargo test -p dpm --test it` runs the same tests
//! against MariaDB directly (no dpm), to check the tests themselves.

mod support;

mod admin;
mod auth;
mod authmatrix;
mod backend_client;
mod bench;
mod builtin_filters;
mod bulk;
mod cli;
mod commands;
mod demos;
mod events;
mod examples;
mod lifecycle;
mod lifecycle_timeouts;
mod lua_api;
mod lua_runtime;
mod lua_runtime_tcp;
mod monitor;
mod mtr;
mod neper_model;
mod operations;
mod pool;
mod prepared;
mod python;
mod reload;
mod robustness;
mod rwsplit;
mod services;
mod services_lua_action;
mod suites;
mod sysbench;
mod tls;
