//! The Jaeger HTTP API on `--query-addr`: stored object traces as they are.

mod jaeger;
mod params;

use crate::server::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use kelemetry_core::display::tree::from_stored;
use kelemetry_core::ids::{shard_of, shard_of_trace};
use kelemetry_core::key::IDENTITY_TAGS;
use kelemetry_core::state::{find_trace_by_id, find_traces, StoredTrace};
use kelemetry_core::ObjectKey;
use params::{parse_trace_id, SearchParams};
use serde_json::{json, Value};
use std::sync::Arc;

/// The services `GET /api/traces` accepts: the stored sources.
pub const SOURCES: [&str; 3] = ["audit", "event", "object"];

/// Routes of `--query-addr`.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/api/services", get(services))
        .route("/api/traces", get(search))
        .route("/api/traces/{id}", get(get_trace))
        .with_state(state)
}

/// Jaeger's legacy response envelope.
fn envelope(data: Value) -> Json<Value> {
    Json(json!({"data": data, "total": 0, "limit": 0, "offset": 0, "errors": null}))
}

/// Jaeger's legacy error body.
pub(crate) fn api_error(status: StatusCode, msg: impl Into<String>) -> Response {
    let body = json!({"data": null, "total": 0, "limit": 0, "offset": 0,
                      "errors": [{"code": status.as_u16(), "msg": msg.into()}]});
    (status, Json(body)).into_response()
}

async fn services() -> Json<Value> {
    let mut v = envelope(json!(SOURCES));
    v["total"] = json!(SOURCES.len());
    v
}

async fn search(State(state): State<Arc<AppState>>, RawQuery(raw): RawQuery) -> Response {
    let params = match SearchParams::parse(raw.as_deref().unwrap_or(""), state.span_ttl_us) {
        Ok(p) => p,
        Err(e) => return api_error(StatusCode::BAD_REQUEST, e),
    };
    if !params.trace_ids.is_empty() {
        return lookup_many(&state, &params.trace_ids);
    }
    let query = params.query;
    let shards: Vec<u32> = match full_key(&query.tags) {
        Some(key) => vec![shard_of(&key, state.shards.count())],
        None => (0..state.shards.count()).collect(),
    };
    let mut found: Vec<StoredTrace> = Vec::new();
    for shard in shards {
        match find_traces(state.shards.shard(shard).reader(), &query) {
            Ok(t) => found.extend(t),
            Err(e) => return api_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
    found.sort_by(|a, b| {
        b.object
            .window
            .start_us
            .cmp(&a.object.window.start_us)
            .then_with(|| a.object.key.cmp(&b.object.key))
    });
    found.truncate(query.limit);
    envelope(Value::Array(
        found
            .iter()
            .map(|t| jaeger::trace(&from_stored(t), None))
            .collect(),
    ))
    .into_response()
}

/// The object key when the tags name all five identity parts.
fn full_key(tags: &[(String, String)]) -> Option<ObjectKey> {
    let get = |t: &str| tags.iter().find(|(k, _)| k == t).map(|(_, v)| v.clone());
    let [c, g, r, n, name] = IDENTITY_TAGS.map(get);
    Some(ObjectKey::new(c?, g?, r?, n?, name?))
}

fn load(state: &AppState, id: u128) -> Result<Option<StoredTrace>, String> {
    let shard = shard_of_trace(id);
    if shard >= state.shards.count() {
        return Ok(None);
    }
    find_trace_by_id(state.shards.shard(shard).reader(), id).map_err(|e| e.to_string())
}

fn lookup_many(state: &AppState, ids: &[u128]) -> Response {
    let mut data = Vec::new();
    let mut errors = Vec::new();
    for &id in ids {
        match load(state, id) {
            Ok(Some(t)) => data.push(jaeger::trace(&from_stored(&t), None)),
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
    match load(&state, id) {
        Ok(Some(t)) => envelope(json!([jaeger::trace(&from_stored(&t), None)])).into_response(),
        Ok(None) => api_error(StatusCode::NOT_FOUND, "trace not found"),
        Err(e) => api_error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}
