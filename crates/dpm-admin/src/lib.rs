//! dpm's admin REST API, served on the listener the startup file declares with
//! `dpm.admin{ listen, users, tokens }` (docs/admin.md lists every endpoint).
//!
//! It runs on a thread of its own with its own single-threaded runtime, off the workers:
//! what it shows it reads from the process-wide registries (servers, services,
//! monitors) or asks the workers for through their mailboxes
//! (`dpm_engine::control`), so a slow or busy admin client never holds up a session.
//!
//! * [`auth`]: HTTP basic against `caching_sha2_password` hashes, or bearer tokens.
//! * [`api`]: the routes and their handlers.
//! * [`error`]: every failure as JSON `{"error": "..."}` with its HTTP status.
//! * [`digests`]: the query digests of every worker, merged, ordered, cut.
//! * [`status`]: the status page, its files embedded in the binary.
//! * [`metrics`]: `GET /metrics`, the Prometheus text, encoded by `prometheus-client`.

pub mod api;
pub mod auth;
pub mod digests;
pub mod error;
pub mod metrics;
pub mod status;

use std::net::TcpListener;
use std::sync::Arc;

use dpm_engine::control::admin::AdminSpec;

/// What the admin API shows that only the binary knows.
#[derive(Clone, Default)]
pub struct Context {
    /// Every module dpm has (type, name, maturity, version, description, options), as
    /// `dpm --list-modules --format json` prints them.
    pub modules: Vec<serde_json::Value>,
}

/// Serves the admin API on `listener` (bound by the startup file's declaration `spec`)
/// from a thread of its own, until the process exits.
pub fn start(spec: AdminSpec, listener: TcpListener, context: Context) -> Result<(), String> {
    let auth = auth::Auth::new(&spec)?;
    let address = spec.listen;
    // Made here, so that a failure stops dpm at start rather than leaving it without its
    // admin API.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("admin API: cannot start its runtime: {e}"))?;
    std::thread::Builder::new()
        .name("dpm-admin".to_string())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!("admin API: cannot use {address}: {e}");
                        return;
                    }
                };
                let app = api::router(Arc::new(auth), Arc::new(context));
                tracing::info!("admin API listening on http://{address}/v1");
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!("admin API stopped: {e}");
                }
            });
        })
        .map_err(|e| format!("cannot start the admin API's thread: {e}"))?;
    Ok(())
}
