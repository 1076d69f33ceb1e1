//! The Kelemetry node: CLI and configuration, the audit webhook, the Jaeger query
//! API, health and metrics endpoints, and the process lifecycle.

pub mod admin;
pub mod cli;
pub mod cluster;
pub mod demo;
pub mod grpc;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod peer;
pub mod query;
pub mod reads;
pub mod server;
pub mod workload;
