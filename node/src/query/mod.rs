//! The query service: what every query front end (Jaeger HTTP v1 and v3, gRPC
//! storage v1 and v2, `/redirect`) asks, answered from shard state as span trees.
//! Front ends only parse their parameters and encode the trees.
//!
//! Search results are Jaeger traces: find the objects a search matches, follow links
//! with the display mode's selector, split into connected components, store each
//! result (replicated, with a TTL) and render it. Rendering a stored result again
//! (by trace ID, possibly with other mode digits) repeats link following from its
//! members with that mode.
//!
//! - [`shard_reads`]: one shard read at its leader (or stale from a replica).
//! - `reads`: the reads of one query, with stale-shard tracking.
//! - `follow`: seeds, link following and components.

mod follow;
mod reads;
pub mod shard_reads;

use kelemetry_actors::IngestRouter;
use kelemetry_core::command::ResultEntry;
use kelemetry_core::display::mode::{self, DisplayMode};
use kelemetry_core::display::tree::{from_stored, Span};
use kelemetry_core::display::{render, trace_id};
use kelemetry_core::state::{ShardRead, ShardReadResult, StoredTrace, TraceQuery};
use kelemetry_core::Command;
use kelemetry_raft::ShardSet;
use reads::{traces, unexpected, QueryReads};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Reading a shard failed.
    #[error("storage: {0}")]
    Read(#[from] shard_reads::ReadError),
    /// A shard answered a read with the wrong kind of result.
    #[error("storage: unexpected shard read answer: {0}")]
    Unexpected(String),
}

/// A search: identity tags (cluster included) and a range.
pub struct Search {
    /// Display mode.
    pub mode: DisplayMode,
    /// Identity tags that must match.
    pub tags: Vec<(String, String)>,
    /// Range start, microseconds.
    pub start_us: i64,
    /// Range end, microseconds.
    pub end_us: i64,
    /// Most results.
    pub limit: usize,
}

/// One rendered result.
pub struct Rendered {
    /// The trace ID: mode digits plus cache key.
    pub trace_id: u128,
    /// The transformed tree.
    pub tree: Span,
}

/// Answers queries from the shards of this node's ring.
pub struct QueryService {
    /// The shard groups (reads go to each shard's leader).
    pub shards: Arc<ShardSet>,
    /// Stores rendered results.
    pub router: IngestRouter,
    /// Window length in microseconds.
    pub span_ttl_us: i64,
    /// Most objects one result may follow links to.
    pub follow_limit: usize,
    /// Configured cluster names (`--cluster-names`).
    pub cluster_names: Vec<String>,
    /// How long rendered results can be opened again by trace ID, microseconds.
    pub result_ttl_us: i64,
}

/// Every display mode name, the default first: the services of every front end.
pub fn mode_names() -> Vec<String> {
    mode::all().iter().map(ToString::to_string).collect()
}

impl QueryService {
    /// Stored object traces (one per object and window) matching a search, newest window
    /// first, as written: no link following, no transforms.
    pub async fn stored(&self, s: &Search) -> Result<Vec<StoredTrace>, QueryError> {
        let q = TraceQuery {
            source: None,
            tags: s.tags.clone(),
            start_us: s.start_us,
            end_us: s.end_us,
            limit: s.limit,
            max_window_us: self.span_ttl_us,
        };
        let mut found = QueryReads::new(self).find(&q).await?;
        found.sort_by(|a, b| {
            b.object
                .window
                .start_us
                .cmp(&a.object.window.start_us)
                .then_with(|| a.object.key.cmp(&b.object.key))
        });
        found.truncate(s.limit);
        Ok(found)
    }

    /// The shard that stores the result with cache key `key`.
    pub(super) fn result_shard(&self, key: u64) -> u32 {
        (key % u64::from(self.shards.count())) as u32
    }

    /// Runs a search and stores its results.
    pub async fn search(&self, s: &Search) -> Result<Vec<Rendered>, QueryError> {
        let mut reads = QueryReads::new(self);
        let seeds = follow::seeds(&mut reads, s).await?;
        let components =
            follow::components(&mut reads, seeds, s.mode, (s.start_us, s.end_us)).await?;
        let mut out = Vec::with_capacity(components.len());
        let expires_us = chrono::Utc::now().timestamp_micros() + self.result_ttl_us;
        for mut c in components {
            let entry = ResultEntry {
                members: c.members,
                start_us: s.start_us,
                end_us: s.end_us,
            };
            let key = entry.cache_key();
            let shard = self.result_shard(key);
            // The key is a hash of the content: a stored entry is this very result.
            if reads.result(key).await?.is_none() {
                let put = Command::PutResult {
                    key,
                    entry,
                    expires_us,
                };
                if let Err(e) = self.router.submit_to_shard(shard, vec![put]).await {
                    c.tree.warnings.push(format!(
                        "this result could not be stored ({e}); reopening its trace ID later will fail"
                    ));
                }
            }
            out.push(Rendered {
                trace_id: trace_id::encode(s.mode, key),
                tree: render(c.tree, s.mode),
            });
        }
        Ok(out)
    }

    /// Renders a stored result by its trace ID; `None` if the ID is not a result ID or
    /// the result is unknown (expired).
    pub async fn get(&self, id: u128) -> Result<Option<Rendered>, QueryError> {
        let Some((mode, key)) = trace_id::decode(id) else {
            return Ok(None);
        };
        let mut reads = QueryReads::new(self);
        let Some(entry) = reads.result(key).await? else {
            return Ok(None);
        };
        let windows = reads
            .windows(&entry.members, entry.start_us, entry.end_us)
            .await?;
        let seeds = entry.members.iter().cloned().zip(windows).collect();
        let mut components =
            follow::components(&mut reads, seeds, mode, (entry.start_us, entry.end_us)).await?;
        if components.is_empty() {
            return Ok(None);
        }
        let mut first = components.remove(0);
        if !components.is_empty() {
            first.tree.warnings.push(format!(
                "{} more unlinked objects of this result are not shown",
                components.iter().map(|c| c.members.len()).sum::<usize>()
            ));
        }
        Ok(Some(Rendered {
            trace_id: id,
            tree: render(first.tree, mode),
        }))
    }

    /// Cluster names found in any shard's data.
    pub async fn clusters(&self) -> Result<Vec<String>, QueryError> {
        let reads = (0..self.shards.count())
            .map(|s| (s, ShardRead::Clusters))
            .collect();
        let mut out = Vec::new();
        for r in QueryReads::new(self).many(reads).await? {
            match r {
                ShardReadResult::Clusters(c) => out.extend(c),
                other => return Err(unexpected(Some(other))),
            }
        }
        Ok(out)
    }

    /// The stored object trace with this ID, read from the shard its ID names.
    pub async fn stored_by_id(&self, id: u128) -> Result<Option<StoredTrace>, QueryError> {
        let shard = kelemetry_core::ids::shard_of_trace(id);
        if shard >= self.shards.count() {
            return Ok(None);
        }
        let mut reads = QueryReads::new(self);
        match reads
            .many(vec![(shard, ShardRead::TraceById(id))])
            .await?
            .pop()
        {
            Some(r) => Ok(traces(r)?.pop()),
            None => Ok(None),
        }
    }

    /// Cluster names configured or found in any shard, sorted: the operations of
    /// every front end.
    pub async fn known_clusters(&self) -> Result<Vec<String>, QueryError> {
        let mut all: BTreeSet<String> = self.cluster_names.iter().cloned().collect();
        all.extend(self.clusters().await?);
        Ok(all.into_iter().collect())
    }

    /// A result (with the trace ID to give every span) or a stored trace (keeping its
    /// own IDs) by ID.
    pub async fn trace_tree(&self, id: u128) -> Result<Option<(Span, Option<u128>)>, QueryError> {
        if let Some(r) = self.get(id).await? {
            return Ok(Some((r.tree, Some(r.trace_id))));
        }
        let stored = self.stored_by_id(id).await?;
        Ok(stored.map(|t| (from_stored(&t), None)))
    }
}
