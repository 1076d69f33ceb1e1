//! The HTTP server on `--http-addr`: audit webhook, `/redirect`, health and readiness.

pub mod audit;
pub mod errors;
pub mod health;
pub mod redirect;
pub mod ring;

use crate::app::AppState;
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
        .route("/cluster/status", get(ring::status))
        .route("/cluster/drain", post(ring::drain))
        .route("/cluster/checksums", get(ring::checksums))
        .route("/cluster/audit-ids", get(ring::audit_ids))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}
