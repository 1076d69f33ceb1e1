//! Stored traces in the Jaeger UI JSON shape (JAEGER.md 1b.3).

use kelemetry_core::model::{EventSpanRecord, LinkRecord, ObjectSpanRecord};
use kelemetry_core::state::StoredTrace;
use serde_json::{json, Value};

/// Service of object pseudo spans.
const OBJECT_SERVICE: &str = "object";
/// Service of link pseudo spans.
const LINK_SERVICE: &str = "link";

fn tag(key: &str, value: &str) -> Value {
    json!({"key": key, "type": "string", "value": value})
}

fn hex_trace(id: u128) -> String {
    format!("{id:032x}")
}

fn hex_span(id: u64) -> String {
    format!("{id:016x}")
}

/// Assigns `p1`, `p2`, ... to services in order of first appearance.
#[derive(Default)]
struct Processes(Vec<String>);

impl Processes {
    fn id(&mut self, service: &str) -> String {
        let i = match self.0.iter().position(|s| s == service) {
            Some(i) => i,
            None => {
                self.0.push(service.to_string());
                self.0.len() - 1
            }
        };
        format!("p{}", i + 1)
    }

    fn to_json(&self) -> Value {
        let map: serde_json::Map<String, Value> = self
            .0
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("p{}", i + 1), json!({"serviceName": s, "tags": []})))
            .collect();
        Value::Object(map)
    }
}

fn identity_tags(o: &ObjectSpanRecord, version: &str) -> Vec<Value> {
    let k = &o.key;
    vec![
        tag("cluster", &k.cluster),
        tag("group", &k.group),
        tag("resource", &k.resource),
        tag("namespace", &k.namespace),
        tag("name", &k.name),
        tag("version", version),
    ]
}

fn window_stamp(o: &ObjectSpanRecord) -> String {
    chrono::DateTime::from_timestamp_micros(o.window.start_us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn child_of(o: &ObjectSpanRecord) -> Value {
    json!([{"refType": "CHILD_OF", "traceID": hex_trace(o.trace_id), "spanID": hex_span(o.span_id)}])
}

/// The parts that differ between spans of one trace.
struct SpanParts {
    id: u64,
    op: String,
    references: Value,
    start_us: i64,
    duration_us: i64,
    tags: Vec<Value>,
    logs: Value,
    process: String,
}

fn span(o: &ObjectSpanRecord, p: SpanParts) -> Value {
    json!({
        "traceID": hex_trace(o.trace_id), "spanID": hex_span(p.id), "flags": 1, "operationName": p.op,
        "references": p.references, "startTime": p.start_us, "duration": p.duration_us, "tags": p.tags,
        "logs": p.logs, "processID": p.process, "warnings": null,
    })
}

/// A pseudo span (object or link) covering the whole window.
fn pseudo_span(
    o: &ObjectSpanRecord,
    id: u64,
    pseudo_type: &str,
    extra: Vec<Value>,
    references: Value,
    process: String,
) -> Value {
    let mut tags = identity_tags(o, &o.version);
    tags.extend([
        tag("timeStamp", &window_stamp(o)),
        tag("zzz-traceSource", "object"),
        tag("zzz-pseudoType", pseudo_type),
    ]);
    tags.extend(extra);
    span(
        o,
        SpanParts {
            id,
            op: format!("{}/{}", o.key.resource, o.key.name),
            references,
            start_us: o.window.start_us,
            duration_us: o.window.len_us,
            tags,
            logs: json!([]),
            process,
        },
    )
}

fn object_span(o: &ObjectSpanRecord, p: &mut Processes) -> Value {
    pseudo_span(
        o,
        o.span_id,
        "object",
        Vec::new(),
        json!([]),
        p.id(OBJECT_SERVICE),
    )
}

fn link_span(o: &ObjectSpanRecord, l: &LinkRecord, p: &mut Processes) -> Value {
    let extra = vec![
        tag("linkedCluster", &l.linked.cluster),
        tag("linkedGroup", &l.linked.group),
        tag("linkedResource", &l.linked.resource),
        tag("linkedNamespace", &l.linked.namespace),
        tag("linkedName", &l.linked.name),
        tag("linkRole", l.role.as_str()),
        tag("linkClass", &l.class),
    ];
    pseudo_span(o, l.span_id, "link", extra, child_of(o), p.id(LINK_SERVICE))
}

fn event_span(o: &ObjectSpanRecord, e: &EventSpanRecord, p: &mut Processes) -> Value {
    let mut tags = identity_tags(o, &e.version);
    tags.push(tag("zzz-notPseudo", "zzz-notPseudo"));
    tags.push(tag("zzz-traceSource", e.source.as_str()));
    tags.extend(e.tags.iter().map(|(k, v)| tag(k, v)));
    let logs: Vec<Value> = e
        .logs
        .iter()
        .map(|l| json!({"timestamp": e.start_us, "fields": [tag("event", &l.message), tag("zzz-logType", &l.log_type)]}))
        .collect();
    span(
        o,
        SpanParts {
            id: e.span_id,
            op: e.title.clone(),
            references: child_of(o),
            start_us: e.start_us,
            duration_us: (e.end_us - e.start_us).max(0),
            tags,
            logs: Value::Array(logs),
            process: p.id(e.source.as_str()),
        },
    )
}

/// One stored trace as a Jaeger UI trace.
pub fn trace(t: &StoredTrace) -> Value {
    let mut p = Processes::default();
    let mut spans = vec![object_span(&t.object, &mut p)];
    let mut events: Vec<&EventSpanRecord> = t.events.iter().collect();
    events.sort_by_key(|e| (e.start_us, e.span_id));
    spans.extend(events.into_iter().map(|e| event_span(&t.object, e, &mut p)));
    spans.extend(t.links.iter().map(|l| link_span(&t.object, l, &mut p)));
    json!({"traceID": hex_trace(t.object.trace_id), "spans": spans, "processes": p.to_json(), "warnings": null})
}
