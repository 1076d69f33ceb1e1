//! Resources that are views of another resource's storage, as in the real API server:
//! `events.k8s.io/v1` Events are the `core/v1` Events, converted field by field on the
//! way out and back on the way in, so an Event written through either API is read
//! through both and watches of either see every change.

use crate::store::ResourceId;
use serde_json::{Map, Value};

/// `(core/v1 field, events.k8s.io/v1 field)` pairs; other fields keep their names.
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

/// Fields both versions share under one name.
const EVENT_SHARED: &[&str] = &[
    "metadata",
    "eventTime",
    "series",
    "reportingInstance",
    "action",
    "reason",
    "related",
    "type",
];

fn is_events_v1(r: &ResourceId) -> bool {
    r.group == "events.k8s.io" && r.plural == "events"
}

/// Where objects of `r` are stored.
pub fn storage_of(r: &ResourceId) -> ResourceId {
    if is_events_v1(r) {
        ResourceId::new("", "events")
    } else {
        r.clone()
    }
}

/// A stored object as `r` serves it.
pub fn to_view(r: &ResourceId, stored: Value) -> Value {
    if !is_events_v1(r) {
        return stored;
    }
    convert(
        &stored,
        "events.k8s.io/v1",
        |core, _| core,
        |core, v1| (core, v1),
    )
}

/// An object written through `r`, in its stored form.
pub fn from_view(r: &ResourceId, view: Value) -> Value {
    if !is_events_v1(r) {
        return view;
    }
    convert(&view, "v1", |_, v1| v1, |core, v1| (v1, core))
}

/// Copies the shared fields and each renamed pair (`pick` names the source side of
/// a shared field, `pair` orders a pair as (from, to)) into a new Event.
fn convert(
    from: &Value,
    api_version: &str,
    pick: fn(&'static str, &'static str) -> &'static str,
    pair: fn(&'static str, &'static str) -> (&'static str, &'static str),
) -> Value {
    let mut out = Map::new();
    out.insert("apiVersion".into(), api_version.into());
    out.insert("kind".into(), "Event".into());
    for field in EVENT_SHARED {
        if let Some(v) = from.get(*field).filter(|v| !v.is_null()) {
            out.insert(pick(field, field).to_string(), v.clone());
        }
    }
    for (core, v1) in EVENT_FIELDS {
        let (src, dst) = pair(core, v1);
        if let Some(v) = from.get(src).filter(|v| !v.is_null()) {
            out.insert(dst.to_string(), v.clone());
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_core_event_reads_as_events_v1_and_back() {
        let core = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e", "namespace": "d"},
            "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "Started", "message": "Started container",
            "source": {"component": "kubelet"}, "firstTimestamp": "2026-01-01T00:00:00Z",
            "lastTimestamp": "2026-01-01T00:00:00Z", "count": 1, "type": "Normal", "eventTime": null});
        let events = ResourceId::new("events.k8s.io", "events");
        let v1 = to_view(&events, core.clone());
        assert_eq!(v1["apiVersion"], "events.k8s.io/v1");
        assert_eq!(v1["regarding"]["name"], "p");
        assert_eq!(v1["note"], "Started container");
        assert_eq!(v1["deprecatedSource"]["component"], "kubelet");
        assert!(v1.get("message").is_none() && v1.get("eventTime").is_none());
        let mut expected = core;
        expected.as_object_mut().unwrap().remove("eventTime");
        assert_eq!(from_view(&events, v1), expected);
        let pods = ResourceId::new("", "pods");
        assert_eq!(storage_of(&pods), pods);
        assert_eq!(storage_of(&events), ResourceId::new("", "events"));
    }
}
