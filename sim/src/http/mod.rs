//! The HTTP face of the simulator: Kubernetes REST paths parsed by hand (the
//! namespaced and cluster-scoped forms share prefixes, which a route table cannot
//! tell apart), discovery, and watches as streams of JSON lines.
//!
//! - [`auth`]: who a request comes from.
//! - [`discovery`]: `/version`, `/api`, `/apis` and resource lists.
//! - [`openapi`]: the OpenAPI v3 kubectl reads to choose server-side validation, and
//!   the empty v2 document older kubectl versions fetch.
//! - [`table`]: the Tables `kubectl get` prints.
//! - [`watch`]: `?watch=1` streams.

pub mod auth;
pub mod discovery;
pub mod openapi;
pub mod table;
pub mod watch;

use crate::apiserver::patch::PatchType;
use crate::apiserver::select::Selector;
use crate::apiserver::{ApiServer, DeletePropagation, ListOptions, Target};
use crate::audit::Requester;
use crate::status::ApiError;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// What the HTTP handlers share.
pub struct HttpState {
    /// The API server's operations.
    pub api: Arc<ApiServer>,
    /// The address clients reach the server at (for `/api`).
    pub server_addr: String,
    /// The recording `POST /sim/replay` plays (`--replay`).
    pub recording: Option<Arc<crate::replay::Recording>>,
}

/// Every route of the simulator.
pub fn router(state: Arc<HttpState>) -> Router {
    Router::new().fallback(dispatch).with_state(state)
}

fn json_response(code: u16, v: &Value) -> Response {
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn error_response(e: &ApiError) -> Response {
    json_response(e.code, &e.to_status())
}

fn not_found() -> Response {
    error_response(&ApiError {
        code: 404,
        reason: "NotFound",
        message: "the server could not find the requested resource".into(),
    })
}

/// One request as the dispatcher sees it.
struct Call<'a> {
    who: Requester,
    method: Method,
    uri: String,
    query: HashMap<String, String>,
    headers: &'a HeaderMap,
    body: Bytes,
}

async fn dispatch(
    State(s): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query: HashMap<String, String> = uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let segs: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    let call = Call {
        who: auth::requester(&headers, &peer.ip().to_string()),
        method: method.clone(),
        uri: uri.path_and_query().map_or("/", |p| p.as_str()).to_string(),
        query,
        headers: &headers,
        body,
    };
    match (method, segs.as_slice()) {
        (Method::GET, ["version"]) => json_response(200, &discovery::version()),
        (Method::GET, ["healthz" | "readyz" | "livez"]) => "ok".into_response(),
        (Method::GET, ["sim", "audit"]) => json_response(200, &s.api.audit_counters().to_json()),
        (Method::POST, ["sim", "replay"]) => replay(&s, &call.query).await,
        (Method::GET, ["api"]) => json_response(200, &discovery::core_versions(&s.server_addr)),
        (Method::GET, ["apis"]) => json_response(200, &discovery::group_list(&s.api.kinds())),
        (Method::GET, ["apis", g]) => {
            discovery::group(&s.api.kinds(), g).map_or_else(not_found, |v| json_response(200, &v))
        }
        (Method::GET, ["openapi", "v2"]) => {
            let accept = headers.get(header::ACCEPT).and_then(|a| a.to_str().ok());
            let (body, content_type) = openapi::v2(accept.is_some_and(|a| a.contains("protobuf")));
            ([(header::CONTENT_TYPE, content_type)], body).into_response()
        }
        (Method::GET, ["openapi", "v3"]) => json_response(200, &openapi::index(&s.api.kinds())),
        (Method::GET, ["openapi", "v3", rest @ ..]) => {
            openapi::group_version(&s.api.kinds(), &rest.join("/"))
                .map_or_else(not_found, |v| json_response(200, &v))
        }
        (_, ["api", "v1", rest @ ..]) => resources(&s, call, "", "v1", rest).await,
        (_, ["apis", g, v, rest @ ..]) => resources(&s, call, g, v, rest).await,
        _ => not_found(),
    }
}

/// `POST /sim/replay?speed=N`: plays the `--replay` recording (N times faster than
/// recorded, default 1) and answers `{"applied": count}` when it is done.
async fn replay(s: &HttpState, query: &HashMap<String, String>) -> Response {
    let Some(recording) = &s.recording else {
        return error_response(&ApiError::bad_request(
            "no recording: start the simulator with --replay FILE",
        ));
    };
    let speed = match query.get("speed").map(|v| v.parse::<f64>()) {
        None => 1.0,
        Some(Ok(v)) if v > 0.0 => v,
        Some(_) => {
            return error_response(&ApiError::bad_request("speed: must be a number above 0"))
        }
    };
    match recording.replay(&s.api, speed).await {
        Ok(applied) => json_response(200, &serde_json::json!({ "applied": applied })),
        Err(e) => error_response(&e),
    }
}

/// The target a path below a group version names when its resource is not served
/// (for the audit of the 404): `[namespaces/NS/]RESOURCE[/NAME[/SUBRESOURCE]]`.
fn unknown_target(group: &str, version: &str, rest: &[&str]) -> Option<Target> {
    let (ns, rest) = match rest {
        ["namespaces", ns, tail @ ..] if !tail.is_empty() => (*ns, tail),
        _ => ("", rest),
    };
    if rest.is_empty() || rest.len() > 3 {
        return None;
    }
    Some(Target {
        kind: crate::kinds::Kind {
            group: group.into(),
            version: version.into(),
            kind: String::new(),
            plural: rest[0].into(),
            singular: String::new(),
            namespaced: !ns.is_empty(),
            short_names: Vec::new(),
            status: false,
            scale: false,
        },
        namespace: ns.to_string(),
        name: rest.get(1).map_or_else(String::new, |s| s.to_string()),
        subresource: rest.get(2).map_or_else(String::new, |s| s.to_string()),
    })
}

/// The target of a path below a group version, if the resource is served.
fn target(api: &ApiServer, group: &str, version: &str, rest: &[&str]) -> Option<Target> {
    let namespaced = rest.len() >= 3
        && rest[0] == "namespaces"
        && api
            .find_kind(group, version, rest[2])
            .is_some_and(|k| k.namespaced);
    let (ns, rest) = if namespaced {
        (rest[1], &rest[2..])
    } else {
        ("", rest)
    };
    let kind = api.find_kind(group, version, rest.first()?)?;
    if rest.len() > 3 {
        return None;
    }
    Some(Target {
        kind,
        namespace: ns.to_string(),
        name: rest.get(1).map_or_else(String::new, |s| s.to_string()),
        subresource: rest.get(2).map_or_else(String::new, |s| s.to_string()),
    })
}

/// The request body as JSON: JSON as it is, Kubernetes protobuf decoded (kubectl's
/// typed commands send it), anything else 415.
fn body_json(headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    if ct.starts_with("application/vnd.kubernetes.protobuf") {
        return crate::protobuf::decode(body);
    }
    if ct.contains("cbor") {
        return Err(ApiError::unsupported_media_type(ct));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not JSON: {e}")))
}

fn list_options(q: &HashMap<String, String>) -> Result<ListOptions, ApiError> {
    let exact = q.get("resourceVersionMatch").map(String::as_str) == Some("Exact");
    Ok(ListOptions {
        labels: Selector::parse(q.get("labelSelector").map_or("", |s| s), "labelSelector")?,
        fields: Selector::parse(q.get("fieldSelector").map_or("", |s| s), "fieldSelector")?,
        limit: q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(0),
        continue_token: q.get("continue").cloned().filter(|c| !c.is_empty()),
        exact_rv: if exact {
            q.get("resourceVersion").and_then(|r| r.parse().ok())
        } else {
            None
        },
    })
}

/// An operation with its parsed inputs.
enum Op {
    List(ListOptions),
    Get,
    Create(Value),
    Update(Value),
    Patch(PatchType, Value),
    Delete(DeletePropagation, Option<Value>),
}

/// The verb of a request and its operation, or why it cannot be carried out
/// (a malformed body, selector or patch type, an unsupported method).
fn prepare(c: &Call<'_>, t: &Target) -> (&'static str, Result<Op, ApiError>) {
    let body = || body_json(c.headers, &c.body);
    match (&c.method, t.name.is_empty()) {
        (&Method::GET, true) => ("list", list_options(&c.query).map(Op::List)),
        (&Method::GET, false) => ("get", Ok(Op::Get)),
        (&Method::POST, true) => ("create", body().map(Op::Create)),
        (&Method::POST, false) if t.subresource == "binding" => ("create", body().map(Op::Create)),
        (&Method::PUT, false) => ("update", body().map(Op::Update)),
        (&Method::PATCH, false) => {
            let ct = c
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let op = PatchType::from_content_type(ct)
                .and_then(|kind| body().map(|b| Op::Patch(kind, b)));
            ("patch", op)
        }
        (&Method::DELETE, false) => {
            let options = if c.body.is_empty() { None } else { body().ok() };
            let policy = options
                .as_ref()
                .and_then(|b| b["propagationPolicy"].as_str().map(str::to_string))
                .or_else(|| c.query.get("propagationPolicy").cloned())
                .unwrap_or_default();
            (
                "delete",
                DeletePropagation::parse(&policy).map(|p| Op::Delete(p, options)),
            )
        }
        (&Method::DELETE, true) => ("deletecollection", Err(not_supported(c))),
        (&Method::POST, false) => ("create", Err(not_supported(c))),
        (&Method::PUT, true) => ("update", Err(not_supported(c))),
        (&Method::PATCH, true) => ("patch", Err(not_supported(c))),
        _ => ("unknown", Err(not_supported(c))),
    }
}

fn not_supported(c: &Call<'_>) -> ApiError {
    ApiError::method_not_allowed(format!("{} is not supported on {}", c.method, c.uri))
}

async fn resources(
    s: &HttpState,
    c: Call<'_>,
    group: &str,
    version: &str,
    rest: &[&str],
) -> Response {
    if rest.is_empty() {
        return match (
            c.method,
            discovery::resource_list(&s.api.kinds(), group, version),
        ) {
            (Method::GET, Some(v)) => json_response(200, &v),
            _ => not_found(),
        };
    }
    let Some(t) = target(&s.api, group, version, rest) else {
        // The real server audits requests for resources it does not serve too.
        if let Some(t) = unknown_target(group, version, rest) {
            let (verb, _) = prepare(&c, &t);
            let e = ApiError::not_found(&t.kind.plural, &t.name);
            s.api.audit_rejected(&c.who, verb, &c.uri, &t, &e);
        }
        return not_found();
    };
    let api = &s.api;
    let collection = t.name.is_empty();
    if c.method == Method::GET
        && collection
        && c.query
            .get("watch")
            .is_some_and(|w| w == "1" || w == "true")
    {
        return watch::serve(api.clone(), c.who, &c.uri, t, &c.query);
    }
    let (verb, op) = prepare(&c, &t);
    let result = match op {
        // Rejected before it reached the object: audited like any other answer.
        Err(e) => {
            api.audit_rejected(&c.who, verb, &c.uri, &t, &e);
            Err(e)
        }
        Ok(Op::List(o)) => api.list(&c.who, &c.uri, &t, &o),
        Ok(Op::Get) => api.get(&c.who, &c.uri, &t),
        Ok(Op::Create(b)) => api.create(&c.who, &c.uri, &t, b),
        Ok(Op::Update(b)) => api.update(&c.who, &c.uri, &t, b),
        Ok(Op::Patch(kind, b)) => api.patch(&c.who, &c.uri, &t, kind, b),
        Ok(Op::Delete(p, body)) => api.delete(&c.who, &c.uri, &t, p, body),
    };
    let accept = c.headers.get(header::ACCEPT).and_then(|a| a.to_str().ok());
    match result {
        Ok(v) if c.method == Method::POST => json_response(201, &v),
        Ok(v) if c.method == Method::GET && t.subresource.is_empty() && table::wanted(accept) => {
            json_response(200, &table::render(&t.kind.plural, &v, chrono::Utc::now()))
        }
        Ok(v) => json_response(200, &v),
        Err(e) => error_response(&e),
    }
}
