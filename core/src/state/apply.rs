//! Applying a proposal to a shard's records: the commands other than audit events
//! (see `apply_audit`), and the object spans, links, versions and patches they share.

use super::kv::{KvRead, Overlay, StateError};
use super::schema::{self, decode, encode};
use super::window_index;
use crate::command::{Command, CommandOutcome, LinkCommand, Proposal, ProposalOutcome};
use crate::diff;
use crate::event::KubeEventRecord;
use crate::ids;
use crate::key::ObjectKey;
use crate::model::{
    ChangeKind, EventSource, EventSpanRecord, LinkRecord, LinkRole, LogRecord, ObjectSpanRecord,
    PatchRecord, VersionRecord, LINK_CLASS_CHILDREN, LOG_EVENT_MESSAGE,
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

/// The parts of an object's JSON the state machine looks at.
#[derive(Deserialize, Default)]
pub(super) struct ObjectHead {
    #[serde(default)]
    pub(super) kind: String,
    #[serde(default)]
    pub(super) metadata: HeadMeta,
}

/// The metadata fields of [`ObjectHead`].
#[derive(Deserialize, Default)]
pub(super) struct HeadMeta {
    #[serde(default, rename = "resourceVersion")]
    pub(super) resource_version: String,
    #[serde(default, rename = "ownerReferences")]
    pub(super) owner_references: Vec<OwnerReference>,
}

/// The parts of an object's JSON the state machine looks at; empty when it does not
/// parse.
pub(super) fn head(json: &str) -> ObjectHead {
    serde_json::from_str(json).unwrap_or_default()
}

/// Whether resourceVersion `a` is older than `b`. Resource versions are opaque strings,
/// but every real API server uses etcd revisions; when either is not a number they are
/// treated as unordered (not older).
pub(super) fn rv_older(a: &str, b: &str) -> bool {
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

    /// Whether `record`, an event span or a link of `key`'s window starting at
    /// `start_us`, exists. A window's records are written only once its object span
    /// is, and retention deletes them all with it in one batch; so when the store
    /// holds no span for the window it holds none of its records, and only this
    /// batch's writes can have one. The first event of an object in a window then
    /// costs one store read (the span, remembered for the batch) instead of three.
    pub(super) fn window_record_exists(
        &self,
        key: &ObjectKey,
        start_us: i64,
        record: &[u8],
    ) -> Result<bool, StateError> {
        let span = schema::window_prefix(schema::OBJECT, key, start_us);
        if !self.kv.stored(&span)? {
            return Ok(self.kv.written(record));
        }
        Ok(self.kv.get(record)?.is_some())
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
    pub(super) fn mark_cluster(&mut self, cluster: &str) -> Result<(), StateError> {
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

    pub(super) fn ensure_object_span(
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

    pub(super) fn put_event(
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
    pub(super) fn store_version(
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

    pub(super) fn link_owners(
        &mut self,
        child: &ObjectKey,
        window: Window,
        time_us: i64,
        refs: &[OwnerReference],
    ) -> Result<(), StateError> {
        for owner in controller_owners_of(child, refs) {
            let lkey = schema::link_key(child, window.start_us, &owner.key);
            if self.window_record_exists(child, window.start_us, &lkey)? {
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
        if self.window_record_exists(&l.target, window.start_us, &lkey)? {
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
        if self.window_record_exists(&e.key, window.start_us, &span_key)? {
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

/// The rendered diff between two versions of an object's JSON; empty when either
/// does not parse.
pub(super) fn diff_lines(old_json: &str, new_json: &str) -> String {
    match (
        serde_json::from_str::<serde_json::Value>(old_json),
        serde_json::from_str::<serde_json::Value>(new_json),
    ) {
        (Ok(old), Ok(new)) => diff::render(&diff::compare(&old, &new)),
        _ => String::new(),
    }
}
