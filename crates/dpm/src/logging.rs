//! Logging: stderr as text or JSON lines, the level `--verbose`/`DPM_LOG` ask for and
//! changeable while dpm runs (`dpm.set_log_level`, the admin API), and every line written
//! for a session saying whose it is — `session=ID client=ADDR user=U` at the end of a text
//! line, a `"session"` object in a JSON one (`dpm_engine::log_context`).

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Sets up logging to stderr as text or JSON lines, at the level `--verbose` (or the
/// `DPM_LOG` filter) asks for, and hands the engine the means to change that level
/// while the process runs (`dpm.set_log_level`, the admin API).
pub fn init(verbose: u8, format: &str) {
    use std::io::IsTerminal;
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::{fmt, reload, EnvFilter};
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let from_env = std::env::var("DPM_LOG")
        .ok()
        .filter(|l| log_level_checked(l).is_ok());
    let initial = from_env.unwrap_or_else(|| level.to_string());
    let (filter, handle) = reload::Layer::new(EnvFilter::new(&initial));
    let registry = tracing_subscriber::registry().with(filter);
    if format == "json" {
        let json = fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .fmt_fields(fmt::format::JsonFields::new())
            .event_format(WithSession {
                inner: fmt::format().json(),
                json: true,
            });
        registry.with(json).init();
    } else {
        let text = fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .event_format(WithSession {
                inner: fmt::format().with_target(false),
                json: false,
            });
        registry.with(text).init();
    }
    dpm_engine::control::log_level::install(
        &initial,
        Box::new(move |wanted| {
            log_level_checked(wanted)?;
            handle
                .reload(EnvFilter::new(wanted))
                .map_err(|e| format!("cannot change the log level: {e}"))
        }),
    );
}

/// Accepts a level (`error`, `warn`, `info`, `debug`, `trace`, `off`) or a filter of
/// `target=level` parts and levels separated by commas; anything else is refused rather
/// than read as a target name that matches nothing.
fn log_level_checked(wanted: &str) -> Result<(), String> {
    const LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace", "off"];
    let is_level = |l: &str| LEVELS.contains(&l.trim().to_ascii_lowercase().as_str());
    for part in wanted.split(',') {
        let level = part.rsplit_once('=').map_or(part, |(_, l)| l);
        if !is_level(level) {
            return Err(format!(
                "unknown log level '{wanted}' (one of {}, or target=level, comma-separated)",
                LEVELS.join(", ")
            ));
        }
    }
    Ok(())
}

/// An event format that adds the session the line was written for (see the module
/// docs) to `inner`'s.
struct WithSession<E> {
    inner: E,
    json: bool,
}

impl<S, N, E> FormatEvent<S, N> for WithSession<E>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    E: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let Some(session) = dpm_engine::log_context::current_session() else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let line = line.trim_end_matches('\n');
        if self.json {
            let facts = serde_json::json!({
                "id": session.id,
                "client": session.client,
                "user": session.user,
            });
            match line.strip_prefix('{') {
                Some(rest) => writeln!(writer, "{{\"session\":{facts},{rest}"),
                None => writeln!(writer, "{line}"),
            }
        } else {
            write!(writer, "{line} session={}", session.id)?;
            if let Some(client) = &session.client {
                write!(writer, " client={client}")?;
            }
            if let Some(user) = &session.user {
                // The name the client sent, before any check: quoted and escaped when it
                // holds a blank or a control character, so it cannot forge a line.
                if user
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '"')
                {
                    write!(writer, " user={user:?}")?;
                } else {
                    write!(writer, " user={user}")?;
                }
            }
            writeln!(writer)
        }
    }
}
