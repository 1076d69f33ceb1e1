//! Planted secrets never reach the disk: a Secret's values (and the last-applied
//! annotation that repeats them), an object labelled for redaction and an object
//! matching `--redact-pattern` are posted through the webhook, then every file of the
//! node's data directory (WAL, SST files, manifests) is scanned for the planted
//! values, raw and base64-encoded, while the node runs and after it flushed. A value
//! planted in an ordinary ConfigMap is the control: the scan must find it.

use crate::support::{start_of_recent_window, Node};
use base64::Engine as _;
use kelemetry_testkit::workload::{event_list, AuditStream, Request};
use serde_json::{json, Value};
use std::path::Path;

/// Values without repeated 4-byte runs, so that a compressed table still holds them
/// as literals and the scan cannot miss them by compression.
const SECRET_VALUE: &str = "Qz7Kp2Wv9XbRt4Lm";
const SECRET_UPDATE: &str = "Jh3Ny8Fc6Dg1Sa5E";
const LABELLED_VALUE: &str = "Uo4Ti7Re2Wq9Yp3M";
const PATTERN_VALUE: &str = "Bx6Vc1Nz8Lk3Jh5G";
const CONTROL_VALUE: &str = "Fg2Hj7Kl4Zx9Cv1Q";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Which of `needles` occur in any file under `dir`.
fn found_in_files(dir: &Path, needles: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            for n in needles {
                if bytes.windows(n.len()).any(|w| w == n.as_bytes()) && !found.contains(n) {
                    found.push(n.clone());
                }
            }
        }
    }
    found
}

fn object(kind: &str, ns: &str, name: &str, rv: u64, extra: Value) -> Value {
    let mut o = json!({"apiVersion": "v1", "kind": kind,
        "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}"),
                     "resourceVersion": rv.to_string()}});
    for (k, v) in extra.as_object().unwrap() {
        if k == "metadata" {
            for (mk, mv) in v.as_object().unwrap() {
                o["metadata"][mk] = mv.clone();
            }
        } else {
            o[k] = v.clone();
        }
    }
    o
}

fn write(
    stream: &mut AuditStream,
    verb: &'static str,
    resource: &'static str,
    name: &'static str,
    response: Value,
) -> Value {
    stream.event(Request {
        verb,
        resource,
        group: "",
        subresource: "",
        name,
        request_rv: "",
        response: Some(response),
        code: if verb == "create" { 201 } else { 200 },
        user_agent: "kubectl/v1.32.0",
    })
}

#[test]
fn planted_secrets_are_found_in_no_file_of_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let mut node = Node::start(
        &data,
        &[
            "--shards",
            "4",
            "--redact-pattern",
            "^/v1/configmaps/vault/",
        ],
    );
    let mut s = AuditStream::new("vault", start_of_recent_window(), "secrets");
    let applied = json!({"data": {"password": b64(SECRET_VALUE)}}).to_string();
    let secret = |rv, value: &str| {
        object(
            "Secret",
            "vault",
            "db",
            rv,
            json!({
            "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": applied}},
            "data": {"password": b64(value)}, "stringData": {"plain": value}}),
        )
    };
    let (rv1, rv2, rv3, rv4) = (s.next_rv(), s.next_rv(), s.next_rv(), s.next_rv());
    let items = vec![
        write(&mut s, "create", "secrets", "db", secret(rv1, SECRET_VALUE)),
        write(
            &mut s,
            "update",
            "secrets",
            "db",
            secret(rv2, SECRET_UPDATE),
        ),
        write(
            &mut s,
            "create",
            "configmaps",
            "labelled",
            object(
                "ConfigMap",
                "vault",
                "labelled",
                rv3,
                json!({"metadata": {"labels": {"kelemetry.kubewharf.io/diff-redacted": "true"}},
                   "data": {"token": LABELLED_VALUE}}),
            ),
        ),
        write(
            &mut s,
            "create",
            "configmaps",
            "by-pattern",
            object(
                "ConfigMap",
                "vault",
                "by-pattern",
                rv4,
                json!({"data": {"token": PATTERN_VALUE}}),
            ),
        ),
    ];
    let mut control = AuditStream::new("public", start_of_recent_window(), "control");
    let rv = control.next_rv();
    let control_item = write(
        &mut control,
        "create",
        "configmaps",
        "settings",
        object(
            "ConfigMap",
            "public",
            "settings",
            rv,
            json!({"data": {"color": CONTROL_VALUE}}),
        ),
    );
    let mut all = items;
    all.push(control_item);
    let (status, body) = node.post_audit("c", &event_list(all));
    assert_eq!(
        (status, body["accepted"].as_u64()),
        (200, Some(5)),
        "{body}"
    );

    // The spans are there, with the values replaced.
    let spans = node.stored(&[("cluster", "c"), ("resource", "secrets")]);
    assert!(!spans.is_empty());
    let text = serde_json::to_string(&spans).unwrap();
    assert!(text.contains("<redacted>"), "{text}");

    let secrets: Vec<String> = [SECRET_VALUE, SECRET_UPDATE, LABELLED_VALUE, PATTERN_VALUE]
        .iter()
        .flat_map(|v| [v.to_string(), b64(v)])
        .collect();
    let mut needles = secrets.clone();
    needles.push(CONTROL_VALUE.to_string());
    // While running: the write-ahead log and memtables' flushes hold everything.
    let running = found_in_files(&data, &needles);
    assert!(
        running.contains(&CONTROL_VALUE.to_string()),
        "control not found: the scan is blind"
    );
    assert!(
        secrets.iter().all(|s| !running.contains(s)),
        "secret on disk: {running:?}"
    );
    // After a graceful stop: memtables flushed into (compressed) tables.
    assert!(node.terminate().success());
    let stopped = found_in_files(&data, &needles);
    assert!(
        stopped.contains(&CONTROL_VALUE.to_string()),
        "control not found after flush"
    );
    assert!(
        secrets.iter().all(|s| !stopped.contains(s)),
        "secret on disk: {stopped:?}"
    );
}
