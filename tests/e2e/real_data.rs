//! Every file of real audit and watch data from public projects, posted as-is.

use crate::support::Node;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn real_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata/real")
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.file_name().is_some_and(|n| n != "README.md") {
            out.push(p);
        }
    }
}

/// JSON-lines audit files become one EventList; anything else is posted raw.
fn body_of(path: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap();
    let items: Option<Vec<Value>> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).ok())
        .collect();
    match items {
        Some(items) if !items.is_empty() => {
            serde_json::json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items})
                .to_string()
                .into_bytes()
        }
        _ => text.into_bytes(),
    }
}

#[test]
fn every_real_file_is_accepted_or_rejected_clearly() {
    let dir = tempfile::tempdir().unwrap();
    // The files are years old: a retention that still holds them, as for an import.
    let node = Node::start(dir.path(), &["--shards", "8", "--retention", "36500d"]);
    let mut all = Vec::new();
    files(&real_dir(), &mut all);
    all.sort();
    assert!(all.len() >= 20, "test data present: {}", all.len());
    let mut accepted_total = 0;
    for path in &all {
        let (status, body) = node.post_raw("/audit/real", &body_of(path));
        match status {
            200 => accepted_total += body["accepted"].as_u64().unwrap(),
            400 => {
                let field = body["error"]["field"].as_str().unwrap_or_default();
                let message = body["error"]["message"].as_str().unwrap_or_default();
                assert!(
                    !field.is_empty() && !message.is_empty(),
                    "{}: unclear 400 {body}",
                    path.display()
                );
            }
            other => panic!("{}: status {other} {body}", path.display()),
        }
        assert_eq!(
            node.http_get("/healthz").0,
            200,
            "server stays up after {}",
            path.display()
        );
    }
    // The falco creates and deletes at ResponseComplete are traced; exec/attach at
    // ResponseStarted and audit2rbac's get/list are filtered.
    assert!(accepted_total >= 14, "accepted {accepted_total}");
    let found = node.stored(&[("cluster", "real"), ("resource", "configmaps")]);
    assert!(!found.is_empty());
    assert_eq!(node.http_get("/readyz").0, 200);
}
