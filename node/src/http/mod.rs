//! The HTTP server on `--http-addr`: audit webhook, `/redirect`, health and readiness.

pub mod audit;
pub mod cluster;
pub mod errors;
pub mod health;
pub mod redirect;

use crate::server::AppState;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

/// Routes of `--http-addr`.
pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.max_body_bytes;
    Router::new()
        .route("/audit", post(audit::post_default))
        .route("/audit/{cluster}", post(audit::post_cluster))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/redirect", get(redirect::redirect))
        .route("/cluster/status", get(cluster::status))
        .route("/cluster/drain", post(cluster::drain))
        .route("/cluster/checksums", get(cluster::checksums))
        .route("/cluster/audit-ids", get(cluster::audit_ids))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}
