//! The HTTP server on `--http-addr`: audit webhook, `/redirect`, health and readiness.

pub mod audit;
pub mod body_budget;
pub mod errors;
pub mod health;
pub mod rate_limit;
pub mod redirect;
pub mod ring;

use crate::app::AppState;
use crate::auth::{require, Guard};
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

/// Who may use each group of routes on `--http-addr`.
#[derive(Clone)]
pub struct HttpGuards {
    /// `/audit*`.
    pub webhook: Guard,
    /// `/redirect` (a query).
    pub query: Guard,
    /// `/cluster/*`.
    pub admin: Guard,
}

/// Routes of `--http-addr`; `/healthz` and `/readyz` are always open (probes).
pub fn router(state: Arc<AppState>, guards: HttpGuards) -> Router {
    let limit = state.max_body_bytes;
    let webhook = Router::new()
        .route("/audit", post(audit::post_default))
        .route("/audit/{cluster}", post(audit::post_cluster))
        .layer(from_fn_with_state(guards.webhook, require));
    let query = Router::new()
        .route("/redirect", get(redirect::redirect))
        .layer(from_fn_with_state(guards.query, require));
    Router::new()
        .merge(webhook)
        .merge(query)
        .merge(admin_routes(guards.admin))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// The admin API (`/cluster/*`) behind `guard`. Served on `--http-addr`, and on the
/// plain metrics port too, so that the `kelemetry cluster` commands (and the chart's
/// preStop drain) reach a node whose webhook port speaks only TLS.
pub fn admin_routes(guard: Guard) -> Router<Arc<AppState>> {
    Router::new()
        .route("/cluster/status", get(ring::status))
        .route("/cluster/drain", post(ring::drain))
        .route("/cluster/checksums", get(ring::checksums))
        .route("/cluster/audit-ids", get(ring::audit_ids))
        .layer(from_fn_with_state(guard, require))
}
