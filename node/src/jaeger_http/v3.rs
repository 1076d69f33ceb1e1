//! `/api/v3/*`: the HTTP form of Jaeger's api_v3 that Jaeger UI 2.15+ calls.

use super::params::{parse_trace_id, ParamError};
use crate::query::{mode_names, QueryService, Rendered, Search};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kelemetry_core::display::mode::DisplayMode;
use kelemetry_encode::otlp::traces_data;
use kelemetry_encode::otlp_json::{summary, traces_json};
use kelemetry_proto::opentelemetry::proto::trace::v1::TracesData;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Jaeger's api_v3 error body.
fn v3_error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error": {"httpCode": status.as_u16(), "message": message.into()}})),
    )
        .into_response()
}

/// `GET /api/v3/services`.
pub async fn services() -> Json<Value> {
    Json(json!({"services": mode_names()}))
}

/// `GET /api/v3/operations?service=`.
pub async fn operations(State(svc): State<Arc<QueryService>>) -> Response {
    match svc.known_clusters().await {
        Ok(c) => Json(json!({"operations": c.iter().map(|n| json!({"name": n, "spanKind": "internal"})).collect::<Vec<_>>()}))
            .into_response(),
        Err(e) => v3_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

fn param<'a>(q: &'a HashMap<String, String>, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|n| q.get(*n))
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

fn time(q: &HashMap<String, String>, names: &[&'static str]) -> Result<i64, ParamError> {
    let v = param(q, names).ok_or_else(|| ParamError::new(names[0], "is required"))?;
    kelemetry_core::audit::parse_time(v).map_err(|e| ParamError::new(names[0], e.to_string()))
}

/// The query of trace-summaries and traces searches.
fn parse_search(q: &HashMap<String, String>) -> Result<Search, ParamError> {
    let service = param(q, &["query.serviceName", "query.service_name"])
        .ok_or_else(|| ParamError::new("query.serviceName", "is required"))?;
    let mode = DisplayMode::from_name(service).ok_or_else(|| {
        ParamError::new(
            "query.serviceName",
            format!("must be a display mode, got {service:?}"),
        )
    })?;
    let start_us = time(q, &["query.startTimeMin", "query.start_time_min"])?;
    let end_us = time(q, &["query.startTimeMax", "query.start_time_max"])?;
    if start_us >= end_us {
        return Err(ParamError::new(
            "query.startTimeMin",
            "must be before 'query.startTimeMax'",
        ));
    }
    let mut tags: BTreeMap<String, String> = match param(q, &["query.attributes"]) {
        Some(a) => serde_json::from_str(a).map_err(|e| {
            ParamError::new(
                "query.attributes",
                format!("must be a JSON object of strings: {e}"),
            )
        })?,
        None => BTreeMap::new(),
    };
    if tags.keys().any(String::is_empty) {
        return Err(ParamError::new(
            "query.attributes",
            "has an empty attribute name",
        ));
    }
    if let Some(op) = param(q, &["query.operationName", "query.operation_name"]) {
        tags.insert("cluster".into(), op.to_string());
    }
    let limit = match param(
        q,
        &[
            "query.searchDepth",
            "query.search_depth",
            "query.num_traces",
        ],
    ) {
        Some(v) => v.parse().map_err(|_| {
            ParamError::new(
                "query.searchDepth",
                format!("must be a positive integer, got {v:?}"),
            )
        })?,
        None => 100,
    };
    Ok(Search {
        mode,
        tags: tags.into_iter().collect(),
        start_us,
        end_us,
        limit,
    })
}

/// Parses the query of a trace search and runs it; a bad query is a 400 response.
async fn run_search(
    svc: &QueryService,
    q: &HashMap<String, String>,
) -> Result<Vec<Rendered>, Response> {
    let s = parse_search(q).map_err(|e| v3_error(StatusCode::BAD_REQUEST, e.to_string()))?;
    svc.search(&s)
        .await
        .map_err(|e| v3_error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))
}

/// `GET /api/v3/trace-summaries`.
pub async fn trace_summaries(
    State(svc): State<Arc<QueryService>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match run_search(&svc, &q).await {
        Ok(found) => Json(json!({"summaries": found.iter().map(|r| summary(&r.tree, r.trace_id)).collect::<Vec<_>>()}))
            .into_response(),
        Err(response) => response,
    }
}

/// `GET /api/v3/traces`.
pub async fn find_traces(
    State(svc): State<Arc<QueryService>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match run_search(&svc, &q).await {
        Ok(found) if found.is_empty() => v3_error(StatusCode::NOT_FOUND, "No traces found"),
        Ok(found) => {
            let mut all = TracesData::default();
            for r in &found {
                all.resource_spans
                    .extend(traces_data(&r.tree, Some(r.trace_id)).resource_spans);
            }
            Json(json!({"result": traces_json(&all)})).into_response()
        }
        Err(response) => response,
    }
}

/// `GET /api/v3/traces/{id}` (hex).
pub async fn get_trace(State(svc): State<Arc<QueryService>>, Path(id): Path<String>) -> Response {
    let Some(id) = parse_trace_id(&id) else {
        return v3_error(
            StatusCode::BAD_REQUEST,
            format!("invalid trace id {id:?}: expected up to 32 hex digits"),
        );
    };
    match svc.trace_tree(id).await {
        Ok(Some((tree, tid))) => {
            Json(json!({"result": traces_json(&traces_data(&tree, tid))})).into_response()
        }
        Ok(None) => v3_error(StatusCode::NOT_FOUND, "trace not found"),
        Err(e) => v3_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
