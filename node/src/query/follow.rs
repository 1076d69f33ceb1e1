//! Link following for a result: the objects a search matches (the seeds), then the
//! objects the display mode's selector reaches from them, assembled into connected
//! components.

use super::reads::QueryReads;
use super::{QueryError, Search};
use kelemetry_core::display::assemble::{Component, Follower};
use kelemetry_core::display::links::Selector;
use kelemetry_core::display::mode::DisplayMode;
use kelemetry_core::state::{StoredTrace, TraceQuery};
use kelemetry_core::ObjectKey;
use std::collections::BTreeMap;

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
pub(super) async fn seeds(
    reads: &mut QueryReads<'_>,
    s: &Search,
) -> Result<Vec<(ObjectKey, Vec<StoredTrace>)>, QueryError> {
    let svc = reads.svc;
    let q = TraceQuery {
        source: None,
        tags: s.tags.clone(),
        start_us: s.start_us,
        end_us: s.end_us,
        limit: usize::MAX,
        max_window_us: svc.span_ttl_us,
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

/// Follows links from `seeds` with the mode's selector and assembles the connected
/// components, each marked stale if one of its shards has no leader.
pub(super) async fn components(
    reads: &mut QueryReads<'_>,
    seeds: Vec<(ObjectKey, Vec<StoredTrace>)>,
    mode: DisplayMode,
    (start_us, end_us): (i64, i64),
) -> Result<Vec<Component>, QueryError> {
    let follow_limit = reads.svc.follow_limit;
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
