//! Span trees as OTLP/JSON `TracesData` (JAEGER.md 1b.4): one resource per service,
//! lowercase hex IDs, decimal-string nanoseconds, logs as span events.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use kelemetry_core::display::tree::Span;
use kelemetry_proto::opentelemetry::proto::common::v1 as common;
use kelemetry_proto::opentelemetry::proto::trace::v1 as otlp;
use serde_json::{json, Value};

/// OTLP/JSON of one attribute value.
fn any_value(v: &common::AnyValue) -> Value {
    use common::any_value::Value as V;
    match &v.value {
        Some(V::StringValue(s)) => json!({"stringValue": s}),
        Some(V::BoolValue(b)) => json!({"boolValue": b}),
        Some(V::IntValue(i)) => json!({"intValue": i.to_string()}),
        Some(V::DoubleValue(d)) => json!({"doubleValue": d}),
        Some(V::BytesValue(b)) => json!({"bytesValue": BASE64.encode(b)}),
        Some(V::ArrayValue(a)) => {
            json!({"arrayValue": {"values": a.values.iter().map(any_value).collect::<Vec<_>>()}})
        }
        Some(V::KvlistValue(l)) => json!({"kvlistValue": {"values": attributes(&l.values)}}),
        None => json!({}),
    }
}

fn attributes(kvs: &[common::KeyValue]) -> Vec<Value> {
    kvs.iter()
        .map(|kv| json!({"key": kv.key, "value": kv.value.as_ref().map_or(json!({}), any_value)}))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn span(s: &otlp::Span) -> Value {
    let mut v = json!({
        "traceId": hex(&s.trace_id), "spanId": hex(&s.span_id), "name": s.name, "kind": s.kind,
        "startTimeUnixNano": s.start_time_unix_nano.to_string(), "endTimeUnixNano": s.end_time_unix_nano.to_string(),
        "attributes": attributes(&s.attributes),
        "events": s.events.iter().map(|e| json!({
            "timeUnixNano": e.time_unix_nano.to_string(), "name": e.name, "attributes": attributes(&e.attributes),
        })).collect::<Vec<_>>(),
        "status": {},
    });
    if !s.parent_span_id.is_empty() {
        v["parentSpanId"] = json!(hex(&s.parent_span_id));
    }
    v
}

/// OTLP/JSON of trace data (the protobuf form storage v2 streams, so both APIs map
/// spans the same way).
pub fn traces_json(data: &otlp::TracesData) -> Value {
    let rs: Vec<Value> = data
        .resource_spans
        .iter()
        .map(|r| {
            json!({
                "resource": {"attributes": r.resource.as_ref().map_or(Vec::new(), |res| attributes(&res.attributes))},
                "scopeSpans": r.scope_spans.iter().map(|ss| json!({"scope": {}, "spans": ss.spans.iter().map(span).collect::<Vec<_>>()})).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({"resourceSpans": rs})
}

/// Microseconds as a decimal string of nanoseconds.
fn nanos(us: i64) -> String {
    (i128::from(us) * 1000).to_string()
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
