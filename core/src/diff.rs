//! Field-level diff of two object versions (SPEC 3.2).
//!
//! Maps are compared over the sorted union of their keys, lists position by position,
//! and any type change yields one diff of the whole value. The rendered line format
//! `<path> <old json> -> <new json>` is a user-visible contract.

use serde_json::Value;
use std::fmt::Write;

/// One changed leaf (or subtree) between two versions.
#[derive(Clone, Debug, PartialEq)]
pub struct DiffEntry {
    /// JSON path such as `spec.template.spec.containers[0].image`.
    pub path: String,
    /// Old value, `None` when absent or null.
    pub old: Option<Value>,
    /// New value, `None` when absent or null.
    pub new: Option<Value>,
}

/// Compares two decoded objects and returns every difference in path order.
pub fn compare(old: &Value, new: &Value) -> Vec<DiffEntry> {
    let mut out = Vec::new();
    walk(&mut String::new(), Some(old), Some(new), &mut out);
    out
}

fn non_null(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}

fn walk(path: &mut String, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<DiffEntry>) {
    match (non_null(old), non_null(new)) {
        (None, None) => {}
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let len = path.len();
                push_field(path, k);
                walk(path, a.get(k), b.get(k), out);
                path.truncate(len);
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) => {
            for i in 0..a.len().max(b.len()) {
                let len = path.len();
                let _ = write!(path, "[{i}]");
                walk(path, a.get(i), b.get(i), out);
                path.truncate(len);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(DiffEntry {
            path: path.clone(),
            old: a.cloned(),
            new: b.cloned(),
        }),
    }
}

fn push_field(path: &mut String, field: &str) {
    let plain = !field.is_empty() && field.chars().all(|c| c.is_alphanumeric() || c == '_');
    if plain {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(field);
    } else {
        let _ = write!(path, "[\"{}\"]", field.replace('"', "\\\""));
    }
}

/// Renders diffs as newline-terminated `<path> <old> -> <new>` lines.
pub fn render(diffs: &[DiffEntry]) -> String {
    let mut s = String::new();
    for d in diffs {
        let _ = writeln!(
            s,
            "{} {} -> {}",
            d.path,
            json_or_null(&d.old),
            json_or_null(&d.new)
        );
    }
    s
}

fn json_or_null(v: &Option<Value>) -> String {
    v.as_ref()
        .map_or_else(|| "null".to_string(), Value::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn spec_examples() {
        let old = json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [{"image": "alpine:3.16"}]}}},
                         "status": {"observedGeneration": 1},
                         "metadata": {"labels": {"app.kubernetes.io/name": "a"}}});
        let new = json!({"spec": {"replicas": 4, "paused": true, "template": {"spec": {"containers": [{"image": "alpine:3.17"}]}}},
                         "status": {"observedGeneration": 2},
                         "metadata": {"labels": {"app.kubernetes.io/name": "b"}}});
        let text = render(&compare(&old, &new));
        assert_eq!(
            text,
            "metadata.labels[\"app.kubernetes.io/name\"] \"a\" -> \"b\"\n\
             spec.paused null -> true\n\
             spec.replicas 2 -> 4\n\
             spec.template.spec.containers[0].image \"alpine:3.16\" -> \"alpine:3.17\"\n\
             status.observedGeneration 1 -> 2\n"
        );
    }

    #[test]
    fn lists_are_positional_and_type_changes_are_whole() {
        let d = compare(
            &json!({"a": [1, 2], "b": "x"}),
            &json!({"a": [1], "b": {"c": 1}}),
        );
        assert_eq!(render(&d), "a[1] 2 -> null\nb \"x\" -> {\"c\":1}\n");
        assert!(compare(&json!({"a": null}), &json!({})).is_empty());
    }
}
