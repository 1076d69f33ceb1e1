//! The three patch types kubectl and controllers send: JSON merge patch (RFC 7386),
//! JSON patch (RFC 6902), and strategic merge patch for the kinds the simulator
//! knows (lists of named things merge by their key instead of being replaced).

use crate::status::ApiError;
use serde_json::{Map, Value};

/// How a patch body is to be applied, from its `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/json-patch+json`.
    Json,
    /// `application/strategic-merge-patch+json`.
    Strategic,
}

impl PatchType {
    /// The patch type of a `Content-Type` header value.
    pub fn from_content_type(ct: &str) -> Result<Self, ApiError> {
        match ct.split(';').next().unwrap_or("").trim() {
            "application/merge-patch+json" => Ok(Self::Merge),
            "application/json-patch+json" => Ok(Self::Json),
            "application/strategic-merge-patch+json" => Ok(Self::Strategic),
            other => Err(ApiError::unsupported_media_type(other)),
        }
    }
}

/// Applies `patch` of type `t` to `target`.
pub fn apply(target: &Value, t: PatchType, patch: &Value) -> Result<Value, ApiError> {
    let mut out = target.clone();
    match t {
        PatchType::Merge => json_patch::merge(&mut out, patch),
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(&mut out, &ops)
                .map_err(|e| ApiError::invalid(format!("JSON patch failed: {e}")))?;
        }
        PatchType::Strategic => strategic(&mut out, patch, ""),
    }
    Ok(out)
}

/// The key list items of the field at `path` merge by, for the fields of the kinds
/// the simulator serves (Kubernetes' `patchMergeKey` tags).
fn merge_key(path: &str) -> Option<&'static str> {
    let field = path.rsplit('.').next().unwrap_or(path);
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets" => Some("name"),
        "volumeMounts" => Some("mountPath"),
        "ports" if path.ends_with("spec.ports") => Some("port"),
        "ports" => Some("containerPort"),
        "conditions" => Some("type"),
        "ownerReferences" => Some("uid"),
        _ => None,
    }
}

fn strategic(target: &mut Value, patch: &Value, path: &str) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replacement = p.clone();
        replacement.remove("$patch");
        *target = Value::Object(replacement);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else {
        return;
    };
    for (k, v) in p {
        if k.starts_with('$') {
            continue;
        }
        let child = if path.is_empty() {
            k.clone()
        } else {
            format!("{path}.{k}")
        };
        match v {
            Value::Null => {
                t.remove(k);
            }
            Value::Array(items) if child == "metadata.finalizers" => {
                // A list of strings merged as a set (Kubernetes' `merge` strategy
                // without a key): a patch adds finalizers, it does not drop others.
                let existing = t.entry(k.clone()).or_insert_with(|| Value::Array(vec![]));
                if let Value::Array(list) = existing {
                    for item in items {
                        if !list.contains(item) {
                            list.push(item.clone());
                        }
                    }
                }
            }
            Value::Array(items) => match merge_key(&child) {
                Some(key) => {
                    let existing = t.entry(k.clone()).or_insert_with(|| Value::Array(vec![]));
                    merge_list(existing, items, key, &child);
                }
                None => {
                    t.insert(k.clone(), v.clone());
                }
            },
            Value::Object(_) => strategic(t.entry(k.clone()).or_insert(Value::Null), v, &child),
            _ => {
                t.insert(k.clone(), v.clone());
            }
        }
    }
}

fn merge_list(existing: &mut Value, items: &[Value], key: &str, path: &str) {
    if !existing.is_array() {
        *existing = Value::Array(vec![]);
    }
    let Value::Array(list) = existing else {
        return;
    };
    for item in items {
        let id = item.get(key).cloned();
        let pos = id
            .as_ref()
            .and_then(|id| list.iter().position(|e| e.get(key) == Some(id)));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                list.remove(i);
            }
            (Some(i), false) => strategic(&mut list[i], item, path),
            (None, true) => {}
            (None, false) => {
                let mut fresh = Value::Null;
                strategic(&mut fresh, item, path);
                list.push(fresh);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_updates_one_container_by_name_and_keeps_the_rest() {
        let d = json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [
            {"name": "app", "image": "nginx:1", "ports": [{"containerPort": 80}]},
            {"name": "side", "image": "busybox"}]}}}});
        let p = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "app"}, {"name": "side"}],
            "containers": [{"name": "app", "image": "nginx:2"}]}}}});
        let out = apply(&d, PatchType::Strategic, &p).unwrap();
        let c = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(c[0]["image"], "nginx:2");
        assert_eq!(c[0]["ports"][0]["containerPort"], 80);
        assert_eq!(c[1]["image"], "busybox");
        assert_eq!(out["spec"]["replicas"], 2);
    }

    #[test]
    fn strategic_merge_adds_finalizers_without_dropping_others() {
        let d = json!({"metadata": {"finalizers": ["foregroundDeletion"]}});
        let p = json!({"metadata": {"finalizers": ["example.com/keep", "foregroundDeletion"]}});
        let out = apply(&d, PatchType::Strategic, &p).unwrap();
        assert_eq!(
            out["metadata"]["finalizers"],
            json!(["foregroundDeletion", "example.com/keep"])
        );
    }

    #[test]
    fn merge_patch_replaces_lists_and_nulls_delete() {
        let d = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"x": [1, 2]}});
        let p = json!({"metadata": {"labels": {"a": null}}, "spec": {"x": [3]}});
        let out = apply(&d, PatchType::Merge, &p).unwrap();
        assert_eq!(
            out,
            json!({"metadata": {"labels": {"b": "2"}}, "spec": {"x": [3]}})
        );
    }

    #[test]
    fn json_patch_and_unknown_types() {
        let d = json!({"spec": {"replicas": 1}});
        let p = json!([{"op": "replace", "path": "/spec/replicas", "value": 3}]);
        assert_eq!(
            apply(&d, PatchType::Json, &p).unwrap()["spec"]["replicas"],
            3
        );
        let bad = json!([{"op": "test", "path": "/spec/replicas", "value": 9}]);
        assert_eq!(apply(&d, PatchType::Json, &bad).unwrap_err().code, 422);
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+yaml")
                .unwrap_err()
                .code,
            415
        );
    }
}
