//! Stored spans as OpenTelemetry `SpanData`, in the stored shape (SPEC 1.2-1.3): the
//! object span of a window is the root of its trace, event and link spans its
//! children, every ID the one the store and the Jaeger API use, so a backend can
//! deduplicate a span sent twice.

use kelemetry_core::display::tree::Span;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn at(us: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(us.max(0) as u64)
}

fn attributes(pairs: &[(String, String)]) -> Vec<KeyValue> {
    pairs
        .iter()
        .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
        .collect()
}

/// `span` (without its children) as exported, under `parent` (0: a root).
pub fn span_data(span: &Span, parent: u64) -> SpanData {
    let context = SpanContext::new(
        TraceId::from_bytes(span.trace_id.to_be_bytes()),
        SpanId::from_bytes(span.span_id.to_be_bytes()),
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    );
    let events = span
        .logs
        .iter()
        .map(|l| {
            let name = l.field("event").unwrap_or_default().to_string();
            let rest: Vec<(String, String)> = l
                .fields
                .iter()
                .filter(|(k, _)| k != "event")
                .cloned()
                .collect();
            opentelemetry::trace::Event::new(name, at(l.timestamp_us), attributes(&rest), 0)
        })
        .collect();
    let mut span_events = SpanEvents::default();
    span_events.events = events;
    SpanData {
        span_context: context,
        parent_span_id: SpanId::from_bytes(parent.to_be_bytes()),
        parent_span_is_remote: false,
        span_kind: SpanKind::Internal,
        name: span.operation.clone().into(),
        start_time: at(span.start_us),
        end_time: at(span.end_us()),
        attributes: attributes(&span.tags),
        dropped_attributes_count: 0,
        events: span_events,
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: InstrumentationScope::builder("kelemetry").build(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kelemetry_core::display::tree::Log;

    #[test]
    fn ids_times_tags_and_logs_carry_over() {
        let span = Span {
            trace_id: 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10,
            span_id: 0xaabb_ccdd_eeff_0011,
            service: "audit".into(),
            operation: "alice update".into(),
            start_us: 1_700_000_000_000_000,
            duration_us: 2_000,
            tags: vec![("resource".into(), "deployments".into())],
            logs: vec![Log {
                timestamp_us: 1_700_000_000_000_000,
                fields: vec![
                    ("event".into(), "spec.replicas 2 -> 4\n".into()),
                    ("zzz-logType".into(), "audit/objectDiff".into()),
                ],
            }],
            warnings: vec![],
            children: vec![],
        };
        let d = span_data(&span, 7);
        assert_eq!(
            d.span_context.trace_id().to_string(),
            "0102030405060708090a0b0c0d0e0f10"
        );
        assert_eq!(d.span_context.span_id().to_string(), "aabbccddeeff0011");
        assert_eq!(d.parent_span_id, SpanId::from_bytes(7u64.to_be_bytes()));
        assert_eq!(
            d.end_time.duration_since(d.start_time).unwrap(),
            Duration::from_micros(2_000)
        );
        assert_eq!(d.attributes[0], KeyValue::new("resource", "deployments"));
        assert_eq!(d.events.events[0].name, "spec.replicas 2 -> 4\n");
        assert_eq!(
            d.events.events[0].attributes[0],
            KeyValue::new("zzz-logType", "audit/objectDiff")
        );
    }
}
