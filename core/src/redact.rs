//! Redaction of object content before anything is stored (SPEC 3.1, fixed: secrets are
//! redacted by default, on the audit path as well as the watch path).
//!
//! - Secrets: every value of `data` and `stringData` and the
//!   `kubectl.kubernetes.io/last-applied-configuration` annotation (which repeats them)
//!   becomes [`REDACTED`]. Keys stay, so a diff still shows which keys changed.
//! - Objects labelled [`REDACT_LABEL`] (any value), and objects whose path
//!   `<group>/<version>/<resource>/<namespace>/<name>` matches the node's
//!   `--redact-pattern`: everything but `apiVersion`, `kind` and `metadata` is
//!   dropped, and so are the annotations. What remains is enough for owner links and
//!   resourceVersion bookkeeping.

use crate::key::ObjectKey;
use serde_json::{Map, Value};
use std::sync::OnceLock;

/// The node's `--redact-pattern`, set once at start-up: a process-wide policy that
/// every parser (audit, watch) applies before a command exists.
static PATTERN: OnceLock<regex::Regex> = OnceLock::new();

/// Sets the redaction pattern of this process; errors if one was already set.
pub fn set_pattern(pattern: regex::Regex) -> Result<(), regex::Regex> {
    PATTERN.set(pattern)
}

/// The path the redaction pattern is matched against (SPEC 3.1):
/// `<group>/<version>/<resource>/<namespace>/<name>`.
pub fn object_path(key: &ObjectKey, version: &str) -> String {
    format!(
        "{}/{version}/{}/{}/{}",
        key.group, key.resource, key.namespace, key.name
    )
}

fn matches_pattern(key: &ObjectKey, version: &str) -> bool {
    PATTERN
        .get()
        .is_some_and(|p| p.is_match(&object_path(key, version)))
}

/// What a redacted value is replaced with.
pub const REDACTED: &str = "<redacted>";

/// Label that asks for an object's content to be redacted.
pub const REDACT_LABEL: &str = "kelemetry.kubewharf.io/diff-redacted";

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Returns `json`, the object `key` at API `version`, with sensitive content
/// replaced. Text that cannot be read as JSON (malformed, or nested deeper than the
/// parser's limit of 128 levels) is an error: it could be a Secret whose values
/// nothing could find, so it is never passed on as it is.
pub fn redact_json(json: &str, key: &ObjectKey, version: &str) -> Result<String, String> {
    let mut value = serde_json::from_str::<Value>(json).map_err(|e| e.to_string())?;
    Ok(if redact(&mut value, matches_pattern(key, version)) {
        value.to_string()
    } else {
        json.to_string()
    })
}

/// Redacts `object` in place (all but its metadata when `matched` by the pattern);
/// returns whether anything changed.
pub fn redact(object: &mut Value, matched: bool) -> bool {
    let Some(map) = object.as_object_mut() else {
        return false;
    };
    if matched || labelled(map) {
        map.retain(|k, _| matches!(k.as_str(), "apiVersion" | "kind" | "metadata"));
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("annotations");
        }
        return true;
    }
    if map.get("kind").and_then(Value::as_str) != Some("Secret") {
        return false;
    }
    let mut changed = false;
    for field in ["data", "stringData"] {
        if let Some(values) = map.get_mut(field).and_then(Value::as_object_mut) {
            for v in values.values_mut() {
                *v = Value::String(REDACTED.into());
                changed = true;
            }
        }
    }
    if let Some(a) = map
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
        .and_then(|a| a.get_mut(LAST_APPLIED))
    {
        *a = Value::String(REDACTED.into());
        changed = true;
    }
    changed
}

fn labelled(map: &Map<String, Value>) -> bool {
    map.get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .is_some_and(|l| l.contains_key(REDACT_LABEL))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(resource: &str, name: &str) -> ObjectKey {
        ObjectKey::new("c", "", resource, "ns", name)
    }

    #[test]
    fn secret_values_are_hidden_and_keys_kept() {
        let secret = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db", "annotations": {LAST_APPLIED: "{\"data\":{\"pw\":\"aHVudGVyMg==\"}}", "team": "a"}},
            "data": {"pw": "aHVudGVyMg=="}, "stringData": {"user": "root"}});
        let out = redact_json(&secret.to_string(), &key("secrets", "db"), "v1").unwrap();
        assert!(!out.contains("aHVudGVyMg"), "{out}");
        assert!(!out.contains("root"), "{out}");
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["data"]["pw"], REDACTED);
        assert_eq!(v["stringData"]["user"], REDACTED);
        assert_eq!(v["metadata"]["annotations"]["team"], "a");
    }

    #[test]
    fn labelled_objects_keep_only_metadata() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "labels": {REDACT_LABEL: ""}, "annotations": {"x": "secret"},
                         "ownerReferences": [{"kind": "Deployment", "name": "d"}]},
            "data": {"token": "abc"}});
        let v: Value = serde_json::from_str(
            &redact_json(&cm.to_string(), &key("configmaps", "c"), "v1").unwrap(),
        )
        .unwrap();
        assert!(v.get("data").is_none());
        assert!(v["metadata"].get("annotations").is_none());
        assert_eq!(v["metadata"]["ownerReferences"][0]["name"], "d");
    }

    #[test]
    fn other_objects_are_untouched() {
        let k = key("configmaps", "c");
        let text = r#"{"kind":"ConfigMap","data":{"a":"1"}}"#;
        assert_eq!(redact_json(text, &k, "v1").unwrap(), text);
        assert!(redact_json("not json", &k, "v1").is_err());
        let deep = format!(
            r#"{{"kind":"Secret","data":{{"pw":"x"}},"spec":{}1{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        assert!(
            redact_json(&deep, &k, "v1").is_err(),
            "too deep to redact is refused"
        );
    }

    #[test]
    fn a_pattern_match_keeps_only_metadata() {
        assert_eq!(
            object_path(&key("configmaps", "c"), "v1"),
            "/v1/configmaps/ns/c"
        );
        let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c"}, "data": {"token": "abc"}});
        assert!(redact(&mut cm, true));
        assert!(cm.get("data").is_none());
    }
}
