//! The diff join (SPEC 3.3-3.5, fixed): an audit event without a usable response
//! object waits in shard state, not in memory, for the watched change that carries its
//! diff or snapshot, then is written with it, or at its deadline without it and a
//! `kelemetryError` log saying why.
//!
//! A watched change is found by the event's old resourceVersion (`objectRef`) when it
//! has one, else as the earliest unclaimed change of the same kind observed from just
//! before the request began. Each change is claimed by the first event that takes it,
//! so two requests without resourceVersions on one object get one change each.

use super::apply::{log, Applier};
use super::apply_audit::AuditContent;
use super::kv::{KvRead, StateError};
use super::schema::{self, decode, encode};
use crate::audit::AuditRecord;
use crate::command::CommandOutcome;
use crate::key::ObjectKey;
use crate::model::{
    ChangeKind, ChangeRecord, LogRecord, PatchRecord, WaitRecord, LOG_DIFF, LOG_KELEMETRY_ERROR,
    LOG_SNAPSHOT,
};
use crate::version::ObjectVersionRecord;

/// How much earlier than the request a change may have been observed (the watcher's
/// and the API server's clocks differ).
const CLOCK_SKEW_US: i64 = 2_000_000;

impl Applier<'_, '_> {
    /// Marks the change to resourceVersion `rv` of `key` as taken by an audit event.
    /// Returns false if another event took it first.
    pub(super) fn claim(
        &mut self,
        key: &ObjectKey,
        rv: &str,
        time_us: i64,
    ) -> Result<bool, StateError> {
        if rv.is_empty() {
            return Ok(true);
        }
        self.first_time(&["c", &key.to_string(), rv], time_us)
    }

    /// Records a watched change so that audit events can find it.
    pub(super) fn record_change(&mut self, v: &ObjectVersionRecord, kind: ChangeKind, from: &str) {
        let rv = v.resource_version.as_str();
        let put = |kv: &mut super::kv::Overlay<'_>, key: Vec<u8>, value: Vec<u8>| {
            kv.put(schema::expiry_key(v.observed_us, &key), Vec::new());
            kv.put(key, value);
        };
        let record = ChangeRecord {
            resource_version: rv.to_string(),
            from_resource_version: from.to_string(),
            kind,
        };
        put(
            self.kv,
            schema::change_key(&v.key, v.observed_us, rv),
            encode(&record),
        );
        match kind {
            ChangeKind::Created | ChangeKind::Deleted => put(
                self.kv,
                schema::snapshot_key(&v.key, rv),
                encode(&v.object_json),
            ),
            ChangeKind::Updated if !from.is_empty() => {
                put(self.kv, schema::from_key(&v.key, from), encode(&record))
            }
            ChangeKind::Updated => {}
        }
    }

    /// The diff or creation snapshot of `a` from watched changes, if one has arrived.
    pub(super) fn watched_content(
        &mut self,
        a: &AuditRecord,
        content: &mut AuditContent,
    ) -> Result<bool, StateError> {
        let creation = a.verb == "create";
        let rv = if creation {
            self.earliest_unclaimed(a, ChangeKind::Created)?
        } else if a.request_rv.is_empty() {
            self.earliest_unclaimed(a, ChangeKind::Updated)?
        } else {
            let from = schema::from_key(&a.key, &a.request_rv);
            match self.get::<ChangeRecord>(&from)? {
                Some(change) => {
                    self.claim(&a.key, &change.resource_version, a.start_us)?;
                    Some(change.resource_version)
                }
                None => None,
            }
        };
        let Some(rv) = rv else {
            return Ok(false);
        };
        let entry = if creation {
            self.get::<String>(&schema::snapshot_key(&a.key, &rv))?
                .map(|json| log(LOG_SNAPSHOT, json))
        } else {
            content.tags.push(("newResourceVersion".into(), rv.clone()));
            self.get::<PatchRecord>(&schema::patch_key(&a.key, &rv))?
                .filter(|p| !p.lines.is_empty())
                .map(|p| log(LOG_DIFF, p.lines))
        };
        content.logs.extend(entry);
        Ok(true)
    }

    /// The earliest change of `kind` to `a`'s object observed from shortly before the
    /// request until its wait ends that no other event claimed; claims it.
    fn earliest_unclaimed(
        &mut self,
        a: &AuditRecord,
        kind: ChangeKind,
    ) -> Result<Option<String>, StateError> {
        let from = schema::change_key(&a.key, a.start_us - CLOCK_SKEW_US, "");
        let until = schema::change_key(
            &a.key,
            a.end_us.max(a.start_us) + a.diff_wait_us + CLOCK_SKEW_US,
            "",
        );
        let mut candidates = Vec::new();
        self.kv.scan(&from, &until, &mut |k, v| {
            candidates.push((k.to_vec(), v.to_vec()));
            true
        })?;
        for (k, v) in candidates {
            let change: ChangeRecord = decode(&k, &v)?;
            if change.kind == kind && self.claim(&a.key, &change.resource_version, a.start_us)? {
                return Ok(Some(change.resource_version));
            }
        }
        Ok(None)
    }

    /// Parks `a` until a watched change of its object arrives or its wait ends.
    pub(super) fn park(&mut self, a: &AuditRecord) -> Result<(), StateError> {
        let wait = schema::wait_key(&a.key, &a.audit_id, &a.stage);
        let deadline_us = self.now_us + a.diff_wait_us;
        self.kv
            .put(schema::wait_due_key(deadline_us, &wait), Vec::new());
        self.kv.put(
            wait,
            encode(&WaitRecord {
                audit: a.clone(),
                deadline_us,
            }),
        );
        Ok(())
    }

    /// Writes every event waiting on `key` that the changes known now settle.
    pub(super) fn wake_waiting(&mut self, key: &ObjectKey) -> Result<(), StateError> {
        let prefix = schema::object_prefix(schema::WAIT, key);
        let mut waiting = Vec::new();
        self.kv
            .scan(&prefix, &schema::prefix_end(&prefix), &mut |k, v| {
                waiting.push((k.to_vec(), v.to_vec()));
                true
            })?;
        for (k, v) in waiting {
            let w: WaitRecord = decode(&k, &v)?;
            if let Some(content) = self.audit_content(&w.audit, true)? {
                self.write_audit_span(&w.audit, content)?;
                self.kv.delete(schema::wait_due_key(w.deadline_us, &k));
                self.kv.delete(k);
            }
        }
        Ok(())
    }

    /// Writes up to `limit` events whose wait has ended, without the diff they waited for.
    pub(super) fn release_due(&mut self, limit: u32) -> Result<CommandOutcome, StateError> {
        let mut due = Vec::new();
        let end = schema::wait_due_key(self.now_us, &[]);
        self.kv.scan(&[schema::WAIT_DUE], &end, &mut |k, _| {
            due.push(k.to_vec());
            due.len() < limit as usize
        })?;
        for dkey in &due {
            let wait = dkey[9..].to_vec();
            if let Some(w) = self.get::<WaitRecord>(&wait)? {
                if let Some(content) = self.audit_content(&w.audit, false)? {
                    self.write_audit_span(&w.audit, content)?;
                }
                self.kv.delete(wait);
            }
            self.kv.delete(dkey.clone());
        }
        Ok(CommandOutcome::Removed(due.len() as u64))
    }
}

/// The log of an event written without the diff or snapshot it waited for.
pub(super) fn missing(a: &AuditRecord) -> LogRecord {
    let what = match (a.verb.as_str(), a.request_rv.is_empty()) {
        ("create", _) => "no watched creation of this object".to_string(),
        ("delete", _) => "no watched version of this object".to_string(),
        (_, false) => format!(
            "no watched change of this object from resourceVersion {}",
            a.request_rv
        ),
        (_, true) => "no watched change of this object near the request time".to_string(),
    };
    let secs = a.diff_wait_us as f64 / 1e6;
    log(
        LOG_KELEMETRY_ERROR,
        format!("no diff: {what} arrived within {secs}s"),
    )
}
