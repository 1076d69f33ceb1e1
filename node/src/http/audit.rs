//! `POST /audit/<cluster>` and `POST /audit`: the kube-apiserver audit webhook.
//!
//! Answers 200 only after every accepted item is committed on its shard; a malformed
//! body is rejected whole with 400 naming the item and field; overload answers 429 or
//! 503 with `Retry-After`, which the API server's webhook backend honours by retrying.

use super::body_budget::{discard_body, read_body, BodyRefusal};
use super::errors::{field_error, retry_in, retry_later};
use crate::app::AppState;
use crate::metrics::{INGEST_EVENTS, WEBHOOK_REQUESTS};
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kelemetry_actors::SubmitError;
use kelemetry_core::audit::{parse_event_list, AuditContext, AuditItem};
use kelemetry_core::key::validate_cluster_name;
use kelemetry_core::{Command, CommandOutcome};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// How long a request's body may take to arrive once it holds a request permit and
/// its share of the byte budget (a slow sender must not hold them for long).
const BODY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// `POST /audit`: the cluster comes from `--default-cluster`.
pub async fn post_default(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(cluster) = state.default_cluster.clone() else {
        return field_error(
            StatusCode::BAD_REQUEST,
            "cluster",
            "POST /audit has no cluster: post to /audit/<cluster>, or start the node with --default-cluster",
        );
    };
    ingest(state, cluster, peer, &headers, body).await
}

/// `POST /audit/<cluster>`.
pub async fn post_cluster(
    State(state): State<Arc<AppState>>,
    Path(cluster): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(e) = validate_cluster_name(&cluster) {
        return field_error(StatusCode::BAD_REQUEST, "cluster", e.to_string());
    }
    ingest(state, cluster, peer, &headers, body).await
}

async fn ingest(
    state: Arc<AppState>,
    cluster: String,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let response = ingest_inner(&state, &cluster, peer, headers, body).await;
    WEBHOOK_REQUESTS
        .with_label_values(&[&cluster, response.status().as_str()])
        .inc();
    response
}

async fn ingest_inner(
    state: &AppState,
    cluster: &str,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    if state.shutting_down.load(Ordering::SeqCst) {
        return retry_later(StatusCode::SERVICE_UNAVAILABLE, "node is shutting down");
    }
    let Ok(_permit) = state.webhook_permits.clone().try_acquire_owned() else {
        let _ = tokio::time::timeout(BODY_DEADLINE, discard_body(body, state.max_body_bytes)).await;
        return retry_later(
            StatusCode::TOO_MANY_REQUESTS,
            "too many webhook requests in progress (--max-concurrent-requests)",
        );
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let read = read_body(&state.body_budget, body, declared, state.max_body_bytes);
    let Ok(read) = tokio::time::timeout(BODY_DEADLINE, read).await else {
        return field_error(
            StatusCode::REQUEST_TIMEOUT,
            "body",
            format!(
                "the body did not arrive within {} s",
                BODY_DEADLINE.as_secs()
            ),
        );
    };
    let (body, _share) =
        match read {
            Ok(read) => read,
            Err(BodyRefusal::TooLarge) => {
                return field_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body",
                    format!(
                        "body exceeds --max-body-bytes ({} bytes)",
                        state.max_body_bytes
                    ),
                )
            }
            Err(BodyRefusal::OverBudget) => return retry_later(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "webhook bodies in progress on this node would exceed --max-inflight-body-bytes ({} bytes)",
                    state.body_budget.capacity()
                ),
            ),
            Err(BodyRefusal::Broken(e)) => return field_error(StatusCode::BAD_REQUEST, "body", e),
        };
    let apiserver = peer.ip().to_string();
    let ctx = AuditContext {
        cluster,
        apiserver: &apiserver,
        filter: &state.filter,
        diff_wait_us: if state.watched_clusters.iter().any(|c| c == cluster) {
            state.diff_wait_us
        } else {
            0
        },
        accepted_times: state.time_limits.bounds_now(),
    };
    let items = match parse_event_list(&body, &ctx) {
        Ok(items) => items,
        Err(e) => {
            INGEST_EVENTS
                .with_label_values(&[cluster, "audit", "rejected"])
                .inc();
            tracing::info!(cluster, field = %e.field, error = %e.message, "rejected audit batch");
            return (StatusCode::BAD_REQUEST, Json(json!({"error": e}))).into_response();
        }
    };
    // The records own copies of what they keep; the body's share of the budget stays
    // taken until the commit, standing for them.
    drop(body);
    let mut commands = Vec::with_capacity(items.len());
    for item in items {
        match item {
            AuditItem::Accepted(r) => commands.push(Command::Audit(*r)),
            AuditItem::Filtered(reason) => INGEST_EVENTS
                .with_label_values(&[cluster, "audit", &format!("filtered_{}", reason.as_str())])
                .inc(),
        }
    }
    let total = commands.len();
    if let Err(limited) = state.rate_limits.take(cluster, &apiserver, total) {
        INGEST_EVENTS
            .with_label_values(&[cluster, "audit", "rate_limited"])
            .inc_by(total as u64);
        return retry_in(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "{total} events exceed {} for this sender; retry later",
                limited.flag
            ),
            limited.retry_after,
        );
    }
    if total == 0 {
        return (
            StatusCode::OK,
            Json(json!({"accepted": 0, "duplicates": 0})),
        )
            .into_response();
    }
    match state.router.submit(commands).await {
        Ok(outcomes) => {
            let duplicates = outcomes
                .iter()
                .filter(|o| **o == CommandOutcome::Duplicate)
                .count();
            let accepted = total - duplicates;
            INGEST_EVENTS
                .with_label_values(&[cluster, "audit", "accepted"])
                .inc_by(accepted as u64);
            INGEST_EVENTS
                .with_label_values(&[cluster, "audit", "duplicate"])
                .inc_by(duplicates as u64);
            (
                StatusCode::OK,
                Json(json!({"accepted": accepted, "duplicates": duplicates})),
            )
                .into_response()
        }
        Err(e) => {
            INGEST_EVENTS
                .with_label_values(&[cluster, "audit", "failed"])
                .inc_by(total as u64);
            let status = match e {
                SubmitError::Overloaded { .. } => StatusCode::TOO_MANY_REQUESTS,
                SubmitError::Unavailable { .. }
                | SubmitError::NotLeader { .. }
                | SubmitError::Timeout { .. } => StatusCode::SERVICE_UNAVAILABLE,
            };
            tracing::warn!(cluster, error = %e, "audit batch not committed; client will retry");
            retry_later(status, format!("{e}; retry (replays are deduplicated)"))
        }
    }
}
