//! Applying an audit event: its dedupe check, the content of its span (diff,
//! snapshot, notes and errors, from the response object or from watched changes),
//! and the object versions and claims it records.

use super::apply::{diff_lines, head, log, rv_older, Applier, ObjectHead};
use super::join::missing;
use super::kv::{KvRead, StateError};
use super::schema;
use crate::audit::AuditRecord;
use crate::command::CommandOutcome;
use crate::ids;
use crate::model::{
    EventSource, EventSpanRecord, LogRecord, PatchRecord, VersionRecord, LOG_DIFF, LOG_REAL_ERROR,
    LOG_REAL_VERBOSE, LOG_SNAPSHOT,
};
use crate::owner::OwnerReference;
use crate::window::Window;

/// What an audit event's span carries besides its own fields.
#[derive(Default)]
pub(super) struct AuditContent {
    /// Logs: diff, snapshot, notes, errors.
    pub(super) logs: Vec<LogRecord>,
    /// Tags added to the event's own.
    pub(super) tags: Vec<(String, String)>,
    /// Owner references to link.
    pub(super) owner_refs: Vec<OwnerReference>,
}

impl Applier<'_, '_> {
    /// Stores audit event `a` once: its span now, or parked until its diff arrives.
    pub(super) fn audit(&mut self, a: &AuditRecord) -> Result<CommandOutcome, StateError> {
        if self.audit_stored(a)? {
            return Ok(CommandOutcome::Duplicate);
        }
        match self.audit_content(a, true)? {
            Some(content) => self.write_audit_span(a, content)?,
            None => self.park(a)?,
        }
        Ok(CommandOutcome::Applied)
    }

    /// Whether audit event `a` is already stored: as its span, or parked until its
    /// diff arrives. Both keys follow from the event alone (its span's window from its
    /// own time), so they are its dedupe marker; a separate marker and its expiry entry
    /// were two more keys written for every event. Both go when retention deletes the
    /// window, as the marker did. Data written before this kept its markers; each is
    /// deleted by retention as before.
    fn audit_stored(&self, a: &AuditRecord) -> Result<bool, StateError> {
        let window = Window::containing(a.start_us, self.ttl);
        let span = schema::event_key(&a.key, window.start_us, audit_span_id(a));
        if self.window_record_exists(&a.key, window.start_us, &span)? {
            return Ok(true);
        }
        let parked = schema::wait_key(&a.key, &a.audit_id, &a.stage);
        Ok(self.kv.get(&parked)?.is_some())
    }

    /// Claims the watched change to `rv` for `a`. Claims are only ever looked up among
    /// a watched cluster's changes, so an event of a cluster that is not watched
    /// (`diff_wait_us` 0: no watched change will arrive) writes none.
    fn claim_if_watched(&mut self, a: &AuditRecord, rv: &str) -> Result<(), StateError> {
        if a.diff_wait_us > 0 {
            self.claim(&a.key, rv, a.start_us)?;
        }
        Ok(())
    }

    /// The logs, extra tags and owners of an audit event's span. `None` when the
    /// diff or snapshot is still to come from a watcher and the event may wait for it
    /// (`may_wait`, and the cluster is watched).
    pub(super) fn audit_content(
        &mut self,
        a: &AuditRecord,
        may_wait: bool,
    ) -> Result<Option<AuditContent>, StateError> {
        let may_wait = may_wait && a.diff_wait_us > 0;
        let mut content = AuditContent::default();
        let last: Option<VersionRecord> = self.get(&schema::version_key(&a.key))?;
        // The response is the object itself only when its kind matches what we know of
        // the object (a `scale` subresource answers with a Scale, a delete often with a
        // Status).
        let response = a.response_object.as_deref().and_then(|json| {
            let h = head(json);
            let same_kind = last.as_ref().is_none_or(|l| l.kind == h.kind);
            (h.kind != "Status" && !h.kind.is_empty() && same_kind).then_some((json, h))
        });
        if a.response_code >= 300 {
            content
                .logs
                .extend(a.error_logs.iter().map(|m| log(LOG_REAL_ERROR, m.clone())));
        } else {
            match (a.verb.as_str(), a.subresource.is_empty(), &response) {
                ("create", true, Some((json, h))) => {
                    content.logs.push(log(LOG_SNAPSHOT, json.to_string()));
                    self.claim_if_watched(a, &h.metadata.resource_version)?;
                    self.store_version(&a.key, json, h, false, last.as_ref());
                }
                ("update" | "patch", _, Some(r)) => {
                    self.audit_change(a, r, last.as_ref(), &mut content)?
                }
                ("delete", true, Some((json, _))) => self.store_deletion(a, json, &mut content),
                ("delete", true, None) => match &last {
                    Some(l) => self.store_deletion(a, &l.object_json.clone(), &mut content),
                    None if may_wait => return Ok(None),
                    None if a.diff_wait_us > 0 => content.logs.push(missing(a)),
                    None => {}
                },
                ("create", true, None) | ("update" | "patch", _, None) => {
                    let found = self.watched_content(a, &mut content)?;
                    if !found && may_wait {
                        return Ok(None);
                    }
                    if !found && a.diff_wait_us > 0 {
                        content.logs.push(missing(a));
                    }
                }
                _ => {}
            }
        }
        // Without a response nothing above stored a different object: a deletion
        // stores the last version itself, so its owners are the ones read at the top.
        content.owner_refs = match (&response, &last) {
            (Some((_, h)), _) => h.metadata.owner_references.clone(),
            (None, Some(l)) => head(&l.object_json).metadata.owner_references,
            (None, None) => Vec::new(),
        };
        Ok(Some(content))
    }

    fn store_deletion(&mut self, a: &AuditRecord, snapshot: &str, content: &mut AuditContent) {
        content.logs.push(log(LOG_SNAPSHOT, snapshot.to_string()));
        let h = head(snapshot);
        self.store_version(&a.key, snapshot, &h, true, None);
        self.kv.put(
            schema::expiry_key(a.start_us, &schema::version_key(&a.key)),
            Vec::new(),
        );
    }

    /// Writes the span of an audit event whose content is settled.
    pub(super) fn write_audit_span(
        &mut self,
        a: &AuditRecord,
        content: AuditContent,
    ) -> Result<(), StateError> {
        let window = Window::containing(a.start_us, self.ttl);
        self.ensure_object_span(&a.key, &a.version, window)?;
        self.mark_cluster(&a.key.cluster)?;
        self.link_owners(&a.key, window, a.start_us, &content.owner_refs)?;
        let mut tags = a.tags.clone();
        tags.extend(content.tags);
        let span = EventSpanRecord {
            span_id: audit_span_id(a),
            source: EventSource::Audit,
            title: a.title.clone(),
            start_us: a.start_us,
            end_us: a.end_us.max(a.start_us),
            version: a.version.clone(),
            tags,
            logs: content.logs,
        };
        self.put_event(&a.key, window, &span)
    }

    /// Diff (or no-op note) of an update or patch whose response is the object,
    /// SPEC 3.5.
    fn audit_change(
        &mut self,
        a: &AuditRecord,
        (json, h): &(&str, ObjectHead),
        last: Option<&VersionRecord>,
        content: &mut AuditContent,
    ) -> Result<(), StateError> {
        let rv = h.metadata.resource_version.as_str();
        if !a.request_rv.is_empty() && rv == a.request_rv {
            content
                .logs
                .push(log(LOG_REAL_VERBOSE, "No-op update".into()));
            return Ok(());
        }
        if !rv.is_empty() {
            content
                .tags
                .push(("newResourceVersion".into(), rv.to_string()));
            self.claim_if_watched(a, rv)?;
        }
        let patch_key = schema::patch_key(&a.key, rv);
        let lines = match self.get::<PatchRecord>(&patch_key)? {
            Some(p) => Some(p.lines),
            None => match last
                .filter(|l| !rv_older(rv, &l.resource_version) && l.resource_version != rv)
            {
                Some(l) => {
                    let lines = diff_lines(&l.object_json, json);
                    self.store_patch(&a.key, rv, &lines, a.start_us);
                    Some(lines)
                }
                None => None,
            },
        };
        if let Some(lines) = lines.filter(|l| !l.is_empty()) {
            content.logs.push(log(LOG_DIFF, lines));
        }
        self.store_version(&a.key, json, h, false, last);
        Ok(())
    }
}

/// Span id of an audit event: its audit ID and stage identify it.
fn audit_span_id(a: &AuditRecord) -> u64 {
    ids::span_id(&["audit", &a.audit_id, &a.stage])
}
