//! Reading rendered traces the way the Jaeger UI does: `/redirect` to a trace ID, the
//! same ID with other mode digits, and the spans, links and logs of the result.

use crate::support::{urlencode, Node};
use serde_json::Value;

/// `/redirect` for one object; returns the trace ID from `Location: /trace/<id>`.
/// Spans may still be on their way (the webhook batches, Events and watched changes
/// arrive asynchronously), so an object without spans yet is asked for again for up
/// to 30 seconds.
pub fn redirect(node: &Node, cluster: &str, resource: &str, name: &str, ts_us: i64) -> String {
    let ts = chrono::DateTime::from_timestamp_micros(ts_us)
        .unwrap()
        .to_rfc3339();
    let path = format!(
        "/redirect?cluster={cluster}&resource={resource}&namespace=default&name={name}&ts={}",
        urlencode(&ts)
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let (status, location) = loop {
        let (status, location) = node.http_get_no_redirect(&path);
        if status != 200 || std::time::Instant::now() > deadline {
            break (status, location);
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(status, 302, "{location}");
    let id = location
        .strip_prefix("/trace/")
        .expect("Location: /trace/<id>")
        .to_string();
    assert_eq!(id.len(), 32);
    assert!(
        id.starts_with("ff20000000e1e3e7"),
        "default mode and fixed suffix: {id}"
    );
    id
}

pub fn with_mode(id: &str, mode: &str) -> String {
    format!("ff{mode}{}", &id[10..])
}

pub fn fetch(node: &Node, id: &str) -> Value {
    let (status, body) = node.query(&format!("/api/traces/{id}"));
    assert_eq!(status, 200, "{body}");
    body["data"][0].clone()
}

pub fn roots(trace: &Value) -> Vec<&Value> {
    trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["references"].as_array().unwrap().is_empty())
        .collect()
}

pub fn children<'a>(trace: &'a Value, span: &Value) -> Vec<&'a Value> {
    trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s["references"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["spanID"] == span["spanID"])
        })
        .collect()
}

pub fn log_fields(span: &Value) -> Vec<Vec<(String, String)>> {
    span["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    (
                        f["key"].as_str().unwrap().to_string(),
                        f["value"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .collect()
}

/// The value of field `key` of one log (as [`log_fields`] returns them).
pub fn log_field(log: &[(String, String)], key: &str) -> Option<String> {
    log.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

/// The values of field `key` across logs, in order (logs without it skipped).
pub fn field_values(logs: &[Vec<(String, String)>], key: &str) -> Vec<String> {
    logs.iter().filter_map(|l| log_field(l, key)).collect()
}
