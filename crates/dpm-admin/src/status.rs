//! The status page (`GET /status`): servers with their state and lag, services, sessions
//! and the top query digests with latency percentiles, redrawn every 2 seconds from the
//! admin API by a small script. Its three files are embedded in the binary; nothing is
//! fetched from anywhere else.

use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};

const HTML: &str = include_str!("status/status.html");
const SCRIPT: &str = include_str!("status/status.js");
const STYLE: &str = include_str!("status/status.css");

/// `GET /`: the status page.
pub async fn root() -> Redirect {
    Redirect::to("/status")
}

/// `GET /status`.
pub async fn page() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], HTML).into_response()
}

/// `GET /status.js`.
pub async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

/// `GET /status.css`.
pub async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}
