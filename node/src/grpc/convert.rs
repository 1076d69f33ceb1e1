//! Span trees as Jaeger `api_v2` spans and as OTLP `TracesData`.

use kelemetry_core::display::tree::Span;
use kelemetry_proto::jaeger::api_v2 as model;
use kelemetry_proto::opentelemetry::proto::common::v1 as common;
use kelemetry_proto::opentelemetry::proto::resource::v1::Resource;
use kelemetry_proto::opentelemetry::proto::trace::v1 as otlp;
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

fn attr(key: &str, value: &str) -> common::KeyValue {
    common::KeyValue {
        key: key.to_string(),
        value: Some(common::AnyValue {
            value: Some(common::any_value::Value::StringValue(value.to_string())),
        }),
    }
}

fn nanos(us: i64) -> u64 {
    (us.max(0) as u64) * 1000
}

/// A tree as OTLP trace data: one resource (service) per distinct service name.
pub fn traces_data(root: &Span, trace_id: Option<u128>) -> otlp::TracesData {
    let mut by_service: Vec<(String, Vec<otlp::Span>)> = Vec::new();
    root.walk(None, &mut |s, parent| {
        let mut attributes: Vec<common::KeyValue> =
            s.tags.iter().map(|(k, v)| attr(k, v)).collect();
        if !s.warnings.is_empty() {
            let values = s
                .warnings
                .iter()
                .map(|w| common::AnyValue {
                    value: Some(common::any_value::Value::StringValue(w.clone())),
                })
                .collect();
            attributes.push(common::KeyValue {
                key: "@jaeger@warnings".into(),
                value: Some(common::AnyValue {
                    value: Some(common::any_value::Value::ArrayValue(common::ArrayValue {
                        values,
                    })),
                }),
            });
        }
        let span = otlp::Span {
            trace_id: trace_id.unwrap_or(s.trace_id).to_be_bytes().to_vec(),
            span_id: s.span_id.to_be_bytes().to_vec(),
            parent_span_id: parent.map(|p| p.to_be_bytes().to_vec()).unwrap_or_default(),
            name: s.operation.clone(),
            kind: otlp::span::SpanKind::Internal as i32,
            start_time_unix_nano: nanos(s.start_us),
            end_time_unix_nano: nanos(s.end_us()),
            attributes,
            events: s
                .logs
                .iter()
                .map(|l| otlp::span::Event {
                    time_unix_nano: nanos(l.timestamp_us),
                    name: l.field("event").unwrap_or_default().to_string(),
                    attributes: l
                        .fields
                        .iter()
                        .filter(|(k, _)| k != "event")
                        .map(|(k, v)| attr(k, v))
                        .collect(),
                    dropped_attributes_count: 0,
                })
                .collect(),
            ..Default::default()
        };
        match by_service.iter_mut().find(|(n, _)| *n == s.service) {
            Some((_, spans)) => spans.push(span),
            None => by_service.push((s.service.clone(), vec![span])),
        }
    });
    otlp::TracesData {
        resource_spans: by_service
            .into_iter()
            .map(|(service, spans)| otlp::ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![attr("service.name", &service)],
                    dropped_attributes_count: 0,
                }),
                scope_spans: vec![otlp::ScopeSpans {
                    scope: None,
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            })
            .collect(),
    }
}
