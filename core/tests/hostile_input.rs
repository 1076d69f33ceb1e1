//! Hostile and broken input against the parsers and the diff, as property tests: the
//! audit EventList parser, the Kubernetes Event and object-version parsers never
//! panic on any input, reject what they reject with the item and field named, and the
//! diff of two versions is empty exactly when nothing changed. The number of cases is
//! proptest's default (256 per property) in CI; `PROPTEST_CASES` raises it for a long run.

use kelemetry_core::audit::{parse_event_list, AuditContext, AuditItem, TimeBounds};
use kelemetry_core::diff::{compare, render};
use kelemetry_core::event::KubeEventRecord;
use kelemetry_core::filter::AuditFilter;
use kelemetry_core::version::ObjectVersionRecord;
use proptest::prelude::*;
use serde_json::{json, Value};

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,24}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z.]{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn ctx(filter: &AuditFilter) -> AuditContext<'_> {
    AuditContext {
        cluster: "c",
        apiserver: "10.0.0.1",
        filter,
        diff_wait_us: 0,
        accepted_times: TimeBounds::UNBOUNDED,
    }
}

/// A valid RequestResponse audit event of a Deployment update.
fn valid_event() -> Value {
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "auditID": "a-1", "stage": "ResponseComplete", "verb": "update",
        "requestURI": "/apis/apps/v1/namespaces/d/deployments/web",
        "user": {"username": "admin"}, "sourceIPs": ["10.0.0.2"], "userAgent": "kubectl",
        "objectRef": {"resource": "deployments", "namespace": "d", "name": "web",
                      "apiGroup": "apps", "apiVersion": "v1"},
        "responseStatus": {"code": 200},
        "responseObject": {"apiVersion": "apps/v1", "kind": "Deployment",
                           "metadata": {"name": "web", "namespace": "d", "resourceVersion": "7"}},
        "requestReceivedTimestamp": "2026-11-30T00:00:00.000000Z",
        "stageTimestamp": "2026-11-30T00:00:00.010000Z"
    })
}

/// Fields of the event a mutation may replace (dotted paths).
const FIELDS: &[&str] = &[
    "kind",
    "apiVersion",
    "auditID",
    "stage",
    "verb",
    "user",
    "user.username",
    "sourceIPs",
    "userAgent",
    "objectRef",
    "objectRef.resource",
    "objectRef.name",
    "objectRef.namespace",
    "objectRef.apiGroup",
    "responseStatus",
    "responseStatus.code",
    "responseObject",
    "responseObject.metadata",
    "requestReceivedTimestamp",
    "stageTimestamp",
    "annotations",
];

fn set_path(v: &mut Value, path: &str, new: Value) {
    let mut cur = v;
    let parts: Vec<&str> = path.split('.').collect();
    for p in &parts[..parts.len() - 1] {
        if !cur[*p].is_object() {
            cur[*p] = json!({});
        }
        cur = &mut cur[*p];
    }
    cur[parts[parts.len() - 1]] = new;
}

fn list(items: Vec<Value>) -> Vec<u8> {
    json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items})
        .to_string()
        .into_bytes()
}

proptest! {

    #[test]
    fn audit_parser_survives_any_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let f = AuditFilter::default();
        let _ = parse_event_list(&body, &ctx(&f));
    }

    #[test]
    fn audit_parser_survives_any_json_body(body in any_json()) {
        let f = AuditFilter::default();
        let _ = parse_event_list(body.to_string().as_bytes(), &ctx(&f));
    }

    /// One field of the second item replaced by anything: the batch is accepted, or
    /// rejected naming item 1 (never item 0, never a panic).
    #[test]
    fn a_broken_field_is_named_with_its_item(
        field in prop::sample::select(FIELDS),
        value in any_json(),
    ) {
        let f = AuditFilter::default();
        let mut broken = valid_event();
        set_path(&mut broken, field, value);
        match parse_event_list(&list(vec![valid_event(), broken]), &ctx(&f)) {
            Ok(items) => prop_assert_eq!(items.len(), 2),
            Err(e) => {
                prop_assert_eq!(e.item, Some(1), "{:?}", e);
                prop_assert!(e.field.starts_with("items[1]"), "{:?}", e);
                prop_assert!(!e.message.is_empty());
            }
        }
    }

    #[test]
    fn event_and_object_version_parsers_survive_any_json(v in any_json(), deleted in any::<bool>()) {
        let text = v.to_string();
        let _ = KubeEventRecord::from_json("c", &text);
        let _ = ObjectVersionRecord::from_json("c", &text, deleted, 0);
    }

    #[test]
    fn event_parser_survives_any_field_of_an_event(field in "[a-zA-Z.]{1,24}", value in any_json()) {
        let mut e = json!({"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "x.1", "namespace": "d", "uid": "u", "resourceVersion": "3"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "d"},
            "reason": "Started", "message": "ok", "lastTimestamp": "2026-01-01T00:00:00Z"});
        set_path(&mut e, field.trim_matches('.'), value);
        let _ = KubeEventRecord::from_json("c", &e.to_string());
    }

    /// The diff of a version with itself is empty, a non-empty diff means the
    /// versions differ, and no path is reported twice.
    #[test]
    fn diff_is_empty_exactly_for_unchanged_versions(a in any_json(), b in any_json()) {
        prop_assert!(compare(&a, &a).is_empty());
        let d = compare(&a, &b);
        if !d.is_empty() {
            prop_assert_ne!(&a, &b);
        }
        let mut paths: Vec<&String> = d.iter().map(|e| &e.path).collect();
        paths.sort();
        paths.dedup();
        prop_assert_eq!(paths.len(), d.len());
        prop_assert_eq!(render(&d).lines().count(), d.len());
    }
}

#[test]
fn hostile_bodies_are_refused_with_the_item_and_field_named() {
    let f = AuditFilter::default();
    let parse = |body: &[u8]| parse_event_list(body, &ctx(&f));

    // Nesting far past any real object.
    let nested = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_text = String::from_utf8(list(vec![valid_event()]))
        .unwrap()
        .replacen(
            "\"responseObject\":{",
            &format!("\"responseObject\":{{\"spec\":{nested},"),
            1,
        );
    let err = parse(deep_text.as_bytes()).unwrap_err();
    assert_eq!(err.field, "items[0].responseObject", "{err:?}");
    assert!(err.message.contains("recursion"), "{err:?}");

    // Invalid UTF-8 inside a string.
    let mut bytes = list(vec![valid_event()]);
    let at = bytes.windows(3).position(|w| w == b"a-1").unwrap();
    bytes[at] = 0xff;
    let err = parse(&bytes).unwrap_err();
    assert_eq!(err.field, "body", "{err:?}");

    // A number out of range of its field.
    let mut e = valid_event();
    e["responseStatus"]["code"] = json!(1e300);
    let err = parse(&list(vec![e])).unwrap_err();
    assert_eq!(err.field, "items[0].responseStatus.code", "{err:?}");

    // A duplicate key.
    let text = String::from_utf8(list(vec![valid_event()]))
        .unwrap()
        .replacen(
            "\"verb\":\"update\"",
            "\"verb\":\"update\",\"verb\":\"delete\"",
            1,
        );
    let err = parse(text.as_bytes()).unwrap_err();
    assert_eq!(err.item, Some(0), "{err:?}");
    assert!(err.message.contains("duplicate"), "{err:?}");

    // A huge string is accepted as data (the body limit bounds it) without copies
    // that grow with the batch.
    let mut e = valid_event();
    e["userAgent"] = json!("x".repeat(4 << 20));
    let items = parse(&list(vec![e])).unwrap();
    assert!(matches!(items[0], AuditItem::Accepted(_)));
}
