//! Applying a proposal to a shard's records.

use super::join::missing;
use super::kv::{KvRead, Overlay, StateError};
use super::schema::{self, decode, encode};
use super::window_index;
use crate::audit::AuditRecord;
use crate::command::{Command, CommandOutcome, LinkCommand, Proposal, ProposalOutcome};
use crate::diff;
use crate::event::KubeEventRecord;
use crate::ids;
use crate::key::ObjectKey;
use crate::model::{
    ChangeKind, EventSource, EventSpanRecord, LinkRecord, LinkRole, LogRecord, ObjectSpanRecord,
    PatchRecord, VersionRecord, LINK_CLASS_CHILDREN, LOG_DIFF, LOG_EVENT_MESSAGE, LOG_REAL_ERROR,
    LOG_REAL_VERBOSE, LOG_SNAPSHOT,
};
use crate::outbox::{Destination, ExportItem, OutboxEntry, OutboxPayload};
use crate::owner::{controller_owners_of, OwnerReference};
use crate::version::ObjectVersionRecord;
use crate::window::Window;
use serde::Deserialize;

/// Which shard is applying, so that links to objects of the same shard are written
/// directly and links to other shards go through the outbox.
#[derive(Clone, Copy, Debug)]
pub struct ShardContext {
    /// This shard's number.
    pub shard: u32,
    /// Total number of shards (fixed at bootstrap).
    pub shards: u32,
}

/// Duration of a Kubernetes Event span, which has no end time of its own.
const EVENT_SPAN_US: i64 = 1_000_000;

/// Applies every command of `proposal` to `kv` and reports what each did.
pub fn apply_proposal(
    kv: &mut Overlay<'_>,
    ctx: &ShardContext,
    proposal: &Proposal,
) -> Result<ProposalOutcome, StateError> {
    let mut applier = Applier {
        kv,
        ctx: *ctx,
        ttl: proposal.span_ttl_us,
        now_us: proposal.now_us,
        export_backlog: proposal.export_backlog,
        outbox_added: 0,
        export_dropped: 0,
        clusters_marked: Vec::new(),
        window_layout_noted: false,
    };
    let mut outcomes = Vec::with_capacity(proposal.commands.len());
    for command in &proposal.commands {
        outcomes.push(applier.apply(command)?);
    }
    Ok(ProposalOutcome {
        outcomes,
        outbox_added: applier.outbox_added,
        export_dropped: applier.export_dropped,
    })
}

pub(super) struct Applier<'k, 'a> {
    pub(super) kv: &'k mut Overlay<'a>,
    ctx: ShardContext,
    pub(super) ttl: i64,
    pub(super) now_us: i64,
    pub(super) export_backlog: u32,
    pub(super) outbox_added: u32,
    pub(super) export_dropped: u32,
    /// Clusters whose marker this proposal has already found or written.
    clusters_marked: Vec<String>,
    /// Whether this proposal has found or written the window index's layout marker.
    window_layout_noted: bool,
}

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

/// The parts of an object's JSON the state machine looks at.
#[derive(Deserialize, Default)]
struct ObjectHead {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    metadata: HeadMeta,
}

#[derive(Deserialize, Default)]
struct HeadMeta {
    #[serde(default, rename = "resourceVersion")]
    resource_version: String,
    #[serde(default, rename = "ownerReferences")]
    owner_references: Vec<OwnerReference>,
}

fn head(json: &str) -> ObjectHead {
    serde_json::from_str(json).unwrap_or_default()
}

/// Whether resourceVersion `a` is older than `b`. Resource versions are opaque strings,
/// but every real API server uses etcd revisions; when either is not a number they are
/// treated as unordered (not older).
fn rv_older(a: &str, b: &str) -> bool {
    matches!((a.parse::<u64>(), b.parse::<u64>()), (Ok(x), Ok(y)) if x < y)
}

impl Applier<'_, '_> {
    fn apply(&mut self, command: &Command) -> Result<CommandOutcome, StateError> {
        match command {
            Command::Audit(a) => self.audit(a),
            Command::KubeEvent(e) => self.kube_event(e),
            Command::ObjectVersion(v) => self.object_version(v),
            Command::Link(l) => self.link(l),
            Command::AckOutbox { kind, seq } => self.ack_outbox(*kind, *seq),
            Command::PutResult {
                key,
                entry,
                expires_us,
            } => {
                let rkey = schema::result_key(*key);
                if self.kv.get(&rkey)?.is_some() {
                    return Ok(CommandOutcome::Duplicate);
                }
                self.kv
                    .put(schema::deadline_key(*expires_us, &rkey), Vec::new());
                self.kv.put(rkey, encode(entry));
                Ok(CommandOutcome::Applied)
            }
            Command::Expire { before_us, limit } => self.expire(*before_us, *limit),
            Command::ReleaseWaiting { limit } => self.release_due(*limit),
        }
    }

    pub(super) fn get<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>, StateError> {
        self.kv.get(key)?.map(|b| decode(key, &b)).transpose()
    }

    /// Marks a dedupe id as seen at `time_us`; returns false if it was seen before.
    pub(super) fn first_time(&mut self, parts: &[&str], time_us: i64) -> Result<bool, StateError> {
        let key = schema::dedupe_key(parts);
        if self.kv.get(&key)?.is_some() {
            return Ok(false);
        }
        self.kv.put(schema::expiry_key(time_us, &key), Vec::new());
        self.kv.put(key, Vec::new());
        Ok(true)
    }

    /// Records that `cluster` has data. Markers are never removed, so one that exists
    /// is left as it is: rewriting it for every event was one key written per event.
    fn mark_cluster(&mut self, cluster: &str) -> Result<(), StateError> {
        if self.clusters_marked.iter().any(|c| c == cluster) {
            return Ok(());
        }
        let key = schema::cluster_key(cluster);
        if self.kv.get(&key)?.is_none() {
            self.kv.put(key, Vec::new());
        }
        self.clusters_marked.push(cluster.to_string());
        Ok(())
    }

    /// Records, before the first name-ordered window index entry, from which window
    /// on every entry has that order (see `window_index`). Once per proposal, and a
    /// write only once per store.
    fn note_window_layout(&mut self) -> Result<(), StateError> {
        if self.window_layout_noted {
            return Ok(());
        }
        self.window_layout_noted = true;
        if self.kv.get(schema::WINDOW_BY_NAME_SINCE)?.is_some() {
            return Ok(());
        }
        let now_window = Window::containing(self.now_us, self.ttl).start_us;
        let since = window_index::by_name_from(&*self.kv, now_window)?;
        self.kv
            .put(schema::WINDOW_BY_NAME_SINCE.to_vec(), encode(&since));
        Ok(())
    }

    fn ensure_object_span(
        &mut self,
        key: &ObjectKey,
        version: &str,
        window: Window,
    ) -> Result<ObjectSpanRecord, StateError> {
        let okey = schema::window_prefix(schema::OBJECT, key, window.start_us);
        if let Some(existing) = self.get::<ObjectSpanRecord>(&okey)? {
            return Ok(existing);
        }
        let record = ObjectSpanRecord {
            key: key.clone(),
            version: version.to_string(),
            window,
            trace_id: ids::trace_id(key, self.ctx.shard, &window),
            span_id: ids::span_id(&["object", &key.to_string(), &window.start_us.to_string()]),
        };
        self.kv
            .put(schema::trace_index_key(record.trace_id), okey.clone());
        self.note_window_layout()?;
        self.kv
            .put(schema::window_index_key(window.start_us, key), Vec::new());
        self.kv.put(okey, encode(&record));
        self.export(key, window, ExportItem::Object)?;
        Ok(record)
    }

    fn put_event(
        &mut self,
        key: &ObjectKey,
        window: Window,
        span: &EventSpanRecord,
    ) -> Result<(), StateError> {
        self.kv.put(
            schema::event_key(key, window.start_us, span.span_id),
            encode(span),
        );
        self.export(key, window, ExportItem::Event(span.span_id))
    }

    fn audit(&mut self, a: &AuditRecord) -> Result<CommandOutcome, StateError> {
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
        if self.kv.get(&span)?.is_some() {
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

    pub(super) fn store_patch(&mut self, key: &ObjectKey, rv: &str, lines: &str, time_us: i64) {
        if rv.is_empty() {
            return;
        }
        let pkey = schema::patch_key(key, rv);
        self.kv.put(schema::expiry_key(time_us, &pkey), Vec::new());
        self.kv.put(
            pkey,
            encode(&PatchRecord {
                lines: lines.to_string(),
                observed_us: time_us,
            }),
        );
    }

    /// Replaces the last known version unless `json` is older than it.
    fn store_version(
        &mut self,
        key: &ObjectKey,
        json: &str,
        h: &ObjectHead,
        deleted: bool,
        last: Option<&VersionRecord>,
    ) {
        if last.is_some_and(|l| rv_older(&h.metadata.resource_version, &l.resource_version)) {
            return;
        }
        let record = VersionRecord {
            resource_version: h.metadata.resource_version.clone(),
            kind: h.kind.clone(),
            object_json: json.to_string(),
            deleted,
        };
        self.kv.put(schema::version_key(key), encode(&record));
    }

    fn link_owners(
        &mut self,
        child: &ObjectKey,
        window: Window,
        time_us: i64,
        refs: &[OwnerReference],
    ) -> Result<(), StateError> {
        for owner in controller_owners_of(child, refs) {
            let lkey = schema::link_key(child, window.start_us, &owner.key);
            if self.kv.get(&lkey)?.is_some() {
                continue;
            }
            self.kv.put(
                lkey,
                encode(&link_record(child, window, &owner.key, LinkRole::Parent)),
            );
            self.export(child, window, ExportItem::Link(owner.key.clone()))?;
            let far = LinkCommand {
                target: owner.key.clone(),
                target_version: owner.version.clone(),
                linked: child.clone(),
                role: LinkRole::Child,
                class: LINK_CLASS_CHILDREN.to_string(),
                time_us,
            };
            let owner_shard = ids::shard_of(&owner.key, self.ctx.shards);
            if owner_shard == self.ctx.shard {
                self.link(&far)?;
            } else {
                self.push_outbox(OutboxEntry {
                    destination: Destination::Shard(owner_shard),
                    payload: OutboxPayload::Link(far),
                })?;
            }
        }
        Ok(())
    }

    fn link(&mut self, l: &LinkCommand) -> Result<CommandOutcome, StateError> {
        let window = Window::containing(l.time_us, self.ttl);
        let lkey = schema::link_key(&l.target, window.start_us, &l.linked);
        if self.kv.get(&lkey)?.is_some() {
            return Ok(CommandOutcome::Duplicate);
        }
        self.ensure_object_span(&l.target, &l.target_version, window)?;
        let mut record = link_record(&l.target, window, &l.linked, l.role);
        record.class = l.class.clone();
        self.kv.put(lkey, encode(&record));
        self.export(&l.target, window, ExportItem::Link(l.linked.clone()))?;
        Ok(CommandOutcome::Applied)
    }

    fn kube_event(&mut self, e: &KubeEventRecord) -> Result<CommandOutcome, StateError> {
        let time = e.time_us.to_string();
        // Keyed by cluster too: uids are unique, but two clusters may both send an
        // Event without one (then reason and time are all there is).
        let id: [&str; 4] = if e.uid.is_empty() {
            ["k", &e.key.cluster, &e.reason, &time]
        } else {
            ["k", &e.key.cluster, &e.uid, &e.resource_version]
        };
        // The span's key follows from the Event alone, so it is the dedupe marker (see
        // `audit_stored`).
        let span_id = ids::span_id(&id);
        let window = Window::containing(e.time_us, self.ttl);
        let span_key = schema::event_key(&e.key, window.start_us, span_id);
        if self.kv.get(&span_key)?.is_some() {
            return Ok(CommandOutcome::Duplicate);
        }
        self.ensure_object_span(&e.key, &e.version, window)?;
        self.mark_cluster(&e.key.cluster)?;
        // The Event's object is linked to its owners as an audited one is, from the
        // version the watchers last saw (SPEC 5.2: every object span is linked).
        if let Some(last) = self.get::<VersionRecord>(&schema::version_key(&e.key))? {
            let refs = head(&last.object_json).metadata.owner_references;
            self.link_owners(&e.key, window, e.time_us, &refs)?;
        }
        let span = EventSpanRecord {
            span_id,
            source: EventSource::Event,
            title: e.reason.clone(),
            start_us: e.time_us,
            end_us: e.time_us + EVENT_SPAN_US,
            version: e.version.clone(),
            tags: vec![
                ("source".into(), e.source.clone()),
                ("action".into(), e.action.clone()),
            ],
            logs: vec![log(LOG_EVENT_MESSAGE, e.message.clone())],
        };
        self.put_event(&e.key, window, &span)?;
        Ok(CommandOutcome::Applied)
    }

    fn object_version(&mut self, v: &ObjectVersionRecord) -> Result<CommandOutcome, StateError> {
        let key_text = v.key.to_string();
        if !self.first_time(&["v", &key_text, &v.resource_version], v.observed_us)? {
            return Ok(CommandOutcome::Duplicate);
        }
        let last: Option<VersionRecord> = self.get(&schema::version_key(&v.key))?;
        let h = head(&v.object_json);
        let known = last.as_ref().filter(|l| !l.deleted && l.kind == h.kind);
        let change = match known {
            _ if v.deleted => Some(ChangeKind::Deleted),
            None => Some(ChangeKind::Created),
            Some(l) if rv_older(&l.resource_version, &v.resource_version) => {
                let patch_key = schema::patch_key(&v.key, &v.resource_version);
                if self.kv.get(&patch_key)?.is_none() {
                    let lines = diff_lines(&l.object_json, &v.object_json);
                    self.store_patch(&v.key, &v.resource_version, &lines, v.observed_us);
                }
                Some(ChangeKind::Updated)
            }
            Some(_) => None,
        };
        if let Some(kind) = change {
            let from = known
                .map(|l| l.resource_version.clone())
                .unwrap_or_default();
            self.record_change(v, kind, &from);
        }
        self.store_version(&v.key, &v.object_json, &h, v.deleted, last.as_ref());
        if change.is_some() {
            self.wake_waiting(&v.key)?;
        }
        // An object already traced in this window (by an Event that came before its
        // version) gets the owner links its version names.
        let window = Window::containing(v.observed_us, self.ttl);
        let traced = schema::window_prefix(schema::OBJECT, &v.key, window.start_us);
        if self.kv.get(&traced)?.is_some() {
            self.link_owners(&v.key, window, v.observed_us, &h.metadata.owner_references)?;
        }
        Ok(CommandOutcome::Applied)
    }
}

/// Span id of an audit event: its audit ID and stage identify it.
fn audit_span_id(a: &AuditRecord) -> u64 {
    ids::span_id(&["audit", &a.audit_id, &a.stage])
}

pub(super) fn log(log_type: &str, message: String) -> LogRecord {
    LogRecord {
        log_type: log_type.to_string(),
        message,
    }
}

fn link_record(
    owner_of_trace: &ObjectKey,
    window: Window,
    linked: &ObjectKey,
    role: LinkRole,
) -> LinkRecord {
    LinkRecord {
        span_id: ids::span_id(&[
            "link",
            &owner_of_trace.to_string(),
            &linked.to_string(),
            &window.start_us.to_string(),
        ]),
        linked: linked.clone(),
        role,
        class: LINK_CLASS_CHILDREN.to_string(),
    }
}

fn diff_lines(old_json: &str, new_json: &str) -> String {
    match (
        serde_json::from_str::<serde_json::Value>(old_json),
        serde_json::from_str::<serde_json::Value>(new_json),
    ) {
        (Ok(old), Ok(new)) => diff::render(&diff::compare(&old, &new)),
        _ => String::new(),
    }
}
