//! Serving a Jaeger UI build (`--ui-dir`): `/static/*` as files, unknown `/api/*` as
//! 404, and every other GET as `index.html` so deep links (`/search`, `/trace/<id>`)
//! load the single-page app.

use super::v1::api_error;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::path::{Path, PathBuf};
use tower_http::services::ServeDir;

/// Adds the UI routes to the query router.
pub fn with_ui(api: Router, ui_dir: &Path) -> Router {
    let index = ui_dir.join("index.html");
    api.nest_service("/static", ServeDir::new(ui_dir.join("static")))
        .fallback(get(move |uri: Uri| page(uri, index.clone())))
}

/// UI configuration: no dependency graph (this backend has none) and no Monitor tab.
const UI_CONFIG: &str = r#"{"dependencies":{"menuEnabled":false},"monitor":{"menuEnabled":false}}"#;
/// Storage capabilities for UI <= 2.19 (`JAEGER_STORAGE_CAPABILITIES`) and 2.20+
/// (`JAEGER_BACKEND_CAPABILITIES`).
const CAPABILITIES: &str = r#"{"archiveStorage":false,"metricsStorage":false}"#;

/// Replaces the UI's default-configuration placeholders, as jaeger-query does.
fn inject(html: &str) -> String {
    let version = format!(
        r#"{{"gitCommit":"","gitVersion":"kelemetry {}","buildDate":""}}"#,
        env!("CARGO_PKG_VERSION")
    );
    [
        (
            "JAEGER_CONFIG = DEFAULT_CONFIG;",
            format!("JAEGER_CONFIG = {UI_CONFIG};"),
        ),
        (
            "JAEGER_VERSION = DEFAULT_VERSION;",
            format!("JAEGER_VERSION = {version};"),
        ),
        (
            "JAEGER_STORAGE_CAPABILITIES = DEFAULT_STORAGE_CAPABILITIES;",
            format!("JAEGER_STORAGE_CAPABILITIES = {CAPABILITIES};"),
        ),
        (
            "JAEGER_BACKEND_CAPABILITIES = DEFAULT_BACKEND_CAPABILITIES;",
            format!("JAEGER_BACKEND_CAPABILITIES = {CAPABILITIES};"),
        ),
    ]
    .iter()
    .fold(html.to_string(), |acc, (from, to)| acc.replace(from, to))
}

async fn page(uri: Uri, index: PathBuf) -> Response {
    if uri.path().starts_with("/api/") {
        return api_error(
            StatusCode::NOT_FOUND,
            format!("no API route {}", uri.path()),
        );
    }
    match tokio::fs::read_to_string(&index).await {
        Ok(html) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            inject(&html),
        )
            .into_response(),
        Err(e) => api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("--ui-dir: cannot read {}: {e}", index.display()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_replaced() {
        let html = "<script>JAEGER_CONFIG = DEFAULT_CONFIG; JAEGER_VERSION = DEFAULT_VERSION; JAEGER_STORAGE_CAPABILITIES = DEFAULT_STORAGE_CAPABILITIES;</script>";
        let out = inject(html);
        assert!(
            out.contains(r#"JAEGER_CONFIG = {"dependencies":{"menuEnabled":false}"#),
            "{out}"
        );
        assert!(out.contains("kelemetry "));
        assert!(!out.contains("DEFAULT_"));
    }
}
