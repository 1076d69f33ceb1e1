//! Span trees in the Jaeger UI JSON shape (JAEGER.md 1b.3).

use kelemetry_core::display::tree::Span;
use serde_json::{json, Value};

fn kv(key: &str, value: &str) -> Value {
    json!({"key": key, "type": "string", "value": value})
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

/// A span tree as one Jaeger UI trace. Every span gets `trace_id` when one is given
/// (a rendered result), otherwise keeps its own (a stored trace).
pub fn trace(root: &Span, trace_id: Option<u128>) -> Value {
    let mut processes = Processes::default();
    let mut spans = Vec::with_capacity(root.count());
    let tid = |s: &Span| format!("{:032x}", trace_id.unwrap_or(s.trace_id));
    let mut parents: std::collections::HashMap<u64, u128> = std::collections::HashMap::new();
    root.walk(None, &mut |s, parent| {
        parents.insert(s.span_id, trace_id.unwrap_or(s.trace_id));
        let references = match parent {
            Some(p) => json!([{"refType": "CHILD_OF", "traceID": format!("{:032x}", parents[&p]), "spanID": format!("{p:016x}")}]),
            None => json!([]),
        };
        let warnings = if s.warnings.is_empty() { Value::Null } else { json!(s.warnings) };
        spans.push(json!({
            "traceID": tid(s), "spanID": format!("{:016x}", s.span_id), "flags": 1,
            "operationName": s.operation, "references": references,
            "startTime": s.start_us, "duration": s.duration_us,
            "tags": s.tags.iter().map(|(k, v)| kv(k, v)).collect::<Vec<_>>(),
            "logs": s.logs.iter().map(|l| json!({"timestamp": l.timestamp_us,
                "fields": l.fields.iter().map(|(k, v)| kv(k, v)).collect::<Vec<_>>()})).collect::<Vec<_>>(),
            "processID": processes.id(&s.service), "warnings": warnings,
        }));
    });
    json!({"traceID": tid(root), "spans": spans, "processes": processes.to_json(), "warnings": null})
}
