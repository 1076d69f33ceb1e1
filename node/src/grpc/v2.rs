//! `jaeger.storage.v2`: what Jaeger v2's `grpc` storage backend calls.

use super::{internal, search, trace_id_from_bytes};
use crate::query::QueryService;
use crate::query::{mode_names, Search};
use kelemetry_encode::api_v2::{micros, timestamp};
use kelemetry_encode::otlp::traces_data;
use kelemetry_proto::jaeger::storage::v2::*;
use kelemetry_proto::opentelemetry::proto::trace::v1::TracesData;
use std::pin::Pin;
use std::sync::Arc;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

/// The v2 services over the query service.
#[derive(Clone)]
pub struct Reader(pub Arc<QueryService>);

type Traces = Pin<Box<dyn Stream<Item = Result<TracesData, Status>> + Send>>;

/// One `TracesData` per trace: chunks never mix traces.
fn stream(items: Vec<TracesData>) -> Traces {
    Box::pin(tokio_stream::iter(items.into_iter().map(Ok)))
}

fn string_value(v: Option<AnyValue>) -> String {
    match v.and_then(|v| v.value) {
        Some(any_value::Value::StringValue(s)) => s,
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        _ => String::new(),
    }
}

fn query_search(q: Option<TraceQueryParameters>) -> Result<Search, Status> {
    let q = q.ok_or_else(|| Status::invalid_argument("query is required"))?;
    let attributes = q
        .attributes
        .into_iter()
        .map(|kv| (kv.key, string_value(kv.value)))
        .collect();
    search(
        &q.service_name,
        &q.operation_name,
        attributes,
        q.start_time_min,
        q.start_time_max,
        q.search_depth,
    )
}

#[tonic::async_trait]
impl trace_reader_server::TraceReader for Reader {
    type GetTracesStream = Traces;
    type FindTracesStream = Traces;

    async fn get_traces(&self, req: Request<GetTracesRequest>) -> Result<Response<Traces>, Status> {
        let mut out = Vec::new();
        for p in &req.get_ref().query {
            let id = trace_id_from_bytes(&p.trace_id)?;
            if let Some((tree, tid)) = self.0.trace_tree(id).await.map_err(internal)? {
                out.push(traces_data(&tree, tid));
            }
        }
        Ok(Response::new(stream(out)))
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
                .into_iter()
                .map(|name| Operation {
                    name,
                    span_kind: String::new(),
                })
                .collect(),
        }))
    }

    async fn find_traces(
        &self,
        req: Request<FindTracesRequest>,
    ) -> Result<Response<Traces>, Status> {
        let s = query_search(req.into_inner().query)?;
        let found = self.0.search(&s).await.map_err(internal)?;
        Ok(Response::new(stream(
            found
                .iter()
                .map(|r| traces_data(&r.tree, Some(r.trace_id)))
                .collect(),
        )))
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
                .map(|r| FoundTraceId {
                    trace_id: r.trace_id.to_be_bytes().to_vec(),
                    start: Some(timestamp(r.tree.start_us)),
                    end: Some(timestamp(r.tree.end_us())),
                })
                .collect(),
        }))
    }
}

#[tonic::async_trait]
impl dependency_reader_server::DependencyReader for Reader {
    async fn get_dependencies(
        &self,
        req: Request<GetDependenciesRequest>,
    ) -> Result<Response<GetDependenciesResponse>, Status> {
        let r = req.get_ref();
        if let (Some(s), Some(e)) = (&r.start_time, &r.end_time) {
            if micros(s) > micros(e) {
                return Err(Status::invalid_argument("start_time is after end_time"));
            }
        }
        Ok(Response::new(GetDependenciesResponse {
            dependencies: Vec::new(),
        }))
    }
}
