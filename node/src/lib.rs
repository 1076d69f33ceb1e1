//! The Kelemetry node: CLI and configuration, the audit webhook, the query service
//! and its front ends (Jaeger HTTP, Jaeger gRPC storage), the peer RPC, metrics, and
//! the process lifecycle.
//!
//! Layout (dependencies point down this list, never up):
//! - [`main`](../kelemetry/index.html) and [`server`]: start-up in order, shutdown.
//! - [`cli`]: flags, grouped per subsystem; [`admin`]: the `kelemetry cluster` client;
//!   [`prestop`]: the StatefulSet preStop decision (drain on scale-down only).
//! - [`http`]: the webhook server (audit, `/redirect`, health, ring admin API), over
//!   [`app`]'s shared state.
//! - [`jaeger_http`] and [`grpc`]: the query front ends, over [`query`].
//! - [`query`]: the query service, over shard reads.
//! - [`peer`]: the peer RPC service and command forwarding.
//! - [`watchers`]: Kubernetes watchers (Events and objects) and their duties.
//! - [`tls`]: TLS of the client-facing listeners; [`auth`]: who may use the
//!   webhook, query and admin surfaces (token files).
//! - [`serve_loop`]: the HTTP servers' connection loop; [`metrics`], [`logging`]:
//!   observability; [`allocator`]: the process's allocator.

#![warn(missing_docs)]

pub mod admin;
pub mod allocator;
pub mod app;
pub mod auth;
pub mod cli;
pub mod data_dir;
pub mod grpc;
pub mod http;
pub mod jaeger_http;
pub mod logging;
pub mod metrics;
pub mod peer;
pub mod prestop;
pub mod query;
pub mod serve_loop;
pub mod server;
pub mod tls;
pub mod watchers;
