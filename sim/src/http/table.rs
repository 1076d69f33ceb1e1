//! `meta.k8s.io/v1` Tables: what `kubectl get` asks for (`Accept: ...;as=Table`) so
//! that it prints the columns it prints against a real cluster (READY and STATUS of
//! Pods, UP-TO-DATE of Deployments, ...) instead of only NAME and AGE.

use serde_json::{json, Value};

/// Whether the client asked for a Table.
pub fn wanted(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.split(',').any(|t| t.contains("as=Table")))
}

/// The Table of `response` (a list or one object) of resource `plural`.
pub fn render(plural: &str, response: &Value, now: chrono::DateTime<chrono::Utc>) -> Value {
    let items: Vec<&Value> = match response["items"].as_array() {
        Some(items) => items.iter().collect(),
        None => vec![response],
    };
    let columns = columns(plural);
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let cells: Vec<Value> = columns.iter().map(|c| (c.cell)(o, now)).collect();
            json!({"cells": cells, "object": partial_metadata(o)})
        })
        .collect();
    let definitions: Vec<Value> = columns
        .iter()
        .map(|c| {
            json!({"name": c.name, "type": c.kind, "format": if c.name == "Name" {"name"} else {""},
                        "description": c.name, "priority": 0})
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": response["metadata"]["resourceVersion"]},
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

type Cell = fn(&Value, chrono::DateTime<chrono::Utc>) -> Value;

struct Column {
    name: &'static str,
    kind: &'static str,
    cell: Cell,
}

const fn column(name: &'static str, kind: &'static str, cell: Cell) -> Column {
    Column { name, kind, cell }
}

fn columns(plural: &str) -> Vec<Column> {
    let name = column("Name", "string", |o, _| o["metadata"]["name"].clone());
    let age = column("Age", "string", |o, now| {
        age_of(&o["metadata"]["creationTimestamp"], now)
    });
    match plural {
        "pods" => vec![
            name,
            column("Ready", "string", |o, _| {
                let statuses = o["status"]["containerStatuses"].as_array();
                let ready = statuses.map_or(0, |s| s.iter().filter(|c| c["ready"] == true).count());
                let total = o["spec"]["containers"].as_array().map_or(0, Vec::len);
                json!(format!("{ready}/{total}"))
            }),
            column("Status", "string", |o, _| {
                if o["metadata"]["deletionTimestamp"].is_string() {
                    json!("Terminating")
                } else {
                    o["status"]["phase"].clone()
                }
            }),
            column("Restarts", "integer", |o, _| {
                let statuses = o["status"]["containerStatuses"].as_array();
                json!(statuses.map_or(0, |s| s
                    .iter()
                    .filter_map(|c| c["restartCount"].as_i64())
                    .sum::<i64>()))
            }),
            age,
        ],
        "deployments" => vec![
            name,
            column("Ready", "string", |o, _| {
                json!(format!(
                    "{}/{}",
                    o["status"]["readyReplicas"].as_i64().unwrap_or(0),
                    o["spec"]["replicas"].as_i64().unwrap_or(0)
                ))
            }),
            column("Up-to-date", "integer", |o, _| {
                count(&o["status"]["updatedReplicas"])
            }),
            column("Available", "integer", |o, _| {
                count(&o["status"]["availableReplicas"])
            }),
            age,
        ],
        "replicasets" => vec![
            name,
            column("Desired", "integer", |o, _| count(&o["spec"]["replicas"])),
            column("Current", "integer", |o, _| count(&o["status"]["replicas"])),
            column("Ready", "integer", |o, _| {
                count(&o["status"]["readyReplicas"])
            }),
            age,
        ],
        "nodes" => vec![
            name,
            column("Status", "string", |o, _| {
                let ready = o["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True");
                json!(if ready { "Ready" } else { "NotReady" })
            }),
            column("Roles", "string", |_, _| json!("<none>")),
            age,
            column("Version", "string", |o, _| {
                o["status"]["nodeInfo"]["kubeletVersion"].clone()
            }),
        ],
        "events" => vec![
            column("Last Seen", "string", |o, now| {
                let t = ["lastTimestamp", "deprecatedLastTimestamp", "eventTime"]
                    .iter()
                    .map(|f| &o[*f])
                    .find(|t| t.is_string())
                    .unwrap_or(&Value::Null);
                age_of(t, now)
            }),
            column("Type", "string", |o, _| o["type"].clone()),
            column("Reason", "string", |o, _| o["reason"].clone()),
            column("Object", "string", |o, _| {
                // core/v1 names it involvedObject, events.k8s.io/v1 regarding.
                let io = if o["involvedObject"].is_object() {
                    &o["involvedObject"]
                } else {
                    &o["regarding"]
                };
                json!(format!(
                    "{}/{}",
                    io["kind"].as_str().unwrap_or_default().to_ascii_lowercase(),
                    io["name"].as_str().unwrap_or_default()
                ))
            }),
            column("Message", "string", |o, _| {
                if o["message"].is_string() {
                    o["message"].clone()
                } else {
                    o["note"].clone()
                }
            }),
        ],
        "namespaces" => vec![
            name,
            column("Status", "string", |o, _| o["status"]["phase"].clone()),
            age,
        ],
        _ => vec![name, age],
    }
}

fn count(v: &Value) -> Value {
    json!(v.as_i64().unwrap_or(0))
}

/// kubectl's short age: `45s`, `3m10s`, `5h`, `2d`.
fn age_of(timestamp: &Value, now: chrono::DateTime<chrono::Utc>) -> Value {
    let Some(t) = timestamp
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    else {
        return json!("<unknown>");
    };
    let secs = (now - t.with_timezone(&chrono::Utc)).num_seconds().max(0);
    json!(match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    })
}

fn partial_metadata(o: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_show_readiness_status_and_age() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:01:05Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let list = json!({"metadata": {"resourceVersion": "9"}, "items": [{
            "metadata": {"name": "web-1", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "containerStatuses": [{"ready": true, "restartCount": 1}, {"ready": false, "restartCount": 0}]}}]});
        let t = render("pods", &list, now);
        assert_eq!(t["kind"], "Table");
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["web-1", "1/2", "Running", 1, "65s"])
        );
        assert_eq!(t["columnDefinitions"][0]["format"], "name");
        assert_eq!(t["rows"][0]["object"]["metadata"]["name"], "web-1");
        assert!(wanted(Some(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        )));
        assert!(!wanted(Some("application/json")));
    }
}
