//! Reading stored traces back: by time range and tags, by trace ID, and the outbox.

use super::kv::{KvRead, StateError};
use super::schema::{self, decode};
use super::window_index;
use crate::command::ResultEntry;
use crate::key::ObjectKey;
use crate::model::{EventSource, EventSpanRecord, LinkRecord, ObjectSpanRecord};
use crate::outbox::{ExportItem, ExportRef, OutboxEntry, OutboxKind};

/// One object's trace in one window, as stored.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredTrace {
    /// The object span.
    pub object: ObjectSpanRecord,
    /// Event spans in span-ID order.
    pub events: Vec<EventSpanRecord>,
    /// Link spans in linked-key order.
    pub links: Vec<LinkRecord>,
}

/// A search over stored traces.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct TraceQuery {
    /// Keep only traces with an event span of this source; `None` keeps all.
    pub source: Option<EventSource>,
    /// Tags that must match exactly: identity tags against the object, any other tag
    /// (`auditId`, `username`, `source`, ...) against some event span of the trace.
    pub tags: Vec<(String, String)>,
    /// Range start, microseconds.
    pub start_us: i64,
    /// Range end, microseconds.
    pub end_us: i64,
    /// Most traces to return, newest windows first.
    pub limit: usize,
    /// Longest window length in use, so windows that began before `start_us` but
    /// overlap it are found.
    pub max_window_us: i64,
}

impl TraceQuery {
    fn matches_key(&self, key: &ObjectKey) -> bool {
        self.tags
            .iter()
            .all(|(t, v)| key.tag(t).is_none_or(|have| have == v))
    }

    fn matches_events(&self, t: &StoredTrace) -> bool {
        self.tags
            .iter()
            .filter(|(k, _)| ObjectKey::default().tag(k).is_none())
            .all(|(k, v)| {
                t.events
                    .iter()
                    .any(|e| e.tags.iter().any(|(ek, ev)| ek == k && ev == v))
            })
    }
}

/// Loads the trace of `key` in the window starting at `start_us`.
pub fn load_trace(
    kv: &dyn KvRead,
    key: &ObjectKey,
    start_us: i64,
) -> Result<Option<StoredTrace>, StateError> {
    let okey = schema::window_prefix(schema::OBJECT, key, start_us);
    let Some(bytes) = kv.get(&okey)? else {
        return Ok(None);
    };
    let object: ObjectSpanRecord = decode(&okey, &bytes)?;
    let events = scan_records(kv, &schema::window_prefix(schema::EVENT, key, start_us))?;
    let links = scan_records(kv, &schema::window_prefix(schema::LINK, key, start_us))?;
    Ok(Some(StoredTrace {
        object,
        events,
        links,
    }))
}

fn scan_records<T: serde::de::DeserializeOwned>(
    kv: &dyn KvRead,
    prefix: &[u8],
) -> Result<Vec<T>, StateError> {
    let mut out = Vec::new();
    let mut err = None;
    kv.scan(
        prefix,
        &schema::prefix_end(prefix),
        &mut |k, v| match decode(k, v) {
            Ok(r) => {
                out.push(r);
                true
            }
            Err(e) => {
                err = Some(e);
                false
            }
        },
    )?;
    err.map_or(Ok(out), Err)
}

/// Every window of one object overlapping `[start_us, end_us]`, oldest first: a scan
/// of the object's own key range, independent of how many other objects the shard has.
pub fn object_windows(
    kv: &dyn KvRead,
    key: &ObjectKey,
    start_us: i64,
    end_us: i64,
    max_window_us: i64,
) -> Result<Vec<StoredTrace>, StateError> {
    let from = schema::window_prefix(schema::OBJECT, key, start_us.saturating_sub(max_window_us));
    let to = schema::window_prefix(schema::OBJECT, key, end_us.saturating_add(1));
    let mut starts = Vec::new();
    kv.scan(&from, &to, &mut |k, _| {
        starts.push(schema::time_from(&k[k.len() - 8..]));
        true
    })?;
    let mut out = Vec::new();
    for start in starts {
        if let Some(t) = load_trace(kv, key, start)? {
            if t.object.window.overlaps(start_us, end_us) {
                out.push(t);
            }
        }
    }
    Ok(out)
}

/// Finds the trace with the given ID.
pub fn find_trace_by_id(
    kv: &dyn KvRead,
    trace_id: u128,
) -> Result<Option<StoredTrace>, StateError> {
    let Some(okey) = kv.get(&schema::trace_index_key(trace_id))? else {
        return Ok(None);
    };
    let Some((key, rest)) = schema::split_object_key(&okey) else {
        return Ok(None);
    };
    if rest.len() < 8 {
        return Ok(None);
    }
    load_trace(kv, &key, schema::time_from(rest))
}

/// Finds traces whose window overlaps the query range and whose object matches the
/// tags, newest windows first.
pub fn find_traces(kv: &dyn KvRead, q: &TraceQuery) -> Result<Vec<StoredTrace>, StateError> {
    let name = q
        .tags
        .iter()
        .find(|(t, _)| t == "name")
        .map(|(_, v)| v.as_str());
    let candidates = window_index::entries(
        kv,
        q.start_us.saturating_sub(q.max_window_us),
        q.end_us.saturating_add(1),
        name,
        &|key| q.matches_key(key),
    )?;
    let mut out = Vec::new();
    for (start_us, key) in candidates.into_iter().rev() {
        if out.len() >= q.limit {
            break;
        }
        let Some(trace) = load_trace(kv, &key, start_us)? else {
            continue;
        };
        if !trace.object.window.overlaps(q.start_us, q.end_us) {
            continue;
        }
        if let Some(source) = q.source {
            if !trace.events.iter().any(|e| e.source == source) {
                continue;
            }
        }
        if !q.matches_events(&trace) {
            continue;
        }
        out.push(trace);
    }
    Ok(out)
}

/// Up to `limit` undelivered outbox entries of `kind` from sequence number `from_seq`
/// on, oldest first, with their sequence numbers.
///
/// Acknowledged entries are deletions that stay in RocksDB's memtables and upper
/// levels until compacted away, and a scan from the start of the outbox steps over
/// every one of them; a relay that knows which entries it already acknowledged
/// starts after them.
pub fn list_outbox(
    kv: &dyn KvRead,
    kind: OutboxKind,
    from_seq: u64,
    limit: usize,
) -> Result<Vec<(u64, OutboxEntry)>, StateError> {
    let mut out = Vec::new();
    let mut err = None;
    let start = schema::outbox_key(kind, from_seq);
    let end = [schema::OUTBOX, kind.tag() + 1];
    kv.scan(&start, &end, &mut |k, v| {
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&k[2..10]);
        match decode(k, v) {
            Ok(cmd) => out.push((u64::from_be_bytes(seq), cmd)),
            Err(e) => err = Some(e),
        }
        err.is_none() && out.len() < limit
    })?;
    err.map_or(Ok(out), Err)
}

/// A cached search result.
pub fn load_result(kv: &dyn KvRead, key: u64) -> Result<Option<ResultEntry>, StateError> {
    let rkey = schema::result_key(key);
    kv.get(&rkey)?.map(|b| decode(&rkey, &b)).transpose()
}

/// Cluster names seen in this shard's data.
pub fn clusters(kv: &dyn KvRead) -> Result<Vec<String>, StateError> {
    let mut out = Vec::new();
    kv.scan(&[schema::CLUSTER], &[schema::CLUSTER + 1], &mut |k, _| {
        out.push(String::from_utf8_lossy(&k[1..]).into_owned());
        true
    })?;
    Ok(out)
}

/// A read of one shard's state that may be served by another node (the shard's
/// leader), so it travels as data.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub enum ShardRead {
    /// [`object_windows`] of one object.
    ObjectWindows {
        /// The object.
        key: ObjectKey,
        /// Range start, microseconds.
        start_us: i64,
        /// Range end, microseconds.
        end_us: i64,
        /// Longest window length.
        max_window_us: i64,
    },
    /// [`find_traces`].
    FindTraces(TraceQuery),
    /// [`find_trace_by_id`].
    TraceById(u128),
    /// [`load_result`].
    LoadResult(u64),
    /// [`clusters`].
    Clusters,
}

/// What a [`ShardRead`] returns.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ShardReadResult {
    /// Traces (object windows, search hits, or zero or one trace by ID).
    Traces(Vec<StoredTrace>),
    /// A stored search result, if any.
    Result(Option<ResultEntry>),
    /// Cluster names.
    Clusters(Vec<String>),
}

impl ShardRead {
    /// Runs the read against a shard's state.
    pub fn run(&self, kv: &dyn KvRead) -> Result<ShardReadResult, StateError> {
        Ok(match self {
            Self::ObjectWindows {
                key,
                start_us,
                end_us,
                max_window_us,
            } => ShardReadResult::Traces(object_windows(
                kv,
                key,
                *start_us,
                *end_us,
                *max_window_us,
            )?),
            Self::FindTraces(q) => ShardReadResult::Traces(find_traces(kv, q)?),
            Self::TraceById(id) => {
                ShardReadResult::Traces(find_trace_by_id(kv, *id)?.into_iter().collect())
            }
            Self::LoadResult(key) => ShardReadResult::Result(load_result(kv, *key)?),
            Self::Clusters => ShardReadResult::Clusters(clusters(kv)?),
        })
    }
}

/// Deadline of the audit event that has waited longest for a watched change, if any
/// waits; the leader releases events past their deadline.
pub fn first_wait_deadline(kv: &dyn KvRead) -> Result<Option<i64>, StateError> {
    let mut first = None;
    kv.scan(&[schema::WAIT_DUE], &[schema::WAIT_DUE + 1], &mut |k, _| {
        first = k.get(1..9).map(schema::time_from);
        false
    })?;
    Ok(first)
}

/// A stored span an export entry names, with the object span of its window: a
/// [`StoredTrace`] holding just that span (the object span alone for
/// [`ExportItem::Object`]). `None` when retention deleted it before it was sent.
pub fn load_export(kv: &dyn KvRead, r: &ExportRef) -> Result<Option<StoredTrace>, StateError> {
    let okey = schema::window_prefix(schema::OBJECT, &r.key, r.window_start_us);
    let Some(bytes) = kv.get(&okey)? else {
        return Ok(None);
    };
    let mut trace = StoredTrace {
        object: decode(&okey, &bytes)?,
        events: Vec::new(),
        links: Vec::new(),
    };
    match &r.item {
        ExportItem::Object => {}
        ExportItem::Event(span_id) => {
            let ekey = schema::event_key(&r.key, r.window_start_us, *span_id);
            let Some(bytes) = kv.get(&ekey)? else {
                return Ok(None);
            };
            trace.events.push(decode(&ekey, &bytes)?);
        }
        ExportItem::Link(linked) => {
            let lkey = schema::link_key(&r.key, r.window_start_us, linked);
            let Some(bytes) = kv.get(&lkey)? else {
                return Ok(None);
            };
            trace.links.push(decode(&lkey, &bytes)?);
        }
    }
    Ok(Some(trace))
}

/// How many entries the outbox of `kind` holds.
pub fn outbox_len(kv: &dyn KvRead, kind: OutboxKind) -> Result<u64, StateError> {
    let key = schema::outbox_count_key(kind);
    kv.get(&key)?.map_or(Ok(0), |b| decode(&key, &b))
}
