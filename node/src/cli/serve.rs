//! The flags of `kelemetry serve`, one group per subsystem. Every flag also reads a
//! `KELEMETRY_*` environment variable.

use super::{cluster_name, duration, peer, Cli, Command, LogFormat};
use clap::{Args, Parser};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Flags of `kelemetry serve`.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// This node: data, identity, logs.
    #[command(flatten)]
    pub node: NodeArgs,
    /// Listeners.
    #[command(flatten)]
    pub listen: ListenArgs,
    /// Ring membership and replication.
    #[command(flatten)]
    pub ring: RingArgs,
    /// Webhook and storage.
    #[command(flatten)]
    pub ingest: IngestArgs,
    /// Query side.
    #[command(flatten)]
    pub query: QueryArgs,
    /// Kubernetes clusters to watch.
    #[command(flatten)]
    pub kube: KubeArgs,
    /// OTLP export.
    #[command(flatten)]
    pub export: super::export::ExportArgs,
    /// Who may use the webhook, the query APIs and the admin API.
    #[command(flatten)]
    pub auth: AuthArgs,
}

/// The Kubernetes clusters whose Events the ring watches (audit events arrive
/// through the webhook either way).
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Kubernetes")]
pub struct KubeArgs {
    /// A cluster to watch, as `NAME=KUBECONFIG` (repeatable); NAME is what spans and
    /// the webhook path `/audit/NAME` carry.
    #[arg(long = "cluster", env = "KELEMETRY_CLUSTERS", value_delimiter = ',', value_parser = cluster_source)]
    pub clusters: Vec<(String, PathBuf)>,
    /// Watch the cluster this node runs in (its service account), under this name.
    #[arg(long, env = "KELEMETRY_IN_CLUSTER", value_parser = cluster_name)]
    pub in_cluster: Option<String>,
    /// How long an audit event of a watched cluster without a usable response object
    /// (Metadata-level audit, a `scale` patch) waits in its shard for the watched change
    /// that carries its diff or snapshot before it is written without one.
    #[arg(long, env = "KELEMETRY_DIFF_WAIT", default_value = "15s", value_parser = humantime::parse_duration)]
    pub diff_wait: Duration,
    /// How often the object watchers rediscover the API resources of a cluster (a new
    /// CustomResourceDefinition also triggers a rediscovery at once).
    #[arg(long, env = "KELEMETRY_DISCOVERY_INTERVAL", default_value = "5m", value_parser = humantime::parse_duration)]
    pub discovery_interval: Duration,
}

fn cluster_source(s: &str) -> Result<(String, PathBuf), String> {
    let (name, path) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected NAME=KUBECONFIG"))?;
    cluster_name(name)?;
    if path.is_empty() {
        return Err(format!("{s:?}: the kubeconfig path is empty"));
    }
    Ok((name.to_string(), PathBuf::from(path)))
}

impl KubeArgs {
    /// The clusters to watch, kubeconfig ones first.
    pub fn sources(&self) -> Vec<crate::watchers::ClusterSource> {
        let mut out: Vec<crate::watchers::ClusterSource> = self
            .clusters
            .iter()
            .map(|(name, path)| crate::watchers::ClusterSource {
                name: name.clone(),
                kubeconfig: Some(path.clone()),
            })
            .collect();
        out.extend(
            self.in_cluster
                .iter()
                .map(|name| crate::watchers::ClusterSource {
                    name: name.clone(),
                    kubeconfig: None,
                }),
        );
        out
    }
}

/// This node: its data, identity and logs.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Node")]
pub struct NodeArgs {
    /// Directory of this node's RocksDB (created if missing).
    #[arg(long, env = "KELEMETRY_DATA_DIR", default_value = "./kelemetry-data")]
    pub data_dir: PathBuf,
    /// Stable node id; defaults to the StatefulSet ordinal of the hostname (`name-N`),
    /// else 0.
    #[arg(long, env = "KELEMETRY_NODE_ID")]
    pub node_id: Option<u64>,
    /// Number of shards; fixed when the data directory is first initialised.
    #[arg(long, env = "KELEMETRY_SHARDS", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub shards: u32,
    /// Log format.
    #[arg(long, env = "KELEMETRY_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Once listening, write the bound addresses as JSON to this file (useful with
    /// port 0: `{"http": "127.0.0.1:41234", "query": ..., "metrics": ...}`).
    #[arg(long, env = "KELEMETRY_ADDR_FILE")]
    pub addr_file: Option<PathBuf>,
    /// RocksDB block cache, MiB. Reads of the write path hit it little; query-heavy
    /// nodes over a large store gain from more.
    #[arg(long, env = "KELEMETRY_ROCKSDB_BLOCK_CACHE_MIB", default_value_t = 32, value_parser = clap::value_parser!(u32).range(8..))]
    pub rocksdb_block_cache_mib: u32,
    /// RocksDB memtable size, MiB (at most two: one filling, one being flushed).
    #[arg(long, env = "KELEMETRY_ROCKSDB_WRITE_BUFFER_MIB", default_value_t = 32, value_parser = clap::value_parser!(u32).range(4..))]
    pub rocksdb_write_buffer_mib: u32,
    /// Hold the tables' (partitioned) index and filter blocks in the block cache, so
    /// memory stays flat as the data grows; `false` keeps them all in memory beside
    /// the cache (growing with the data).
    #[arg(long, env = "KELEMETRY_ROCKSDB_CACHE_INDEX_AND_FILTERS", default_value_t = true, action = clap::ArgAction::Set)]
    pub rocksdb_cache_index_and_filters: bool,
    /// Threads that run storage work (Raft log writes and applies of every shard).
    /// Each thread keeps its own allocator caches, so an unbounded pool (one thread
    /// per busy shard) costs memory without adding throughput on a small machine.
    #[arg(long, env = "KELEMETRY_STORAGE_THREADS", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=512))]
    pub storage_threads: u32,
    /// While the node is busy, how long a sync of the write-ahead log waits for more
    /// Raft log appends to cover, microseconds (0: sync at once). An idle node syncs
    /// at once whatever this is; acknowledgements still follow the sync.
    #[arg(long, env = "KELEMETRY_WAL_SYNC_LINGER_US", default_value_t = kelemetry_raft::DEFAULT_WAL_SYNC_LINGER.as_micros() as u32, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub wal_sync_linger_us: u32,
    /// Encoded KiB of its newest Raft log entries each local replica keeps in memory,
    /// so a leader sends followers what it just appended without reading RocksDB
    /// (held decoded: about four times as much memory). Larger runs serve followers
    /// that fall further behind from memory, at a cost in resident memory.
    #[arg(long, env = "KELEMETRY_RAFT_RECENT_ENTRIES_KIB", default_value_t = (kelemetry_raft::DEFAULT_RECENT_ENTRY_BYTES / 1024) as u32, value_parser = clap::value_parser!(u32).range(0..=65_536))]
    pub raft_recent_entries_kib: u32,
    /// Free space, MiB, below which the node refuses writes (503) and its replicas
    /// refuse new entries from their leaders, so the disk never fills under RocksDB
    /// (if it does anyway, the node stops with exit status 74, and restarts open the
    /// database again once space is freed); writes resume by themselves once a tenth
    /// more is free. 0 turns the guard off.
    #[arg(long, env = "KELEMETRY_MIN_FREE_DISK_MIB", default_value_t = 256)]
    pub min_free_disk_mib: u64,
    /// Read the whole database once at start-up with checksums checked, so a damaged
    /// table is found before the node serves from it (2.2 s for a 420 MiB database
    /// of 7.6 million records here, from the page cache). A
    /// damaged database (found here, or by RocksDB when it opens) is moved aside and
    /// the node's replicas are rebuilt from its peers.
    #[arg(long, env = "KELEMETRY_VERIFY_DATA_ON_START", default_value_t = true, action = clap::ArgAction::Set)]
    pub verify_data_on_start: bool,
}

/// Where the node listens, and how peers reach it.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Listeners")]
pub struct ListenArgs {
    /// Audit webhook, /redirect, /healthz, /readyz.
    #[arg(long, env = "KELEMETRY_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
    /// Jaeger HTTP API (/api/...).
    #[arg(long, env = "KELEMETRY_QUERY_ADDR", default_value = "0.0.0.0:16686")]
    pub query_addr: SocketAddr,
    /// Jaeger remote-storage gRPC (storage v1 and v2, health).
    #[arg(long, env = "KELEMETRY_GRPC_ADDR", default_value = "0.0.0.0:17271")]
    pub grpc_addr: SocketAddr,
    /// Prometheus /metrics.
    #[arg(long, env = "KELEMETRY_METRICS_ADDR", default_value = "0.0.0.0:9090")]
    pub metrics_addr: SocketAddr,
    /// Peer RPC between nodes (Raft messages, forwarded writes).
    #[arg(long, env = "KELEMETRY_PEER_ADDR", default_value = "0.0.0.0:7070")]
    pub peer_addr: SocketAddr,
    /// Address other nodes use to reach this node's peer RPC; defaults to `--peer-addr`.
    #[arg(long, env = "KELEMETRY_ADVERTISE_ADDR")]
    pub advertise_addr: Option<String>,
    /// Local IP address this node's outgoing peer connections come from (on a host
    /// with several addresses, so firewall rules can name the node); the system
    /// chooses when unset.
    #[arg(long, env = "KELEMETRY_PEER_SOURCE_IP")]
    pub peer_source_ip: Option<std::net::IpAddr>,
    /// PEM certificate chain: serve the webhook, the query API and UI, and the gRPC
    /// storage API over TLS (with `--tls-key`). `/metrics` stays plain.
    #[arg(long, env = "KELEMETRY_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `--tls-cert`.
    #[arg(long, env = "KELEMETRY_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA: the webhook accepts only clients presenting a certificate it signed
    /// (the API server's webhook kubeconfig `client-certificate`); needs `--tls-cert`.
    #[arg(long, env = "KELEMETRY_HTTP_CLIENT_CA", requires = "tls_cert")]
    pub http_client_ca: Option<PathBuf>,
}

/// The ring of Kelemetry nodes: forming or joining it, replication, rebalancing, peer TLS.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Ring")]
pub struct RingArgs {
    /// The initial members of a new cluster as `id=host:port,...` (this node
    /// included); shards are placed on them by rendezvous hashing. Empty, and no
    /// `--join`: a single-node cluster.
    #[arg(long, env = "KELEMETRY_PEERS", value_delimiter = ',', value_parser = peer)]
    pub peers: Vec<(u64, String)>,
    /// Peer addresses (`host:port,...`) of nodes of an existing cluster to ask for
    /// admission when the data directory is fresh; a restarted node rejoins with its
    /// data without asking.
    #[arg(long, env = "KELEMETRY_JOIN", value_delimiter = ',')]
    pub join: Vec<String>,
    /// Initialise a new cluster if the data directory is fresh (by default: a node
    /// without `--peers` and `--join`, the lowest id in `--peers`, or StatefulSet
    /// ordinal 0 with `--join`).
    #[arg(long, env = "KELEMETRY_BOOTSTRAP")]
    pub bootstrap: bool,
    /// Replicas per shard (Raft voters on distinct nodes).
    #[arg(long, env = "KELEMETRY_REPLICAS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=7))]
    pub replicas: u32,
    /// A member unreachable for this long has its replicas moved to other nodes and
    /// is then removed.
    #[arg(long, env = "KELEMETRY_DEAD_NODE_TIMEOUT", default_value = "10m", value_parser = humantime::parse_duration)]
    pub dead_node_timeout: Duration,
    /// Most shards whose replicas move at the same time (rate limit of rebalancing).
    #[arg(long, env = "KELEMETRY_MAX_MOVING_SHARDS", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_moving_shards: u32,
    /// This node's peer certificate (PEM), for mutual TLS between peers; needs
    /// `--peer-tls-key` and `--peer-tls-ca` too.
    #[arg(long, env = "KELEMETRY_PEER_TLS_CERT")]
    pub peer_tls_cert: Option<PathBuf>,
    /// This node's peer private key (PEM).
    #[arg(long, env = "KELEMETRY_PEER_TLS_KEY")]
    pub peer_tls_key: Option<PathBuf>,
    /// The CA (PEM) that signs every node's peer certificate.
    #[arg(long, env = "KELEMETRY_PEER_TLS_CA")]
    pub peer_tls_ca: Option<PathBuf>,
}

/// Bearer-token authentication of the node's endpoints (files of one token per
/// line, re-read when they change). Off by default; with the webhook or query
/// tokens set and no admin tokens, the admin API is off.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Authentication")]
pub struct AuthArgs {
    /// Tokens the audit webhook accepts (`Authorization: Bearer`, as the API
    /// server's webhook kubeconfig sends with `token:`).
    #[arg(long, env = "KELEMETRY_WEBHOOK_TOKEN_FILE")]
    pub webhook_token_file: Option<PathBuf>,
    /// Tokens the Jaeger query APIs (HTTP and gRPC), the UI and `/redirect` accept
    /// (Bearer, or a browser's Basic login with the token as password).
    #[arg(long, env = "KELEMETRY_QUERY_TOKEN_FILE")]
    pub query_token_file: Option<PathBuf>,
    /// Tokens the admin API (`/cluster/*`: status, drain) accepts; the `kelemetry
    /// cluster` commands read theirs from `$KELEMETRY_ADMIN_TOKEN_FILE`.
    #[arg(long, env = "KELEMETRY_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
}

/// The audit webhook and what is stored: limits, filters, windows, retention.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Ingest")]
pub struct IngestArgs {
    /// Cluster name for `POST /audit` (no cluster in the path).
    #[arg(long, env = "KELEMETRY_DEFAULT_CLUSTER", value_parser = cluster_name)]
    pub default_cluster: Option<String>,
    /// Length of one object trace window.
    #[arg(long, env = "KELEMETRY_SPAN_TTL", default_value = "30m", value_parser = duration)]
    pub span_ttl: Duration,
    /// How long traces are kept.
    #[arg(long, env = "KELEMETRY_RETENTION", default_value = "7d", value_parser = duration)]
    pub retention: Duration,
    /// How far ahead of this node's clock an event may be dated; later ones (and
    /// ones older than `--retention`) are refused with 400.
    #[arg(long, env = "KELEMETRY_MAX_CLOCK_SKEW", default_value = "10m", value_parser = duration)]
    pub max_clock_skew: Duration,
    /// Largest accepted webhook body; larger ones get 413.
    #[arg(long, env = "KELEMETRY_MAX_BODY_BYTES", default_value_t = 64 << 20)]
    pub max_body_bytes: usize,
    /// Webhook requests processed at once; more get 429.
    #[arg(long, env = "KELEMETRY_MAX_CONCURRENT_REQUESTS", default_value_t = 256)]
    pub max_concurrent_requests: usize,
    /// Bytes of webhook bodies this node processes at once (each held, with the
    /// commands parsed from it, until its events are committed); a request that does
    /// not fit gets 429 with `Retry-After`. A body larger than this runs alone.
    #[arg(long, env = "KELEMETRY_MAX_INFLIGHT_BODY_BYTES", default_value_t = 8 << 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_inflight_body_bytes: u32,
    /// Audit events per second one cluster may send (bursts of two seconds' worth);
    /// more get 429 with `Retry-After`. Unlimited when unset.
    #[arg(long, env = "KELEMETRY_CLUSTER_RATE_LIMIT", value_parser = events_per_second)]
    pub cluster_rate_limit: Option<f64>,
    /// Audit events per second one client address may send, across clusters.
    #[arg(long, env = "KELEMETRY_CLIENT_RATE_LIMIT", value_parser = events_per_second)]
    pub client_rate_limit: Option<f64>,
    /// Commands a shard may queue before the webhook answers 429.
    #[arg(long, env = "KELEMETRY_SHARD_QUEUE_COMMANDS", default_value_t = 20_000)]
    pub shard_queue_commands: usize,
    /// Commands per Raft proposal.
    #[arg(long, env = "KELEMETRY_MAX_BATCH_COMMANDS", default_value_t = 2_000)]
    pub max_batch_commands: usize,
    /// Objects whose `<group>/<version>/<resource>/<namespace>/<name>` matches this
    /// regular expression are stored with their metadata only (as the
    /// `kelemetry.kubewharf.io/diff-redacted` label does); Secrets' values are always
    /// redacted.
    #[arg(long, env = "KELEMETRY_REDACT_PATTERN", value_parser = redact_pattern)]
    pub redact_pattern: Option<regex::Regex>,
    /// Audit resource types not traced (`resource` or `group/resource`).
    #[arg(
        long,
        env = "KELEMETRY_EXCLUDE_TYPES",
        value_delimiter = ',',
        default_value = "events,events.k8s.io/events,coordination.k8s.io/leases"
    )]
    pub exclude_types: Vec<String>,
    /// Substrings of user agents whose audit events are not traced.
    #[arg(
        long,
        env = "KELEMETRY_EXCLUDE_USER_AGENTS",
        value_delimiter = ',',
        default_value = "/leader-election,local-path-provisioner/"
    )]
    pub exclude_user_agents: Vec<String>,
}

/// The Jaeger query side: UI, operations, link following, result cache.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Query")]
pub struct QueryArgs {
    /// Cluster names offered as Jaeger operations (and accepted by `/redirect`) even
    /// before data from them arrives.
    #[arg(long, env = "KELEMETRY_CLUSTER_NAMES", value_delimiter = ',', value_parser = cluster_name)]
    pub cluster_names: Vec<String>,
    /// Serve a Jaeger UI build from this directory on `--query-addr`.
    #[arg(long, env = "KELEMETRY_UI_DIR")]
    pub ui_dir: Option<PathBuf>,
    /// Most objects one search result follows links to; past it the trace carries a
    /// warning.
    #[arg(long, env = "KELEMETRY_FOLLOW_LIMIT", default_value_t = 1000)]
    pub follow_limit: usize,
    /// How long a search result can be reopened by its trace ID.
    #[arg(long, env = "KELEMETRY_TRACE_CACHE_TTL", default_value = "7d", value_parser = duration)]
    pub trace_cache_ttl: Duration,
}

/// Flags that parse one by one but do not work as given: the message names the flag.
#[derive(Debug, thiserror::Error)]
pub enum FlagError {
    /// A file named by a flag cannot be read.
    #[error("{flag} {}: {source}", path.display())]
    Unreadable {
        /// The flag.
        flag: &'static str,
        /// The file it names.
        path: PathBuf,
        /// Why it cannot be read.
        source: std::io::Error,
    },
    /// A value or a combination of flags that cannot work.
    #[error("{0}")]
    Invalid(String),
}

impl ServeArgs {
    /// Arguments of a single node on `data_dir` with every server on a loopback port
    /// chosen by the OS: what the benchmarks start in-process.
    pub fn loopback(data_dir: &std::path::Path, shards: u32) -> Result<Self, FlagError> {
        let dir = data_dir.to_str().ok_or_else(|| {
            FlagError::Invalid(format!("--data-dir {}: not UTF-8", data_dir.display()))
        })?;
        let shards = shards.to_string();
        let mut argv = vec!["kelemetry", "serve", "--data-dir", dir, "--shards", &shards];
        for flag in [
            "--http-addr",
            "--query-addr",
            "--metrics-addr",
            "--grpc-addr",
            "--peer-addr",
        ] {
            argv.extend([flag, "127.0.0.1:0"]);
        }
        match Cli::try_parse_from(argv)
            .map_err(|e| FlagError::Invalid(e.to_string()))?
            .command
        {
            Command::Serve(args) => Ok(*args),
            _ => Err(FlagError::Invalid("expected serve arguments".into())),
        }
    }

    /// Mutual TLS material for peers: all three `--peer-tls-*` flags, or none.
    pub fn peer_tls(&self) -> Result<Option<kelemetry_raft::PeerTls>, FlagError> {
        let read = |flag: &'static str, p: &PathBuf| {
            std::fs::read(p).map_err(|source| FlagError::Unreadable {
                flag,
                path: p.clone(),
                source,
            })
        };
        match (&self.ring.peer_tls_cert, &self.ring.peer_tls_key, &self.ring.peer_tls_ca) {
            (None, None, None) => Ok(None),
            (Some(c), Some(k), Some(a)) => Ok(Some(kelemetry_raft::PeerTls {
                cert_pem: read("--peer-tls-cert", c)?,
                key_pem: read("--peer-tls-key", k)?,
                ca_pem: read("--peer-tls-ca", a)?,
            })),
            _ => Err(FlagError::Invalid("--peer-tls-cert, --peer-tls-key and --peer-tls-ca go together: give all three or none".into())),
        }
    }

    /// The Raft settings these flags describe.
    pub fn raft_settings(&self) -> Result<kelemetry_raft::RaftSettings, FlagError> {
        let node_id = self.resolved_node_id();
        let advertise = self
            .listen
            .advertise_addr
            .clone()
            .unwrap_or_else(|| self.listen.peer_addr.to_string());
        // What the flags say for every node, however it starts: one place, so no
        // way of starting drops a flag.
        let mut settings =
            kelemetry_raft::RaftSettings::single(node_id, advertise, self.node.shards);
        settings.tls = self.peer_tls()?;
        settings.peer_source_ip = self.listen.peer_source_ip;
        settings.replicas = self.ring.replicas;
        settings.wal_sync_linger =
            std::time::Duration::from_micros(self.node.wal_sync_linger_us.into());
        settings.recent_entry_bytes = self.node.raft_recent_entries_kib as usize * 1024;
        if self.ring.peers.is_empty() {
            let ordinal_zero = self.node.node_id.is_none() && node_id == 0;
            settings.bootstrap = self.ring.join.is_empty() || self.ring.bootstrap || ordinal_zero;
            if ordinal_zero && !self.ring.bootstrap {
                settings.ring_probe = self.ring.join.clone();
            }
            return Ok(settings);
        }
        if !self.ring.join.is_empty() {
            return Err(FlagError::Invalid(
                "--peers starts a new cluster and --join joins an existing one: give one of them"
                    .into(),
            ));
        }
        let peers: std::collections::BTreeMap<u64, String> =
            self.ring.peers.iter().cloned().collect();
        let Some(advertise) = peers.get(&node_id).cloned() else {
            return Err(FlagError::Invalid(format!(
                "--peers does not list this node (--node-id {node_id})"
            )));
        };
        // Every peer of a new ring initialises its part of it (see the registry).
        settings.advertise_addr = advertise;
        settings.peers = peers;
        settings.bootstrap = true;
        Ok(settings)
    }

    /// The node id: the flag, else the hostname's StatefulSet ordinal, else 0.
    pub fn resolved_node_id(&self) -> u64 {
        self.node.node_id.unwrap_or_else(|| {
            std::env::var("HOSTNAME")
                .ok()
                .and_then(|h| h.rsplit_once('-').and_then(|(_, n)| n.parse().ok()))
                .unwrap_or(0)
        })
    }
}

fn redact_pattern(s: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(s).map_err(|e| format!("not a regular expression: {e}"))
}

fn events_per_second(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!(
            "{s:?} is not a positive number of events per second"
        )),
    }
}
