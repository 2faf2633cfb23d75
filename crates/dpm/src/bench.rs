//! `dpm bench`: the load generator's command line (the work is in crate `dpm-bench`).
//!
//! `dpm bench --workload oltp_point_select` runs a built-in sysbench workload;
//! `dpm bench --script load.lua` runs a script (docs/bench.md), whose `workload(fn)`
//! replaces the built-in, which otherwise still runs with the script's hooks. The report
//! goes to standard output (text, or one JSON line with `--json`, after anything the
//! script printed); errors go to standard error as `dpm bench: FILE:LINE: message`.

use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use dpm_bench::client::{ConnectOptions, Credentials};
use dpm_bench::oltp::{Builtin, OltpOptions};
use dpm_bench::rand::{RandOptions, RandType};
use dpm_bench::runner::{IgnoreErrors, RunConfig, Workload};

/// Options of `dpm bench` (the OLTP ones are sysbench's, with its defaults; each also
/// takes sysbench's spelling with underscores).
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Lua script: shared variables, hooks, run(), then what collect() gathered.
    #[arg(long, value_name = "FILE")]
    script: Option<PathBuf>,
    /// Built-in workload: oltp_point_select, oltp_read_only or oltp_read_write (sysbench's,
    /// on the sbtest1..N tables `sysbench oltp_read_write prepare` makes).
    #[arg(long, value_name = "NAME")]
    workload: Option<String>,
    /// Load threads, each with its own event loop and Lua state (default: the number of cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Connections in all, spread over the threads (default: 8).
    #[arg(long, value_name = "M", default_value_t = 8)]
    connections: usize,
    /// Seconds of load (fractions allowed).
    #[arg(long, value_name = "S", default_value = "10", value_parser = crate::positive_secs)]
    duration: Duration,
    /// Server host.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Server port.
    #[arg(long, default_value_t = 3306)]
    port: u16,
    /// Login user.
    #[arg(long, default_value = "sbtest")]
    user: String,
    /// Password (also from DPM_BENCH_PASSWORD).
    #[arg(
        long,
        default_value = "",
        env = "DPM_BENCH_PASSWORD",
        hide_env_values = true
    )]
    password: String,
    /// Schema to use (default: sbtest for a built-in workload, none for a script).
    #[arg(long, value_name = "DB")]
    database: Option<String>,
    /// Seconds to connect and log in.
    #[arg(long, value_name = "S", default_value = "10", value_parser = crate::positive_secs)]
    connect_timeout: Duration,
    /// Error codes whose transactions are counted and retried instead of stopping the
    /// run: a comma-separated list, `all` or `none` (sysbench's default list).
    #[arg(
        long,
        value_name = "LIST",
        default_value = "1213,1020,1205",
        alias = "mysql-ignore-errors"
    )]
    ignore_errors: String,
    /// The report as one JSON line.
    #[arg(long)]
    json: bool,
    /// Random seed (0: from the clock).
    #[arg(long, default_value_t = 0, alias = "rand-seed")]
    seed: u64,
    /// Keep the load threads' priority. By default each lowers its nice value so that the
    /// kernel's fair scheduler gives a thread carrying K connections the weight of K
    /// threads, as a client with a thread per connection (sysbench) has (needs
    /// CAP_SYS_NICE; a warning otherwise).
    #[arg(long)]
    no_renice: bool,
    /// Number of sbtest tables.
    #[arg(long, default_value_t = 1)]
    tables: u32,
    /// Rows per table.
    #[arg(long, default_value_t = 10_000, alias = "table_size")]
    table_size: u32,
    /// Range size of the range queries.
    #[arg(long, default_value_t = 100, alias = "range_size")]
    range_size: u32,
    /// Point selects per transaction (oltp_point_select: always 1).
    #[arg(long, default_value_t = 10, alias = "point_selects")]
    point_selects: u32,
    /// Simple range queries per transaction.
    #[arg(long, default_value_t = 1, alias = "simple_ranges")]
    simple_ranges: u32,
    /// SUM() range queries per transaction.
    #[arg(long, default_value_t = 1, alias = "sum_ranges")]
    sum_ranges: u32,
    /// ORDER BY range queries per transaction.
    #[arg(long, default_value_t = 1, alias = "order_ranges")]
    order_ranges: u32,
    /// DISTINCT range queries per transaction.
    #[arg(long, default_value_t = 1, alias = "distinct_ranges")]
    distinct_ranges: u32,
    /// Index UPDATEs per transaction.
    #[arg(long, default_value_t = 1, alias = "index_updates")]
    index_updates: u32,
    /// Non-index UPDATEs per transaction.
    #[arg(long, default_value_t = 1, alias = "non_index_updates")]
    non_index_updates: u32,
    /// DELETE/INSERT pairs per transaction.
    #[arg(long, default_value_t = 1, alias = "delete_inserts")]
    delete_inserts: u32,
    /// Range queries on (on/off).
    #[arg(long, default_value = "on", alias = "range_selects", value_parser = on_off)]
    range_selects: bool,
    /// No BEGIN/COMMIT: every query in autocommit (on/off).
    #[arg(long, default_value = "off", alias = "skip_trx", value_parser = on_off, num_args = 0..=1, default_missing_value = "on")]
    skip_trx: bool,
    /// Prepared statements: auto (binary protocol) or disable (text queries).
    #[arg(long, default_value = "auto", value_parser = ["auto", "disable"])]
    db_ps_mode: String,
    /// Distribution of row ids: uniform, gaussian, special or pareto.
    #[arg(long, default_value = "special")]
    rand_type: String,
    /// Iterations of the gaussian and special distributions.
    #[arg(long, default_value_t = 12)]
    rand_spec_iter: u32,
    /// Percentage of values treated as special.
    #[arg(long, default_value_t = 1)]
    rand_spec_pct: u32,
    /// Percentage of special values to use.
    #[arg(long, default_value_t = 75)]
    rand_spec_res: u32,
    /// Parameter h of the pareto distribution.
    #[arg(long, default_value_t = 0.2)]
    rand_pareto_h: f64,
}

fn on_off(text: &str) -> Result<bool, String> {
    match text {
        "on" | "true" | "1" => Ok(true),
        "off" | "false" | "0" => Ok(false),
        other => Err(format!("'{other}': give on or off")),
    }
}

const USAGE: u8 = 2;

/// Runs `dpm bench`.
pub fn run(args: &BenchArgs) -> ExitCode {
    let config = match config(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("dpm bench: {e}");
            return ExitCode::from(USAGE);
        }
    };
    let (report, result) = match &args.script {
        Some(path) => dpm_bench::script::run_script(path, config),
        None => match dpm_bench::runner::run(&config) {
            Ok(outcome) => {
                let fatal = outcome.report.fatal.clone();
                (Some(outcome.report), fatal.map_or(Ok(()), Err))
            }
            Err(e) => (None, Err(e)),
        },
    };
    if let Some(report) = &report {
        if args.json {
            println!("{}", report.json());
        } else {
            print!("{}", report.text());
        }
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dpm bench: {e}");
            ExitCode::from(1)
        }
    }
}

fn config(args: &BenchArgs) -> Result<RunConfig, String> {
    let builtin = match &args.workload {
        Some(name) => Some(Builtin::from_name(name).ok_or_else(|| {
            format!("no built-in workload '{name}' (oltp_point_select, oltp_read_only, oltp_read_write)")
        })?),
        None => None,
    };
    if builtin.is_none() && args.script.is_none() {
        return Err("give --workload NAME, --script FILE, or both".into());
    }
    if args.connections == 0 {
        return Err("--connections must be at least 1".into());
    }
    let address = (args.host.as_str(), args.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}:{}: {e}", args.host, args.port))?
        .next()
        .ok_or_else(|| format!("{} has no address", args.host))?;
    let oltp = OltpOptions {
        tables: args.tables.max(1),
        table_size: args.table_size.max(1),
        range_size: args.range_size,
        point_selects: args.point_selects,
        simple_ranges: args.simple_ranges,
        sum_ranges: args.sum_ranges,
        order_ranges: args.order_ranges,
        distinct_ranges: args.distinct_ranges,
        index_updates: args.index_updates,
        non_index_updates: args.non_index_updates,
        delete_inserts: args.delete_inserts,
        range_selects: args.range_selects,
        skip_trx: args.skip_trx,
        prepared: args.db_ps_mode == "auto",
        rand: RandOptions {
            kind: RandType::from_name(&args.rand_type)?,
            spec_iter: args.rand_spec_iter,
            spec_pct: args.rand_spec_pct,
            spec_res: args.rand_spec_res.min(99),
            pareto_h: args.rand_pareto_h,
        },
    };
    let database = args
        .database
        .clone()
        .or_else(|| builtin.map(|_| "sbtest".to_string()))
        .filter(|d| !d.is_empty());
    let threads = args
        .threads
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .min(args.connections);
    let workload = match (&args.script, builtin) {
        (Some(path), fallback) => Workload::Script {
            path: path.clone(),
            places: Vec::new(),
            marks: 0,
            builtin: fallback,
            oltp,
        },
        (None, Some(b)) => Workload::Builtin(b, oltp),
        (None, None) => unreachable!("checked above"),
    };
    Ok(RunConfig {
        threads,
        connections: args.connections,
        duration: args.duration,
        connect: ConnectOptions {
            address,
            credentials: Credentials {
                user: args.user.clone(),
                password: args.password.clone(),
                database,
            },
            timeout: args.connect_timeout,
        },
        ignore: IgnoreErrors::parse(&args.ignore_errors)?,
        progress: !args.json,
        seed: args.seed,
        renice: !args.no_renice,
        workload,
    })
}
