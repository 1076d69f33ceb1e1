//! What the webhook server's handlers share: the ingest side (router, filter,
//! limits), the query service (for `/redirect`), the shard groups (for readiness and
//! the ring admin API) and the shutdown flag. Built once, in order, at start-up.

use crate::query::QueryService;
use kelemetry_actors::IngestRouter;
use kelemetry_core::audit::TimeLimits;
use kelemetry_core::filter::AuditFilter;
use kelemetry_raft::ShardSet;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Everything webhook-server handlers share.
pub struct AppState {
    /// Submits commands to shard actors.
    pub router: IngestRouter,
    /// The shard groups (for readiness and the ring admin API).
    pub shards: Arc<ShardSet>,
    /// The query service (for `/redirect`).
    pub query: Arc<QueryService>,
    /// Audit filter.
    pub filter: AuditFilter,
    /// Cluster of `POST /audit`.
    pub default_cluster: Option<String>,
    /// Bounds concurrent webhook requests.
    pub webhook_permits: Arc<Semaphore>,
    /// Per-cluster and per-client event rates of the webhook.
    pub rate_limits: crate::http::rate_limit::RateLimits,
    /// Largest webhook body.
    pub max_body_bytes: usize,
    /// Bounds the bytes of webhook bodies processed at once.
    pub body_budget: crate::http::body_budget::BodyBudget,
    /// `--retention` and `--max-clock-skew`: events dated outside are refused.
    pub time_limits: TimeLimits,
    /// Set once shutdown begins; readiness fails and new writes are refused.
    pub shutting_down: Arc<AtomicBool>,
    /// Names of the clusters the ring watches (`--cluster`, `--in-cluster`).
    pub watched_clusters: Vec<String>,
    /// The resources this node's discovery found per watched cluster (the object
    /// duties `/cluster/status` lists).
    pub discovered: crate::watchers::discovery::Discovered,
    /// `--diff-wait` in microseconds: how long audit events of watched clusters may
    /// wait for a watched change.
    pub diff_wait_us: i64,
}
