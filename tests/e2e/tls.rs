//! TLS on the client-facing listeners of a real node: the webhook requires a client
//! certificate signed by `--http-client-ca`, the query API and the gRPC storage API
//! serve the same certificate, and plaintext gets no answer.

use crate::support::{make_certs, start_of_recent_window, Node};
use kelemetry_proto::jaeger::storage::v2;
use kelemetry_testkit::workload::pod_churn_batch;
use std::time::{Duration, Instant};

fn client(ca: &[u8], identity: Option<&[u8]>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(ca).unwrap())
        .timeout(Duration::from_secs(20));
    if let Some(pem) = identity {
        b = b.identity(reqwest::Identity::from_pem(pem).unwrap());
    }
    b.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_query_and_grpc_serve_tls_and_the_webhook_requires_client_certificates() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let [cert, key, ca] = make_certs(dir.path());
    let mut node = Node::start_no_wait(
        &dir.path().join("node"),
        &[
            "--shards",
            "4",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--http-client-ca",
            &ca,
        ],
    );
    tokio::task::block_in_place(|| node.wait_listening(Duration::from_secs(60))).unwrap();
    let ca_pem = std::fs::read(&ca).unwrap();
    let mut identity = std::fs::read(&cert).unwrap();
    identity.extend(std::fs::read(&key).unwrap());
    let with_cert = client(&ca_pem, Some(&identity));
    let without_cert = client(&ca_pem, None);
    let webhook = format!("https://{}", node.http());

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = with_cert.get(format!("{webhook}/readyz")).send().await;
        if ready.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "never ready over TLS");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let batch = pod_churn_batch(1, 3, start_of_recent_window()).to_string();
    let post = |c: &reqwest::Client| {
        c.post(format!("{webhook}/audit/c"))
            .header("content-type", "application/json")
            .body(batch.clone())
            .send()
    };
    let accepted = post(&with_cert).await.unwrap();
    assert_eq!(accepted.status(), 200);
    assert!(accepted.text().await.unwrap().contains("\"accepted\":3"));
    assert!(
        post(&without_cert).await.is_err(),
        "no client certificate, no connection"
    );
    // The probes stay plain on the metrics port, for a kubelet without certificates.
    let probe = reqwest::Client::new()
        .get(format!("http://{}/readyz", node.addrs.metrics))
        .send()
        .await
        .unwrap();
    assert_eq!(probe.status(), 200);
    // The cluster CLI (and the chart's preStop drain) reach the admin API there too.
    let cli = tokio::task::block_in_place(|| {
        std::process::Command::new(env!("CARGO_BIN_EXE_kelemetry"))
            .args(["cluster", "status", "--target"])
            .arg(format!("http://{}", node.addrs.metrics))
            .output()
            .unwrap()
    });
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    assert!(String::from_utf8_lossy(&cli.stdout).contains("leaders: node"));
    let plain = reqwest::Client::new()
        .get(format!("http://{}/readyz", node.http()))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(
        plain.is_err_and(|e| !e.is_status()),
        "plaintext is not answered"
    );

    // The query API needs no client certificate (tokens authenticate there).
    let services = without_cert
        .get(format!("https://{}/api/services", node.query_addr()))
        .send()
        .await
        .unwrap();
    assert_eq!(services.status(), 200);

    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(&ca_pem))
        .domain_name("localhost");
    let channel = tonic::transport::Channel::from_shared(format!("https://{}", node.grpc()))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut reader = v2::trace_reader_client::TraceReaderClient::new(channel);
    let services = reader
        .get_services(v2::GetServicesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(!services.services.is_empty());

    let (status, out) =
        tokio::task::block_in_place(|| node.run_once(&["--tls-key", "/nonexistent/key.pem"]));
    assert!(!status.success());
    assert!(
        out.contains("--tls-key /nonexistent/key.pem: cannot read"),
        "{out}"
    );
}
