//! The `dpm` command: runs a Lua startup file that configures the proxy.
//!
//! It owns the command line, logging set-up, starting the workers and the process
//! lifecycle (signals, exit codes). Everything else is in the library crates.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

mod modules;

/// Dormando's Proxy for MySQL, reborn: a MySQL/MariaDB proxy programmed in Lua.
#[derive(Parser, Debug)]
#[command(name = "dpm", version, about)]
struct Args {
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

    /// Number of worker threads, each with its own Lua state running the startup file
    /// (default: the number of CPU cores). `--threads 1` gives the original's single
    /// Lua state.
    #[arg(long = "threads", value_name = "N", env = "DPM_THREADS")]
    threads: Option<usize>,

    /// Print every built-in module (type, name, maturity, version, description, options)
    /// and exit.
    #[arg(long = "list-modules")]
    list_modules: bool,

    /// Output format of --list-modules.
    #[arg(long = "format", value_name = "FORMAT", default_value = "table", value_parser = ["table", "json"])]
    format: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.list_modules {
        print!("{}", modules::listing(&args.format));
        return ExitCode::SUCCESS;
    }
    init_logging(args.verbose);
    let fd_limit = raise_fd_limit();
    let threads = args
        .threads
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let startfile = args.startfile.clone();
    let started = dpm_engine::start_workers(
        threads,
        dpm_engine::WorkerConfig::default(),
        move |worker| dpm_lua::start_worker(worker, &startfile),
    );
    if let Err(message) = started {
        eprintln!("dpm: {message}");
        return ExitCode::from(1);
    }
    report_fd_limit(fd_limit);
    tracing::info!(threads, "Starting event dispatcher...");
    wait_for_shutdown_signal();
    tracing::info!("shutting down");
    ExitCode::SUCCESS
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("DPM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .with_target(false)
        .init();
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

/// Blocks until SIGINT or SIGTERM.
fn wait_for_shutdown_signal() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("signal runtime");
    runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    });
}
