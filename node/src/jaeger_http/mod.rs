//! The Jaeger HTTP API on `--query-addr`: the legacy API the Jaeger UI calls
//! ([`v1`]), `/api/v3` ([`v3`]), and with `--ui-dir` the UI itself ([`ui`]). Each
//! handler parses its parameters, asks the query service and encodes the answer.

mod params;
mod ui;
pub mod v1;
pub mod v3;

use crate::query::QueryService;
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

/// Routes of `--query-addr`, with the UI when `ui_dir` is given, every one behind
/// `guard`.
pub fn router(
    state: Arc<QueryService>,
    ui_dir: Option<&std::path::Path>,
    guard: crate::auth::Guard,
) -> Router {
    let api = api_routes(state);
    let routes = match ui_dir {
        Some(dir) => ui::with_ui(api, dir),
        None => api,
    };
    routes.layer(axum::middleware::from_fn_with_state(
        guard,
        crate::auth::require,
    ))
}

fn api_routes(state: Arc<QueryService>) -> Router {
    Router::new()
        .route("/api/services", get(v1::services))
        .route(
            "/api/services/{service}/operations",
            get(v1::service_operations),
        )
        .route("/api/operations", get(v1::operations))
        .route("/api/traces", get(v1::search))
        .route("/api/traces/{id}", get(v1::get_trace))
        .route("/api/dependencies", get(v1::dependencies))
        .route("/api/v3/services", get(v3::services))
        .route("/api/v3/operations", get(v3::operations))
        .route("/api/v3/trace-summaries", get(v3::trace_summaries))
        .route("/api/v3/traces", get(v3::find_traces))
        .route("/api/v3/traces/{id}", get(v3::get_trace))
        .with_state(state)
}
