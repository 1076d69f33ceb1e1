//! The node's lifecycle: open storage, start the shard groups and actors, serve HTTP,
//! and shut down gracefully on SIGTERM or Ctrl-C.

use crate::cli::ServeArgs;
use anyhow::Context;
use kelemetry_actors::{IngestRouter, Pipeline, PipelineSettings};
use kelemetry_core::filter::AuditFilter;
use kelemetry_raft::{Engine, ShardSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// Everything request handlers share.
pub struct AppState {
    /// Submits commands to shard actors.
    pub router: IngestRouter,
    /// The shard groups (for reads and readiness).
    pub shards: Arc<ShardSet>,
    /// Audit filter.
    pub filter: AuditFilter,
    /// Cluster of `POST /audit`.
    pub default_cluster: Option<String>,
    /// Bounds concurrent webhook requests.
    pub webhook_permits: Arc<Semaphore>,
    /// Largest webhook body.
    pub max_body_bytes: usize,
    /// Window length in microseconds.
    pub span_ttl_us: i64,
    /// Set once shutdown begins; readiness fails and new writes are refused.
    pub shutting_down: AtomicBool,
    /// Most objects one result may follow links to.
    pub follow_limit: usize,
    /// Configured cluster names (`--cluster-names`).
    pub cluster_names: Vec<String>,
    /// How long rendered results can be opened again by trace ID, microseconds.
    pub result_ttl_us: i64,
}

/// How long leaders may take to appear at start-up before a warning is logged
/// (readiness fails until they do; the node serves meanwhile).
const LEADER_WAIT: Duration = Duration::from_secs(30);

/// A started node: its bound addresses and what shutting it down needs.
pub struct RunningNode {
    /// Bound address of the webhook server.
    pub http_addr: SocketAddr,
    /// Bound address of the query server.
    pub query_addr: SocketAddr,
    /// Bound address of the metrics server.
    pub metrics_addr: SocketAddr,
    /// Bound address of the Jaeger remote-storage gRPC server.
    pub grpc_addr: SocketAddr,
    state: Arc<AppState>,
    stop_tx: watch::Sender<bool>,
    servers: Vec<tokio::task::JoinHandle<()>>,
    agent: (
        ractor::ActorRef<crate::cluster::AgentMsg>,
        tokio::task::JoinHandle<()>,
    ),
    pipeline: Pipeline,
    shards: Arc<ShardSet>,
}

/// The HTTP address other nodes and the CLI can use: the advertised peer host with
/// the bound HTTP port.
fn advertised(peer_advertise: &str, http: SocketAddr) -> String {
    let host = peer_advertise
        .rsplit_once(':')
        .map_or(peer_advertise, |(h, _)| h);
    format!("{host}:{}", http.port())
}

/// Runs a node until SIGTERM or Ctrl-C.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let node = start(args).await?;
    wait_for_signal().await;
    node.shutdown().await
}

/// Opens storage, starts the shard groups, actors and servers.
pub async fn start(args: ServeArgs) -> anyhow::Result<RunningNode> {
    let node_id = args.resolved_node_id();
    if let Some(dir) = &args.ui_dir {
        anyhow::ensure!(
            dir.join("index.html").is_file(),
            "--ui-dir {}: no index.html there (point it at a Jaeger UI build)",
            dir.display()
        );
    }
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("--data-dir {}: cannot create", args.data_dir.display()))?;
    let engine = Engine::open(&args.data_dir.join("db")).with_context(|| {
        format!(
            "--data-dir {}: cannot open the database",
            args.data_dir.display()
        )
    })?;
    let settings = args.raft_settings().map_err(anyhow::Error::msg)?;
    tracing::info!(node_id, shards = args.shards, data_dir = %args.data_dir.display(), "opening shard groups");
    let shards = Arc::new(ShardSet::open(engine, &settings).await?);
    // Peers must reach this node's Raft groups before any shard can elect a leader.
    let (stop_tx, stop_rx) = watch::channel(false);
    let late_state = Arc::new(std::sync::OnceLock::new());
    let mut peer_server = tonic::transport::Server::builder();
    if let Some(tls) = &settings.tls {
        peer_server = peer_server
            .tls_config(tls.server_config())
            .context("--peer-tls-cert/--peer-tls-key: unusable certificate or key")?;
    }
    let peer_router = peer_server.add_service(crate::peer::PeerService::new(
        shards.clone(),
        late_state.clone(),
    ));
    let (peer_addr, peer) =
        serve_grpc("peer", args.peer_addr, peer_router, stop_rx.clone()).await?;
    // The write path starts at once: a restarted node may be elected leader of a
    // shard within a second, and peers forward that shard's writes to it from then on.
    let watched = shards.clone();
    tokio::spawn(async move {
        if watched.wait_for_leaders(LEADER_WAIT).await {
            tracing::info!("every local shard and the metadata group have a leader");
        } else {
            tracing::warn!("not every shard has a leader yet; /readyz reports which");
        }
    });
    let pipeline_settings = PipelineSettings {
        span_ttl: args.span_ttl,
        retention: args.retention,
        max_queued_commands: args.shard_queue_commands,
        max_batch_commands: args.max_batch_commands,
        ..PipelineSettings::default()
    };
    let forwarder: Arc<dyn kelemetry_actors::Forwarder> =
        Arc::new(crate::peer::PeerForwarder(shards.clone()));
    let pipeline = Pipeline::start(shards.clone(), &pipeline_settings, Some(forwarder)).await?;
    let state = Arc::new(AppState {
        router: pipeline.router(),
        shards: shards.clone(),
        filter: AuditFilter {
            exclude_types: args.exclude_types.clone(),
            exclude_user_agents: args.exclude_user_agents.clone(),
        },
        default_cluster: args.default_cluster.clone(),
        webhook_permits: Arc::new(Semaphore::new(args.max_concurrent_requests.max(1))),
        max_body_bytes: args.max_body_bytes,
        span_ttl_us: args.span_ttl.as_micros() as i64,
        shutting_down: AtomicBool::new(false),
        follow_limit: args.follow_limit,
        cluster_names: args.cluster_names.clone(),
        result_ttl_us: args.trace_cache_ttl.as_micros() as i64,
    });

    let _ = late_state.set(state.clone());
    let metrics_shards = shards.clone();
    let metrics_app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || crate::metrics::render(metrics_shards.clone())),
    );
    let (http_addr, http) = serve(
        "http",
        args.http_addr,
        crate::http::router(state.clone()),
        stop_rx.clone(),
    )
    .await?;
    let (query_addr, query) = serve(
        "query",
        args.query_addr,
        crate::query::router(state.clone(), args.ui_dir.as_deref()),
        stop_rx.clone(),
    )
    .await?;
    let (metrics_addr, metrics) =
        serve("metrics", args.metrics_addr, metrics_app, stop_rx.clone()).await?;
    let (grpc_addr, grpc) = serve_grpc(
        "grpc",
        args.grpc_addr,
        crate::grpc::router(state.clone()).await,
        stop_rx,
    )
    .await?;
    if let Some(path) = &args.addr_file {
        write_addr_file(
            path,
            http_addr,
            query_addr,
            metrics_addr,
            grpc_addr,
            peer_addr,
        )
        .with_context(|| format!("--addr-file {}: cannot write", path.display()))?;
    }
    let agent = crate::cluster::start(crate::cluster::AgentArgs {
        shards: shards.clone(),
        me: kelemetry_core::cluster::Member {
            id: node_id,
            peer_addr: settings.advertise_addr.clone(),
            http_addr: advertised(&settings.advertise_addr, http_addr),
            state: kelemetry_core::cluster::MemberState::Joining,
        },
        join: args.join.clone(),
        control: crate::cluster::controller::ControlSettings {
            replicas: args.replicas,
            dead_node_timeout: args.dead_node_timeout,
            max_moving: args.max_moving_shards as usize,
        },
    })
    .await?;
    tracing::info!(http = %http_addr, query = %query_addr, metrics = %metrics_addr, grpc = %grpc_addr, "kelemetry node ready");
    Ok(RunningNode {
        http_addr,
        query_addr,
        metrics_addr,
        grpc_addr,
        state,
        stop_tx,
        servers: vec![http, query, metrics, grpc, peer],
        agent,
        pipeline,
        shards,
    })
}

impl RunningNode {
    /// Graceful shutdown: refuse new writes, let in-flight requests finish their
    /// commits, stop the actors and Raft groups, flush RocksDB.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        tracing::info!("shutting down: refusing new writes, finishing in-flight commits");
        self.state.shutting_down.store(true, Ordering::SeqCst);
        let _ = self.stop_tx.send(true);
        for s in self.servers {
            let _ = s.await;
        }
        self.agent.0.stop(None);
        let _ = self.agent.1.await;
        self.pipeline.stop().await;
        self.shards.shutdown().await?;
        tracing::info!("shutdown complete");
        Ok(())
    }
}

/// Writes the bound addresses atomically (temporary file, then rename).
fn write_addr_file(
    path: &std::path::Path,
    http: SocketAddr,
    query: SocketAddr,
    metrics: SocketAddr,
    grpc: SocketAddr,
    peer: SocketAddr,
) -> std::io::Result<()> {
    let body = serde_json::json!({"http": http, "query": query, "metrics": metrics, "grpc": grpc, "peer": peer});
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, body.to_string())?;
    std::fs::rename(tmp, path)
}

async fn serve(
    name: &'static str,
    addr: SocketAddr,
    app: axum::Router,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({name} server)"))?;
    let bound = listener.local_addr()?;
    Ok((
        bound,
        tokio::spawn(async move {
            let result = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
            if let Err(e) = result {
                tracing::error!(server = name, error = %e, "server failed");
            }
        }),
    ))
}

async fn serve_grpc(
    name: &'static str,
    addr: SocketAddr,
    router: tonic::transport::server::Router,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({name} server)"))?;
    let bound = listener.local_addr()?;
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    Ok((
        bound,
        tokio::spawn(async move {
            let signal = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            if let Err(e) = router.serve_with_incoming_shutdown(incoming, signal).await {
                tracing::error!(server = name, error = %e, "server failed");
            }
        }),
    ))
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot install SIGTERM handler");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
