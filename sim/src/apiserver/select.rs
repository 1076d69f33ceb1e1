//! Label and field selectors for the common cases: equality, inequality, existence
//! and set membership for labels; equality and inequality on dotted fields.

use crate::status::ApiError;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    NotExists(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// A parsed `labelSelector` or `fieldSelector`; empty selects everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selector(Vec<Requirement>);

/// Splits on commas outside parentheses.
fn terms(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.into_iter()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect()
}

fn set(s: &str) -> Vec<String> {
    s.trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

impl Selector {
    /// Parses a selector; `param` names the query parameter in errors.
    pub fn parse(s: &str, param: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for t in terms(s) {
            let bad =
                || ApiError::bad_request(format!("{param}: unable to parse requirement {t:?}"));
            let r = if let Some((k, v)) = t.split_once("!=") {
                Requirement::NotEquals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = t.split_once("==") {
                Requirement::Equals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = t.split_once('=') {
                Requirement::Equals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = t.split_once(" notin ") {
                Requirement::NotIn(k.trim().into(), set(v))
            } else if let Some((k, v)) = t.split_once(" in ") {
                Requirement::In(k.trim().into(), set(v))
            } else if let Some(k) = t.strip_prefix('!') {
                Requirement::NotExists(k.trim().into())
            } else if t
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
            {
                Requirement::Exists(t.into())
            } else {
                return Err(bad());
            };
            reqs.push(r);
        }
        Ok(Self(reqs))
    }

    /// Whether the labels of `obj` satisfy the selector.
    pub fn matches_labels(&self, obj: &Value) -> bool {
        let labels = &obj["metadata"]["labels"];
        self.matches(|k| labels.get(k).and_then(Value::as_str).map(str::to_string))
    }

    /// Whether the fields of `obj` (dotted paths such as `spec.nodeName`) satisfy
    /// the selector; a missing field reads as the empty string, as in Kubernetes.
    pub fn matches_fields(&self, obj: &Value) -> bool {
        self.matches(|path| {
            let mut v = obj;
            for part in path.split('.') {
                v = &v[part];
            }
            Some(match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            })
        })
    }

    fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => get(k).as_deref() == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k).as_deref() != Some(v.as_str()),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.contains(&x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| !vs.contains(&x)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_and_field_selectors() {
        let pod = json!({"metadata": {"name": "p", "labels": {"app": "demo", "tier": "web"}},
                         "spec": {"nodeName": "n1"}});
        let yes = |s: &str| {
            Selector::parse(s, "labelSelector")
                .unwrap()
                .matches_labels(&pod)
        };
        assert!(yes("app=demo"));
        assert!(yes("app==demo,tier in (web, db)"));
        assert!(yes("app,!missing,tier notin (db)"));
        assert!(!yes("app!=demo"));
        assert!(!yes("tier in (db)"));
        let f = |s: &str| {
            Selector::parse(s, "fieldSelector")
                .unwrap()
                .matches_fields(&pod)
        };
        assert!(f("spec.nodeName=n1,metadata.name=p"));
        assert!(f("spec.nodeName!="));
        assert!(!f("spec.nodeName=n2"));
        assert_eq!(
            Selector::parse("not a term", "labelSelector")
                .unwrap_err()
                .code,
            400
        );
    }
}
