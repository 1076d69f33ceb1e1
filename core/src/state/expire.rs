//! Retention: windows older than the retention and expired markers are deleted in
//! bounded steps, and cached results past their deadline.

use super::apply::Applier;
use super::kv::{KvRead, StateError};
use super::schema;
use crate::command::CommandOutcome;
use crate::key::ObjectKey;
use crate::model::{ObjectSpanRecord, VersionRecord};

impl Applier<'_, '_> {
    /// Deletes windows that ended before `before_us` and expired markers, at most
    /// `limit` records; the retention worker repeats until nothing is left.
    pub(super) fn expire(
        &mut self,
        before_us: i64,
        limit: u32,
    ) -> Result<CommandOutcome, StateError> {
        let limit = limit as usize;
        let mut windows = Vec::new();
        let start = [schema::WINDOW];
        let mut end = vec![schema::WINDOW];
        end.extend_from_slice(&schema::time_bytes(before_us.saturating_sub(self.ttl)));
        self.kv.scan(&start, &end, &mut |k, _| {
            windows.push(k.to_vec());
            windows.len() < limit
        })?;
        let mut removed = 0u64;
        for wkey in &windows {
            let Some((start_us, key)) = schema::parse_window_index(wkey) else {
                continue;
            };
            removed += self.delete_window(&key, start_us)?;
            self.kv.delete(wkey.clone());
        }
        let mut expired = Vec::new();
        let mut end = vec![schema::EXPIRY];
        end.extend_from_slice(&schema::time_bytes(before_us));
        self.kv.scan(&[schema::EXPIRY], &end, &mut |k, _| {
            expired.push(k.to_vec());
            expired.len() < limit
        })?;
        for ekey in expired {
            let target = &ekey[9..];
            let still_deleted = match target.first() {
                Some(&schema::VERSION) => self
                    .get::<VersionRecord>(target)?
                    .is_some_and(|v| v.deleted),
                _ => true,
            };
            if still_deleted {
                self.kv.delete(target.to_vec());
            }
            self.kv.delete(ekey);
            removed += 1;
        }
        let mut due = Vec::new();
        let mut end = vec![schema::DEADLINE];
        end.extend_from_slice(&schema::time_bytes(self.now_us));
        self.kv.scan(&[schema::DEADLINE], &end, &mut |k, _| {
            due.push(k.to_vec());
            due.len() < limit
        })?;
        for dkey in due {
            self.kv.delete(dkey[9..].to_vec());
            self.kv.delete(dkey);
            removed += 1;
        }
        Ok(CommandOutcome::Removed(removed))
    }

    fn delete_window(&mut self, key: &ObjectKey, start_us: i64) -> Result<u64, StateError> {
        let okey = schema::window_prefix(schema::OBJECT, key, start_us);
        if let Some(o) = self.get::<ObjectSpanRecord>(&okey)? {
            self.kv.delete(schema::trace_index_key(o.trace_id));
        }
        self.kv.delete(okey);
        let mut doomed = Vec::new();
        for kind in [schema::EVENT, schema::LINK] {
            let prefix = schema::window_prefix(kind, key, start_us);
            self.kv
                .scan(&prefix, &schema::prefix_end(&prefix), &mut |k, _| {
                    doomed.push(k.to_vec());
                    true
                })?;
        }
        let n = doomed.len() as u64 + 1;
        for k in doomed {
            self.kv.delete(k);
        }
        Ok(n)
    }
}
