//! Transform steps (SPEC 6.9): tree visitors that turn merged object traces into what
//! a display mode shows. Each step is a function over the tree; a base view is a list
//! of steps.

use super::mode::Base;
use super::tree::{tags, Log, Span};
use crate::ids;
use crate::model::{LOG_DIFF, LOG_EVENT_MESSAGE, LOG_REAL_ERROR, LOG_REAL_VERBOSE, LOG_SNAPSHOT};

/// Log type of internal errors.
pub const LOG_KELEMETRY_ERROR: &str = "kelemetryError";

/// One transform step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Delete non-root pseudo spans left without children (links, empty virtual spans).
    PruneChildless,
    /// Operation name from the `zzz-kelemetryName` tag.
    ReplaceName,
    /// Copy these tags from descendants up to object spans that lack them.
    ObjectTags(Vec<String>),
    /// Object spans: service from `resource`.
    ObjectService,
    /// Object spans: operation from `namespace` (unless `default`) and `name`.
    ObjectOperation,
    /// Turn event child spans of pseudo spans into logs.
    CollapseNesting,
    /// Lift the children of non-root spans of this pseudo type, deleting the span.
    ExtractNesting(&'static str),
    /// Move logs into one child span per trace source, except these sources.
    GroupByTraceSource(Vec<&'static str>),
    /// Shrink pseudo spans to their activity; pad the root by 5%.
    CompactDuration,
    /// Prefix the service with the cluster where it changes.
    ClusterName,
    /// Remove `zzz-` tags and fields; put the time range on the root operation.
    PruneTags,
}

fn initial() -> Vec<Step> {
    vec![
        Step::PruneChildless,
        Step::ReplaceName,
        Step::ObjectTags(vec!["nodes".into()]),
        Step::ObjectService,
        Step::ObjectOperation,
    ]
}

/// The steps of a base view.
pub fn steps(base: Base) -> Vec<Step> {
    let middle = match base {
        Base::Tree => vec![],
        Base::Timeline => vec![Step::ExtractNesting("object")],
        Base::Tracing => vec![
            Step::CollapseNesting,
            Step::ExtractNesting("linkClass"),
            Step::CompactDuration,
        ],
        Base::Grouped => vec![
            Step::CollapseNesting,
            Step::GroupByTraceSource(vec!["event"]),
            Step::CompactDuration,
        ],
    };
    let mut all = initial();
    all.extend(middle);
    all.extend([Step::ClusterName, Step::PruneTags]);
    all
}

/// Runs steps in order over a tree.
pub fn run(root: &mut Span, steps: &[Step]) {
    for step in steps {
        apply(root, step);
    }
}

/// Runs one step.
pub fn apply(root: &mut Span, step: &Step) {
    match step {
        Step::PruneChildless => prune_childless(root),
        Step::ReplaceName => each(root, &mut |s| {
            if let Some(n) = s.tag(tags::NAME).map(str::to_string) {
                s.operation = n;
            }
        }),
        Step::ObjectTags(names) => object_tags(root, names),
        Step::ObjectService => each(root, &mut |s| {
            if is_object_source(s) {
                s.service = join_tags(s, &["resource"]);
            }
        }),
        Step::ObjectOperation => each(root, &mut |s| {
            if is_object_source(s) {
                s.operation = join_tags(s, &["namespace", "name"]);
            }
        }),
        Step::CollapseNesting => collapse(root),
        Step::ExtractNesting(t) => extract(root, t),
        Step::GroupByTraceSource(except) => group_by_source(root, except),
        Step::CompactDuration => {
            compact(root);
            let pad = root.duration_us / 20;
            root.start_us -= pad;
            root.duration_us += 2 * pad;
        }
        Step::ClusterName => cluster_name(root, None),
        Step::PruneTags => prune_tags(root),
    }
}

fn each(span: &mut Span, f: &mut dyn FnMut(&mut Span)) {
    f(span);
    for c in &mut span.children {
        each(c, f);
    }
}

fn is_object_source(s: &Span) -> bool {
    s.tag(tags::TRACE_SOURCE) == Some("object") && s.pseudo_type() != Some("linkClass")
}

fn join_tags(s: &Span, names: &[&str]) -> String {
    names
        .iter()
        .filter_map(|n| {
            s.tag(n)
                .filter(|v| !(v.is_empty() || *n == "namespace" && *v == "default"))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn prune_childless(span: &mut Span) {
    for c in &mut span.children {
        prune_childless(c);
    }
    span.children
        .retain(|c| !(c.pseudo_type().is_some() && c.children.is_empty()));
}

fn object_tags(span: &mut Span, names: &[String]) {
    if span.pseudo_type() == Some("object") && span.tag("resource").is_some() {
        for name in names {
            if span.tag(name).is_none() {
                if let Some(v) = find_below(span, name) {
                    span.set_tag(name, &v);
                }
            }
        }
    }
    for c in &mut span.children {
        object_tags(c, names);
    }
}

/// The first value of tag `name` below `span`, not entering other object spans.
fn find_below(span: &Span, name: &str) -> Option<String> {
    span.children.iter().find_map(|c| {
        if c.pseudo_type() == Some("object") {
            return None;
        }
        c.tag(name)
            .map(str::to_string)
            .or_else(|| find_below(c, name))
    })
}

/// Diff classes: (class field, priority), and which path prefixes go where.
fn diff_class(path: &str) -> Option<&'static str> {
    let mut p = path;
    loop {
        match p {
            "metadata.resourceVersion" | "metadata.generation" => return Some("verbose diff"),
            "metadata.managedFields" => return None,
            _ => {}
        }
        let cut = match (p.rfind('.'), p.rfind('[')) {
            (Some(d), Some(b)) => d.max(b),
            (Some(d), None) => d,
            (None, Some(b)) => b,
            (None, None) => return Some("diff"),
        };
        if cut == 0 {
            return Some("diff");
        }
        p = &p[..cut];
    }
}

/// Log field names of collapsed child logs, by log type.
fn log_field(log_type: &str) -> Option<&'static str> {
    match log_type {
        LOG_EVENT_MESSAGE => Some("message"),
        LOG_SNAPSHOT => Some("snapshot"),
        LOG_REAL_ERROR => Some("error"),
        LOG_REAL_VERBOSE => Some(""),
        LOG_KELEMETRY_ERROR => Some("_debug"),
        _ => None,
    }
}

fn collapsed_log(child: &Span) -> Log {
    let source = child
        .tag(tags::TRACE_SOURCE)
        .unwrap_or_default()
        .to_string();
    let mut fields = vec![
        (tags::TRACE_SOURCE.to_string(), source.clone()),
        (source.clone(), child.operation.clone()),
    ];
    let mapped: &[&str] = match source.as_str() {
        "audit" => &["userAgent", "sourceIP"],
        "event" => &["action", "source"],
        _ => &[],
    };
    for t in mapped {
        if let Some(v) = child.tag(t).filter(|v| !v.is_empty()) {
            fields.push((t.to_string(), v.to_string()));
        }
    }
    let mut diff = String::new();
    let mut verbose = String::new();
    for log in &child.logs {
        if log.field(tags::LOG_TYPE) != Some(LOG_DIFF) {
            continue;
        }
        for line in log.field("event").unwrap_or_default().lines() {
            match diff_class(line.split(' ').next().unwrap_or_default()) {
                Some("diff") => diff.extend([line, "\n"]),
                Some(_) => verbose.extend([line, "\n"]),
                None => {}
            }
        }
    }
    for (name, text) in [("diff", diff), ("verbose diff", verbose)] {
        if !text.is_empty() {
            fields.push((name.to_string(), text.trim_end_matches('\n').to_string()));
        }
    }
    for log in &child.logs {
        if let Some(name) = log.field(tags::LOG_TYPE).and_then(log_field) {
            fields.push((
                name.to_string(),
                log.field("event").unwrap_or_default().to_string(),
            ));
        }
    }
    Log {
        timestamp_us: child.start_us,
        fields,
    }
}

fn collapse(span: &mut Span) {
    if span.pseudo_type().is_some() {
        let (events, rest): (Vec<Span>, Vec<Span>) = std::mem::take(&mut span.children)
            .into_iter()
            .partition(|c| c.pseudo_type().is_none() && c.tag(tags::TRACE_SOURCE).is_some());
        span.logs.extend(events.iter().map(collapsed_log));
        span.logs.sort_by_key(|l| l.timestamp_us);
        span.children = rest;
    }
    for c in &mut span.children {
        collapse(c);
    }
}

fn extract(span: &mut Span, pseudo_type: &str) {
    let mut out = Vec::with_capacity(span.children.len());
    for mut c in std::mem::take(&mut span.children) {
        extract(&mut c, pseudo_type);
        if c.pseudo_type() == Some(pseudo_type) {
            out.extend(c.children);
        } else {
            out.push(c);
        }
    }
    span.children = out;
}

fn group_by_source(span: &mut Span, except: &[&str]) {
    for c in &mut span.children {
        group_by_source(c, except);
    }
    let mut groups: Vec<Span> = Vec::new();
    let mut kept = Vec::new();
    for log in std::mem::take(&mut span.logs) {
        let source = log.field(tags::TRACE_SOURCE).map(str::to_string);
        match source.filter(|s| !except.contains(&s.as_str())) {
            Some(source) => {
                let group = match groups.iter_mut().position(|g| g.operation == source) {
                    Some(i) => &mut groups[i],
                    None => {
                        groups.push(group_span(span, &source));
                        groups.last_mut().expect("just pushed")
                    }
                };
                group.logs.push(log);
            }
            None => kept.push(log),
        }
    }
    span.logs = kept;
    span.children.splice(0..0, groups);
}

fn group_span(parent: &Span, source: &str) -> Span {
    Span {
        trace_id: parent.trace_id,
        span_id: ids::span_id(&["group", &parent.span_id.to_string(), source]),
        service: source.to_string(),
        operation: source.to_string(),
        start_us: parent.start_us,
        duration_us: parent.duration_us,
        tags: vec![
            (tags::TRACE_SOURCE.to_string(), "object".to_string()),
            (
                tags::PSEUDO_TYPE.to_string(),
                "groupByTraceSource".to_string(),
            ),
        ],
        logs: Vec::new(),
        warnings: Vec::new(),
        children: Vec::new(),
    }
}

/// Post-order: a pseudo span's interval becomes the union of its children and its
/// log instants (each counted as one second).
fn compact(span: &mut Span) {
    for c in &mut span.children {
        compact(c);
    }
    if span.pseudo_type().is_none() {
        return;
    }
    let intervals = span
        .children
        .iter()
        .map(|c| (c.start_us, c.end_us()))
        .chain(
            span.logs
                .iter()
                .map(|l| (l.timestamp_us, l.timestamp_us + 1_000_000)),
        );
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for (a, b) in intervals {
        lo = lo.min(a);
        hi = hi.max(b);
    }
    if lo <= hi {
        span.start_us = lo;
        span.duration_us = hi - lo;
    }
}

fn cluster_name(span: &mut Span, parent_cluster: Option<&str>) {
    let cluster = span.tag("cluster").map(str::to_string);
    if let Some(c) = cluster.as_deref() {
        if parent_cluster != Some(c) && !c.is_empty() {
            span.service = format!("{c} {}", span.service);
        }
    }
    let inherited = cluster.or_else(|| parent_cluster.map(str::to_string));
    for c in &mut span.children {
        cluster_name(c, inherited.as_deref());
    }
}

fn hms(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.format("%H:%M:%S").to_string())
        .unwrap_or_default()
}

fn prune_tags(root: &mut Span) {
    each(root, &mut |s| {
        s.tags.retain(|(k, _)| !k.starts_with("zzz-"));
        for l in &mut s.logs {
            l.fields.retain(|(k, _)| !k.starts_with("zzz-"));
        }
    });
    root.operation = format!(
        "{} / {}..{}",
        root.operation,
        hms(root.start_us),
        hms(root.end_us())
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_classes_strip_segments() {
        assert_eq!(diff_class("metadata.managedFields[0].time"), None);
        assert_eq!(diff_class("metadata.resourceVersion"), Some("verbose diff"));
        assert_eq!(diff_class("metadata.generation"), Some("verbose diff"));
        assert_eq!(diff_class("status.observedGeneration"), Some("diff"));
        assert_eq!(diff_class("metadata.labels[\"app\"]"), Some("diff"));
    }
}
