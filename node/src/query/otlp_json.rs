//! Span trees as OTLP/JSON `TracesData` (JAEGER.md 1b.4): one resource per service,
//! lowercase hex IDs, decimal-string nanoseconds, logs as span events.

use kelemetry_core::display::tree::Span;
use serde_json::{json, Value};

fn string_attr(key: &str, value: &str) -> Value {
    json!({"key": key, "value": {"stringValue": value}})
}

fn nanos(us: i64) -> String {
    (i128::from(us) * 1000).to_string()
}

/// OTLP span kind INTERNAL.
const KIND_INTERNAL: u8 = 1;

fn otlp_span(s: &Span, parent: Option<u64>, trace_id: u128) -> Value {
    let mut attributes: Vec<Value> = s.tags.iter().map(|(k, v)| string_attr(k, v)).collect();
    if !s.warnings.is_empty() {
        let values: Vec<Value> = s
            .warnings
            .iter()
            .map(|w| json!({"stringValue": w}))
            .collect();
        attributes
            .push(json!({"key": "@jaeger@warnings", "value": {"arrayValue": {"values": values}}}));
    }
    let events: Vec<Value> = s
        .logs
        .iter()
        .map(|l| {
            let name = l.field("event").unwrap_or_default();
            let attrs: Vec<Value> = l
                .fields
                .iter()
                .filter(|(k, _)| k != "event")
                .map(|(k, v)| string_attr(k, v))
                .collect();
            json!({"timeUnixNano": nanos(l.timestamp_us), "name": name, "attributes": attrs})
        })
        .collect();
    let mut span = json!({
        "traceId": format!("{trace_id:032x}"), "spanId": format!("{:016x}", s.span_id),
        "name": s.operation, "kind": KIND_INTERNAL,
        "startTimeUnixNano": nanos(s.start_us), "endTimeUnixNano": nanos(s.end_us()),
        "attributes": attributes, "events": events, "status": {},
    });
    if let Some(p) = parent {
        span["parentSpanId"] = json!(format!("{p:016x}"));
    }
    span
}

/// Appends a tree's spans, grouped by service into `resources` (service -> spans).
pub fn add_tree(resources: &mut Vec<(String, Vec<Value>)>, root: &Span, trace_id: Option<u128>) {
    root.walk(None, &mut |s, parent| {
        let span = otlp_span(s, parent, trace_id.unwrap_or(s.trace_id));
        match resources.iter_mut().find(|(svc, _)| *svc == s.service) {
            Some((_, spans)) => spans.push(span),
            None => resources.push((s.service.clone(), vec![span])),
        }
    });
}

/// `TracesData` from grouped spans.
pub fn traces_data(resources: Vec<(String, Vec<Value>)>) -> Value {
    let rs: Vec<Value> = resources
        .into_iter()
        .map(|(service, spans)| {
            json!({"resource": {"attributes": [string_attr("service.name", &service)]},
                   "scopeSpans": [{"scope": {}, "spans": spans}]})
        })
        .collect();
    json!({"resourceSpans": rs})
}

/// A trace summary as the UI's search list needs it.
pub fn summary(root: &Span, trace_id: u128) -> Value {
    let mut count = 0;
    let (mut min, mut max) = (i64::MAX, i64::MIN);
    let mut services: Vec<(String, u32)> = Vec::new();
    root.walk(None, &mut |s, _| {
        count += 1;
        min = min.min(s.start_us);
        max = max.max(s.end_us());
        match services.iter_mut().find(|(n, _)| *n == s.service) {
            Some((_, c)) => *c += 1,
            None => services.push((s.service.clone(), 1)),
        }
    });
    services.sort();
    json!({
        "traceId": format!("{trace_id:032x}"), "rootServiceName": root.service, "rootOperationName": root.operation,
        "minStartTimeUnixNano": nanos(min), "maxEndTimeUnixNano": nanos(max),
        "spanCount": count, "errorSpanCount": 0, "orphanSpanCount": 0,
        "services": services.iter().map(|(n, c)| json!({"name": n, "spanCount": c, "errorSpanCount": 0})).collect::<Vec<_>>(),
    })
}
