//! The span tree that display modes transform: one node per span, children owned, so
//! visitors can move and delete spans freely.

use crate::model::{EventSpanRecord, LinkRecord, ObjectSpanRecord};
use crate::state::StoredTrace;

/// `zzz-` tags (hidden from users by the final step).
pub mod tags {
    /// Source of a span: `object`, `audit`, `event`.
    pub const TRACE_SOURCE: &str = "zzz-traceSource";
    /// Pseudo span type: `object`, `link`, `linkClass`, `groupByTraceSource`.
    pub const PSEUDO_TYPE: &str = "zzz-pseudoType";
    /// Present on real event spans.
    pub const NOT_PSEUDO: &str = "zzz-notPseudo";
    /// Overrides the operation name.
    pub const NAME: &str = "zzz-kelemetryName";
    /// Type of a log.
    pub const LOG_TYPE: &str = "zzz-logType";
}

/// One log: timestamp and ordered string fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Log {
    /// Microseconds since the epoch.
    pub timestamp_us: i64,
    /// Fields in order.
    pub fields: Vec<(String, String)>,
}

impl Log {
    /// The value of a field.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// One span and its subtree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    /// Trace ID (of the stored trace it came from, or of the rendered result).
    pub trace_id: u128,
    /// Span ID.
    pub span_id: u64,
    /// Jaeger service (process) name.
    pub service: String,
    /// Operation name.
    pub operation: String,
    /// Start, microseconds.
    pub start_us: i64,
    /// Duration, microseconds.
    pub duration_us: i64,
    /// Tags in order.
    pub tags: Vec<(String, String)>,
    /// Logs in order.
    pub logs: Vec<Log>,
    /// Jaeger span warnings.
    pub warnings: Vec<String>,
    /// Child spans in order.
    pub children: Vec<Span>,
}

impl Span {
    /// The value of a tag.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Sets a tag, replacing an existing value.
    pub fn set_tag(&mut self, key: &str, value: &str) {
        match self.tags.iter_mut().find(|(k, _)| k == key) {
            Some(t) => t.1 = value.to_string(),
            None => self.tags.push((key.to_string(), value.to_string())),
        }
    }

    /// The `zzz-pseudoType`, if this is a pseudo span.
    pub fn pseudo_type(&self) -> Option<&str> {
        self.tag(tags::PSEUDO_TYPE)
    }

    /// End, microseconds.
    pub fn end_us(&self) -> i64 {
        self.start_us + self.duration_us
    }

    /// Number of spans in this subtree.
    pub fn count(&self) -> usize {
        1 + self.children.iter().map(Span::count).sum::<usize>()
    }

    /// Visits the subtree in pre-order with each span's parent id.
    pub fn walk<'a>(&'a self, parent: Option<u64>, f: &mut dyn FnMut(&'a Span, Option<u64>)) {
        f(self, parent);
        for c in &self.children {
            c.walk(Some(self.span_id), f);
        }
    }
}

fn s(x: &str) -> String {
    x.to_string()
}

fn identity(o: &ObjectSpanRecord, version: &str) -> Vec<(String, String)> {
    let k = &o.key;
    vec![
        (s("cluster"), k.cluster.clone()),
        (s("group"), k.group.clone()),
        (s("resource"), k.resource.clone()),
        (s("namespace"), k.namespace.clone()),
        (s("name"), k.name.clone()),
        (s("version"), s(version)),
    ]
}

fn window_stamp(o: &ObjectSpanRecord) -> String {
    chrono::DateTime::from_timestamp_micros(o.window.start_us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn pseudo(
    o: &ObjectSpanRecord,
    id: u64,
    service: &str,
    pseudo_type: &str,
    extra: Vec<(String, String)>,
) -> Span {
    let mut t = identity(o, &o.version);
    t.push((s("timeStamp"), window_stamp(o)));
    t.push((s(tags::TRACE_SOURCE), s("object")));
    t.push((s(tags::PSEUDO_TYPE), s(pseudo_type)));
    t.extend(extra);
    Span {
        trace_id: o.trace_id,
        span_id: id,
        service: s(service),
        operation: format!("{}/{}", o.key.resource, o.key.name),
        start_us: o.window.start_us,
        duration_us: o.window.len_us,
        tags: t,
        logs: Vec::new(),
        warnings: Vec::new(),
        children: Vec::new(),
    }
}

fn link_span(o: &ObjectSpanRecord, l: &LinkRecord) -> Span {
    let extra = vec![
        (s("linkedCluster"), l.linked.cluster.clone()),
        (s("linkedGroup"), l.linked.group.clone()),
        (s("linkedResource"), l.linked.resource.clone()),
        (s("linkedNamespace"), l.linked.namespace.clone()),
        (s("linkedName"), l.linked.name.clone()),
        (s("linkRole"), s(l.role.as_str())),
        (s("linkClass"), l.class.clone()),
    ];
    pseudo(o, l.span_id, "link", "link", extra)
}

fn event_span(o: &ObjectSpanRecord, e: &EventSpanRecord) -> Span {
    let mut t = identity(o, &e.version);
    t.push((s(tags::NOT_PSEUDO), s(tags::NOT_PSEUDO)));
    t.push((s(tags::TRACE_SOURCE), s(e.source.as_str())));
    t.extend(e.tags.iter().cloned());
    Span {
        trace_id: o.trace_id,
        span_id: e.span_id,
        service: s(e.source.as_str()),
        operation: e.title.clone(),
        start_us: e.start_us,
        duration_us: (e.end_us - e.start_us).max(0),
        tags: t,
        logs: e
            .logs
            .iter()
            .map(|l| Log {
                timestamp_us: e.start_us,
                fields: vec![
                    (s("event"), l.message.clone()),
                    (s(tags::LOG_TYPE), l.log_type.clone()),
                ],
            })
            .collect(),
        warnings: Vec::new(),
        children: Vec::new(),
    }
}

/// A stored trace as a tree: the object span with its event spans (by time) and link
/// spans as children.
pub fn from_stored(t: &StoredTrace) -> Span {
    let mut root = pseudo(&t.object, t.object.span_id, "object", "object", Vec::new());
    let mut events: Vec<&EventSpanRecord> = t.events.iter().collect();
    events.sort_by_key(|e| (e.start_us, e.span_id));
    root.children
        .extend(events.into_iter().map(|e| event_span(&t.object, e)));
    root.children
        .extend(t.links.iter().map(|l| link_span(&t.object, l)));
    root
}
