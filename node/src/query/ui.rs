//! Serving a Jaeger UI build (`--ui-dir`): `/static/*` as files, unknown `/api/*` as
//! 404, and every other GET as `index.html` so deep links (`/search`, `/trace/<id>`)
//! load the single-page app.

use super::api_error;
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

async fn page(uri: Uri, index: PathBuf) -> Response {
    if uri.path().starts_with("/api/") {
        return api_error(
            StatusCode::NOT_FOUND,
            format!("no API route {}", uri.path()),
        );
    }
    match tokio::fs::read(&index).await {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response(),
        Err(e) => api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("--ui-dir: cannot read {}: {e}", index.display()),
        ),
    }
}
