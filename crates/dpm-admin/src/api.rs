//! The admin API's routes (docs/admin.md): what each endpoint shows or does. Reads come
//! from the engine's process-wide registries or from the workers' mailboxes; actions go
//! to the same places the startup file's own functions reach.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use dpm_engine::control;
use dpm_engine::service::{self, AdminState};
use serde_json::{json, Value};

use crate::auth::Auth;
use crate::error::ApiError;
use crate::Context;

type Answer = Result<Json<Value>, ApiError>;

/// Every route, behind the credential check.
pub fn router(auth: Arc<Auth>, context: Arc<Context>) -> Router {
    Router::new()
        .route("/v1", get(index))
        .route("/v1/servers", get(servers))
        .route("/v1/servers/{name}", get(server))
        .route("/v1/servers/{name}/state", put(set_server_state))
        .route("/v1/services", get(services))
        .route("/v1/services/{name}", get(one_service))
        .route("/v1/monitors", get(monitors))
        .route("/v1/modules", get(modules))
        .route("/v1/sessions", get(sessions))
        .route("/v1/sessions/{id}", get(session).delete(kill_session))
        .route("/v1/workers", get(workers))
        .route("/v1/log-level", get(log_level).put(set_log_level))
        .route("/v1/filters/reload", post(reload_filters))
        .route("/v1/reload", post(reload))
        .route("/metrics", get(metrics))
        .route("/", get(crate::status::root))
        .route("/status", get(crate::status::page))
        .route("/status.js", get(crate::status::script))
        .route("/status.css", get(crate::status::style))
        .route("/v1/digests", get(digests).delete(reset_digests))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(context)
        .layer(axum::middleware::from_fn_with_state(
            auth,
            crate::auth::require,
        ))
}

/// The endpoints, for a person finding their way.
const ENDPOINTS: &[(&str, &str)] = &[
    (
        "GET /v1/servers",
        "every server: address, role, state, admin state, lag, sessions, counters",
    ),
    ("GET /v1/servers/{name}", "one server"),
    (
        "PUT /v1/servers/{name}/state",
        "{\"state\": \"maintenance\" | \"drain\" | \"active\"}",
    ),
    (
        "GET /v1/services",
        "every service with its router's, filters' and servers' diagnostics",
    ),
    ("GET /v1/services/{name}", "one service"),
    ("GET /v1/monitors", "every monitor's diagnostics"),
    (
        "GET /v1/modules",
        "every module dpm has, and the instances of them running",
    ),
    (
        "GET /v1/sessions",
        "every session: user, client, worker, backends, state, statement running",
    ),
    ("GET /v1/sessions/{id}", "one session"),
    (
        "DELETE /v1/sessions/{id}",
        "kill a session (its client gets ERR 1927)",
    ),
    ("GET /v1/workers", "every worker's counters"),
    ("GET /v1/log-level", "the log level"),
    (
        "PUT /v1/log-level",
        "{\"level\": \"error\" | \"warn\" | \"info\" | \"debug\" | \"trace\" | a filter}",
    ),
    (
        "GET /v1/digests",
        "query digests: ?order=count|time|errors (default count), ?limit=N (default 100)",
    ),
    ("DELETE /v1/digests", "forget every query digest"),
    (
        "GET /status",
        "the status page: servers, services, sessions, top digests, refreshing itself",
    ),
    (
        "GET /metrics",
        "Prometheus metrics (OpenMetrics text): clients, statements, errors, bytes, latency, servers, Lua, workers",
    ),
    (
        "POST /v1/reload",
        "run the startup file again without dropping a session: new sessions get the new code; a file with an error keeps the old (422, FILE:LINE: message)",
    ),
    (
        "POST /v1/filters/reload",
        "reopen logs and reload rules of every built-in filter, or {\"filters\": [names]}",
    ),
];

async fn index() -> Json<Value> {
    let endpoints: Vec<Value> = ENDPOINTS
        .iter()
        .map(|(route, what)| json!({ "endpoint": route, "description": what }))
        .collect();
    Json(json!({ "dpm": env!("CARGO_PKG_VERSION"), "endpoints": endpoints }))
}

async fn metrics() -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let text = crate::metrics::scrape().await.map_err(|e| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: format!("cannot encode the metrics: {e}"),
    })?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::CONTENT_TYPE,
        )],
        text,
    )
        .into_response())
}

async fn digests(
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Answer {
    let order = match query.get("order") {
        None => crate::digests::Order::Count,
        Some(o) => crate::digests::Order::parse(o).ok_or_else(|| {
            ApiError::bad_request(format!("unknown order '{o}' (count, time or errors)"))
        })?,
    };
    let limit = match query.get("limit") {
        None => 100,
        Some(l) => l
            .parse::<usize>()
            .map_err(|_| ApiError::bad_request(format!("limit '{l}' is not a number")))?,
    };
    let enabled = dpm_engine::digests::config();
    let gathered = control::digests().await;
    let merged = crate::digests::merge(gathered.items);
    let distinct = merged.len();
    let rows: Vec<Value> = crate::digests::top(merged, order, limit)
        .iter()
        .map(crate::digests::to_json)
        .collect();
    Ok(Json(json!({
        "enabled": enabled.is_some(),
        "capacity_per_worker": enabled.map(|c| c.capacity),
        "kept": distinct,
        "digests": rows,
        "silent_workers": gathered.silent_workers,
    })))
}

async fn reset_digests() -> Json<Value> {
    control::reset_digests().await;
    Json(json!({ "reset": true }))
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint (GET /v1 lists them)")
}

async fn method_not_allowed() -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        message: "method not allowed on this endpoint (GET /v1 lists them)".to_string(),
    }
}

/// A request body as a JSON object, or a 400 saying what is wrong with it.
fn object(body: &Bytes) -> Result<serde_json::Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request("the body must be a JSON object")),
        Err(e) => Err(ApiError::bad_request(format!("the body is not JSON: {e}"))),
    }
}

/// Field `name` of a body, as a string.
fn string_field<'a>(
    body: &'a serde_json::Map<String, Value>,
    name: &str,
) -> Result<&'a str, ApiError> {
    match body.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ApiError::bad_request(format!(
            "\"{name}\" must be a string"
        ))),
        None => Err(ApiError::bad_request(format!("\"{name}\" is missing"))),
    }
}

fn find_server(name: &str) -> Result<Arc<service::Server>, ApiError> {
    service::servers()
        .into_iter()
        .find(|s| s.name == name)
        .ok_or_else(|| ApiError::not_found(format!("no server named '{name}'")))
}

async fn servers() -> Json<Value> {
    let all: Vec<Value> = service::servers().iter().map(|s| s.diagnostics()).collect();
    Json(json!({ "servers": all }))
}

async fn server(Path(name): Path<String>) -> Answer {
    Ok(Json(find_server(&name)?.diagnostics()))
}

async fn set_server_state(Path(name): Path<String>, body: Bytes) -> Answer {
    let server = find_server(&name)?;
    let body = object(&body)?;
    let wanted = string_field(&body, "state")?;
    let state = AdminState::parse(wanted).ok_or_else(|| {
        ApiError::bad_request(format!(
            "unknown state '{wanted}' (maintenance, drain or active)"
        ))
    })?;
    let before = server.set_admin_state(state);
    let (killed, silent) = if state == AdminState::Maintenance {
        let gathered = control::kill_sessions_on_server(&name).await;
        (
            gathered.items.iter().sum::<usize>(),
            gathered.silent_workers,
        )
    } else {
        (0, Vec::new())
    };
    Ok(Json(json!({
        "server": name,
        "state": state.as_str(),
        "was": before.as_str(),
        "sessions_killed": killed,
        // Workers busy past the answer timeout kill theirs when they get to it.
        "silent_workers": silent,
    })))
}

/// Every service: as a worker that serves it sees it (with its filters), or, for one no
/// listener serves, its process-wide part.
async fn all_services() -> Vec<Value> {
    let mut served = control::service_diagnostics().await;
    for s in service::services() {
        if !served.iter().any(|d| d["name"] == s.name.as_str()) {
            served.push(s.diagnostics());
        }
    }
    served.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    served
}

async fn services() -> Json<Value> {
    Json(json!({ "services": all_services().await }))
}

async fn one_service(Path(name): Path<String>) -> Answer {
    all_services()
        .await
        .into_iter()
        .find(|d| d["name"] == name.as_str())
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no service named '{name}'")))
}

fn monitor_diagnostics() -> Vec<Value> {
    let mut all: Vec<Value> = service::monitors()
        .iter()
        .map(|m| {
            json!({
                "name": m.name(),
                "module": m.info().name,
                "servers": m.servers().iter().map(|s| s.name.clone()).collect::<Vec<_>>(),
                "diagnostics": m.diagnostics(),
            })
        })
        .collect();
    all.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    all
}

async fn monitors() -> Json<Value> {
    Json(json!({ "monitors": monitor_diagnostics() }))
}

/// Every module dpm has, and each instance of one running: routers (one per service),
/// filters and monitors, with their diagnostics.
async fn modules(State(context): State<Arc<Context>>) -> Json<Value> {
    let services = all_services().await;
    let routers: Vec<Value> = services
        .iter()
        .map(|s| {
            json!({
                "service": s["name"],
                "module": s["router"],
                "diagnostics": s["router_diagnostics"],
            })
        })
        .collect();
    let mut filters: Vec<Value> = Vec::new();
    for s in &services {
        for f in s["filters"].as_array().into_iter().flatten() {
            if f.is_object() && !filters.iter().any(|k| k["name"] == f["name"]) {
                filters.push(f.clone());
            }
        }
    }
    Json(json!({
        "modules": context.modules,
        "instances": {
            "routers": routers,
            "filters": filters,
            "monitors": monitor_diagnostics(),
        },
    }))
}

async fn sessions() -> Json<Value> {
    let gathered = control::sessions().await;
    let all: Vec<Value> = gathered.items.iter().map(|s| s.to_json()).collect();
    Json(json!({ "sessions": all, "silent_workers": gathered.silent_workers }))
}

fn session_id(text: &str) -> Result<u64, ApiError> {
    text.parse()
        .map_err(|_| ApiError::bad_request(format!("'{text}' is not a session id")))
}

async fn session(Path(id): Path<String>) -> Answer {
    let id = session_id(&id)?;
    control::sessions()
        .await
        .items
        .iter()
        .find(|s| s.id == id)
        .map(|s| Json(s.to_json()))
        .ok_or_else(|| ApiError::not_found(format!("no session {id}")))
}

async fn kill_session(Path(id): Path<String>) -> Answer {
    let id = session_id(&id)?;
    match control::kill_session(id).await {
        control::Killed::Yes => Ok(Json(json!({ "killed": id }))),
        control::Killed::NoSuchSession => Err(ApiError::not_found(format!("no session {id}"))),
        control::Killed::Unknown(silent) => Err(ApiError {
            status: StatusCode::GATEWAY_TIMEOUT,
            message: format!(
                "session {id} is not on the workers that answered; workers {silent:?} did not \
                 answer in time (busy): if it is theirs, it is killed when they get to it"
            ),
        }),
    }
}

async fn workers() -> Json<Value> {
    let all: Vec<Value> = control::workers()
        .iter()
        .map(|w| {
            json!({
                "worker": w.index,
                "connections": w.connections,
                "lua_calls": w.lua_calls,
                "packets_decoded": w.packets_decoded,
                "pipeline_runs": w.pipeline_runs,
                "generations": w.generations,
            })
        })
        .collect();
    Json(json!({ "workers": all }))
}

async fn log_level() -> Json<Value> {
    Json(json!({ "level": control::log_level::current() }))
}

async fn set_log_level(body: Bytes) -> Answer {
    let body = object(&body)?;
    let level = string_field(&body, "level")?;
    control::log_level::set(level).map_err(ApiError::bad_request)?;
    Ok(Json(json!({ "level": control::log_level::current() })))
}

/// Runs the startup file again on every worker (`control::reload`): the generation now
/// in force, or 422 with the file's error (the old code goes on).
async fn reload() -> Answer {
    // On its own task: a client that goes away must not cancel a reload halfway (the
    // handler's future is dropped then; the task is not).
    let reloaded = tokio::spawn(control::reload::reload())
        .await
        .map_err(|e| ApiError::failed(format!("the reload stopped: {e}")))?;
    match reloaded {
        Ok(done) => Ok(Json(json!({
            "reloaded": true,
            "generation": done.generation,
            "late_workers": done.late_workers,
        }))),
        Err(message) => Err(ApiError::failed(message)),
    }
}

/// Reopens the logs and reloads the rules of every built-in filter, or only reloads
/// those named in `{"filters": [...]}`. A rule file that does not load keeps the rules
/// loaded before: 422 with each error (`FILE:LINE: message`).
async fn reload_filters(body: Bytes) -> Answer {
    let errors = if body.is_empty() {
        service::reopen_and_reload_all()
    } else {
        let body = object(&body)?;
        let names: Vec<String> = match body.get("filters") {
            Some(Value::Array(list)) => list
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or_else(|| ApiError::bad_request("\"filters\" must be a list of names"))?,
            _ => return Err(ApiError::bad_request("\"filters\" must be a list of names")),
        };
        let known = service::filter_names();
        if let Some(unknown) = names.iter().find(|n| !known.contains(n)) {
            return Err(ApiError::not_found(format!(
                "no built-in filter named '{unknown}' (there are: {})",
                known.join(", ")
            )));
        }
        service::reload_filters(names.iter().map(String::as_str))
    };
    if errors.is_empty() {
        Ok(Json(json!({ "reloaded": true })))
    } else {
        Err(ApiError::failed(errors.join("; ")))
    }
}
