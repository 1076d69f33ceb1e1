//! Search results as Jaeger traces: find the objects a search matches, follow links
//! with the display mode's selector, split into connected components, store each
//! result (replicated, with a TTL) and render it. Rendering a stored result again
//! (by trace ID, possibly with other mode digits) repeats link following from its
//! members with that mode.

use crate::server::AppState;
use kelemetry_core::command::ResultEntry;
use kelemetry_core::display::assemble::{Component, Follower};
use kelemetry_core::display::links::Selector;
use kelemetry_core::display::mode::DisplayMode;
use kelemetry_core::display::tree::Span;
use kelemetry_core::display::{render, trace_id};
use kelemetry_core::ids::shard_of;
use kelemetry_core::state::{find_traces, load_result, object_windows, StoredTrace, TraceQuery};
use kelemetry_core::{Command, ObjectKey};
use std::collections::BTreeMap;

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Reading shard state failed.
    #[error("storage: {0}")]
    Storage(String),
}

fn storage(e: impl std::fmt::Display) -> QueryError {
    QueryError::Storage(e.to_string())
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

/// Every window of one object that overlaps the range.
fn windows_of(
    state: &AppState,
    key: &ObjectKey,
    start_us: i64,
    end_us: i64,
) -> Result<Vec<StoredTrace>, QueryError> {
    let shard = state.shards.shard(shard_of(key, state.shards.count()));
    object_windows(shard.reader(), key, start_us, end_us, state.span_ttl_us).map_err(storage)
}

/// Runs the follower until no object is pending.
fn follow(
    state: &AppState,
    f: &mut Follower,
    start_us: i64,
    end_us: i64,
) -> Result<(), QueryError> {
    loop {
        let next = f.take_pending();
        if next.is_empty() {
            return Ok(());
        }
        for (key, selector) in next {
            let windows = windows_of(state, &key, start_us, end_us)?;
            f.add_fetched(key, windows, selector);
        }
    }
}

/// A warning when a member's shard has no leader: the result was read from this
/// node's replica, which may lag behind the last writes.
fn stale_warning(state: &AppState, members: &[ObjectKey]) -> Option<String> {
    let mut leaderless: Vec<u32> = members
        .iter()
        .map(|k| shard_of(k, state.shards.count()))
        .filter(|s| !state.shards.shard(*s).has_leader())
        .collect();
    leaderless.sort_unstable();
    leaderless.dedup();
    (!leaderless.is_empty()).then(|| {
        format!("shards {leaderless:?} have no leader right now: this result was read from a replica and may be stale")
    })
}

fn limit_warning(limit: usize) -> String {
    format!("link following stopped at {limit} objects (--follow-limit); linked objects beyond it are not shown")
}

/// Objects matching the search that had events in the range, newest first, with
/// their windows.
fn seeds(state: &AppState, s: &Search) -> Result<Vec<(ObjectKey, Vec<StoredTrace>)>, QueryError> {
    let q = TraceQuery {
        source: None,
        tags: s.tags.clone(),
        start_us: s.start_us,
        end_us: s.end_us,
        limit: usize::MAX,
        max_window_us: state.span_ttl_us,
    };
    let mut found: Vec<StoredTrace> = Vec::new();
    for shard in state.shards.iter() {
        found.extend(find_traces(shard.reader(), &q).map_err(storage)?);
    }
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
pub fn stored(state: &AppState, s: &Search) -> Result<Vec<StoredTrace>, QueryError> {
    let q = TraceQuery {
        source: None,
        tags: s.tags.clone(),
        start_us: s.start_us,
        end_us: s.end_us,
        limit: s.limit,
        max_window_us: state.span_ttl_us,
    };
    let mut found = Vec::new();
    for shard in state.shards.iter() {
        found.extend(find_traces(shard.reader(), &q).map_err(storage)?);
    }
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
fn components(
    state: &AppState,
    seeds: Vec<(ObjectKey, Vec<StoredTrace>)>,
    mode: DisplayMode,
    (start_us, end_us): (i64, i64),
) -> Result<Vec<Component>, QueryError> {
    let mut f = Follower::new(state.follow_limit);
    for (key, windows) in seeds {
        f.add_seed(key, windows, Selector::for_modifier(mode.modifier));
    }
    follow(state, &mut f, start_us, end_us)?;
    let mut components = f.assemble((start_us, end_us), &limit_warning(state.follow_limit));
    for c in &mut components {
        c.tree.warnings.extend(stale_warning(state, &c.members));
    }
    Ok(components)
}

/// The shard that stores the result with cache key `key`.
fn result_shard(state: &AppState, key: u64) -> u32 {
    (key % u64::from(state.shards.count())) as u32
}

/// Runs a search and stores its results.
pub async fn search(state: &AppState, s: &Search) -> Result<Vec<Rendered>, QueryError> {
    let components = components(state, seeds(state, s)?, s.mode, (s.start_us, s.end_us))?;
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
        let stored = load_result(state.shards.shard(shard).reader(), key).map_err(storage)?;
        if stored.is_none() {
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
pub fn get(state: &AppState, id: u128) -> Result<Option<Rendered>, QueryError> {
    let Some((mode, key)) = trace_id::decode(id) else {
        return Ok(None);
    };
    let Some(entry) =
        load_result(state.shards.shard(result_shard(state, key)).reader(), key).map_err(storage)?
    else {
        return Ok(None);
    };
    let seeds = entry
        .members
        .iter()
        .map(|m| {
            Ok((
                m.clone(),
                windows_of(state, m, entry.start_us, entry.end_us)?,
            ))
        })
        .collect::<Result<Vec<_>, QueryError>>()?;
    let mut components = components(state, seeds, mode, (entry.start_us, entry.end_us))?;
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
