//! The Jaeger HTTP API on `--query-addr`.
//!
//! Services are the display modes, operations the known cluster names; searches
//! return rendered results whose trace IDs name a stored result and a mode. IDs of
//! stored object traces (as written) are still served as they are.

mod jaeger;
mod otlp_json;
mod params;
pub mod results;
mod ui;
mod v3;

use crate::server::AppState;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use kelemetry_core::display::mode;
use kelemetry_core::display::tree::{from_stored, Span};
use params::{parse_trace_id, SearchParams};
use results::Rendered;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// Routes of `--query-addr`, with the UI when `ui_dir` is given.
pub fn router(state: Arc<AppState>, ui_dir: Option<&std::path::Path>) -> Router {
    let api = api_routes(state);
    match ui_dir {
        Some(dir) => ui::with_ui(api, dir),
        None => api,
    }
}

fn api_routes(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/api/services", get(services))
        .route(
            "/api/services/{service}/operations",
            get(service_operations),
        )
        .route("/api/operations", get(operations))
        .route("/api/traces", get(search))
        .route("/api/traces/{id}", get(get_trace))
        .route("/api/dependencies", get(dependencies))
        .route("/api/v3/services", get(v3::services))
        .route("/api/v3/operations", get(v3::operations))
        .route("/api/v3/trace-summaries", get(v3::trace_summaries))
        .route("/api/v3/traces", get(v3::find_traces))
        .route("/api/v3/traces/{id}", get(v3::get_trace))
        .with_state(state)
}

/// Jaeger's legacy response envelope.
fn envelope(data: Value, total: usize) -> Response {
    Json(json!({"data": data, "total": total, "limit": 0, "offset": 0, "errors": null}))
        .into_response()
}

/// Jaeger's legacy error body.
pub(crate) fn api_error(status: StatusCode, msg: impl Into<String>) -> Response {
    let body = json!({"data": null, "total": 0, "limit": 0, "offset": 0,
                      "errors": [{"code": status.as_u16(), "msg": msg.into()}]});
    (status, Json(body)).into_response()
}

/// Every display mode name, the default first.
pub fn mode_names() -> Vec<String> {
    mode::all().iter().map(ToString::to_string).collect()
}

/// Cluster names configured or found in any shard, sorted.
pub async fn known_clusters(state: &AppState) -> Result<Vec<String>, String> {
    let mut all: BTreeSet<String> = state.cluster_names.iter().cloned().collect();
    all.extend(results::clusters(state).await.map_err(|e| e.to_string())?);
    Ok(all.into_iter().collect())
}

async fn services() -> Response {
    let names = mode_names();
    let n = names.len();
    envelope(json!(names), n)
}

async fn service_operations(
    State(state): State<Arc<AppState>>,
    Path(_service): Path<String>,
) -> Response {
    match known_clusters(&state).await {
        Ok(c) => {
            let n = c.len();
            envelope(json!(c), n)
        }
        Err(e) => api_error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

async fn operations(
    State(state): State<Arc<AppState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if q.get("service").is_none_or(|s| s.is_empty()) {
        return api_error(StatusCode::BAD_REQUEST, "parameter 'service' is required");
    }
    match known_clusters(&state).await {
        Ok(c) => {
            let ops: Vec<Value> = c
                .iter()
                .map(|n| json!({"name": n, "spanKind": ""}))
                .collect();
            let n = ops.len();
            envelope(json!(ops), n)
        }
        Err(e) => api_error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

async fn dependencies() -> Response {
    envelope(json!([]), 0)
}

fn rendered_json(r: &Rendered) -> Value {
    jaeger::trace(&r.tree, Some(r.trace_id))
}

async fn search(State(state): State<Arc<AppState>>, RawQuery(raw): RawQuery) -> Response {
    let params = match SearchParams::parse(raw.as_deref().unwrap_or("")) {
        Ok(p) => p,
        Err(e) => return api_error(StatusCode::BAD_REQUEST, e),
    };
    let Some(search) = params.search else {
        return lookup_many(&state, &params.trace_ids).await;
    };
    if params.raw {
        return match results::stored(&state, &search).await {
            Ok(found) => envelope(
                Value::Array(
                    found
                        .iter()
                        .map(|t| jaeger::trace(&from_stored(t), None))
                        .collect(),
                ),
                0,
            ),
            Err(e) => api_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        };
    }
    match results::search(&state, &search).await {
        Ok(found) => envelope(Value::Array(found.iter().map(rendered_json).collect()), 0),
        Err(e) => api_error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// A result (with the trace ID to give every span) or a stored trace (keeping its
/// own IDs) by ID.
pub(crate) async fn trace_tree(
    state: &AppState,
    id: u128,
) -> Result<Option<(Span, Option<u128>)>, String> {
    if let Some(r) = results::get(state, id).await.map_err(|e| e.to_string())? {
        return Ok(Some((r.tree, Some(r.trace_id))));
    }
    let stored = results::stored_by_id(state, id)
        .await
        .map_err(|e| e.to_string())?;
    Ok(stored.map(|t| (from_stored(&t), None)))
}

/// A result or stored trace by ID, as Jaeger JSON.
pub(crate) async fn trace_by_id(state: &AppState, id: u128) -> Result<Option<Value>, String> {
    Ok(trace_tree(state, id)
        .await?
        .map(|(tree, tid)| jaeger::trace(&tree, tid)))
}

async fn lookup_many(state: &AppState, ids: &[u128]) -> Response {
    let mut data = Vec::new();
    let mut errors = Vec::new();
    for &id in ids {
        match trace_by_id(state, id).await {
            Ok(Some(t)) => data.push(t),
            Ok(None) => {
                errors.push(json!({"msg": "trace not found", "traceID": format!("{id:032x}")}))
            }
            Err(e) => return api_error(StatusCode::INTERNAL_SERVER_ERROR, e),
        }
    }
    let errors = if errors.is_empty() {
        Value::Null
    } else {
        Value::Array(errors)
    };
    Json(json!({"data": data, "total": 0, "limit": 0, "offset": 0, "errors": errors}))
        .into_response()
}

async fn get_trace(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let Some(id) = parse_trace_id(&id) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            format!("invalid trace id {id:?}: expected up to 32 hex digits"),
        );
    };
    match trace_by_id(&state, id).await {
        Ok(Some(t)) => envelope(json!([t]), 0),
        Ok(None) => api_error(StatusCode::NOT_FOUND, "trace not found"),
        Err(e) => api_error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}
