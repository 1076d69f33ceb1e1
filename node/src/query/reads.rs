//! The shard reads of one query: each goes to the shard's leader, and shards answered
//! by a replica (no leader) are remembered for the stale warning.

use super::shard_reads::read_many;
use super::{QueryError, QueryService};
use kelemetry_core::command::ResultEntry;
use kelemetry_core::ids::shard_of;
use kelemetry_core::state::{ShardRead, ShardReadResult, StoredTrace, TraceQuery};
use kelemetry_core::ObjectKey;
use std::collections::BTreeSet;

/// The shard reads of one query: each goes to the shard's leader; shards answered
/// by a replica (no leader) are remembered for the stale warning.
pub(super) struct QueryReads<'a> {
    pub(super) svc: &'a QueryService,
    stale: BTreeSet<u32>,
}

impl<'a> QueryReads<'a> {
    pub(super) fn new(svc: &'a QueryService) -> Self {
        Self {
            svc,
            stale: BTreeSet::new(),
        }
    }

    pub(super) async fn many(
        &mut self,
        reads: Vec<(u32, ShardRead)>,
    ) -> Result<Vec<ShardReadResult>, QueryError> {
        let mut out = Vec::with_capacity(reads.len());
        for (shard, answer) in read_many(&self.svc.shards, reads).await {
            let (result, stale) = answer?;
            if stale {
                self.stale.insert(shard);
            }
            out.push(result);
        }
        Ok(out)
    }

    /// Every window overlapping the range of each object, in input order.
    pub(super) async fn windows(
        &mut self,
        keys: &[ObjectKey],
        start_us: i64,
        end_us: i64,
    ) -> Result<Vec<Vec<StoredTrace>>, QueryError> {
        let n = self.svc.shards.count();
        let reads = keys
            .iter()
            .map(|key| {
                let read = ShardRead::ObjectWindows {
                    key: key.clone(),
                    start_us,
                    end_us,
                    max_window_us: self.svc.span_ttl_us,
                };
                (shard_of(key, n), read)
            })
            .collect();
        self.many(reads).await?.into_iter().map(traces).collect()
    }

    /// A search run on every shard.
    pub(super) async fn find(&mut self, q: &TraceQuery) -> Result<Vec<StoredTrace>, QueryError> {
        let reads = (0..self.svc.shards.count())
            .map(|s| (s, ShardRead::FindTraces(q.clone())))
            .collect();
        let mut found = Vec::new();
        for r in self.many(reads).await? {
            found.extend(traces(r)?);
        }
        Ok(found)
    }

    pub(super) async fn result(&mut self, key: u64) -> Result<Option<ResultEntry>, QueryError> {
        let shard = self.svc.result_shard(key);
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
    pub(super) fn stale_warning(&self) -> Option<String> {
        (!self.stale.is_empty()).then(|| {
            format!("shards {:?} have no leader right now: this result was read from a replica and may be stale", self.stale)
        })
    }
}

pub(super) fn unexpected(r: Option<ShardReadResult>) -> QueryError {
    QueryError::Unexpected(format!("{r:?}"))
}

pub(super) fn traces(r: ShardReadResult) -> Result<Vec<StoredTrace>, QueryError> {
    match r {
        ShardReadResult::Traces(t) => Ok(t),
        other => Err(unexpected(Some(other))),
    }
}
