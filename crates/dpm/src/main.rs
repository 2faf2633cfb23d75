//! The `dpm` command: runs a Lua startup file that configures the proxy.
//!
//! It owns the command line, logging set-up, starting the workers and the process
//! lifecycle (signals, exit codes). Everything else is in the library crates, and the
//! `hash-password` and `bench` subcommands in their own modules.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

mod bench;
mod hash_password;
mod logging;
mod modules;

/// Dormando's Proxy for MySQL, reborn: a MySQL/MariaDB proxy programmed in Lua.
#[derive(Parser, Debug)]
#[command(name = "dpm", version, about)]
struct Args {
    /// A tool instead of running the proxy.
    #[command(subcommand)]
    command: Option<Command>,

    /// Lua file to run at startup; it creates listeners and backends and registers callbacks.
    #[arg(
        short = 's',
        long = "startfile",
        value_name = "FILE",
        default_value = "startup.lua"
    )]
    startfile: PathBuf,

    /// Verbosity: 0 warnings only, 1 connection lifecycle, 2 debug, 3 trace.
    /// `--verbose` alone means 1.
    #[arg(short = 'v', long = "verbose", value_name = "N", num_args = 0..=1, default_missing_value = "1", default_value_t = 0)]
    verbose: u8,

    /// Log lines as text (for people) or as JSON objects, one per line (for log
    /// collectors).
    #[arg(long = "log-format", value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,

    /// Number of worker threads, each with its own Lua state running the startup file
    /// (default: the number of CPU cores). `--threads 1` gives the original's single
    /// Lua state.
    #[arg(long = "threads", value_name = "N", env = "DPM_THREADS")]
    threads: Option<usize>,

    /// Load and validate a startup file without binding a port, connecting anywhere or
    /// starting a monitor or task (syntax, modules, options and their types, addresses,
    /// certificate files); print `FILE:LINE: message` for a problem, exit 0 or 1.
    #[arg(long = "check", value_name = "FILE")]
    check: Option<PathBuf>,

    /// Print every built-in module (type, name, maturity, version, description, options)
    /// and exit.
    #[arg(long = "list-modules")]
    list_modules: bool,

    /// Output format of --list-modules.
    #[arg(long = "format", value_name = "FORMAT", default_value = "table", value_parser = ["table", "json"])]
    format: String,

    /// Seconds an accepted client may take to log in before it is closed (with its
    /// backend); fractions allowed. A script can set it per listener
    /// (`listener:set_timeouts{connect = …}`).
    #[arg(long = "connect-timeout", value_name = "SECS", default_value = "10", value_parser = positive_secs, allow_negative_numbers = true)]
    connect_timeout: Duration,

    /// Seconds a logged-in client may stay without sending a command before it is
    /// closed (with its backend); 0 = no limit. Per listener: `listener:set_timeouts{idle = …}`.
    #[arg(long = "idle-timeout", value_name = "SECS", default_value = "0", value_parser = secs, allow_negative_numbers = true)]
    idle_timeout: Duration,

    /// On SIGTERM/SIGINT: seconds to let running statements finish before the sessions
    /// left are closed with ERR 1053 (server shutdown in progress).
    #[arg(long = "drain-timeout", value_name = "SECS", default_value = "30", value_parser = secs, allow_negative_numbers = true)]
    drain_timeout: Duration,
}

/// Subcommands: tools that run and exit instead of starting the proxy.
#[derive(Subcommand, Debug)]
enum Command {
    /// Read a password from standard input and print the password_hash of a proxy-held
    /// user for it (the authentication_string MySQL or MariaDB would store).
    HashPassword(hash_password::HashPasswordArgs),
    /// A MySQL/MariaDB load generator scripted in Lua (neper's model), with sysbench's
    /// oltp_point_select, oltp_read_only and oltp_read_write built in (docs/bench.md).
    Bench(Box<bench::BenchArgs>),
}

/// A number of seconds (fractions allowed), 0 or more.
fn secs(text: &str) -> Result<Duration, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds"))?;
    if value < 0.0 {
        return Err(format!("{text} is negative"));
    }
    Duration::try_from_secs_f64(value).map_err(|_| format!("{text} seconds is out of range"))
}

/// A number of seconds greater than 0.
fn positive_secs(text: &str) -> Result<Duration, String> {
    let value = secs(text)?;
    if value.is_zero() {
        return Err("must be greater than 0".to_string());
    }
    Ok(value)
}

fn main() -> ExitCode {
    let args = Args::parse();
    match &args.command {
        Some(Command::HashPassword(hash_args)) => return hash_password::run(hash_args),
        Some(Command::Bench(bench_args)) => return bench::run(bench_args),
        None => {}
    }
    if args.list_modules {
        print!("{}", modules::listing(&args.format));
        return ExitCode::SUCCESS;
    }
    logging::init(args.verbose, &args.log_format);
    if let Some(file) = &args.check {
        return check(file);
    }
    let fd_limit = raise_fd_limit();
    let threads = args
        .threads
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // Signal handlers first: a SIGTERM arriving while the startup file runs must not
    // kill the process the default way.
    let mut signals = match Signals::install() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("dpm: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
    };
    let startfile = args.startfile.clone();
    let config = dpm_engine::WorkerConfig {
        lifecycle: dpm_engine::LifecycleConfig {
            handshake_timeout: args.connect_timeout,
            idle_timeout: Some(args.idle_timeout).filter(|d| !d.is_zero()),
            drain_timeout: args.drain_timeout,
        },
        ..Default::default()
    };
    let started = dpm_engine::start_workers(threads, config, move |worker| {
        dpm_lua::start_worker(worker, &startfile)
    });
    let workers = match started {
        Ok(workers) => workers,
        Err(message) => {
            eprintln!("dpm: {message}");
            return ExitCode::from(1);
        }
    };
    if let Some((spec, listener)) = dpm_engine::control::admin::take() {
        let context = dpm_admin::Context {
            modules: modules::json_list(),
        };
        if let Err(message) = dpm_admin::start(spec, listener, context) {
            eprintln!("dpm: {message}");
            return ExitCode::from(1);
        }
    }
    report_fd_limit(fd_limit);
    tracing::info!(threads, "Starting event dispatcher...");
    signals.run_until_drained(workers, args.drain_timeout);
    ExitCode::SUCCESS
}

/// `dpm --check FILE`: runs the startup file on one worker in check mode
/// (`dpm_engine::control::check`) and says whether it loaded.
fn check(file: &std::path::Path) -> ExitCode {
    dpm_engine::control::check::set_check_only();
    let startfile = file.to_path_buf();
    let started = dpm_engine::start_workers(1, dpm_engine::WorkerConfig::default(), move |w| {
        dpm_lua::start_worker(w, &startfile)
    });
    match started {
        Ok(_) => {
            println!("{}: OK", file.display());
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(1)
        }
    }
}

/// Each client costs two descriptors (client and backend socket): lift the soft limit
/// to the hard one. The hard limit is the operator's (`ulimit -Hn`, systemd
/// `LimitNOFILE=`) and is left alone, even where dpm could raise it. Returns the limit
/// in force afterwards, if it could be read.
fn raise_fd_limit() -> Option<libc::rlim_t> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0
                || libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0
            {
                return None;
            }
        }
    }
    Some(limit.rlim_cur)
}

/// Descriptors open now (stdio, each worker's epoll and eventfd, listeners, backends
/// the startup file opened, the spare kept for refusing clients).
fn open_descriptors() -> Option<libc::rlim_t> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    // Less the descriptor read_dir itself holds.
    Some((entries.count() as libc::rlim_t).saturating_sub(1))
}

/// Tells the operator how many proxied sessions (two descriptors each) the descriptor
/// limit leaves room for once the workers are up: with `--verbose`, and as a warning
/// when the limit is low.
fn report_fd_limit(limit: Option<libc::rlim_t>) {
    let Some(limit) = limit else { return };
    let sessions = limit.saturating_sub(open_descriptors().unwrap_or(0)) / 2;
    if limit < 4096 {
        tracing::warn!(
            "file descriptor limit {limit}: room for about {sessions} proxied sessions; raise the hard limit (ulimit -Hn, systemd LimitNOFILE=) for more"
        );
    } else {
        tracing::info!("file descriptor limit {limit}: room for about {sessions} proxied sessions");
    }
}

/// SIGUSR1, and SIGHUP before its reload of the startup file: every built-in filter
/// reopens its log files (logrotate) and rereads its rule files; every client-facing TLS
/// certificate is reread. A file with an error keeps what was loaded before and is
/// logged.
fn reopen_and_reload(signal: &str) {
    tracing::info!("{signal}: reopening filter logs, reloading filter rules and TLS certificates");
    for error in dpm_engine::service::reopen_and_reload_all() {
        tracing::error!("ERROR: {error}");
    }
    for (cert, result) in dpm_engine::tls::reload_all() {
        match result {
            Ok(()) => tracing::info!("TLS certificate {cert} reloaded"),
            Err(e) => {
                tracing::error!("ERROR: TLS certificate not reloaded (the old one stays): {e}")
            }
        }
    }
}

/// Extra time past the drain timeout the workers get to close and flush before the
/// process exits regardless.
const DRAIN_GRACE: Duration = Duration::from_secs(3);

/// SIGINT and SIGTERM (shut down), SIGHUP (reopen logs, reload filter rules and
/// certificates, then reload the startup file), SIGUSR1 (only reopen and reload the
/// files: for logrotate), caught on the main thread's own small runtime.
struct Signals {
    runtime: tokio::runtime::Runtime,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    usr1: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let _guard = runtime.enter();
        let term = signal(SignalKind::terminate())?;
        let int = signal(SignalKind::interrupt())?;
        let hup = signal(SignalKind::hangup())?;
        let usr1 = signal(SignalKind::user_defined1())?;
        drop(_guard);
        Ok(Signals {
            runtime,
            term,
            int,
            hup,
            usr1,
        })
    }

    /// Blocks until SIGINT or SIGTERM, then drains the workers: returns once they are
    /// done, at a second signal, or (bounded) shortly after the drain timeout.
    fn run_until_drained(&mut self, mut workers: dpm_engine::Workers, drain_timeout: Duration) {
        let Signals {
            runtime,
            term,
            int,
            hup,
            usr1,
        } = self;
        runtime.block_on(async {
            let name = loop {
                tokio::select! {
                    _ = term.recv() => break "SIGTERM",
                    _ = int.recv() => break "SIGINT",
                    _ = usr1.recv() => reopen_and_reload("SIGUSR1"),
                    _ = hup.recv() => {
                        reopen_and_reload("SIGHUP");
                        tracing::info!("SIGHUP: reloading the startup file");
                        // On its own task: a second signal is heard while it loads. Its
                        // outcome is logged by the reload itself.
                        tokio::spawn(dpm_engine::control::reload::reload());
                    }
                }
            };
            tracing::info!(
                "{name}: shutting down; no new connections, draining sessions for up to {}s (a second signal exits at once)",
                drain_timeout.as_secs_f64()
            );
            workers.shutdown();
            let bound = tokio::time::sleep(drain_timeout.saturating_add(DRAIN_GRACE));
            tokio::select! {
                _ = workers.finished() => tracing::info!("shut down"),
                _ = term.recv() => tracing::warn!("SIGTERM again: exiting without waiting for the drain"),
                _ = int.recv() => tracing::warn!("SIGINT again: exiting without waiting for the drain"),
                _ = bound => tracing::warn!("workers still draining {}s after the drain timeout; exiting", DRAIN_GRACE.as_secs()),
            }
        });
    }
}
