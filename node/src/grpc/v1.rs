//! `jaeger.storage.v1`: what jaeger-query 1.x (`SPAN_STORAGE_TYPE=grpc`) calls.

use super::{internal, search, trace_id_from_bytes};
use crate::query::QueryService;
use crate::query::{mode_names, Search};
use kelemetry_encode::api_v2::jaeger_spans;
use kelemetry_proto::jaeger::api_v2::Span as ModelSpan;
use kelemetry_proto::jaeger::storage::v1::*;
use std::pin::Pin;
use std::sync::Arc;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

/// Spans per streamed chunk; a large trace spans consecutive chunks.
const CHUNK: usize = 1000;

/// The v1 services over the query service.
#[derive(Clone)]
pub struct Reader(pub Arc<QueryService>);

type Chunks = Pin<Box<dyn Stream<Item = Result<SpansResponseChunk, Status>> + Send>>;

fn chunks(spans: Vec<ModelSpan>) -> Chunks {
    let out: Vec<Result<SpansResponseChunk, Status>> = spans
        .chunks(CHUNK)
        .map(|c| Ok(SpansResponseChunk { spans: c.to_vec() }))
        .collect();
    Box::pin(tokio_stream::iter(out))
}

fn query_search(q: Option<TraceQueryParameters>) -> Result<Search, Status> {
    let q = q.ok_or_else(|| Status::invalid_argument("query is required"))?;
    search(
        &q.service_name,
        &q.operation_name,
        q.tags.into_iter().collect(),
        q.start_time_min,
        q.start_time_max,
        q.num_traces,
    )
}

#[tonic::async_trait]
impl span_reader_plugin_server::SpanReaderPlugin for Reader {
    type GetTraceStream = Chunks;
    type FindTracesStream = Chunks;

    async fn get_trace(&self, req: Request<GetTraceRequest>) -> Result<Response<Chunks>, Status> {
        let id = trace_id_from_bytes(&req.get_ref().trace_id)?;
        match self.0.trace_tree(id).await.map_err(internal)? {
            Some((tree, tid)) => Ok(Response::new(chunks(jaeger_spans(&tree, tid)))),
            None => Err(Status::not_found("trace not found")),
        }
    }

    async fn get_services(
        &self,
        _: Request<GetServicesRequest>,
    ) -> Result<Response<GetServicesResponse>, Status> {
        Ok(Response::new(GetServicesResponse {
            services: mode_names(),
        }))
    }

    async fn get_operations(
        &self,
        _: Request<GetOperationsRequest>,
    ) -> Result<Response<GetOperationsResponse>, Status> {
        let clusters = self.0.known_clusters().await.map_err(internal)?;
        Ok(Response::new(GetOperationsResponse {
            operations: clusters
                .iter()
                .map(|c| Operation {
                    name: c.clone(),
                    span_kind: String::new(),
                })
                .collect(),
            operation_names: clusters,
        }))
    }

    async fn find_traces(
        &self,
        req: Request<FindTracesRequest>,
    ) -> Result<Response<Chunks>, Status> {
        let s = query_search(req.into_inner().query)?;
        let found = self.0.search(&s).await.map_err(internal)?;
        let spans = found
            .iter()
            .flat_map(|r| jaeger_spans(&r.tree, Some(r.trace_id)))
            .collect();
        Ok(Response::new(chunks(spans)))
    }

    async fn find_trace_i_ds(
        &self,
        req: Request<FindTraceIDsRequest>,
    ) -> Result<Response<FindTraceIDsResponse>, Status> {
        let s = query_search(req.into_inner().query)?;
        let found = self.0.search(&s).await.map_err(internal)?;
        Ok(Response::new(FindTraceIDsResponse {
            trace_ids: found
                .iter()
                .map(|r| r.trace_id.to_be_bytes().to_vec())
                .collect(),
        }))
    }
}

/// Kelemetry's storage is written from Kubernetes, never by Jaeger.
const READ_ONLY: &str = "This is a read-only storage plugin: Kelemetry stores traces from Kubernetes audit data, not from Jaeger writers";

#[tonic::async_trait]
impl span_writer_plugin_server::SpanWriterPlugin for Reader {
    async fn write_span(
        &self,
        _: Request<WriteSpanRequest>,
    ) -> Result<Response<WriteSpanResponse>, Status> {
        Err(Status::unimplemented(READ_ONLY))
    }

    async fn close(
        &self,
        _: Request<CloseWriterRequest>,
    ) -> Result<Response<CloseWriterResponse>, Status> {
        Ok(Response::new(CloseWriterResponse {}))
    }
}

#[tonic::async_trait]
impl dependencies_reader_plugin_server::DependenciesReaderPlugin for Reader {
    async fn get_dependencies(
        &self,
        _: Request<GetDependenciesRequest>,
    ) -> Result<Response<GetDependenciesResponse>, Status> {
        Ok(Response::new(GetDependenciesResponse {
            dependencies: Vec::new(),
        }))
    }
}

#[tonic::async_trait]
impl plugin_capabilities_server::PluginCapabilities for Reader {
    async fn capabilities(
        &self,
        _: Request<CapabilitiesRequest>,
    ) -> Result<Response<CapabilitiesResponse>, Status> {
        Ok(Response::new(CapabilitiesResponse::default()))
    }
}
