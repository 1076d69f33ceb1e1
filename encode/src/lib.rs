//! Encoders: one span tree (`kelemetry_core::display::tree::Span`, a rendered result
//! or a stored object trace) in each wire format Kelemetry speaks. They sit below
//! both the query front ends (HTTP v1 and v3, gRPC storage v1 and v2) and the
//! exporters, so neither depends on the other to share a mapping.
//!
//! - [`jaeger_json`]: the Jaeger UI's JSON (`/api/traces`).
//! - [`api_v2`]: Jaeger's protobuf model (storage v1 gRPC) and protobuf timestamps.
//! - [`otlp`]: OTLP `TracesData` (storage v2 gRPC, `/api/v3`, OTLP export).
//! - [`otlp_json`]: OTLP/JSON as `/api/v3` renders it.

#![warn(missing_docs)]

pub mod api_v2;
pub mod jaeger_json;
pub mod otlp;
pub mod otlp_json;
