//! The object store: every object as JSON, one resourceVersion counter for all of
//! them (as etcd's revision), and a bounded history of changes that watches resume
//! from. A watch or list from a version older than the history answers 410 Gone.

use crate::status::ApiError;
use crate::views::{from_view, storage_of, to_view};
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::broadcast;

/// A resource independent of its version: objects are stored once per group and
/// plural.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceId {
    /// API group, empty for the core group.
    pub group: String,
    /// Plural resource name.
    pub plural: String,
}

impl ResourceId {
    /// The resource `plural` of `group`.
    pub fn new(group: &str, plural: &str) -> Self {
        Self {
            group: group.into(),
            plural: plural.into(),
        }
    }
}

/// What a change did to its object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeType {
    /// Created.
    Added,
    /// Updated.
    Modified,
    /// Deleted (the object as it was, with the deletion's resourceVersion).
    Deleted,
}

impl ChangeType {
    /// The watch event type.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change, as watches deliver it.
#[derive(Debug)]
pub struct Change {
    /// The resourceVersion the change produced.
    pub rv: u64,
    /// What it did.
    pub change: ChangeType,
    /// The object's resource.
    pub resource: ResourceId,
    /// The object's namespace (empty for cluster-scoped objects).
    pub namespace: String,
    /// The object after the change.
    pub object: Arc<Value>,
    /// The object before a modification (watches with selectors turn a change that
    /// moves an object into or out of the selection into ADDED or DELETED).
    pub previous: Option<Arc<Value>>,
}

type ObjectKey = (ResourceId, String, String);

struct Inner {
    rv: u64,
    uids: u64,
    objects: BTreeMap<ObjectKey, Value>,
    history: VecDeque<Arc<Change>>,
    /// Changes at or below this version are no longer in the history.
    compacted: u64,
}

/// The store; cheap to share behind an `Arc`.
pub struct Store {
    inner: Mutex<Inner>,
    changes: broadcast::Sender<Arc<Change>>,
    history_limit: usize,
}

/// A watch's starting point: the retained changes after the requested version, and
/// a receiver of every change after those.
pub struct WatchStart {
    /// Changes already made after the requested version, oldest first.
    pub backlog: Vec<Arc<Change>>,
    /// Every later change.
    pub live: broadcast::Receiver<Arc<Change>>,
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Store {
    /// An empty store keeping the last `history_limit` changes for watches.
    pub fn new(history_limit: usize) -> Self {
        let (changes, _) = broadcast::channel(history_limit.clamp(64, 65_536));
        Self {
            inner: Mutex::new(Inner {
                rv: 1,
                uids: 0,
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                compacted: 1,
            }),
            changes,
            history_limit: history_limit.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current resourceVersion (of the newest change).
    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    /// One object.
    pub fn get(&self, r: &ResourceId, ns: &str, name: &str) -> Option<Value> {
        self.lock()
            .objects
            .get(&(storage_of(r), ns.to_string(), name.to_string()))
            .map(|o| to_view(r, o.clone()))
    }

    /// The objects of `r` (in `ns`, or everywhere with `None`), sorted by namespace
    /// and name, and the resourceVersion they were read at.
    pub fn list(&self, r: &ResourceId, ns: Option<&str>) -> (Vec<Value>, u64) {
        let inner = self.lock();
        let stored = storage_of(r);
        let items = inner
            .objects
            .iter()
            .filter(|((res, n, _), _)| *res == stored && ns.is_none_or(|ns| ns == n))
            .map(|(_, v)| to_view(r, v.clone()))
            .collect();
        (items, inner.rv)
    }

    /// Stores a new object: assigns its name (from `generateName`), uid,
    /// resourceVersion, creationTimestamp and generation.
    pub fn create(&self, view: &ResourceId, ns: &str, obj: Value) -> Result<Value, ApiError> {
        let r = &storage_of(view);
        let mut obj = from_view(view, obj);
        let mut inner = self.lock();
        let meta = obj["metadata"]
            .as_object_mut()
            .ok_or_else(|| ApiError::bad_request("metadata is required"))?;
        let name = match meta.get("name").and_then(Value::as_str) {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => {
                let prefix = meta
                    .get("generateName")
                    .and_then(Value::as_str)
                    .filter(|p| !p.is_empty())
                    .ok_or_else(|| {
                        ApiError::invalid(
                            "metadata.name: Required value: name or generateName is required",
                        )
                    })?;
                let suffix =
                    xxhash_rust::xxh3::xxh3_64(format!("{}/{prefix}", inner.uids).as_bytes());
                format!("{prefix}{}", short_suffix(suffix))
            }
        };
        let key = (r.clone(), ns.to_string(), name.clone());
        if inner.objects.contains_key(&key) {
            return Err(ApiError::already_exists(&r.plural, &name));
        }
        inner.uids += 1;
        inner.rv += 1;
        meta.insert("name".into(), name.into());
        if !ns.is_empty() {
            meta.insert("namespace".into(), ns.into());
        }
        meta.insert("uid".into(), uid(inner.uids).into());
        meta.insert("resourceVersion".into(), inner.rv.to_string().into());
        meta.insert("creationTimestamp".into(), now_rfc3339().into());
        meta.insert("generation".into(), 1.into());
        inner.objects.insert(key, obj.clone());
        self.record(&mut inner, ChangeType::Added, r, ns, &obj, None);
        Ok(to_view(view, obj))
    }

    /// Replaces an object. With `expected_rv`, the stored object must still have
    /// that resourceVersion (409 Conflict otherwise). Identity fields (uid,
    /// creationTimestamp) are kept from the stored object; the generation is bumped
    /// when `spec` changed.
    pub fn replace(
        &self,
        view: &ResourceId,
        ns: &str,
        name: &str,
        obj: Value,
        expected_rv: Option<&str>,
    ) -> Result<Value, ApiError> {
        let r = &storage_of(view);
        let mut obj = from_view(view, obj);
        let mut inner = self.lock();
        let key = (r.clone(), ns.to_string(), name.to_string());
        let old = inner
            .objects
            .get(&key)
            .ok_or_else(|| ApiError::not_found(&r.plural, name))?;
        let stored_rv = old["metadata"]["resourceVersion"].as_str().unwrap_or("");
        if expected_rv.is_some_and(|e| !e.is_empty() && e != stored_rv) {
            return Err(ApiError::conflict(&r.plural, name));
        }
        let generation = old["metadata"]["generation"].as_i64().unwrap_or(1)
            + i64::from(old.get("spec") != obj.get("spec"));
        let (uid, created) = (
            old["metadata"]["uid"].clone(),
            old["metadata"]["creationTimestamp"].clone(),
        );
        let previous = Arc::new(old.clone());
        inner.rv += 1;
        let meta = obj["metadata"]
            .as_object_mut()
            .ok_or_else(|| ApiError::bad_request("metadata is required"))?;
        meta.insert("name".into(), name.into());
        if !ns.is_empty() {
            meta.insert("namespace".into(), ns.into());
        }
        meta.insert("uid".into(), uid);
        meta.insert("creationTimestamp".into(), created);
        meta.insert("generation".into(), generation.into());
        meta.insert("resourceVersion".into(), inner.rv.to_string().into());
        inner.objects.insert(key, obj.clone());
        self.record(
            &mut inner,
            ChangeType::Modified,
            r,
            ns,
            &obj,
            Some(previous),
        );
        Ok(to_view(view, obj))
    }

    /// Deletes an object; returns it with the deletion's resourceVersion.
    pub fn delete(&self, view: &ResourceId, ns: &str, name: &str) -> Result<Value, ApiError> {
        let r = &storage_of(view);
        let mut inner = self.lock();
        let key = (r.clone(), ns.to_string(), name.to_string());
        let mut obj = inner
            .objects
            .remove(&key)
            .ok_or_else(|| ApiError::not_found(&r.plural, name))?;
        inner.rv += 1;
        obj["metadata"]["resourceVersion"] = inner.rv.to_string().into();
        self.record(&mut inner, ChangeType::Deleted, r, ns, &obj, None);
        Ok(to_view(view, obj))
    }

    fn record(
        &self,
        inner: &mut Inner,
        change: ChangeType,
        r: &ResourceId,
        ns: &str,
        obj: &Value,
        previous: Option<Arc<Value>>,
    ) {
        let c = Arc::new(Change {
            rv: inner.rv,
            change,
            resource: r.clone(),
            namespace: ns.to_string(),
            object: Arc::new(obj.clone()),
            previous,
        });
        inner.history.push_back(c.clone());
        while inner.history.len() > self.history_limit {
            if let Some(old) = inner.history.pop_front() {
                inner.compacted = old.rv;
            }
        }
        let _ = self.changes.send(c);
    }

    /// Starts a watch after resourceVersion `since`: the retained changes after it
    /// and a receiver of later ones, taken under one lock so none is missed or
    /// repeated. 410 Gone when changes after `since` were already compacted away.
    pub fn watch_from(&self, since: u64) -> Result<WatchStart, ApiError> {
        let inner = self.lock();
        if since < inner.compacted {
            return Err(ApiError::gone(since, inner.compacted));
        }
        let backlog = inner
            .history
            .iter()
            .filter(|c| c.rv > since)
            .cloned()
            .collect();
        Ok(WatchStart {
            backlog,
            live: self.changes.subscribe(),
        })
    }

    /// The oldest resourceVersion a watch or an exact list can still start from.
    pub fn oldest_rv(&self) -> u64 {
        self.lock().compacted
    }
}

fn short_suffix(h: u64) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|i| ALPHABET[((h >> (i * 8)) % ALPHABET.len() as u64) as usize] as char)
        .collect()
}

/// A per-process seed, so uids differ between runs of the simulator (a consumer
/// that saw a previous run must not take new objects for old ones).
static UID_SEED: std::sync::LazyLock<u64> = std::sync::LazyLock::new(|| {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ u64::from(std::process::id())
});

fn uid(n: u64) -> String {
    let h = xxhash_rust::xxh3::xxh3_128(&[n.to_be_bytes(), UID_SEED.to_be_bytes()].concat());
    let hex = format!("{h:032x}");
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}
