//! The flags of OTLP export (`kelemetry serve --otlp-*`).

use clap::Args;
use kelemetry_actors::export::client::{ExportSettings, OtlpProtocol};
use std::path::PathBuf;
use std::time::Duration;

/// Sending every stored span to an OTLP endpoint as well (Tempo, Jaeger, a collector).
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "OTLP export")]
pub struct ExportArgs {
    /// Export every stored span to this OTLP endpoint (`http://collector:4317` for
    /// gRPC, `http://collector:4318/v1/traces` for HTTP); off when unset.
    #[arg(long, env = "KELEMETRY_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// OTLP transport: `grpc` or `http/protobuf`.
    #[arg(long, env = "KELEMETRY_OTLP_PROTOCOL", default_value = "grpc", value_parser = clap::builder::ValueParser::new(|s: &str| s.parse::<OtlpProtocol>()))]
    pub otlp_protocol: OtlpProtocol,
    /// A header (gRPC metadata) sent with every export, as `KEY=VALUE` (repeatable),
    /// such as an API key.
    #[arg(long = "otlp-header", env = "KELEMETRY_OTLP_HEADERS", value_delimiter = ',', value_parser = header)]
    pub otlp_headers: Vec<(String, String)>,
    /// Deadline of one export request.
    #[arg(long, env = "KELEMETRY_OTLP_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub otlp_timeout: Duration,
    /// PEM file of the CA that signs an `https` endpoint's certificate (the system's
    /// roots are trusted too).
    #[arg(long, env = "KELEMETRY_OTLP_CA_FILE")]
    pub otlp_ca_file: Option<PathBuf>,
    /// Most spans per shard waiting for the endpoint; while it is full (the endpoint
    /// down for long), new spans are stored but not exported
    /// (`kelemetry_export_dropped_total`).
    #[arg(long, env = "KELEMETRY_OTLP_MAX_BACKLOG", default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub otlp_max_backlog: u32,
}

fn header(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(format!("{s:?}: expected KEY=VALUE")),
    }
}

impl ExportArgs {
    /// The export settings, if an endpoint is set.
    pub fn settings(&self) -> Option<ExportSettings> {
        Some(ExportSettings {
            endpoint: self.otlp_endpoint.clone()?,
            protocol: self.otlp_protocol,
            headers: self.otlp_headers.clone(),
            timeout: self.otlp_timeout,
            ca_file: self.otlp_ca_file.clone(),
            backlog: self.otlp_max_backlog,
        })
    }
}
