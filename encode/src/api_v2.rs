//! Span trees as Jaeger `api_v2` model spans (storage v1 gRPC), and the protobuf
//! timestamps both protobuf encodings share.

use kelemetry_core::display::tree::Span;
use kelemetry_proto::jaeger::api_v2 as model;
use prost_types::{Duration, Timestamp};

/// Microseconds since the epoch of a protobuf timestamp.
pub fn micros(t: &Timestamp) -> i64 {
    t.seconds * 1_000_000 + i64::from(t.nanos) / 1000
}

/// A protobuf timestamp of microseconds since the epoch.
pub fn timestamp(us: i64) -> Timestamp {
    Timestamp {
        seconds: us.div_euclid(1_000_000),
        nanos: (us.rem_euclid(1_000_000) * 1000) as i32,
    }
}

fn kv(key: &str, value: &str) -> model::KeyValue {
    model::KeyValue {
        key: key.to_string(),
        v_type: model::ValueType::String as i32,
        v_str: value.to_string(),
        ..Default::default()
    }
}

/// Every span of a tree in Jaeger's model, each with its process, in pre-order.
pub fn jaeger_spans(root: &Span, trace_id: Option<u128>) -> Vec<model::Span> {
    let mut out = Vec::with_capacity(root.count());
    let mut ids = std::collections::HashMap::new();
    root.walk(None, &mut |s, parent| {
        let tid = trace_id.unwrap_or(s.trace_id);
        ids.insert(s.span_id, tid);
        let references = parent
            .map(|p| model::SpanRef {
                trace_id: ids[&p].to_be_bytes().to_vec(),
                span_id: p.to_be_bytes().to_vec(),
                ref_type: model::SpanRefType::ChildOf as i32,
            })
            .into_iter()
            .collect();
        out.push(model::Span {
            trace_id: tid.to_be_bytes().to_vec(),
            span_id: s.span_id.to_be_bytes().to_vec(),
            operation_name: s.operation.clone(),
            references,
            flags: 1,
            start_time: Some(timestamp(s.start_us)),
            duration: Some(Duration {
                seconds: s.duration_us / 1_000_000,
                nanos: ((s.duration_us % 1_000_000) * 1000) as i32,
            }),
            tags: s.tags.iter().map(|(k, v)| kv(k, v)).collect(),
            logs: s
                .logs
                .iter()
                .map(|l| model::Log {
                    timestamp: Some(timestamp(l.timestamp_us)),
                    fields: l.fields.iter().map(|(k, v)| kv(k, v)).collect(),
                })
                .collect(),
            process: Some(model::Process {
                service_name: s.service.clone(),
                tags: Vec::new(),
            }),
            process_id: String::new(),
            warnings: s.warnings.clone(),
        });
    });
    out
}
