//! `kelemetry-sim`: a simulated Kubernetes API server for tests, the demo and load.

use anyhow::Context;
use clap::Parser;
use kelemetry_sim::apiserver::ApiServer;
use kelemetry_sim::audit::policy::Policy;
use kelemetry_sim::audit::webhook::{AuditSink, WebhookSettings};
use kelemetry_sim::audit::Level;
use kelemetry_sim::http::{self, auth, HttpState};
use kelemetry_sim::load::LoadSettings;
use kelemetry_sim::replay::Recording;
use kelemetry_sim::store::Store;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Simulator options.
#[derive(Parser, Debug)]
#[command(
    name = "kelemetry-sim",
    version,
    about = "A simulated Kubernetes API server that audits every request"
)]
struct Opts {
    /// Address to listen on (port 0: any free port; see --kubeconfig-out).
    #[arg(long, default_value = "127.0.0.1:6443")]
    addr: SocketAddr,
    /// Write a kubeconfig for kubectl and Kelemetry here once listening.
    #[arg(long)]
    kubeconfig_out: Option<PathBuf>,
    /// POST audit events in batches to this URL (e.g. http://127.0.0.1:8080/audit/sim).
    #[arg(long)]
    audit_webhook: Option<String>,
    /// How much each audit event records (for every request; see --audit-policy-file).
    #[arg(long, value_enum, default_value = "RequestResponse")]
    audit_level: Level,
    /// An audit.k8s.io/v1 Policy (YAML or JSON) deciding each request's level and
    /// omitted stages, instead of --audit-level.
    #[arg(long, conflicts_with = "audit_level")]
    audit_policy_file: Option<PathBuf>,
    /// Longest an audit event waits for its batch to fill.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    audit_batch_max_wait: Duration,
    /// Most audit events per batch.
    #[arg(long, default_value_t = 400)]
    audit_batch_max_size: usize,
    /// Audit events buffered before new ones are dropped (and counted).
    #[arg(long, default_value_t = 10_000)]
    audit_buffer_size: usize,
    /// Simulated nodes (kubelets that start the Pods bound to them and renew leases).
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Changes kept for watches to resume from; older resourceVersions get 410 Gone.
    #[arg(long, default_value_t = 10_000)]
    watch_history: usize,
    /// A recorded watch stream (kspan capture format) that `POST /sim/replay` writes
    /// into the store; the controllers do not run, the recording is the cluster.
    #[arg(long)]
    replay: Option<PathBuf>,
    /// Load mode (off unless --load-deployments is above 0).
    #[command(flatten)]
    load: LoadSettings,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let opts = Opts::parse();
    let audit = match &opts.audit_webhook {
        Some(url) => AuditSink::start(WebhookSettings {
            url: url.clone(),
            max_wait: opts.audit_batch_max_wait,
            max_batch: opts.audit_batch_max_size.max(1),
            buffer: opts.audit_buffer_size,
            initial_backoff: Duration::from_millis(200),
            max_attempts: 10,
        }),
        None => AuditSink::disabled(),
    };
    let recording = match &opts.replay {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--replay {}: cannot read", path.display()))?;
            let rec =
                Recording::parse(&text).with_context(|| format!("--replay {}", path.display()))?;
            Some(Arc::new(rec))
        }
        None => None,
    };
    let store = Arc::new(Store::new(opts.watch_history));
    let policy = match &opts.audit_policy_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--audit-policy-file {}: cannot read", path.display()))?;
            Policy::parse(&text)
                .with_context(|| format!("--audit-policy-file {}", path.display()))?
        }
        None => Policy::uniform(opts.audit_level),
    };
    let api = Arc::new(ApiServer::new(store, audit, policy));
    if recording.is_none() {
        kelemetry_sim::controllers::start_all(&api, opts.nodes);
        tokio::spawn(kelemetry_sim::load::run(api.clone(), opts.load));
    }
    let listener = tokio::net::TcpListener::bind(opts.addr)
        .await
        .with_context(|| format!("--addr {}: cannot listen", opts.addr))?;
    let bound = listener.local_addr()?;
    let server = format!("http://{bound}");
    if let Some(path) = &opts.kubeconfig_out {
        kelemetry_sim::kubeconfig::write(path, &server, auth::ADMIN_USER, auth::ADMIN_TOKEN)
            .with_context(|| format!("--kubeconfig-out {}: cannot write", path.display()))?;
    }
    let audit_policy = opts.audit_policy_file.as_ref().map_or_else(
        || opts.audit_level.as_str().to_string(),
        |p| p.display().to_string(),
    );
    tracing::info!(%server, audit_policy, "kelemetry-sim listening");
    let state = Arc::new(HttpState {
        api,
        server_addr: bound.to_string(),
        recording,
    });
    axum::serve(
        listener,
        http::router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
