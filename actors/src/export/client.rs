//! The OTLP client: opentelemetry-otlp's span exporter over gRPC or HTTP/protobuf,
//! with the endpoint's headers and TLS options. An SDK exporter carries one
//! resource, and our spans name their service (`object`, `audit`, `event`, `link`)
//! as the Jaeger process does, so there is one exporter per service name.

use opentelemetry_otlp::tonic_types::metadata::MetadataMap;
use opentelemetry_otlp::tonic_types::transport::{Certificate, ClientTlsConfig};
use opentelemetry_otlp::{RetryPolicy, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::trace::{SpanData, SpanExporter as _};
use opentelemetry_sdk::Resource;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The transport of the OTLP endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// OTLP/gRPC (`grpc`; port 4317 by convention).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (`http/protobuf`; port 4318, path `/v1/traces`).
    HttpProtobuf,
}

impl std::str::FromStr for OtlpProtocol {
    type Err = String;

    /// The names the OpenTelemetry specification uses (`OTEL_EXPORTER_OTLP_PROTOCOL`).
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "grpc" => Ok(Self::Grpc),
            "http/protobuf" => Ok(Self::HttpProtobuf),
            other => Err(format!("{other:?}: expected grpc or http/protobuf")),
        }
    }
}

/// Where and how spans are exported.
#[derive(Clone, Debug)]
pub struct ExportSettings {
    /// Endpoint URL (`http://collector:4317`, `https://…/v1/traces`).
    pub endpoint: String,
    /// Transport.
    pub protocol: OtlpProtocol,
    /// Headers (gRPC metadata) sent with every request, such as an API key.
    pub headers: Vec<(String, String)>,
    /// Deadline of one export request.
    pub timeout: Duration,
    /// PEM file of the CA that signs the endpoint's certificate (for `https` with a
    /// private CA; the system's roots are used otherwise).
    pub ca_file: Option<PathBuf>,
    /// Most spans waiting for export per shard.
    pub backlog: u32,
}

/// Why the exporter cannot be built or a batch was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The settings do not make an exporter.
    #[error("--otlp-{flag}: {message}")]
    Config {
        /// The flag at fault (without `--otlp-`).
        flag: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The endpoint did not acknowledge a batch.
    #[error("the OTLP endpoint did not accept the batch: {0}")]
    Refused(String),
}

/// One exporter per service name, built on first use.
pub struct OtlpClient {
    settings: ExportSettings,
    ca: Option<Certificate>,
    exporters: Mutex<HashMap<String, Arc<opentelemetry_otlp::SpanExporter>>>,
}

impl std::fmt::Debug for OtlpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpClient")
            .field("endpoint", &self.settings.endpoint)
            .field("protocol", &self.settings.protocol)
            .finish()
    }
}

impl OtlpClient {
    /// Checks the settings (and reads the CA file) so a bad flag fails at start-up.
    pub fn new(settings: ExportSettings) -> Result<Self, ExportError> {
        let ca = match &settings.ca_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| ExportError::Config {
                    flag: "ca-file",
                    message: format!("{}: {e}", path.display()),
                })?;
                Some(Certificate::from_pem(pem))
            }
            None => None,
        };
        if !settings.endpoint.starts_with("http://") && !settings.endpoint.starts_with("https://") {
            return Err(ExportError::Config {
                flag: "endpoint",
                message: format!(
                    "{:?}: expected an http:// or https:// URL",
                    settings.endpoint
                ),
            });
        }
        let client = Self {
            settings,
            ca,
            exporters: Mutex::new(HashMap::new()),
        };
        client.exporter("object")?;
        Ok(client)
    }

    /// The settings it was built with.
    pub fn settings(&self) -> &ExportSettings {
        &self.settings
    }

    fn exporter(
        &self,
        service: &str,
    ) -> Result<Arc<opentelemetry_otlp::SpanExporter>, ExportError> {
        let mut exporters = self.exporters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = exporters.get(service) {
            return Ok(e.clone());
        }
        let mut exporter = self.build()?;
        exporter.set_resource(
            &Resource::builder_empty()
                .with_service_name(service.to_string())
                .build(),
        );
        let exporter = Arc::new(exporter);
        exporters.insert(service.to_string(), exporter.clone());
        Ok(exporter)
    }

    fn build(&self) -> Result<opentelemetry_otlp::SpanExporter, ExportError> {
        let s = &self.settings;
        let config = |message: String| ExportError::Config {
            flag: "endpoint",
            message,
        };
        // The outbox retries until the endpoint acknowledges; the SDK's own retries
        // would only hold up the other shards' exports.
        let no_retry = RetryPolicy::disabled();
        let built = match s.protocol {
            OtlpProtocol::Grpc => {
                let mut metadata = MetadataMap::new();
                for (k, v) in &s.headers {
                    let key = k.parse::<tonic::metadata::MetadataKey<_>>().map_err(|e| {
                        ExportError::Config {
                            flag: "header",
                            message: format!("{k:?}: {e}"),
                        }
                    })?;
                    let value = v.parse().map_err(|e| ExportError::Config {
                        flag: "header",
                        message: format!("{k}: {e}"),
                    })?;
                    metadata.insert(key, value);
                }
                let mut b = opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(s.endpoint.clone())
                    .with_timeout(s.timeout)
                    .with_metadata(metadata)
                    .with_retry_policy(no_retry);
                if s.endpoint.starts_with("https://") {
                    let mut tls = ClientTlsConfig::new().with_native_roots();
                    if let Some(ca) = &self.ca {
                        tls = tls.ca_certificate(ca.clone());
                    }
                    b = b.with_tls_config(tls);
                }
                b.build()
            }
            OtlpProtocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(s.endpoint.clone())
                .with_timeout(s.timeout)
                .with_headers(s.headers.iter().cloned().collect())
                .with_retry_policy(no_retry)
                .build(),
        };
        built.map_err(|e| config(e.to_string()))
    }

    /// Sends `spans`, grouped by service; `Ok` once the endpoint took every group.
    pub async fn send(&self, spans: Vec<(String, SpanData)>) -> Result<(), ExportError> {
        let mut groups: HashMap<String, Vec<SpanData>> = HashMap::new();
        for (service, span) in spans {
            groups.entry(service).or_default().push(span);
        }
        for (service, batch) in groups {
            let exporter = self.exporter(&service)?;
            exporter
                .export(batch)
                .await
                .map_err(|e| ExportError::Refused(e.to_string()))?;
        }
        Ok(())
    }
}
