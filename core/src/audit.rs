//! Audit webhook input: parsing an `audit.k8s.io` EventList into commands (SPEC 2).
//!
//! Parsing validates the whole batch before anything is proposed, so a malformed item
//! rejects the batch with an error naming the item and field, and the valid items are
//! not half-applied.

use crate::filter::{AuditFilter, FilterReason, TRACED_STAGE, TRACED_VERBS};
use crate::key::ObjectKey;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A validated audit event, normalised into what the state machine needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// The object the request acted on.
    pub key: ObjectKey,
    /// `objectRef.apiVersion`.
    pub version: String,
    /// Audit ID, the dedupe key together with `stage`.
    pub audit_id: String,
    /// Audit stage.
    pub stage: String,
    /// Request verb.
    pub verb: String,
    /// Subresource, empty if none.
    pub subresource: String,
    /// Span title `<user> <verb>[ <subresource>][ (<status text>)]`.
    pub title: String,
    /// `requestReceivedTimestamp`, microseconds.
    pub start_us: i64,
    /// `stageTimestamp`, microseconds.
    pub end_us: i64,
    /// Span tags, in order.
    pub tags: Vec<(String, String)>,
    /// `objectRef.resourceVersion`, empty if absent.
    pub request_rv: String,
    /// HTTP status code of the response.
    pub response_code: i32,
    /// Messages of a failed request (`<reason>: <message>` and its causes).
    pub error_logs: Vec<String>,
    /// `responseObject` as JSON text (redacted), when the policy level recorded it.
    pub response_object: Option<String>,
    /// How long the event may wait in its shard for a watched change that carries
    /// its diff or snapshot when it has no usable response object, microseconds;
    /// 0 when the cluster is not watched (no change will come).
    pub diff_wait_us: i64,
}

/// Why a webhook body was rejected: which item and which field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{field}: {message}")]
pub struct AuditParseError {
    /// Index of the offending item, if the problem is inside `items`.
    pub item: Option<usize>,
    /// JSON path of the offending field, e.g. `items[3].stageTimestamp`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl AuditParseError {
    fn new(item: Option<usize>, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            item,
            field: field.into(),
            message: message.into(),
        }
    }
}

/// One item of the batch after parsing: either a command or the reason it is skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditItem {
    /// To be stored.
    Accepted(Box<AuditRecord>),
    /// Valid but not traced (SPEC 2.3-2.4).
    Filtered(FilterReason),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEventList<'a> {
    kind: Option<String>,
    api_version: Option<String>,
    #[serde(borrow)]
    items: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize, Default)]
struct UserInfo {
    #[serde(default)]
    username: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObjectRef {
    #[serde(default)]
    resource: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    api_group: String,
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    resource_version: String,
    #[serde(default)]
    subresource: String,
}

#[derive(Deserialize, Default)]
struct StatusCause {
    #[serde(default, rename = "reason")]
    cause_type: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize, Default)]
struct StatusDetails {
    #[serde(default)]
    causes: Vec<StatusCause>,
}

#[derive(Deserialize, Default)]
struct Status {
    code: Option<i32>,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    message: String,
    details: Option<StatusDetails>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAuditEvent<'a> {
    api_version: Option<String>,
    kind: Option<String>,
    #[serde(rename = "auditID")]
    audit_id: String,
    stage: String,
    verb: String,
    #[serde(default)]
    user: UserInfo,
    impersonated_user: Option<UserInfo>,
    #[serde(default, rename = "sourceIPs")]
    source_ips: Vec<String>,
    #[serde(default)]
    user_agent: String,
    object_ref: Option<ObjectRef>,
    response_status: Option<Status>,
    #[serde(borrow)]
    response_object: Option<&'a RawValue>,
    request_received_timestamp: Option<String>,
    stage_timestamp: Option<String>,
    timestamp: Option<String>,
}

/// Accepted `apiVersion`s of audit events and lists (absent is accepted too: old
/// clusters and log shippers omit it).
const AUDIT_API_VERSIONS: [&str; 2] = ["audit.k8s.io/v1", "audit.k8s.io/v1beta1"];

/// Context of one webhook request.
#[derive(Clone, Debug)]
pub struct AuditContext<'a> {
    /// Cluster name.
    pub cluster: &'a str,
    /// Address of the API server that posted the batch (tag `apiserver`).
    pub apiserver: &'a str,
    /// Which events to skip.
    pub filter: &'a AuditFilter,
    /// See [`AuditRecord::diff_wait_us`].
    pub diff_wait_us: i64,
    /// Event times accepted, microseconds since the epoch: from the oldest time still
    /// inside retention to the node's clock plus the allowed skew. An event dated
    /// outside would be deleted at once or escape retention forever (a year-9999
    /// event rendered as a span lasting millennia).
    pub accepted_times: TimeBounds,
}

/// The range of event times a node accepts, with the flags that set it (for errors
/// that tell the operator what to change).
#[derive(Clone, Copy, Debug)]
pub struct TimeBounds {
    /// Oldest accepted time (`now - --retention`).
    pub oldest_us: i64,
    /// Latest accepted time (`now + --max-clock-skew`).
    pub latest_us: i64,
}

/// The flags that bound event times: `--retention` back, `--max-clock-skew` ahead.
#[derive(Clone, Copy, Debug)]
pub struct TimeLimits {
    /// How far back an event may be dated.
    pub retention: std::time::Duration,
    /// How far ahead of the node's clock an event may be dated.
    pub max_skew: std::time::Duration,
}

impl TimeLimits {
    /// The accepted range around `now_us`.
    pub fn bounds_at(&self, now_us: i64) -> TimeBounds {
        let micros = |d: std::time::Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        TimeBounds {
            oldest_us: now_us.saturating_sub(micros(self.retention)),
            latest_us: now_us.saturating_add(micros(self.max_skew)),
        }
    }

    /// The accepted range around this node's clock now.
    pub fn bounds_now(&self) -> TimeBounds {
        self.bounds_at(chrono::Utc::now().timestamp_micros())
    }
}

impl TimeBounds {
    /// Every representable time: for tools that import history as-is.
    pub const UNBOUNDED: TimeBounds = TimeBounds {
        oldest_us: i64::MIN,
        latest_us: i64::MAX,
    };

    /// Why `t_us` is outside, or `None` when it is inside.
    pub fn check(&self, t_us: i64) -> Option<String> {
        let show = |t: i64| {
            chrono::DateTime::from_timestamp_micros(t)
                .map_or_else(|| format!("{t}us"), |d| d.to_rfc3339())
        };
        if t_us < self.oldest_us {
            Some(format!(
                "{} is older than the retention (oldest accepted: {}; see --retention)",
                show(t_us),
                show(self.oldest_us)
            ))
        } else if t_us > self.latest_us {
            Some(format!(
                "{} is in the future (latest accepted: {}; see --max-clock-skew)",
                show(t_us),
                show(self.latest_us)
            ))
        } else {
            None
        }
    }
}

/// Parses and validates a webhook body. Either every item is valid (and each is
/// accepted or filtered), or the whole body is rejected.
pub fn parse_event_list(
    body: &[u8],
    ctx: &AuditContext<'_>,
) -> Result<Vec<AuditItem>, AuditParseError> {
    let list: RawEventList<'_> = serde_json::from_slice(body)
        .map_err(|e| AuditParseError::new(None, "body", format!("not a JSON EventList: {e}")))?;
    if let Some(kind) = list.kind.as_deref() {
        if kind != "EventList" {
            return Err(AuditParseError::new(
                None,
                "kind",
                format!("expected EventList, got {kind:?}"),
            ));
        }
    }
    check_api_version(list.api_version.as_deref(), None, "apiVersion")?;
    let items = list
        .items
        .ok_or_else(|| AuditParseError::new(None, "items", "missing field"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, raw)| parse_item(i, raw.get(), ctx))
        .collect()
}

fn check_api_version(
    v: Option<&str>,
    item: Option<usize>,
    field: &str,
) -> Result<(), AuditParseError> {
    match v {
        Some(v) if !AUDIT_API_VERSIONS.contains(&v) => Err(AuditParseError::new(
            item,
            field,
            format!("unsupported apiVersion {v:?}, expected audit.k8s.io/v1 or v1beta1"),
        )),
        _ => Ok(()),
    }
}

fn parse_item(i: usize, text: &str, ctx: &AuditContext<'_>) -> Result<AuditItem, AuditParseError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let ev: RawAuditEvent<'_> = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            format!("items[{i}]")
        } else {
            format!("items[{i}].{path}")
        };
        AuditParseError::new(Some(i), field, e.into_inner().to_string())
    })?;
    check_api_version(
        ev.api_version.as_deref(),
        Some(i),
        &format!("items[{i}].apiVersion"),
    )?;
    if let Some(kind) = ev.kind.as_deref() {
        if kind != "Event" {
            return Err(AuditParseError::new(
                Some(i),
                format!("items[{i}].kind"),
                format!("expected Event, got {kind:?}"),
            ));
        }
    }
    let field = |f: &str| format!("items[{i}].{f}");
    let start_us = match (&ev.request_received_timestamp, &ev.timestamp) {
        (Some(t), _) => parse_time(t).map_err(|m| {
            AuditParseError::new(Some(i), field("requestReceivedTimestamp"), m.to_string())
        })?,
        (None, Some(t)) => parse_time(t)
            .map_err(|m| AuditParseError::new(Some(i), field("timestamp"), m.to_string()))?,
        (None, None) => {
            return Err(AuditParseError::new(
                Some(i),
                field("requestReceivedTimestamp"),
                "missing field",
            ))
        }
    };
    let end_us = match &ev.stage_timestamp {
        Some(t) => parse_time(t)
            .map_err(|m| AuditParseError::new(Some(i), field("stageTimestamp"), m.to_string()))?,
        None => start_us,
    };
    let start_field = if ev.request_received_timestamp.is_some() {
        "requestReceivedTimestamp"
    } else {
        "timestamp"
    };
    for (t, name) in [(start_us, start_field), (end_us, "stageTimestamp")] {
        if let Some(m) = ctx.accepted_times.check(t) {
            return Err(AuditParseError::new(Some(i), field(name), m));
        }
    }
    if ev.audit_id.is_empty() {
        return Err(AuditParseError::new(
            Some(i),
            field("auditID"),
            "must not be empty",
        ));
    }
    if !TRACED_VERBS.contains(&ev.verb.as_str()) {
        return Ok(AuditItem::Filtered(FilterReason::Verb));
    }
    if ev.stage != TRACED_STAGE {
        return Ok(AuditItem::Filtered(FilterReason::Stage));
    }
    let Some(oref) = ev.object_ref.as_ref().filter(|o| !o.resource.is_empty()) else {
        return Ok(AuditItem::Filtered(FilterReason::NoObject));
    };
    let name = if oref.name.is_empty() {
        ev.response_object
            .map(|r| r.get())
            .and_then(name_from_object)
            .unwrap_or_default()
    } else {
        oref.name.clone()
    };
    if name.is_empty() {
        return Ok(AuditItem::Filtered(FilterReason::NoObject));
    }
    let key = ObjectKey::new(
        ctx.cluster,
        oref.api_group.clone(),
        oref.resource.clone(),
        oref.namespace.clone(),
        name,
    );
    if ctx.filter.excludes_type(&key) {
        return Ok(AuditItem::Filtered(FilterReason::Type));
    }
    if ctx.filter.excludes_user_agent(&ev.user_agent) {
        return Ok(AuditItem::Filtered(FilterReason::UserAgent));
    }
    let response_object = ev
        .response_object
        .map(|r| crate::redact::redact_json(r.get(), &key, &oref.api_version))
        .transpose()
        .map_err(|m| AuditParseError::new(Some(i), field("responseObject"), m))?;
    Ok(AuditItem::Accepted(Box::new(build_record(
        key,
        &ev,
        oref,
        start_us,
        end_us,
        response_object,
        ctx,
    ))))
}

fn build_record(
    key: ObjectKey,
    ev: &RawAuditEvent<'_>,
    oref: &ObjectRef,
    start_us: i64,
    end_us: i64,
    response_object: Option<String>,
    ctx: &AuditContext<'_>,
) -> AuditRecord {
    let status = ev.response_status.as_ref();
    let code = status.and_then(|s| s.code).unwrap_or(200);
    let username = ev
        .impersonated_user
        .as_ref()
        .filter(|u| !u.username.is_empty())
        .unwrap_or(&ev.user)
        .username
        .clone();
    let mut title = format!("{username} {}", ev.verb);
    if !oref.subresource.is_empty() {
        title.push(' ');
        title.push_str(&oref.subresource);
    }
    if code >= 300 {
        title.push_str(&format!(" ({})", status_text(code)));
    }
    let mut tags = vec![
        ("auditId".to_string(), ev.audit_id.clone()),
        ("username".to_string(), username),
        ("userAgent".to_string(), ev.user_agent.clone()),
        ("responseCode".to_string(), code.to_string()),
        ("resourceVersion".to_string(), oref.resource_version.clone()),
        ("apiserver".to_string(), ctx.apiserver.to_string()),
        ("tag".to_string(), ev.verb.clone()),
    ];
    if let Some((first, rest)) = ev.source_ips.split_first() {
        tags.push(("sourceIP".to_string(), first.clone()));
        if !rest.is_empty() {
            tags.push(("proxy".to_string(), format!("[{}]", rest.join(" "))));
        }
    }
    let error_logs = if code >= 300 {
        status.map(error_messages).unwrap_or_default()
    } else {
        Vec::new()
    };
    AuditRecord {
        key,
        version: oref.api_version.clone(),
        audit_id: ev.audit_id.clone(),
        stage: ev.stage.clone(),
        verb: ev.verb.clone(),
        subresource: oref.subresource.clone(),
        title,
        start_us,
        end_us,
        tags,
        request_rv: oref.resource_version.clone(),
        response_code: code,
        error_logs,
        response_object,
        diff_wait_us: ctx.diff_wait_us,
    }
}

fn error_messages(s: &Status) -> Vec<String> {
    let mut out = vec![format!("{}: {}", s.reason, s.message)];
    if let Some(d) = &s.details {
        out.extend(
            d.causes
                .iter()
                .map(|c| format!("{}: {}", c.cause_type, c.message)),
        );
    }
    out
}

fn name_from_object(json: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Meta {
        name: Option<String>,
    }
    #[derive(Deserialize)]
    struct Obj {
        metadata: Option<Meta>,
    }
    serde_json::from_str::<Obj>(json).ok()?.metadata?.name
}

/// A timestamp that is not RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid RFC 3339 timestamp {input:?}: {reason}")]
pub struct InvalidTime {
    /// The text given.
    pub input: String,
    /// What the parser said.
    pub reason: String,
}

/// Parses an RFC 3339 timestamp into microseconds since the epoch.
pub fn parse_time(s: &str) -> Result<i64, InvalidTime> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_micros())
        .map_err(|e| InvalidTime {
            input: s.to_string(),
            reason: e.to_string(),
        })
}

/// HTTP reason phrase of a status code, as Go's `http.StatusText` gives it.
pub fn status_text(code: i32) -> &'static str {
    match code {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx(filter: &AuditFilter) -> AuditContext<'_> {
        AuditContext {
            cluster: "c1",
            apiserver: "10.0.0.1",
            filter,
            diff_wait_us: 0,
            accepted_times: TimeBounds::UNBOUNDED,
        }
    }

    fn event(overrides: serde_json::Value) -> serde_json::Value {
        let mut base = json!({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": "a-1", "stage": "ResponseComplete",
            "verb": "update", "user": {"username": "alice"}, "sourceIPs": ["1.2.3.4", "5.6.7.8", "9.9.9.9"],
            "userAgent": "kubectl/v1.28", "objectRef": {"resource": "deployments", "namespace": "default",
            "name": "demo", "apiGroup": "apps", "apiVersion": "v1", "resourceVersion": "10", "subresource": "status"},
            "responseStatus": {"code": 409, "reason": "Conflict", "message": "the object has been modified",
                               "details": {"causes": [{"reason": "FieldValueInvalid", "message": "bad"}]}},
            "requestReceivedTimestamp": "2023-07-20T09:27:41.100000Z", "stageTimestamp": "2023-07-20T09:27:41.200000Z"
        });
        for (k, v) in overrides.as_object().unwrap() {
            base[k] = v.clone();
        }
        base
    }

    fn parse(items: Vec<serde_json::Value>) -> Result<Vec<AuditItem>, AuditParseError> {
        let f = AuditFilter::default();
        let body = json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items});
        parse_event_list(body.to_string().as_bytes(), &ctx(&f))
    }

    #[test]
    fn failed_status_update_has_title_tags_and_errors() {
        let items = parse(vec![event(json!({}))]).unwrap();
        let AuditItem::Accepted(r) = &items[0] else {
            panic!("{items:?}")
        };
        assert_eq!(r.title, "alice update status (Conflict)");
        assert_eq!(r.key.to_string(), "c1/apps/deployments/default/demo");
        assert_eq!(r.end_us - r.start_us, 100_000);
        assert!(r
            .tags
            .contains(&("proxy".into(), "[5.6.7.8 9.9.9.9]".into())));
        assert!(r.tags.contains(&("sourceIP".into(), "1.2.3.4".into())));
        assert_eq!(
            r.error_logs,
            vec![
                "Conflict: the object has been modified",
                "FieldValueInvalid: bad"
            ]
        );
    }

    #[test]
    fn impersonation_and_generate_name() {
        let items = parse(vec![event(json!({
            "impersonatedUser": {"username": "bob"}, "verb": "create", "responseStatus": {"code": 201},
            "objectRef": {"resource": "pods", "namespace": "ns", "apiVersion": "v1"},
            "responseObject": {"kind": "Pod", "metadata": {"name": "web-x7k2p", "generateName": "web-"}}
        }))])
        .unwrap();
        let AuditItem::Accepted(r) = &items[0] else {
            panic!()
        };
        assert_eq!(r.title, "bob create");
        assert_eq!(r.key.name, "web-x7k2p");
        assert!(r.response_object.as_deref().unwrap().contains("web-x7k2p"));
    }

    #[test]
    fn secret_responses_are_redacted_before_they_become_records() {
        let items = parse(vec![event(json!({
            "verb": "create", "responseStatus": {"code": 201},
            "objectRef": {"resource": "secrets", "namespace": "ns", "name": "db", "apiVersion": "v1"},
            "responseObject": {"kind": "Secret", "metadata": {"name": "db"}, "data": {"pw": "aHVudGVyMg=="}}
        }))])
        .unwrap();
        let AuditItem::Accepted(r) = &items[0] else {
            panic!()
        };
        let response = r.response_object.as_deref().unwrap();
        assert!(!response.contains("aHVudGVyMg"), "{response}");
        assert!(response.contains(crate::redact::REDACTED));
    }

    #[test]
    fn filters_do_not_reject() {
        let items = parse(vec![
            event(json!({"verb": "get"})),
            event(json!({"stage": "ResponseStarted"})),
            event(json!({"objectRef": {"resource": "leases", "apiGroup": "coordination.k8s.io", "name": "x"}})),
            event(json!({"objectRef": null})),
        ])
        .unwrap();
        let reasons: Vec<_> = items
            .iter()
            .map(|i| match i {
                AuditItem::Filtered(r) => *r,
                AuditItem::Accepted(_) => panic!(),
            })
            .collect();
        assert_eq!(
            reasons,
            vec![
                FilterReason::Verb,
                FilterReason::Stage,
                FilterReason::Type,
                FilterReason::NoObject
            ]
        );
    }

    #[test]
    fn event_times_outside_retention_or_beyond_the_skew_are_refused() {
        let f = AuditFilter::default();
        let t = parse_time("2023-07-20T09:27:41.100000Z").unwrap();
        let bounded = |oldest_us, latest_us| AuditContext {
            accepted_times: TimeBounds {
                oldest_us,
                latest_us,
            },
            ..ctx(&f)
        };
        let body = |items: Vec<serde_json::Value>| {
            json!({"kind": "EventList", "items": items}).to_string()
        };
        let inside = body(vec![event(json!({}))]);
        assert!(parse_event_list(inside.as_bytes(), &bounded(t - 1, t + 1_000_000)).is_ok());
        let far_future = body(vec![
            event(json!({})),
            event(json!({"requestReceivedTimestamp": "9999-12-31T23:59:59Z"})),
        ]);
        let err =
            parse_event_list(far_future.as_bytes(), &bounded(t - 1, t + 1_000_000)).unwrap_err();
        assert_eq!(err.field, "items[1].requestReceivedTimestamp");
        assert!(err.message.contains("--max-clock-skew"), "{}", err.message);
        let late_end = body(vec![event(
            json!({"stageTimestamp": "2023-07-20T10:00:00Z"}),
        )]);
        let err =
            parse_event_list(late_end.as_bytes(), &bounded(t - 1, t + 1_000_000)).unwrap_err();
        assert_eq!(err.field, "items[0].stageTimestamp");
        let err = parse_event_list(inside.as_bytes(), &bounded(t + 1, i64::MAX)).unwrap_err();
        assert_eq!(err.field, "items[0].requestReceivedTimestamp");
        assert!(err.message.contains("--retention"), "{}", err.message);
    }

    #[test]
    fn malformed_items_name_index_and_field() {
        let err = parse(vec![
            event(json!({})),
            event(json!({"stageTimestamp": "yesterday"})),
        ])
        .unwrap_err();
        assert_eq!(err.item, Some(1));
        assert_eq!(err.field, "items[1].stageTimestamp");
        let err = parse(vec![event(json!({"objectRef": {"resource": 5}}))]).unwrap_err();
        assert_eq!(err.field, "items[0].objectRef.resource");
        let err = parse(vec![event(json!({"apiVersion": "audit.k8s.io/v2"}))]).unwrap_err();
        assert_eq!(err.field, "items[0].apiVersion");
        let mut no_id = event(json!({}));
        no_id.as_object_mut().unwrap().remove("auditID");
        assert_eq!(parse(vec![no_id]).unwrap_err().field, "items[0]");
        let f = AuditFilter::default();
        let err = parse_event_list(b"{\"kind\":\"PodList\",\"items\":[]}", &ctx(&f)).unwrap_err();
        assert_eq!(err.field, "kind");
        let err = parse_event_list(b"not json", &ctx(&f)).unwrap_err();
        assert_eq!(err.field, "body");
    }
}
