//! Automatic failover of a MariaDB primary (`auto_failover`): which replica to promote
//! (the most recent GTID position), and the statements that promote it and point the
//! other replicas at it. Run by `mariadbmon` on its own thread over its own connections.

use dpm_engine::client::{BackendClient, Response};
use dpm_engine::service::{Server, ServerAddress, ServerRole};

use super::observation::Observation;

/// How far a GTID position (`0-1-42,1-2-7`) got: its sequence numbers summed over its
/// domains (replicas of one primary share its domains).
pub fn gtid_progress(pos: &str) -> u64 {
    pos.split(',')
        .filter_map(|g| g.trim().rsplit('-').next())
        .filter_map(|n| n.parse::<u64>().ok())
        .sum()
}

/// True when position `a` has no transaction that `b` lacks: in every GTID domain of
/// `a`, `b`'s sequence number is at least `a`'s. A server that passes can replicate from
/// the other without diverging.
pub fn not_ahead(a: &str, b: &str) -> bool {
    let parse = |pos: &str| -> Vec<(u64, u64)> {
        pos.split(',')
            .filter_map(|g| {
                let mut parts = g.trim().split('-');
                let domain = parts.next()?.parse().ok()?;
                let seq = parts.nth(1)?.parse().ok()?;
                Some((domain, seq))
            })
            .collect()
    };
    let theirs = parse(b);
    parse(a)
        .iter()
        .all(|(domain, seq)| theirs.iter().any(|(d, s)| d == domain && s >= seq))
}

/// The replica to promote: among those up, the one furthest along (its
/// `gtid_current_pos`); the first declared breaks ties. `avoid`: a candidate whose
/// promotion just failed, passed over while another can take the place.
pub fn pick_candidate(found: &[Observation], failed: usize, avoid: Option<usize>) -> Option<usize> {
    let eligible =
        |i: usize, o: &Observation| i != failed && o.up && o.role == Some(ServerRole::Replica);
    let others = found
        .iter()
        .enumerate()
        .any(|(i, o)| eligible(i, o) && Some(i) != avoid);
    found
        .iter()
        .enumerate()
        .filter(|(i, o)| eligible(*i, o) && !(others && Some(*i) == avoid))
        .max_by_key(|(i, o)| {
            let progress = o.gtid_current_pos.as_deref().map_or(0, gtid_progress);
            (progress, std::cmp::Reverse(*i))
        })
        .map(|(i, _)| i)
}

/// Runs `sql`, an error if the server answered with one.
pub async fn run_sql(client: &mut BackendClient, sql: &str) -> Result<Response, String> {
    run(client, sql).await
}

/// The primary's `@@gtid_binlog_pos`: where a replica must get to before it takes over.
pub async fn binlog_position(client: &mut BackendClient) -> Result<String, String> {
    match run(client, "SELECT @@gtid_binlog_pos").await? {
        Response::Rows(sets) => sets
            .first()
            .and_then(|s| s.rows.first())
            .and_then(|r| r.first().cloned().flatten())
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .filter(|p| valid_gtid(p))
            .ok_or_else(|| "no @@gtid_binlog_pos".to_string()),
        _ => Err("no @@gtid_binlog_pos".to_string()),
    }
}

/// Waits (up to `timeout_s`) until the replica behind `client` has applied `position`.
pub async fn wait_for(
    client: &mut BackendClient,
    position: &str,
    timeout_s: u64,
) -> Result<(), String> {
    if position.is_empty() {
        return Ok(());
    }
    let sql = format!("SELECT MASTER_GTID_WAIT('{position}', {timeout_s})");
    match run(client, &sql).await? {
        Response::Rows(sets) => {
            let result = sets
                .first()
                .and_then(|s| s.rows.first())
                .and_then(|r| r.first().cloned().flatten());
            match result.as_deref() {
                Some(b"0") => Ok(()),
                _ => Err(format!("not at {position} after {timeout_s} s")),
            }
        }
        _ => Err(format!("{sql}: no result")),
    }
}

/// Waits (up to `timeout_s`, looking every 100 ms) until the server behind `client` has
/// everything in `position` in its `@@gtid_current_pos`. Not `MASTER_GTID_WAIT`, which
/// follows `gtid_slave_pos`: a former primary that rejoined as a replica fetches its own
/// old transactions back from its new primary and skips them (same server id), so its
/// slave position never reaches them although it has them (bench/failover saw a
/// failover retry such a candidate for 14 minutes).
async fn applied(client: &mut BackendClient, position: &str, timeout_s: u64) -> Result<(), String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(timeout_s);
    loop {
        let current = match run(client, "SELECT @@gtid_current_pos").await? {
            Response::Rows(sets) => sets
                .first()
                .and_then(|s| s.rows.first())
                .and_then(|r| r.first().cloned().flatten())
                .map(|v| String::from_utf8_lossy(&v).into_owned())
                .unwrap_or_default(),
            _ => String::new(),
        };
        if not_ahead(position, &current) {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(format!(
                "not at {position} after {timeout_s} s (gtid_current_pos {current})"
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The longest any one statement of a failover, switchover or rejoin may take: a server
/// that stops answering must not hold the monitor's thread (its checks) for ever.
/// (`MASTER_GTID_WAIT` has its own, shorter, bound.)
const STATEMENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs `sql`, an error if the server answered with one or not at all in time.
async fn run(client: &mut BackendClient, sql: &str) -> Result<Response, String> {
    match tokio::time::timeout(STATEMENT_TIMEOUT, client.query(sql)).await {
        Ok(Ok(Response::Err { code, message, .. })) => {
            Err(format!("{sql}: ERROR {code}: {message}"))
        }
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(format!("{sql}: {e}")),
        Err(_) => Err(format!(
            "{sql}: no answer in {} s",
            STATEMENT_TIMEOUT.as_secs()
        )),
    }
}

/// Makes the replica behind `client` a primary: stops fetching from the old primary,
/// applies what it already fetched (up to `apply_timeout_s`), forgets its replication
/// and becomes writable.
pub async fn promote(client: &mut BackendClient, apply_timeout_s: u64) -> Result<(), String> {
    run(client, "STOP SLAVE IO_THREAD").await?;
    // What was fetched before the old primary died is applied before writes start.
    let fetched = match run(client, "SHOW SLAVE STATUS").await? {
        Response::Rows(sets) => sets.first().and_then(|set| {
            let at = set.columns.iter().position(|c| c == "Gtid_IO_Pos")?;
            let value = set.rows.first()?.get(at)?.clone()?;
            Some(String::from_utf8_lossy(&value).into_owned())
        }),
        _ => None,
    };
    if let Some(pos) = fetched.filter(|p| !p.is_empty() && valid_gtid(p)) {
        // Not applied in time: no promotion (RESET SLAVE ALL would throw the rest away).
        applied(client, &pos, apply_timeout_s).await?;
    }
    run(client, "STOP SLAVE").await?;
    run(client, "RESET SLAVE ALL").await?;
    run(client, "SET GLOBAL read_only = OFF").await?;
    Ok(())
}

/// Points the server behind `client` at `primary`, from its GTID position: `slave_pos`
/// for a replica (what it applied from a primary), `current_pos` for a server that was
/// itself a primary (its replication position is stale).
pub async fn replicate_from(
    client: &mut BackendClient,
    primary: &Server,
    user: &str,
    password: &str,
    use_gtid: UseGtid,
) -> Result<(), String> {
    let ServerAddress::Tcp(host, port) = &primary.address else {
        return Err(format!(
            "{} listens on a unix socket: a replica cannot replicate from it",
            primary.name
        ));
    };
    run(client, "STOP SLAVE").await?;
    let gtid = match use_gtid {
        UseGtid::SlavePos => "slave_pos",
        UseGtid::CurrentPos => "current_pos",
    };
    run(
        client,
        &format!(
            "CHANGE MASTER TO MASTER_HOST = '{}', MASTER_PORT = {port}, MASTER_USER = '{}', \
             MASTER_PASSWORD = '{}', MASTER_USE_GTID = {gtid}",
            quote(host),
            quote(user),
            quote(password)
        ),
    )
    .await
    // The statement holds the password: never in an error a log or Lua would show.
    .map_err(|e| mask(&e, password))?;
    run(client, "START SLAVE").await?;
    Ok(())
}

/// Where a server starts replicating from (see [`replicate_from`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum UseGtid {
    /// A replica: what it applied.
    SlavePos,
    /// A former primary: its own binlog position.
    CurrentPos,
}

/// `text` with every quoted appearance of `secret` replaced by `***`.
fn mask(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        return text.to_string();
    }
    text.replace(&format!("'{}'", quote(secret)), "'***'")
}

/// `s` inside a single-quoted SQL string.
fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "''")
}

/// A GTID position as the server writes it (digits, dashes, commas): safe to quote.
fn valid_gtid(pos: &str) -> bool {
    pos.bytes()
        .all(|b| b.is_ascii_digit() || b == b'-' || b == b',')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(up: bool, gtid: &str) -> Observation {
        Observation {
            up,
            role: up.then_some(ServerRole::Replica),
            gtid_current_pos: Some(gtid.into()),
            ..Observation::default()
        }
    }

    #[test]
    fn the_furthest_replica_that_is_up_is_promoted() {
        assert_eq!(gtid_progress("0-1-42"), 42);
        assert_eq!(gtid_progress("0-1-42,1-2-7"), 49);
        assert_eq!(gtid_progress(""), 0);
        let found = vec![
            Observation::down("gone".into()),
            replica(true, "0-1-40"),
            replica(true, "0-1-42"),
            replica(false, "0-1-99"),
        ];
        assert_eq!(pick_candidate(&found, 0, None), Some(2));
        assert_eq!(
            pick_candidate(&found, 0, Some(2)),
            Some(1),
            "a candidate that failed is passed over while another can take the place"
        );
        let tie = vec![
            Observation::down("gone".into()),
            replica(true, "0-1-5"),
            replica(true, "0-1-5"),
        ];
        assert_eq!(
            pick_candidate(&tie, 0, None),
            Some(1),
            "declaration order breaks ties"
        );
        assert_eq!(
            pick_candidate(&[Observation::down("x".into())], 0, None),
            None
        );
        assert_eq!(quote("it's"), "it''s");
        assert!(not_ahead("0-1-5", "0-1-7"));
        assert!(
            not_ahead("0-1-7", "0-2-7"),
            "the same transaction count, another server id"
        );
        assert!(!not_ahead("0-1-8", "0-1-7"));
        assert!(
            !not_ahead("0-1-5,1-3-1", "0-1-7"),
            "a domain the primary lacks"
        );
        assert!(not_ahead("", "0-1-7"));
        assert!(!valid_gtid("0-1-1'; DROP"));
        assert_eq!(
            mask(
                "CHANGE MASTER TO MASTER_PASSWORD = 's3cr''t': ERROR",
                "s3cr't"
            ),
            "CHANGE MASTER TO MASTER_PASSWORD = '***': ERROR"
        );
    }
}
