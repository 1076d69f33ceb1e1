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
    let mut r = (status, Json(json!({"error": {"message": message.into()}}))).into_response();
    r.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECS),
    );
    r
}
