//! Span trees as OTLP `TracesData`: what Jaeger storage v2 and `/api/v3` return, and
//! what an OTLP exporter sends.

use kelemetry_core::display::tree::Span;
use kelemetry_proto::opentelemetry::proto::common::v1 as common;
use kelemetry_proto::opentelemetry::proto::resource::v1::Resource;
use kelemetry_proto::opentelemetry::proto::trace::v1 as otlp;

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
