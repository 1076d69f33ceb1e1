//! Search results as Jaeger traces: find the objects a search matches, follow links
//! with the display mode's selector, split into connected components, store each
//! result (replicated, with a TTL) and render it. Rendering a stored result again
//! (by trace ID, possibly with other mode digits) repeats link following from its
//! members with that mode.

use crate::reads::read_many;
use crate::server::AppState;
use kelemetry_core::command::ResultEntry;
use kelemetry_core::display::assemble::{Component, Follower};
use kelemetry_core::display::links::Selector;
use kelemetry_core::display::mode::DisplayMode;
use kelemetry_core::display::tree::Span;
use kelemetry_core::display::{render, trace_id};
use kelemetry_core::ids::shard_of;
use kelemetry_core::state::{ShardRead, ShardReadResult, StoredTrace, TraceQuery};
use kelemetry_core::{Command, ObjectKey};
use std::collections::{BTreeMap, BTreeSet};

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Reading shard state failed.
    #[error("storage: {0}")]
    Storage(String),
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

/// The shard reads of one query: each goes to the shard's leader; shards answered
/// by a replica (no leader) are remembered for the stale warning.
struct QueryReads<'a> {
    state: &'a AppState,
    stale: BTreeSet<u32>,
}

impl<'a> QueryReads<'a> {
    fn new(state: &'a AppState) -> Self {
        Self {
            state,
            stale: BTreeSet::new(),
        }
    }

    async fn many(
        &mut self,
        reads: Vec<(u32, ShardRead)>,
    ) -> Result<Vec<ShardReadResult>, QueryError> {
        let mut out = Vec::with_capacity(reads.len());
        for (shard, answer) in read_many(&self.state.shards, reads).await {
            let (result, stale) =
                answer.map_err(|e| QueryError::Storage(format!("shard {shard}: {e}")))?;
            if stale {
                self.stale.insert(shard);
            }
            out.push(result);
        }
        Ok(out)
    }

    /// Every window overlapping the range of each object, in input order.
    async fn windows(
        &mut self,
        keys: &[ObjectKey],
        start_us: i64,
        end_us: i64,
    ) -> Result<Vec<Vec<StoredTrace>>, QueryError> {
        let n = self.state.shards.count();
        let reads = keys
            .iter()
            .map(|key| {
                let read = ShardRead::ObjectWindows {
                    key: key.clone(),
                    start_us,
                    end_us,
                    max_window_us: self.state.span_ttl_us,
                };
                (shard_of(key, n), read)
            })
            .collect();
        self.many(reads).await?.into_iter().map(traces).collect()
    }

    /// A search run on every shard.
    async fn find(&mut self, q: &TraceQuery) -> Result<Vec<StoredTrace>, QueryError> {
        let reads = (0..self.state.shards.count())
            .map(|s| (s, ShardRead::FindTraces(q.clone())))
            .collect();
        let mut found = Vec::new();
        for r in self.many(reads).await? {
            found.extend(traces(r)?);
        }
        Ok(found)
    }

    async fn result(&mut self, key: u64) -> Result<Option<ResultEntry>, QueryError> {
        let shard = result_shard(self.state, key);
        match self
            .many(vec![(shard, ShardRead::LoadResult(key))])
            .await?
            .pop()
        {
            Some(ShardReadResult::Result(r)) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    /// A warning when some shard had no leader: those parts were read from a
    /// replica, which may lag behind the last writes.
    fn stale_warning(&self) -> Option<String> {
        (!self.stale.is_empty()).then(|| {
            format!("shards {:?} have no leader right now: this result was read from a replica and may be stale", self.stale)
        })
    }
}

fn unexpected(r: Option<ShardReadResult>) -> QueryError {
    QueryError::Storage(format!("unexpected shard read answer: {r:?}"))
}

fn traces(r: ShardReadResult) -> Result<Vec<StoredTrace>, QueryError> {
    match r {
        ShardReadResult::Traces(t) => Ok(t),
        other => Err(unexpected(Some(other))),
    }
}

/// Runs the follower until no object is pending, fetching each round's objects
/// concurrently.
async fn follow(
    reads: &mut QueryReads<'_>,
    f: &mut Follower,
    start_us: i64,
    end_us: i64,
) -> Result<(), QueryError> {
    loop {
        let next = f.take_pending();
        if next.is_empty() {
            return Ok(());
        }
        let keys: Vec<ObjectKey> = next.iter().map(|(k, _)| k.clone()).collect();
        let fetched = reads.windows(&keys, start_us, end_us).await?;
        for ((key, selector), windows) in next.into_iter().zip(fetched) {
            f.add_fetched(key, windows, selector);
        }
    }
}

fn limit_warning(limit: usize) -> String {
    format!("link following stopped at {limit} objects (--follow-limit); linked objects beyond it are not shown")
}

/// Objects matching the search that had events in the range, newest first, with
/// their windows.
async fn seeds(
    reads: &mut QueryReads<'_>,
    s: &Search,
) -> Result<Vec<(ObjectKey, Vec<StoredTrace>)>, QueryError> {
    let state = reads.state;
    let q = TraceQuery {
        source: None,
        tags: s.tags.clone(),
        start_us: s.start_us,
        end_us: s.end_us,
        limit: usize::MAX,
        max_window_us: state.span_ttl_us,
    };
    let mut found = reads.find(&q).await?;
    found.retain(|t| !t.events.is_empty());
    found.sort_by(|a, b| {
        let last = |t: &StoredTrace| t.events.iter().map(|e| e.start_us).max().unwrap_or(0);
        last(b)
            .cmp(&last(a))
            .then_with(|| a.object.key.cmp(&b.object.key))
    });
    let mut order: Vec<ObjectKey> = Vec::new();
    let mut by_key: BTreeMap<ObjectKey, Vec<StoredTrace>> = BTreeMap::new();
    for t in found {
        let k = t.object.key.clone();
        if !by_key.contains_key(&k) {
            if order.len() >= s.limit {
                continue;
            }
            order.push(k.clone());
        }
        by_key.entry(k).or_default().push(t);
    }
    Ok(order
        .into_iter()
        .map(|k| {
            let w = by_key.remove(&k).unwrap_or_default();
            (k, w)
        })
        .collect())
}

/// Stored object traces (one per object and window) matching a search, newest window
/// first, as written: no link following, no transforms.
pub async fn stored(state: &AppState, s: &Search) -> Result<Vec<StoredTrace>, QueryError> {
    let q = TraceQuery {
        source: None,
        tags: s.tags.clone(),
        start_us: s.start_us,
        end_us: s.end_us,
        limit: s.limit,
        max_window_us: state.span_ttl_us,
    };
    let mut found = QueryReads::new(state).find(&q).await?;
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

/// Follows links from `seeds` with the mode's selector and assembles the connected
/// components, each marked stale if one of its shards has no leader.
async fn components(
    reads: &mut QueryReads<'_>,
    seeds: Vec<(ObjectKey, Vec<StoredTrace>)>,
    mode: DisplayMode,
    (start_us, end_us): (i64, i64),
) -> Result<Vec<Component>, QueryError> {
    let follow_limit = reads.state.follow_limit;
    let mut f = Follower::new(follow_limit);
    for (key, windows) in seeds {
        f.add_seed(key, windows, Selector::for_modifier(mode.modifier));
    }
    follow(reads, &mut f, start_us, end_us).await?;
    let mut components = f.assemble((start_us, end_us), &limit_warning(follow_limit));
    for c in &mut components {
        c.tree.warnings.extend(reads.stale_warning());
    }
    Ok(components)
}

/// The shard that stores the result with cache key `key`.
fn result_shard(state: &AppState, key: u64) -> u32 {
    (key % u64::from(state.shards.count())) as u32
}

/// Runs a search and stores its results.
pub async fn search(state: &AppState, s: &Search) -> Result<Vec<Rendered>, QueryError> {
    let mut reads = QueryReads::new(state);
    let seeds = seeds(&mut reads, s).await?;
    let components = components(&mut reads, seeds, s.mode, (s.start_us, s.end_us)).await?;
    let mut out = Vec::with_capacity(components.len());
    let expires_us = chrono::Utc::now().timestamp_micros() + state.result_ttl_us;
    for mut c in components {
        let entry = ResultEntry {
            members: c.members,
            start_us: s.start_us,
            end_us: s.end_us,
        };
        let key = entry.cache_key();
        let shard = result_shard(state, key);
        // The key is a hash of the content: a stored entry is this very result.
        if reads.result(key).await?.is_none() {
            let put = Command::PutResult {
                key,
                entry,
                expires_us,
            };
            if let Err(e) = state.router.submit_to_shard(shard, vec![put]).await {
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
pub async fn get(state: &AppState, id: u128) -> Result<Option<Rendered>, QueryError> {
    let Some((mode, key)) = trace_id::decode(id) else {
        return Ok(None);
    };
    let mut reads = QueryReads::new(state);
    let Some(entry) = reads.result(key).await? else {
        return Ok(None);
    };
    let windows = reads
        .windows(&entry.members, entry.start_us, entry.end_us)
        .await?;
    let seeds = entry.members.iter().cloned().zip(windows).collect();
    let mut components =
        components(&mut reads, seeds, mode, (entry.start_us, entry.end_us)).await?;
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
pub async fn clusters(state: &AppState) -> Result<Vec<String>, QueryError> {
    let reads = (0..state.shards.count())
        .map(|s| (s, ShardRead::Clusters))
        .collect();
    let mut out = Vec::new();
    for r in QueryReads::new(state).many(reads).await? {
        match r {
            ShardReadResult::Clusters(c) => out.extend(c),
            other => return Err(unexpected(Some(other))),
        }
    }
    Ok(out)
}

/// The stored object trace with this ID, read from the shard its ID names.
pub async fn stored_by_id(state: &AppState, id: u128) -> Result<Option<StoredTrace>, QueryError> {
    let shard = kelemetry_core::ids::shard_of_trace(id);
    if shard >= state.shards.count() {
        return Ok(None);
    }
    let mut reads = QueryReads::new(state);
    match reads
        .many(vec![(shard, ShardRead::TraceById(id))])
        .await?
        .pop()
    {
        Some(r) => Ok(traces(r)?.pop()),
        None => Ok(None),
    }
}
