//! What one check of a server found, how it is read from the server's answers, and the
//! events that a change between two checks raises. Pure functions: the I/O is in
//! `mariadbmon.rs`.

use dpm_engine::service::{ServerEventKind, ServerRole};

/// One check of one server.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Observation {
    /// It answered.
    pub up: bool,
    /// Its role (when up).
    pub role: Option<ServerRole>,
    /// `Seconds_Behind_Master` (replicas whose SQL thread runs).
    pub lag: Option<u64>,
    /// `@@server_id`.
    pub server_id: Option<u64>,
    /// `@@read_only`.
    pub read_only: Option<bool>,
    /// `@@gtid_current_pos`.
    pub gtid_current_pos: Option<String>,
    /// `@@gtid_slave_pos`.
    pub gtid_slave_pos: Option<String>,
    /// The primary it replicates from (`host:port`), if it is a replica.
    pub replicates_from: Option<String>,
    /// Why it is down, or what went wrong asking it.
    pub error: Option<String>,
}

impl Observation {
    /// A server that could not be checked.
    pub fn down(error: String) -> Observation {
        Observation {
            error: Some(error),
            ..Observation::default()
        }
    }

    /// As JSON, for diagnostics and Lua.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "state": if self.up { "up" } else { "down" },
            "role": self.role.map(ServerRole::as_str),
            "lag": self.lag,
            "server_id": self.server_id,
            "read_only": self.read_only,
            "gtid_current_pos": self.gtid_current_pos,
            "gtid_slave_pos": self.gtid_slave_pos,
            "replicates_from": self.replicates_from,
            "error": self.error,
        })
    }
}

/// One row of `SHOW ALL SLAVES STATUS`, the columns the monitor reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// `Slave_IO_Running`: `Yes`, `No` or `Connecting`.
    pub io_running: String,
    /// `Slave_SQL_Running`: `Yes` or `No`.
    pub sql_running: String,
    /// `Seconds_Behind_Master` (NULL when the SQL thread does not run).
    pub seconds_behind: Option<u64>,
    /// `Master_Host:Master_Port`.
    pub primary: String,
}

/// The role from `@@read_only` and the replication status: a server replicating (its
/// IO thread running or connecting, or its SQL thread running) is a replica; otherwise a
/// writable one is the primary, a read-only one standalone.
pub fn role_of(read_only: bool, replication: &[ReplicaStatus]) -> ServerRole {
    let replicating = replication
        .iter()
        .any(|r| r.io_running == "Yes" || r.io_running == "Connecting" || r.sql_running == "Yes");
    match (replicating, read_only) {
        (true, _) => ServerRole::Replica,
        (false, false) => ServerRole::Primary,
        (false, true) => ServerRole::Standalone,
    }
}

/// The lag of a replica: the largest `Seconds_Behind_Master` of its running connections
/// (None when none reports one: its SQL thread is stopped).
pub fn lag_of(replication: &[ReplicaStatus]) -> Option<u64> {
    replication.iter().filter_map(|r| r.seconds_behind).max()
}

/// The events between the previous check (`None`: the first one) and this one, in the
/// order they happened; `lag_threshold` in seconds (0: no lag events).
pub fn events(
    before: Option<&Observation>,
    now: &Observation,
    lag_threshold: u64,
) -> Vec<ServerEventKind> {
    use ServerEventKind::*;
    let mut out = Vec::new();
    let was_up = before.map(|b| b.up);
    let was_primary = before.is_some_and(|b| b.up && b.role == Some(ServerRole::Primary));
    let is_primary = now.up && now.role == Some(ServerRole::Primary);
    match (was_up, now.up) {
        (Some(true), false) | (None, false) => out.push(ServerDown),
        (Some(false), true) | (None, true) => out.push(ServerUp),
        _ => {}
    }
    if was_primary && !is_primary {
        out.push(LostPrimary);
    }
    if is_primary && !was_primary {
        out.push(NewPrimary);
    }
    if lag_threshold > 0 && now.up {
        let over = |o: &Observation| o.up && o.lag.is_some_and(|l| l > lag_threshold);
        let was_over = before.is_some_and(over);
        match (was_over, over(now)) {
            (false, true) => out.push(LagOver),
            (true, false) if now.lag.is_some() => out.push(LagUnder),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ServerEventKind::*;

    fn replica(io: &str, sql: &str, lag: Option<u64>) -> ReplicaStatus {
        ReplicaStatus {
            io_running: io.into(),
            sql_running: sql.into(),
            seconds_behind: lag,
            primary: "127.0.0.1:3306".into(),
        }
    }

    fn seen(up: bool, role: ServerRole, lag: Option<u64>) -> Observation {
        Observation {
            up,
            role: up.then_some(role),
            lag,
            ..Observation::default()
        }
    }

    #[test]
    fn roles_from_read_only_and_replication() {
        assert_eq!(role_of(false, &[]), ServerRole::Primary);
        assert_eq!(role_of(true, &[]), ServerRole::Standalone);
        assert_eq!(
            role_of(true, &[replica("Yes", "Yes", Some(0))]),
            ServerRole::Replica
        );
        assert_eq!(
            role_of(false, &[replica("Connecting", "Yes", None)]),
            ServerRole::Replica
        );
        // Replication configured but stopped: not a replica any more.
        assert_eq!(
            role_of(false, &[replica("No", "No", None)]),
            ServerRole::Primary
        );
        assert_eq!(
            lag_of(&[
                replica("Yes", "Yes", Some(3)),
                replica("Yes", "Yes", Some(7))
            ]),
            Some(7)
        );
        assert_eq!(lag_of(&[replica("Yes", "No", None)]), None);
    }

    #[test]
    fn events_follow_changes() {
        let p = seen(true, ServerRole::Primary, Some(0));
        let r = seen(true, ServerRole::Replica, Some(0));
        let down = Observation::down("refused".into());
        assert_eq!(events(None, &p, 10), vec![ServerUp, NewPrimary]);
        assert_eq!(events(None, &down, 10), vec![ServerDown]);
        assert_eq!(events(Some(&p), &p, 10), vec![]);
        assert_eq!(events(Some(&p), &down, 10), vec![ServerDown, LostPrimary]);
        assert_eq!(events(Some(&down), &p, 10), vec![ServerUp, NewPrimary]);
        assert_eq!(events(Some(&r), &p, 10), vec![NewPrimary]);
        assert_eq!(events(Some(&p), &r, 10), vec![LostPrimary]);
        let lagging = seen(true, ServerRole::Replica, Some(30));
        assert_eq!(events(Some(&r), &lagging, 10), vec![LagOver]);
        assert_eq!(events(Some(&lagging), &lagging, 10), vec![]);
        assert_eq!(events(Some(&lagging), &r, 10), vec![LagUnder]);
        assert_eq!(
            events(Some(&r), &lagging, 0),
            vec![],
            "threshold 0: no lag events"
        );
    }
}
