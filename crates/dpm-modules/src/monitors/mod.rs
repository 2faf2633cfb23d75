//! Monitors: `mariadbmon` watches MariaDB servers (up or down, role, lag, GTID) and
//! publishes what it finds on the servers and as server events.

mod failover;
pub mod mariadbmon;
mod observation;
