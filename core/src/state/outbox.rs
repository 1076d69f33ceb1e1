//! The shard's outbox in apply: entries are numbered per kind and counted, so the
//! export backlog can be bounded deterministically (every replica drops the same
//! spans from export when it is full; the spans themselves are always stored).

use super::apply::Applier;
use super::kv::{KvRead, StateError};
use super::schema::{self, decode, encode};
use crate::command::CommandOutcome;
use crate::key::ObjectKey;
use crate::outbox::{Destination, ExportItem, ExportRef, OutboxEntry, OutboxKind, OutboxPayload};
use crate::window::Window;

impl Applier<'_, '_> {
    fn counter(&self, key: &[u8]) -> Result<u64, StateError> {
        match self.kv.get(key)? {
            Some(b) => decode::<u64>(key, &b),
            None => Ok(0),
        }
    }

    /// Appends an entry to its kind's outbox.
    pub(super) fn push_outbox(&mut self, entry: OutboxEntry) -> Result<(), StateError> {
        let kind = entry.kind();
        let seq_key = schema::outbox_seq_key(kind);
        let seq = self.counter(&seq_key)?;
        self.kv.put(schema::outbox_key(kind, seq), encode(&entry));
        self.kv.put(seq_key, encode(&(seq + 1)));
        let count_key = schema::outbox_count_key(kind);
        let count = self.counter(&count_key)?;
        self.kv.put(count_key, encode(&(count + 1)));
        self.outbox_added += 1;
        Ok(())
    }

    /// Removes a delivered entry.
    pub(super) fn ack_outbox(
        &mut self,
        kind: OutboxKind,
        seq: u64,
    ) -> Result<CommandOutcome, StateError> {
        let key = schema::outbox_key(kind, seq);
        if self.kv.get(&key)?.is_none() {
            return Ok(CommandOutcome::Duplicate);
        }
        self.kv.delete(key);
        let count_key = schema::outbox_count_key(kind);
        let count = self.counter(&count_key)?;
        self.kv.put(count_key, encode(&count.saturating_sub(1)));
        Ok(CommandOutcome::Applied)
    }

    /// Queues a newly stored span for export, unless exporting is off or the
    /// backlog is full (then it is counted as dropped from export).
    pub(super) fn export(
        &mut self,
        key: &ObjectKey,
        window: Window,
        item: ExportItem,
    ) -> Result<(), StateError> {
        if self.export_backlog == 0 {
            return Ok(());
        }
        let queued = self.counter(&schema::outbox_count_key(OutboxKind::Export))?;
        if queued >= u64::from(self.export_backlog) {
            self.export_dropped += 1;
            return Ok(());
        }
        self.push_outbox(OutboxEntry {
            destination: Destination::Otlp,
            payload: OutboxPayload::Export(ExportRef {
                key: key.clone(),
                window_start_us: window.start_us,
                item,
            }),
        })
    }
}
