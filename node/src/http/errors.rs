//! JSON error responses of the webhook and admin API.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Seconds a client should wait after 429/503.
const RETRY_AFTER_SECS: &str = "1";

/// `{"error": {"field": ..., "message": ...}}` with the given status.
pub fn field_error(status: StatusCode, field: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error": {"field": field, "message": message.into()}})),
    )
        .into_response()
}

/// An overload or availability error that tells the client when to retry.
pub fn retry_later(status: StatusCode, message: impl Into<String>) -> Response {
    retry_after(status, message, RETRY_AFTER_SECS)
}

/// An overload error with a computed `Retry-After` (whole seconds, at least 1).
pub fn retry_in(
    status: StatusCode,
    message: impl Into<String>,
    wait: std::time::Duration,
) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    retry_after(status, message, &secs.max(1).to_string())
}

fn retry_after(status: StatusCode, message: impl Into<String>, secs: &str) -> Response {
    let mut r = (status, Json(json!({"error": {"message": message.into()}}))).into_response();
    if let Ok(v) = HeaderValue::from_str(secs) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}
