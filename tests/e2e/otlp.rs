//! OTLP export through the replicated outbox, received by an OTLP trace service on
//! loopback (generated from the OTLP protos): every stored span arrives with the IDs
//! the store gives it; without faults each arrives once; with leader kills and the
//! receiver down for a while, repeats carry identical IDs and nothing is missing.

use crate::cluster::{post_until_acked, start_cluster, CLUSTER};
use crate::support::{start_of_recent_window, Node};
use kelemetry_proto::opentelemetry::proto::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use kelemetry_proto::opentelemetry::proto::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use kelemetry_proto::opentelemetry::proto::common::v1::any_value::Value as AnyValue;
use kelemetry_testkit::ports::free_port;
use kelemetry_testkit::workload::deployment_lifecycle;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One span as received: its IDs, what identifies its content, and when it came.
#[derive(Clone, Debug)]
struct Received {
    ids: (String, String),
    parent: String,
    service: String,
    content: (String, u64),
    audit_id: Option<String>,
    at_us: i64,
}

#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<Received>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let at_us = now_us();
        let mut got = self.0.lock().unwrap();
        for rs in request.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
                    AnyValue::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for span in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
                let audit_id = span
                    .attributes
                    .iter()
                    .find(|a| a.key == "auditId")
                    .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
                        AnyValue::StringValue(s) => Some(s.clone()),
                        _ => None,
                    });
                got.push(Received {
                    ids: (hex(&span.trace_id), hex(&span.span_id)),
                    parent: hex(&span.parent_span_id),
                    service: service.clone(),
                    content: (span.name, span.start_time_unix_nano),
                    audit_id,
                    at_us,
                });
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An OTLP/gRPC receiver on a fixed loopback port that can be stopped and started
/// again (the endpoint going down and coming back).
struct Receiver {
    port: u16,
    spans: Collector,
    runtime: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Receiver {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        Self {
            port: free_port(),
            spans: Collector::default(),
            runtime,
            stop: None,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn start(&mut self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let service = TraceServiceServer::new(self.spans.clone());
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        let bound = std::sync::mpsc::channel();
        self.runtime.spawn(async move {
            let listener = loop {
                match tokio::net::TcpListener::bind(addr).await {
                    Ok(l) => break l,
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            };
            let _ = bound.0.send(());
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = rx.await;
                })
                .await;
        });
        bound.1.recv_timeout(Duration::from_secs(10)).unwrap();
        self.stop = Some(tx);
    }

    fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    fn received(&self) -> Vec<Received> {
        self.spans.0.lock().unwrap().clone()
    }
}

/// `(traceID, spanID)` of every stored span, and each span's parent, as the Jaeger
/// API returns the stored (raw) traces.
fn stored(node: &Node) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for t in node.stored(&[("cluster", CLUSTER)]) {
        for s in t["spans"].as_array().unwrap() {
            let parent = s["references"]
                .as_array()
                .and_then(|r| r.first())
                .and_then(|r| r["spanID"].as_str())
                .unwrap_or_default()
                .to_string();
            let ids = (
                s["traceID"].as_str().unwrap().to_string(),
                s["spanID"].as_str().unwrap().to_string(),
            );
            out.insert(ids, parent);
        }
    }
    out
}

/// Waits until every stored span has been received; returns what was received.
fn wait_all_received(node: &Node, receiver: &Receiver) -> Vec<Received> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // Received first: a span is stored before it is sent, so whatever arrived
        // is in the store read after it.
        let got = receiver.received();
        let want = stored(node);
        let have: BTreeSet<&(String, String)> = got.iter().map(|r| &r.ids).collect();
        let missing = want.keys().filter(|k| !have.contains(k)).count();
        if missing == 0 && !want.is_empty() {
            for r in &got {
                assert!(
                    want.contains_key(&r.ids),
                    "a span the store does not hold: {r:?}"
                );
                let parent = &want[&r.ids];
                let exported = if r.parent == "0000000000000000" {
                    ""
                } else {
                    &r.parent
                };
                assert_eq!(exported, parent, "parent of {r:?}");
            }
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of {} stored spans never arrived",
            want.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn otlp_flags(receiver: &Receiver) -> Vec<String> {
    vec!["--otlp-endpoint".into(), receiver.endpoint()]
}

#[test]
fn without_faults_every_stored_span_is_exported_once() {
    let mut receiver = Receiver::new();
    receiver.start();
    let dir = tempfile::tempdir().unwrap();
    let flags = otlp_flags(&receiver);
    let mut args = vec!["--shards", "8"];
    args.extend(flags.iter().map(String::as_str));
    let node = Node::start(dir.path(), &args);
    let t0 = start_of_recent_window();
    let mut acked_at: BTreeMap<String, i64> = BTreeMap::new();
    for d in 0..6 {
        let (batches, _) = deployment_lifecycle("default", &format!("app{d}"), t0 + d * 2_000_000);
        for b in batches {
            assert_eq!(node.post_audit(CLUSTER, &b).0, 200);
            let now = now_us();
            for item in b["items"].as_array().unwrap() {
                acked_at.insert(item["auditID"].as_str().unwrap().to_string(), now);
            }
        }
    }
    let got = wait_all_received(&node, &receiver);
    let unique: BTreeSet<&(String, String)> = got.iter().map(|r| &r.ids).collect();
    assert_eq!(
        unique.len(),
        got.len(),
        "no span sent twice without a fault"
    );
    let services: BTreeSet<&str> = got.iter().map(|r| r.service.as_str()).collect();
    assert_eq!(services, BTreeSet::from(["audit", "link", "object"]));
    let mut lags: Vec<i64> = got
        .iter()
        .filter_map(|r| Some(r.at_us - acked_at.get(r.audit_id.as_ref()?)?))
        .collect();
    lags.sort_unstable();
    assert_eq!(
        lags.len(),
        acked_at.len(),
        "every audit event's span arrived"
    );
    eprintln!(
        "export lag over {} audit spans: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (webhook 200 until the receiver has the span)",
        lags.len(),
        lags[lags.len() / 2] as f64 / 1000.0,
        lags[(lags.len() - 1) * 99 / 100] as f64 / 1000.0,
        lags[lags.len() - 1] as f64 / 1000.0,
    );
    let metrics = node.metrics_text();
    assert!(
        metrics.contains(&format!("kelemetry_export_spans_total {}", got.len())),
        "{metrics}"
    );
}

#[test]
fn leader_kills_and_an_endpoint_outage_lose_no_span_and_repeat_only_identical_ones() {
    let mut receiver = Receiver::new();
    let dir = tempfile::tempdir().unwrap();
    let flags = otlp_flags(&receiver);
    let extra: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (started, _) = start_cluster(dir.path(), "8", &extra);
    let mut nodes: Vec<Option<Node>> = started.into_iter().map(Some).collect();
    // The endpoint is down at first: spans wait in the outboxes.
    let t0 = start_of_recent_window();
    let mut killed = Vec::new();
    for d in 0..18i64 {
        let (batches, _) = deployment_lifecycle("default", &format!("app{d}"), t0 + d * 2_000_000);
        for b in batches {
            post_until_acked(&nodes, d as usize, &b);
        }
        match d {
            3 => {
                let down = nodes.iter().flatten().next().unwrap().metrics_text();
                assert!(down.contains("kelemetry_export_failures_total"), "{down}");
                receiver.start();
            }
            6 | 12 => {
                // Kill the leader of shard 0 while it exports; restart it later.
                let observer = nodes.iter().flatten().next().unwrap();
                let client = kelemetry_testkit::Client::new(Duration::from_secs(10));
                let leader = kelemetry_testkit::ring::leader_of(&client, &[observer.http()], 0)
                    .expect("shard 0 has a leader") as usize;
                nodes[leader].as_mut().unwrap().kill();
                killed.push(leader);
            }
            9 => receiver.stop(),
            10 => {
                std::thread::sleep(Duration::from_secs(2));
                receiver.start();
            }
            _ => {}
        }
        if d == 8 || d == 14 {
            for i in killed.drain(..) {
                nodes[i].as_mut().unwrap().restart();
            }
        }
    }
    for i in killed.drain(..) {
        nodes[i].as_mut().unwrap().restart();
    }
    let observer = nodes.iter().flatten().next().unwrap();
    let got = wait_all_received(observer, &receiver);
    // A repeat is the same span: identical IDs, identical name and start.
    let mut by_ids: BTreeMap<&(String, String), &(String, u64)> = BTreeMap::new();
    let mut repeats = 0;
    for r in &got {
        if let Some(first) = by_ids.insert(&r.ids, &r.content) {
            repeats += 1;
            assert_eq!(first, &r.content, "a repeat of {:?} differs", r.ids);
        }
    }
    eprintln!("{} spans received, {repeats} of them repeats", got.len());
}
