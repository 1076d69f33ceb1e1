//! The node's lifecycle: open storage, start the shard groups and actors, serve HTTP,
//! and shut down gracefully on SIGTERM or Ctrl-C.

use crate::app::AppState;
use crate::cli::ServeArgs;
use crate::peer::{PeerForwarder, PeerService};
use crate::query::QueryService;
use anyhow::Context;
use kelemetry_actors::export::client::OtlpClient;
use kelemetry_actors::ring::{AgentArgs, AgentMsg, ControlSettings};
use kelemetry_actors::{Pipeline, PipelineSettings};
use kelemetry_core::filter::AuditFilter;
use kelemetry_core::ring::{Member, MemberState};
use kelemetry_raft::ShardSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

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
    shutting_down: Arc<AtomicBool>,
    stop_tx: watch::Sender<bool>,
    servers: Vec<tokio::task::JoinHandle<()>>,
    agent: (ractor::ActorRef<AgentMsg>, tokio::task::JoinHandle<()>),
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

/// Reset streams a peer connection may have pending before h2 closes it (see the
/// peer server in [`start`]).
const PEER_PENDING_RESET_STREAMS: usize = 10_000;

/// The peers a node asks for admission (and, after losing its data, readmission):
/// its `--join` list, or the other `--peers` of a fixed ring.
fn rejoin_addresses(join: &[String], settings: &kelemetry_raft::RaftSettings) -> Vec<String> {
    if !join.is_empty() {
        return join.to_vec();
    }
    settings
        .peers
        .iter()
        .filter(|(id, _)| **id != settings.node_id)
        .map(|(_, addr)| addr.clone())
        .collect()
}

/// Runs a node until SIGTERM or Ctrl-C.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let node = start(args).await?;
    wait_for_signal().await;
    node.shutdown().await
}

/// Opens storage, starts the shard groups, actors and servers, each built from what
/// the steps before it made: storage, shard groups, write path, services, listeners,
/// then the ring agent.
pub async fn start(args: ServeArgs) -> anyhow::Result<RunningNode> {
    let node_id = args.resolved_node_id();
    // Token files and certificates are read first: a wrong path fails start-up
    // before any data opens.
    let guards = guards(&args.auth)?;
    let tls = match (&args.listen.tls_cert, &args.listen.tls_key) {
        (Some(cert), Some(key)) => Some(crate::tls::ServingTls::load(
            cert,
            key,
            args.listen.http_client_ca.as_deref(),
        )?),
        _ => None,
    };
    if let Some(pattern) = &args.ingest.redact_pattern {
        if kelemetry_core::redact::set_pattern(pattern.clone()).is_err() {
            tracing::warn!("a redaction pattern was already set in this process; keeping it");
        }
    }
    let (node, listen, ring, ingest, query) = (
        &args.node,
        &args.listen,
        &args.ring,
        &args.ingest,
        &args.query,
    );
    if let Some(dir) = &query.ui_dir {
        anyhow::ensure!(
            dir.join("index.html").is_file(),
            "--ui-dir {}: no index.html there (point it at a Jaeger UI build)",
            dir.display()
        );
    }
    std::fs::create_dir_all(&node.data_dir)
        .with_context(|| format!("--data-dir {}: cannot create", node.data_dir.display()))?;
    let memory = kelemetry_raft::EngineMemory {
        block_cache_bytes: (node.rocksdb_block_cache_mib as usize) << 20,
        write_buffer_bytes: (node.rocksdb_write_buffer_mib as usize) << 20,
        cache_index_and_filter_blocks: node.rocksdb_cache_index_and_filters,
    };
    let settings = args.raft_settings()?;
    let rejoin_via = rejoin_addresses(&ring.join, &settings);
    let engine = crate::data_dir::open(
        &node.data_dir,
        memory,
        node.verify_data_on_start,
        !rejoin_via.is_empty(),
    )?;
    crate::data_dir::stop_on_storage_failure(&engine, &node.data_dir);
    // Checked before any storage is opened, so a bad --otlp-* flag fails at once.
    let exporter = match args.export.settings() {
        Some(s) => {
            tracing::info!(endpoint = %s.endpoint, protocol = ?s.protocol, "exporting spans over OTLP");
            Some(Arc::new(OtlpClient::new(s)?))
        }
        None => None,
    };
    tracing::info!(node_id, shards = node.shards, data_dir = %node.data_dir.display(), "opening shard groups");
    let shards = Arc::new(ShardSet::open(engine, &settings).await?);
    shards.spawn_peer_pings();
    let disk = kelemetry_raft::disk_guard::DiskGuard::new(
        &node.data_dir,
        node.min_free_disk_mib.saturating_mul(1 << 20),
    );
    disk.spawn_watch();
    shards.guard_disk(disk);

    // The write path starts at once: a restarted node may be elected leader of a
    // shard within a second, and peers forward that shard's writes to it from then on.
    let pipeline_settings = PipelineSettings {
        span_ttl: ingest.span_ttl,
        retention: ingest.retention,
        max_queued_commands: ingest.shard_queue_commands,
        max_batch_commands: ingest.max_batch_commands,
        exporter,
        ..PipelineSettings::default()
    };
    let forwarder: Arc<dyn kelemetry_actors::Forwarder> =
        Arc::new(PeerForwarder::new(shards.clone()));
    let pipeline = Pipeline::start(shards.clone(), &pipeline_settings, Some(forwarder)).await?;

    // Peers must reach this node's Raft groups before any shard can elect a leader.
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every Raft group shares one HTTP/2 connection per peer, and openraft drops an
    // AppendEntries it gave up on (100 ms), which resets its stream. After a
    // partition heals, dozens of groups do so at once; h2's guard against reset
    // floods (20 pending resets) then closed the whole connection with GOAWAY
    // (logged as "remotely-reset pending-accept streams reached limit"), failing
    // every group's calls to that peer at once; the chaos runs hit it at most
    // faults. Peers are other nodes, not the public, so the guard is relaxed on
    // this port only.
    let mut peer_server = tonic::transport::Server::builder()
        .http2_max_pending_accept_reset_streams(Some(PEER_PENDING_RESET_STREAMS))
        .initial_stream_window_size(kelemetry_raft::PEER_STREAM_WINDOW)
        .initial_connection_window_size(kelemetry_raft::PEER_CONNECTION_WINDOW);
    if let Some(tls) = &settings.tls {
        peer_server = peer_server
            .tls_config(tls.server_config())
            .context("--peer-tls-cert/--peer-tls-key: unusable certificate or key")?;
    }
    let peer_router = peer_server.add_service(PeerService::new(
        shards.clone(),
        pipeline.router(),
        stop_rx.clone(),
    ));
    let (peer_addr, peer) =
        serve_grpc("peer", listen.peer_addr, peer_router, stop_rx.clone()).await?;
    let watched = shards.clone();
    tokio::spawn(async move {
        if watched.wait_for_leaders(LEADER_WAIT).await {
            tracing::info!("every local shard and the metadata group have a leader");
        } else {
            tracing::warn!("not every shard has a leader yet; /readyz reports which");
        }
    });

    let watched = args.kube.sources();
    let watched_clusters: Vec<String> = watched.iter().map(|c| c.name.clone()).collect();
    let mut cluster_names = query.cluster_names.clone();
    cluster_names.extend(watched.iter().map(|c| c.name.clone()));
    let time_limits = kelemetry_core::audit::TimeLimits {
        retention: ingest.retention,
        max_skew: ingest.max_clock_skew,
    };
    let object_settings = crate::watchers::objects::WatchSettings {
        filter: AuditFilter {
            exclude_types: ingest.exclude_types.clone(),
            exclude_user_agents: Vec::new(),
        },
        discovery_interval: args.kube.discovery_interval,
        event_times: time_limits,
    };
    let discovered = crate::watchers::discovery::Discovered::default();
    let watchers = tokio::spawn(crate::watchers::duties::run(
        watched,
        object_settings,
        shards.clone(),
        pipeline.router(),
        discovered.clone(),
        stop_rx.clone(),
    ));
    let query_service = Arc::new(QueryService {
        shards: shards.clone(),
        router: pipeline.router(),
        span_ttl_us: ingest.span_ttl.as_micros() as i64,
        follow_limit: query.follow_limit,
        cluster_names,
        result_ttl_us: query.trace_cache_ttl.as_micros() as i64,
    });
    let shutting_down = Arc::new(AtomicBool::new(false));
    let body_budget = crate::http::body_budget::BodyBudget::new(ingest.max_inflight_body_bytes);
    body_budget.report();
    let state = Arc::new(AppState {
        router: pipeline.router(),
        shards: shards.clone(),
        query: query_service.clone(),
        filter: AuditFilter {
            exclude_types: ingest.exclude_types.clone(),
            exclude_user_agents: ingest.exclude_user_agents.clone(),
        },
        default_cluster: ingest.default_cluster.clone(),
        webhook_permits: Arc::new(Semaphore::new(ingest.max_concurrent_requests.max(1))),
        rate_limits: crate::http::rate_limit::RateLimits::new(
            ingest.cluster_rate_limit,
            ingest.client_rate_limit,
        ),
        max_body_bytes: ingest.max_body_bytes,
        body_budget,
        time_limits,
        shutting_down: shutting_down.clone(),
        watched_clusters,
        discovered,
        diff_wait_us: args.kube.diff_wait.as_micros() as i64,
    });

    let metrics_shards = shards.clone();
    // The probes are served here too: plain and unauthenticated like /metrics, so a
    // kubelet can probe a node whose webhook port requires client certificates; and
    // the admin API, behind its own gate, for the CLI and the preStop drain.
    let metrics_app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || crate::metrics::render(metrics_shards.clone())),
        )
        .route("/healthz", axum::routing::get(crate::http::health::healthz))
        .route("/readyz", axum::routing::get(crate::http::health::readyz))
        .merge(crate::http::admin_routes(guards.admin.clone()))
        .with_state(state.clone());
    let (http_addr, http) = serve(
        "http",
        listen.http_addr,
        crate::http::router(state, guards.clone()),
        tls.as_ref().map(|t| t.webhook_config()).transpose()?,
        stop_rx.clone(),
    )
    .await?;
    let (query_addr, query_server) = serve(
        "query",
        listen.query_addr,
        crate::jaeger_http::router(
            query_service.clone(),
            query.ui_dir.as_deref(),
            guards.query.clone(),
        ),
        tls.as_ref().map(|t| t.query_config()).transpose()?,
        stop_rx.clone(),
    )
    .await?;
    let (metrics_addr, metrics) = serve(
        "metrics",
        listen.metrics_addr,
        metrics_app,
        None,
        stop_rx.clone(),
    )
    .await?;
    let (grpc_addr, grpc) = serve_grpc(
        "grpc",
        listen.grpc_addr,
        crate::grpc::router(
            query_service,
            guards.query,
            tls.as_ref().map(|t| t.grpc_config()),
        )
        .await?,
        stop_rx,
    )
    .await?;
    let bound = BoundAddrs {
        http: http_addr,
        query: query_addr,
        metrics: metrics_addr,
        grpc: grpc_addr,
        peer: peer_addr,
    };
    if let Some(path) = &node.addr_file {
        bound
            .write(path)
            .with_context(|| format!("--addr-file {}: cannot write", path.display()))?;
    }
    let agent = kelemetry_actors::ring::start(AgentArgs {
        shards: shards.clone(),
        me: Member {
            id: node_id,
            peer_addr: settings.advertise_addr.clone(),
            http_addr: advertised(&settings.advertise_addr, http_addr),
            state: MemberState::Joining,
        },
        // A fixed ring's node joins nothing, unless it lost its data: then it asks
        // the other peers to readmit it and joins through them.
        join: if shards.awaits_readmission() {
            rejoin_via
        } else {
            ring.join.clone()
        },
        control: ControlSettings {
            replicas: ring.replicas,
            dead_node_timeout: ring.dead_node_timeout,
            max_moving: ring.max_moving_shards as usize,
        },
    })
    .await?;
    tracing::info!(http = %http_addr, query = %query_addr, metrics = %metrics_addr, grpc = %grpc_addr, "kelemetry node ready");
    Ok(RunningNode {
        http_addr,
        query_addr,
        metrics_addr,
        grpc_addr,
        shutting_down,
        stop_tx,
        servers: vec![http, query_server, metrics, grpc, peer, watchers],
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
        self.shutting_down.store(true, Ordering::SeqCst);
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

/// The addresses the servers bound (with port 0, the ones the OS chose).
struct BoundAddrs {
    http: SocketAddr,
    query: SocketAddr,
    metrics: SocketAddr,
    grpc: SocketAddr,
    peer: SocketAddr,
}

impl BoundAddrs {
    /// Writes them as JSON, atomically (temporary file, then rename).
    fn write(&self, path: &std::path::Path) -> std::io::Result<()> {
        let body = serde_json::json!({"http": self.http, "query": self.query,
            "metrics": self.metrics, "grpc": self.grpc, "peer": self.peer});
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, body.to_string())?;
        std::fs::rename(tmp, path)
    }
}

async fn serve(
    name: &'static str,
    addr: SocketAddr,
    app: axum::Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({name} server)"))?;
    let bound = listener.local_addr()?;
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    let task = match tls {
        None => tokio::spawn(crate::serve_loop::serve(listener, app, stopped)),
        Some(config) => {
            let listener = crate::tls::TlsListener::new(listener, config)?;
            tokio::spawn(crate::serve_loop::serve(listener, app, stopped))
        }
    };
    Ok((bound, task))
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

/// The gates of the node's surfaces from the token-file flags. The admin API is
/// closed when any other surface needs a token and it has none of its own: turning
/// authentication on must not leave drain open to anyone.
fn guards(auth: &crate::cli::AuthArgs) -> anyhow::Result<crate::http::HttpGuards> {
    use crate::auth::{Gate, Guard};
    let webhook = Gate::from_file(auth.webhook_token_file.as_deref(), "--webhook-token-file")?;
    let query = Gate::from_file(auth.query_token_file.as_deref(), "--query-token-file")?;
    let admin = match (&auth.admin_token_file, &webhook, &query) {
        (Some(path), _, _) => Gate::from_file(Some(path), "--admin-token-file")?,
        (None, Gate::Open, Gate::Open) => Gate::Open,
        (None, _, _) => Gate::Closed(
            "the admin API is off while authentication is on: start the node with --admin-token-file",
        ),
    };
    Ok(crate::http::HttpGuards {
        webhook: Guard {
            gate: webhook,
            realm: "webhook",
        },
        query: Guard {
            gate: query,
            realm: "query",
        },
        admin: Guard {
            gate: admin,
            realm: "admin",
        },
    })
}
