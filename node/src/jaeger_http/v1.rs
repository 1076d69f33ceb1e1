//! The Jaeger UI's legacy HTTP API (`/api/services`, `/api/traces`, ...).
//!
//! Services are the display modes, operations the known cluster names; searches
//! return rendered results whose trace IDs name a stored result and a mode. IDs of
//! stored object traces (as written) are still served as they are.

use super::params::{parse_trace_id, SearchParams};
use crate::query::{mode_names, QueryError, QueryService, Rendered};
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kelemetry_core::display::tree::from_stored;
use kelemetry_encode::jaeger_json;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Jaeger's legacy response envelope.
fn envelope(data: Value, total: usize) -> Response {
    Json(json!({"data": data, "total": total, "limit": 0, "offset": 0, "errors": null}))
        .into_response()
}

/// Jaeger's legacy error body.
pub fn api_error(status: StatusCode, msg: impl Into<String>) -> Response {
    let body = json!({"data": null, "total": 0, "limit": 0, "offset": 0,
                      "errors": [{"code": status.as_u16(), "msg": msg.into()}]});
    (status, Json(body)).into_response()
}

/// `GET /api/services`: the display modes.
pub async fn services() -> Response {
    let names = mode_names();
    let n = names.len();
    envelope(json!(names), n)
}

/// `GET /api/services/{service}/operations`: the known cluster names.
pub async fn service_operations(
    State(svc): State<Arc<QueryService>>,
    Path(_service): Path<String>,
) -> Response {
    match svc.known_clusters().await {
        Ok(c) => {
            let n = c.len();
            envelope(json!(c), n)
        }
        Err(e) => api_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `GET /api/operations?service=`: the known cluster names with span kinds.
pub async fn operations(
    State(svc): State<Arc<QueryService>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if q.get("service").is_none_or(|s| s.is_empty()) {
        return api_error(StatusCode::BAD_REQUEST, "parameter 'service' is required");
    }
    match svc.known_clusters().await {
        Ok(c) => {
            let ops: Vec<Value> = c
                .iter()
                .map(|n| json!({"name": n, "spanKind": ""}))
                .collect();
            let n = ops.len();
            envelope(json!(ops), n)
        }
        Err(e) => api_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `GET /api/dependencies`: always empty (object links are not service calls).
pub async fn dependencies() -> Response {
    envelope(json!([]), 0)
}

fn rendered_json(r: &Rendered) -> Value {
    jaeger_json::trace(&r.tree, Some(r.trace_id))
}

/// `GET /api/traces`: a search (rendered results, or `raw=true` stored traces), or
/// several traces by `traceID=`.
pub async fn search(State(svc): State<Arc<QueryService>>, RawQuery(raw): RawQuery) -> Response {
    let params = match SearchParams::parse(raw.as_deref().unwrap_or("")) {
        Ok(p) => p,
        Err(e) => return api_error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let Some(search) = params.search else {
        return lookup_many(&svc, &params.trace_ids).await;
    };
    if params.raw {
        return match svc.stored(&search).await {
            Ok(found) => envelope(
                Value::Array(
                    found
                        .iter()
                        .map(|t| jaeger_json::trace(&from_stored(t), None))
                        .collect(),
                ),
                0,
            ),
            Err(e) => api_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        };
    }
    match svc.search(&search).await {
        Ok(found) => envelope(Value::Array(found.iter().map(rendered_json).collect()), 0),
        Err(e) => api_error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// A result or stored trace by ID, as Jaeger JSON.
async fn trace_by_id(svc: &QueryService, id: u128) -> Result<Option<Value>, QueryError> {
    Ok(svc
        .trace_tree(id)
        .await?
        .map(|(tree, tid)| jaeger_json::trace(&tree, tid)))
}

async fn lookup_many(svc: &QueryService, ids: &[u128]) -> Response {
    let mut data = Vec::new();
    let mut errors = Vec::new();
    for &id in ids {
        match trace_by_id(svc, id).await {
            Ok(Some(t)) => data.push(t),
            Ok(None) => {
                errors.push(json!({"msg": "trace not found", "traceID": format!("{id:032x}")}))
            }
            Err(e) => return api_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
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

/// `GET /api/traces/{id}`: a rendered result or a stored trace by ID.
pub async fn get_trace(State(svc): State<Arc<QueryService>>, Path(id): Path<String>) -> Response {
    let Some(id) = parse_trace_id(&id) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            format!("invalid trace id {id:?}: expected up to 32 hex digits"),
        );
    };
    match trace_by_id(&svc, id).await {
        Ok(Some(t)) => envelope(json!([t]), 0),
        Ok(None) => api_error(StatusCode::NOT_FOUND, "trace not found"),
        Err(e) => api_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
