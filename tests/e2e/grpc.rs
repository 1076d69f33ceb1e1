//! Jaeger remote storage over gRPC, through tonic clients: storage v1 (jaeger-query
//! 1.x), storage v2 (Jaeger v2) and grpc.health.v1, against a real node process.

use crate::support::{start_of_recent_window, tag, Node};
use kelemetry_proto::jaeger::storage::v1;
use kelemetry_proto::jaeger::storage::v2;
use kelemetry_testkit::workload::deployment_lifecycle;
use std::time::Duration;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

const CLUSTER: &str = "tracetest";

fn ts(us: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: us / 1_000_000,
        nanos: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_v1_v2_and_health_serve_the_same_trace() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), &["--shards", "8"]);
    let t0 = start_of_recent_window();
    let (batches, names) = deployment_lifecycle("default", "grpc", t0);
    for b in &batches {
        assert_eq!(node.post_audit(CLUSTER, b).0, 200);
    }
    // Wait for the cross-shard links, then get a result ID the way the UI would.
    let mut http_trace = serde_json::Value::Null;
    for _ in 0..100 {
        let found = node.search(
            "tracing%20%5Bfull%20tree%5D",
            &[
                ("cluster", CLUSTER),
                ("resource", "deployments"),
                ("name", "grpc"),
            ],
        );
        if found.len() == 1
            && found[0]["spans"].as_array().unwrap().len() == 1 + 2 + names.pods.len()
        {
            http_trace = found[0].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let id_hex = http_trace["traceID"]
        .as_str()
        .expect("full tree result")
        .to_string();
    let id = u128::from_str_radix(&id_hex, 16).unwrap();
    let span_count = http_trace["spans"].as_array().unwrap().len();
    let url = format!("http://{}", node.grpc());

    // storage v1
    let mut r1 = v1::span_reader_plugin_client::SpanReaderPluginClient::connect(url.clone())
        .await
        .unwrap();
    let services = r1
        .get_services(v1::GetServicesRequest {})
        .await
        .unwrap()
        .into_inner()
        .services;
    assert_eq!((services.len(), services[0].as_str()), (16, "tracing"));
    let ops = r1
        .get_operations(v1::GetOperationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ops.operation_names, vec![CLUSTER]);
    let mut stream = r1
        .get_trace(v1::GetTraceRequest {
            trace_id: id.to_be_bytes().to_vec(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut spans = Vec::new();
    while let Some(chunk) = stream.message().await.unwrap() {
        spans.extend(chunk.spans);
    }
    assert_eq!(spans.len(), span_count);
    assert!(spans
        .iter()
        .all(|s| s.trace_id == id.to_be_bytes() && s.process.is_some()));
    let roots: Vec<_> = spans.iter().filter(|s| s.references.is_empty()).collect();
    assert_eq!(roots.len(), 1);
    assert_eq!(
        roots[0].process.as_ref().unwrap().service_name,
        "tracetest deployments"
    );
    let root_children = spans
        .iter()
        .filter(|s| s.references.iter().any(|r| r.span_id == roots[0].span_id))
        .count();
    assert_eq!(root_children, 2);
    let status = r1
        .get_trace(v1::GetTraceRequest {
            trace_id: vec![0; 16],
            ..Default::default()
        })
        .await
        .expect_err("unknown trace");
    assert_eq!(status.code(), tonic::Code::NotFound);
    let query = v1::TraceQueryParameters {
        service_name: "tracing [full tree]".into(),
        operation_name: CLUSTER.into(),
        tags: [("resource".to_string(), "deployments".to_string())].into(),
        start_time_min: Some(ts(t0 - 60_000_000)),
        start_time_max: Some(ts(t0 + 3_600_000_000)),
        num_traces: 20,
        ..Default::default()
    };
    let mut found = r1
        .find_traces(v1::FindTracesRequest {
            query: Some(query.clone()),
        })
        .await
        .unwrap()
        .into_inner();
    let mut found_spans = Vec::new();
    while let Some(chunk) = found.message().await.unwrap() {
        found_spans.extend(chunk.spans);
    }
    assert_eq!(found_spans.len(), span_count);
    // Another range is another stored result, so another ID, in the same mode.
    let found_id = found_spans[0].trace_id.clone();
    assert!(
        found_spans.iter().all(|s| s.trace_id == found_id),
        "one result, consecutive spans"
    );
    assert_eq!(&found_id[..8], &[0xff, 0x21, 0, 0, 0, 0xe1, 0xe3, 0xe7]);
    let ids = r1
        .find_trace_i_ds(v1::FindTraceIDsRequest { query: Some(query) })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids.trace_ids, vec![found_id]);
    let mut w = v1::span_writer_plugin_client::SpanWriterPluginClient::connect(url.clone())
        .await
        .unwrap();
    let err = w
        .write_span(v1::WriteSpanRequest::default())
        .await
        .expect_err("read-only");
    assert!(err.message().contains("read-only"), "{err}");
    let mut caps = v1::plugin_capabilities_client::PluginCapabilitiesClient::connect(url.clone())
        .await
        .unwrap();
    let c = caps
        .capabilities(v1::CapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(!c.archive_span_reader && !c.archive_span_writer && !c.streaming_span_writer);

    // storage v2
    let mut r2 = v2::trace_reader_client::TraceReaderClient::connect(url.clone())
        .await
        .unwrap();
    let mut traces = r2
        .get_traces(v2::GetTracesRequest {
            query: vec![
                v2::GetTraceParams {
                    trace_id: id.to_be_bytes().to_vec(),
                    ..Default::default()
                },
                v2::GetTraceParams {
                    trace_id: vec![0; 16],
                    ..Default::default()
                },
            ],
        })
        .await
        .unwrap()
        .into_inner();
    let mut chunks = Vec::new();
    while let Some(t) = traces.message().await.unwrap() {
        chunks.push(t);
    }
    assert_eq!(chunks.len(), 1, "unknown IDs are skipped");
    let otlp_spans: Vec<_> = chunks[0]
        .resource_spans
        .iter()
        .flat_map(|r| r.scope_spans.iter().flat_map(|s| s.spans.iter()))
        .collect();
    assert_eq!(otlp_spans.len(), span_count);
    assert!(otlp_spans.iter().all(|s| s.trace_id == id.to_be_bytes()));
    let svc = v2::GetServicesRequest {};
    assert_eq!(
        r2.get_services(svc)
            .await
            .unwrap()
            .into_inner()
            .services
            .len(),
        16
    );
    let q2 = v2::TraceQueryParameters {
        service_name: "tracing".into(),
        attributes: vec![v2::KeyValue {
            key: "name".into(),
            value: Some(v2::AnyValue {
                value: Some(v2::any_value::Value::StringValue("grpc".into())),
            }),
        }],
        start_time_min: Some(ts(t0 - 60_000_000)),
        start_time_max: Some(ts(t0 + 3_600_000_000)),
        search_depth: 10,
        ..Default::default()
    };
    let mut f2 = r2
        .find_traces(v2::FindTracesRequest { query: Some(q2) })
        .await
        .unwrap()
        .into_inner();
    let mut n = 0;
    while let Some(t) = f2.message().await.unwrap() {
        assert!(!t.resource_spans.is_empty(), "no empty chunks");
        n += 1;
    }
    assert_eq!(n, 1);

    // health
    let channel = tonic::transport::Channel::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut h = HealthClient::new(channel);
    for service in [
        "jaeger.storage.v1.SpanReaderPlugin",
        "jaeger.storage.v2.TraceReader",
        "jaeger.storage.v2.DependencyReader",
    ] {
        let s = h
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(s.status, ServingStatus::Serving as i32, "{service}");
    }
    // The HTTP forms of the same trace agree: legacy and api_v3.
    let (status, body) = node.query(&format!("/api/traces/{id_hex}"));
    assert_eq!(status, 200);
    assert_eq!(
        tag(&body["data"][0]["spans"][0], "resource"),
        Some("deployments")
    );
    let (status, v3) = node.query(&format!("/api/v3/traces/{id_hex}"));
    assert_eq!(status, 200);
    let mut v3_ids: Vec<String> = v3["result"]["resourceSpans"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["scopeSpans"][0]["spans"].as_array().unwrap().iter())
        .map(|s| s["spanId"].as_str().unwrap().to_string())
        .collect();
    let mut grpc_ids: Vec<String> = spans
        .iter()
        .map(|s| s.span_id.iter().map(|b| format!("{b:02x}")).collect())
        .collect();
    v3_ids.sort();
    grpc_ids.sort();
    assert_eq!(
        v3_ids, grpc_ids,
        "api_v3 and storage v1 return the same spans"
    );
}
