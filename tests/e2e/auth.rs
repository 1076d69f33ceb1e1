//! Token authentication of a real node: the webhook, the query APIs (HTTP, gRPC, the
//! UI's Basic login) and the admin API, with token rotation by rewriting the file.

use crate::support::{request, start_of_recent_window, Node};
use base64::Engine as _;
use kelemetry_proto::jaeger::storage::v2;
use kelemetry_testkit::workload::pod_churn_batch;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Status and body of a request with an optional `Authorization` value.
fn call(method: &str, url: &str, authorization: Option<&str>, body: &str) -> (u16, String) {
    let headers: Vec<(&str, &str)> = authorization
        .map(|a| ("authorization", a))
        .into_iter()
        .collect();
    let reply = request(method, url, &headers, body);
    (reply.status, reply.body)
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// A node whose `--<surface>-token-file` flags name files of the given contents.
fn start_with_tokens(dir: &Path, surfaces: &[(&str, &str)]) -> (Node, Vec<PathBuf>) {
    let mut args = vec!["--shards".to_string(), "4".to_string()];
    let mut files = Vec::new();
    for (surface, tokens) in surfaces {
        let path = dir.join(surface);
        write(&path, tokens);
        args.push(format!("--{surface}-token-file"));
        args.push(path.display().to_string());
        files.push(path);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    (Node::start(&dir.join("node"), &args), files)
}

#[test]
fn tokens_guard_webhook_query_and_admin_and_rotate_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (node, files) = start_with_tokens(
        dir.path(),
        &[
            (
                "webhook",
                "# one per API server\napiserver-a\napiserver-b\n",
            ),
            ("query", "reader-1\n"),
        ],
    );
    let webhook_file = &files[0];
    let audit = format!("http://{}/audit/c", node.http());
    let batch = pod_churn_batch(1, 3, start_of_recent_window()).to_string();

    // Webhook: no token, a wrong one, a query token: 401 naming the header.
    for auth in [None, Some("Bearer nope"), Some("Bearer reader-1")] {
        let (status, body) = call("POST", &audit, auth, &batch);
        assert_eq!(status, 401, "{auth:?}: {body}");
        assert!(body.contains("\"field\":\"Authorization\""), "{body}");
    }
    let (status, body) = call("POST", &audit, Some("Bearer apiserver-b"), &batch);
    assert_eq!(
        (status, body.contains("\"accepted\":3")),
        (200, true),
        "{body}"
    );

    // Query API: Bearer, or a browser's Basic login with the token as password.
    let services = format!("http://{}/api/services", node.query_addr());
    assert_eq!(call("GET", &services, None, "").0, 401);
    assert_eq!(
        call("GET", &services, Some("Bearer apiserver-a"), "").0,
        401
    );
    let (status, body) = call("GET", &services, Some("Bearer reader-1"), "");
    assert_eq!(status, 200, "{body}");
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("alice:reader-1")
    );
    assert_eq!(call("GET", &services, Some(&basic), "").0, 200);
    let redirect = format!("http://{}/redirect?cluster=c", node.http());
    assert_eq!(call("GET", &redirect, None, "").0, 401);

    // gRPC readers: UNAUTHENTICATED without the token, answers with it.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url = format!("http://{}", node.grpc());
        let mut reader = v2::trace_reader_client::TraceReaderClient::connect(url)
            .await
            .unwrap();
        let err = reader
            .get_services(v2::GetServicesRequest {})
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
        let mut request = tonic::Request::new(v2::GetServicesRequest {});
        request
            .metadata_mut()
            .insert("authorization", "Bearer reader-1".parse().unwrap());
        let services = reader.get_services(request).await.unwrap().into_inner();
        assert!(!services.services.is_empty());
    });

    // Admin API: off while authentication is on and it has no tokens of its own.
    let status_url = format!("http://{}/cluster/status", node.http());
    let (status, body) = call("GET", &status_url, Some("Bearer apiserver-a"), "");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("--admin-token-file"), "{body}");
    // The same gate on the metrics port, which serves the admin API too.
    let on_metrics = format!("http://{}/cluster/status", node.addrs.metrics);
    assert_eq!(call("GET", &on_metrics, None, "").0, 403);
    // Probes stay open.
    assert_eq!(
        call("GET", &format!("http://{}/readyz", node.http()), None, "").0,
        200
    );

    // Rotation: rewrite the file; the old token stops working, the new one works.
    write(webhook_file, "apiserver-c\n");
    std::thread::sleep(Duration::from_millis(1_200));
    assert_eq!(
        call("POST", &audit, Some("Bearer apiserver-b"), &batch).0,
        401
    );
    let (status, body) = call("POST", &audit, Some("Bearer apiserver-c"), &batch);
    assert_eq!(
        (status, body.contains("\"duplicates\":3")),
        (200, true),
        "{body}"
    );

    let metrics = node.metrics_text();
    assert!(
        metrics.contains("kelemetry_auth_refused_total{code=\"401\",realm=\"webhook\"} 4"),
        "{metrics}"
    );
}

#[test]
fn the_admin_api_and_cluster_cli_use_their_own_token() {
    let dir = tempfile::tempdir().unwrap();
    let (node, files) = start_with_tokens(
        dir.path(),
        &[("webhook", "apiserver\n"), ("admin", "operator\n")],
    );
    let admin_file = &files[1];
    let status_url = format!("http://{}/cluster/status", node.http());
    assert_eq!(call("GET", &status_url, None, "").0, 401);
    assert_eq!(
        call("GET", &status_url, Some("Bearer apiserver"), "").0,
        401
    );
    assert_eq!(call("GET", &status_url, Some("Bearer operator"), "").0, 200);
    // The query API needs no token here (none configured for it).
    let services = format!("http://{}/api/services", node.query_addr());
    assert_eq!(call("GET", &services, None, "").0, 200);

    let cli = |env: Option<&Path>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_kelemetry"));
        cmd.args(["cluster", "status", "--target"])
            .arg(format!("http://{}", node.http()))
            .env_remove("KELEMETRY_ADMIN_TOKEN_FILE");
        if let Some(p) = env {
            cmd.env("KELEMETRY_ADMIN_TOKEN_FILE", p);
        }
        cmd.output().unwrap()
    };
    let refused = cli(None);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("KELEMETRY_ADMIN_TOKEN_FILE"), "{stderr}");
    let ok = cli(Some(admin_file));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("leaders: node"));

    // A token file that cannot be read stops start-up with the flag named.
    let (status, out) = node.run_once(&["--query-token-file", "/nonexistent/tokens"]);
    assert!(!status.success());
    assert!(
        out.contains("--query-token-file /nonexistent/tokens"),
        "{out}"
    );
}
