//! `GET /redirect?cluster=&resource=&namespace=&name=&ts=`: finds the one object trace
//! around `ts` in the default mode and redirects to its Jaeger UI page (SPEC 6.12).

use super::errors::field_error;
use crate::app::AppState;
use crate::query::Search;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kelemetry_core::audit::parse_time;
use kelemetry_core::display::mode::DEFAULT_MODE;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// The redirect handler.
pub async fn redirect(
    State(state): State<Arc<AppState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    let (cluster, resource, namespace, name) = (
        get("cluster"),
        get("resource"),
        get("namespace"),
        get("name"),
    );
    if cluster.is_empty() || resource.is_empty() || name.is_empty() {
        return field_error(
            StatusCode::BAD_REQUEST,
            "cluster",
            "cluster or resource or name is empty",
        );
    }
    let ts_us = match q.get("ts") {
        Some(ts) => match parse_time(ts) {
            Ok(t) => t,
            Err(e) => return field_error(StatusCode::BAD_REQUEST, "ts", e.to_string()),
        },
        None => chrono::Utc::now().timestamp_micros(),
    };
    let known = match state.query.known_clusters().await {
        Ok(k) => k,
        Err(e) => return field_error(StatusCode::INTERNAL_SERVER_ERROR, "cluster", e.to_string()),
    };
    let Some(cluster) = known.iter().find(|k| k.eq_ignore_ascii_case(cluster)) else {
        return field_error(
            StatusCode::NOT_FOUND,
            "cluster",
            format!("cluster {cluster} not supported now"),
        );
    };
    let mut tags = vec![
        ("cluster".to_string(), cluster.clone()),
        ("resource".to_string(), resource.to_string()),
        ("name".to_string(), name.to_string()),
    ];
    if !namespace.is_empty() {
        tags.push(("namespace".to_string(), namespace.to_string()));
    }
    let s = Search {
        mode: DEFAULT_MODE,
        tags,
        start_us: ts_us - state.query.span_ttl_us,
        end_us: ts_us + state.query.span_ttl_us,
        limit: 2,
    };
    match state.query.search(&s).await {
        Ok(found) if found.len() == 1 => (
            StatusCode::FOUND,
            [(
                header::LOCATION,
                format!("/trace/{:032x}", found[0].trace_id),
            )],
        )
            .into_response(),
        Ok(found) if found.is_empty() => Json(json!({"spans": [{
            "startTime": ts_us, "duration": state.query.span_ttl_us,
            "tags": [{"key": "cluster", "type": "string", "value": cluster},
                     {"key": "resource", "type": "string", "value": resource},
                     {"key": "namespace", "type": "string", "value": namespace},
                     {"key": "name", "type": "string", "value": name}],
            "warnings": ["no events found"]}]}))
        .into_response(),
        Ok(found) => field_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "name",
            format!("trace ids match query length is {}, not 1", found.len()),
        ),
        Err(e) => field_error(StatusCode::SERVICE_UNAVAILABLE, "name", e.to_string()),
    }
}
