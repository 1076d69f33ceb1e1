//! Jaeger remote storage over gRPC on `--grpc-addr`: `jaeger.storage.v2` for Jaeger v2,
//! `jaeger.storage.v1` for jaeger-query 1.x, and `grpc.health.v1` for both. Reads only:
//! writes answer a clear error, because traces come from Kubernetes, not from Jaeger.

mod v1;
mod v2;

use crate::query::QueryService;
use crate::query::Search;
use kelemetry_core::display::mode::DisplayMode;
use kelemetry_encode::api_v2::micros;
use kelemetry_proto::jaeger::storage::v1 as pv1;
use kelemetry_proto::jaeger::storage::v2 as pv2;
use std::sync::Arc;
use tonic::transport::server::Router;
use tonic::transport::Server;
use tonic::Status;
use tonic_health::ServingStatus;

/// Service names reported as serving by `grpc.health.v1`.
const HEALTH_SERVICES: [&str; 7] = [
    "jaeger.storage.v1.SpanReaderPlugin",
    "jaeger.storage.v1.SpanWriterPlugin",
    "jaeger.storage.v1.DependenciesReaderPlugin",
    "jaeger.storage.v1.PluginCapabilities",
    "jaeger.storage.v2.TraceReader",
    "jaeger.storage.v2.DependencyReader",
    "",
];

/// The gRPC router with every service registered and reported healthy; the readers
/// behind `guard` (health stays open for probes), over TLS when `tls` is given.
pub async fn router(
    svc: Arc<QueryService>,
    guard: crate::auth::Guard,
    tls: Option<tonic::transport::ServerTlsConfig>,
) -> anyhow::Result<Router> {
    let (reporter, health) = tonic_health::server::health_reporter();
    for name in HEALTH_SERVICES {
        reporter
            .set_service_status(name, ServingStatus::Serving)
            .await;
    }
    let v1 = v1::Reader(svc.clone());
    let v2 = v2::Reader(svc);
    let g = crate::auth::GrpcGuard(guard);
    let mut server = Server::builder();
    if let Some(tls) = tls {
        server = server
            .tls_config(tls)
            .map_err(|e| anyhow::anyhow!("--tls-cert/--tls-key: {e}"))?;
    }
    Ok(server
        .add_service(health)
        .add_service(
            pv1::span_reader_plugin_server::SpanReaderPluginServer::with_interceptor(
                v1.clone(),
                g.clone(),
            ),
        )
        .add_service(
            pv1::span_writer_plugin_server::SpanWriterPluginServer::with_interceptor(
                v1.clone(),
                g.clone(),
            ),
        )
        .add_service(
            pv1::dependencies_reader_plugin_server::DependenciesReaderPluginServer::with_interceptor(
                v1.clone(),
                g.clone(),
            ),
        )
        .add_service(
            pv1::plugin_capabilities_server::PluginCapabilitiesServer::with_interceptor(
                v1,
                g.clone(),
            ),
        )
        .add_service(pv2::trace_reader_server::TraceReaderServer::with_interceptor(
            v2.clone(),
            g.clone(),
        ))
        .add_service(
            pv2::dependency_reader_server::DependencyReaderServer::with_interceptor(v2, g),
        ))
}

/// Turns the shared fields of both APIs' query parameters into a search.
fn search(
    service: &str,
    operation: &str,
    attributes: Vec<(String, String)>,
    start: Option<prost_types::Timestamp>,
    end: Option<prost_types::Timestamp>,
    limit: i32,
) -> Result<Search, Status> {
    let mode = DisplayMode::from_name(service).ok_or_else(|| {
        Status::invalid_argument(format!(
            "invalid display mode {service:?}: use one of GetServices"
        ))
    })?;
    if attributes.iter().any(|(k, _)| k.is_empty()) {
        return Err(Status::invalid_argument("a query tag has an empty name"));
    }
    let mut tags = attributes;
    if !operation.is_empty() {
        tags.retain(|(k, _)| k != "cluster");
        tags.push(("cluster".into(), operation.to_string()));
    }
    let now = chrono::Utc::now().timestamp_micros();
    let start_us = start.map_or(now - 48 * 3600 * 1_000_000, |t| micros(&t));
    let end_us = end.map_or(now, |t| micros(&t));
    if start_us > end_us {
        return Err(Status::invalid_argument(
            "start_time_min is after start_time_max",
        ));
    }
    Ok(Search {
        mode,
        tags,
        start_us,
        end_us,
        limit: if limit > 0 { limit as usize } else { 20 },
    })
}

/// A 16-byte (or 8-byte) big-endian trace ID.
fn trace_id_from_bytes(b: &[u8]) -> Result<u128, Status> {
    match b.len() {
        16 => Ok(u128::from_be_bytes(b.try_into().expect("length checked"))),
        8 => Ok(u128::from(u64::from_be_bytes(
            b.try_into().expect("length checked"),
        ))),
        n => Err(Status::invalid_argument(format!(
            "trace_id must be 16 bytes, got {n}"
        ))),
    }
}

fn internal(e: impl std::fmt::Display) -> Status {
    Status::unavailable(e.to_string())
}
