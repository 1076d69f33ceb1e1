//! Key layout of a shard's records.
//!
//! One prefix byte per record kind; object keys are followed by a 0 byte (which no
//! Kubernetes name contains) so that one object's records sort together; times and
//! sequence numbers are big-endian so that byte order is time order.

use super::kv::StateError;
use crate::key::ObjectKey;
use crate::outbox::OutboxKind;
use serde::{de::DeserializeOwned, Serialize};

/// Object span of (object, window).
pub const OBJECT: u8 = b'o';
/// Event span under (object, window).
pub const EVENT: u8 = b'e';
/// Link span under (object, window).
pub const LINK: u8 = b'l';
/// Window index: window start, then the object's name, a 0 byte and its key, so a
/// search that names the object seeks to it instead of reading the whole window.
/// Before that layout the key followed the window start directly ([`WINDOW_BY_NAME_SINCE`]).
pub const WINDOW: u8 = b'w';
/// Trace-ID index to the object span.
pub const TRACE: u8 = b'i';
/// Last known version of an object.
pub const VERSION: u8 = b'v';
/// Diff keyed by the newer resourceVersion.
pub const PATCH: u8 = b'p';
/// Dedupe markers of commands already applied.
pub const DEDUPE: u8 = b'd';
/// Expiry index: time, then a key to delete when the time passes the retention.
pub const EXPIRY: u8 = b't';
/// Outbox of side effects leaving the shard (by kind, then sequence).
pub const OUTBOX: u8 = b'x';
/// Counters.
pub const META: u8 = b'm';
/// Cached search results.
pub const RESULT: u8 = b'r';
/// Deadline index: absolute expiry time, then the key to delete.
pub const DEADLINE: u8 = b'T';
/// Cluster names seen in ingested data.
pub const CLUSTER: u8 = b'c';
/// Watched changes of an object by observation time.
pub const CHANGE: u8 = b'h';
/// Creation and deletion snapshots by resourceVersion.
pub const SNAPSHOT: u8 = b's';
/// Watched updates by the resourceVersion they replaced.
pub const FROM: u8 = b'f';
/// Audit events waiting for a watched change.
pub const WAIT: u8 = b'q';
/// Wait deadline index: deadline, then the wait key.
pub const WAIT_DUE: u8 = b'Q';

/// Key of a watched change of `key` observed at `time_us`.
pub fn change_key(key: &ObjectKey, time_us: i64, rv: &str) -> Vec<u8> {
    let mut v = object_prefix(CHANGE, key);
    v.extend_from_slice(&time_bytes(time_us));
    v.extend_from_slice(rv.as_bytes());
    v
}

/// Key of the creation or deletion snapshot of `key` at resourceVersion `rv`.
pub fn snapshot_key(key: &ObjectKey, rv: &str) -> Vec<u8> {
    let mut v = object_prefix(SNAPSHOT, key);
    v.extend_from_slice(rv.as_bytes());
    v
}

/// Key naming the resourceVersion that replaced `old_rv` of `key`.
pub fn from_key(key: &ObjectKey, old_rv: &str) -> Vec<u8> {
    let mut v = object_prefix(FROM, key);
    v.extend_from_slice(old_rv.as_bytes());
    v
}

/// Key of a waiting audit event (audit ID and stage identify it).
pub fn wait_key(key: &ObjectKey, audit_id: &str, stage: &str) -> Vec<u8> {
    let mut v = object_prefix(WAIT, key);
    v.extend_from_slice(audit_id.as_bytes());
    v.push(0);
    v.extend_from_slice(stage.as_bytes());
    v
}

/// Deadline index key of a waiting audit event.
pub fn wait_due_key(deadline_us: i64, wait_key: &[u8]) -> Vec<u8> {
    let mut v = vec![WAIT_DUE];
    v.extend_from_slice(&time_bytes(deadline_us));
    v.extend_from_slice(wait_key);
    v
}

/// Key of a cached search result.
pub fn result_key(key: u64) -> Vec<u8> {
    let mut v = vec![RESULT];
    v.extend_from_slice(&key.to_be_bytes());
    v
}

/// Deadline index key: delete `target` once `deadline_us` has passed.
pub fn deadline_key(deadline_us: i64, target: &[u8]) -> Vec<u8> {
    let mut v = vec![DEADLINE];
    v.extend_from_slice(&time_bytes(deadline_us));
    v.extend_from_slice(target);
    v
}

/// Key recording that a cluster name has been seen.
pub fn cluster_key(cluster: &str) -> Vec<u8> {
    let mut v = vec![CLUSTER];
    v.extend_from_slice(cluster.as_bytes());
    v
}

/// Encodes a signed time so that byte order equals numeric order.
pub fn time_bytes(t: i64) -> [u8; 8] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}

/// Decodes [`time_bytes`].
pub fn time_from(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    (u64::from_be_bytes(a) ^ (1 << 63)) as i64
}

/// `kind | object key | 0`.
pub fn object_prefix(kind: u8, key: &ObjectKey) -> Vec<u8> {
    // Room for the window start and a span id after it (`event_key`).
    let mut v = Vec::with_capacity(key.text_len() + 18);
    v.push(kind);
    key.append_text(&mut v);
    v.push(0);
    v
}

/// `kind | object key | 0 | window start`: everything of one object in one window.
pub fn window_prefix(kind: u8, key: &ObjectKey, start_us: i64) -> Vec<u8> {
    let mut v = object_prefix(kind, key);
    v.extend_from_slice(&time_bytes(start_us));
    v
}

/// Key of the event span `span_id` in (object, window).
pub fn event_key(key: &ObjectKey, start_us: i64, span_id: u64) -> Vec<u8> {
    let mut v = window_prefix(EVENT, key, start_us);
    v.extend_from_slice(&span_id.to_be_bytes());
    v
}

/// Key of the link to `linked` in (object, window).
pub fn link_key(key: &ObjectKey, start_us: i64, linked: &ObjectKey) -> Vec<u8> {
    let mut v = window_prefix(LINK, key, start_us);
    linked.append_text(&mut v);
    v
}

/// Meta key holding the first window start from which every window index key has
/// the name-ordered layout; earlier windows may hold keys of the older layout
/// (window start, then object key), which only a scan of the window finds.
pub const WINDOW_BY_NAME_SINCE: &[u8] = b"mwindow_by_name_since";

/// Window index key.
pub fn window_index_key(start_us: i64, key: &ObjectKey) -> Vec<u8> {
    let mut v = window_name_prefix(start_us, &key.name);
    key.append_text(&mut v);
    v
}

/// `w | window start`: every index entry of one window.
pub fn window_start_prefix(start_us: i64) -> Vec<u8> {
    let mut v = Vec::with_capacity(64);
    v.push(WINDOW);
    v.extend_from_slice(&time_bytes(start_us));
    v
}

/// `w | window start | name | 0`: the index entries of objects named `name` in one
/// window.
pub fn window_name_prefix(start_us: i64, name: &str) -> Vec<u8> {
    let mut v = window_start_prefix(start_us);
    v.extend_from_slice(name.as_bytes());
    v.push(0);
    v
}

/// The window start and object of a window index key, in either layout.
pub fn parse_window_index(k: &[u8]) -> Option<(i64, ObjectKey)> {
    if k.len() < 9 || k[0] != WINDOW {
        return None;
    }
    let rest = &k[9..];
    let key = match rest.iter().position(|&b| b == 0) {
        Some(zero) => &rest[zero + 1..],
        None => rest,
    };
    let key = ObjectKey::parse(std::str::from_utf8(key).ok()?)?;
    Some((time_from(&k[1..9]), key))
}

/// Trace-ID index key.
pub fn trace_index_key(trace_id: u128) -> Vec<u8> {
    let mut v = vec![TRACE];
    v.extend_from_slice(&trace_id.to_be_bytes());
    v
}

/// Key of an object's last version.
pub fn version_key(key: &ObjectKey) -> Vec<u8> {
    let mut v = object_prefix(VERSION, key);
    v.pop();
    v
}

/// Key of the diff that produced version `rv`.
pub fn patch_key(key: &ObjectKey, rv: &str) -> Vec<u8> {
    let mut v = object_prefix(PATCH, key);
    v.extend_from_slice(rv.as_bytes());
    v
}

/// Key of a dedupe marker.
pub fn dedupe_key(parts: &[&str]) -> Vec<u8> {
    let mut v = vec![DEDUPE];
    v.extend_from_slice(parts.join("\0").as_bytes());
    v
}

/// Expiry index key: delete `target` once `time_us` is older than the retention.
pub fn expiry_key(time_us: i64, target: &[u8]) -> Vec<u8> {
    let mut v = vec![EXPIRY];
    v.extend_from_slice(&time_bytes(time_us));
    v.extend_from_slice(target);
    v
}

/// Outbox entry key: the kind's tag, then its sequence number.
pub fn outbox_key(kind: OutboxKind, seq: u64) -> Vec<u8> {
    let mut v = vec![OUTBOX, kind.tag()];
    v.extend_from_slice(&seq.to_be_bytes());
    v
}

/// Key of the next outbox sequence number of `kind`.
pub fn outbox_seq_key(kind: OutboxKind) -> Vec<u8> {
    let mut v = b"moutbox_seq/".to_vec();
    v.push(kind.tag());
    v
}

/// Key of the number of entries in the outbox of `kind`.
pub fn outbox_count_key(kind: OutboxKind) -> Vec<u8> {
    let mut v = b"moutbox_count/".to_vec();
    v.push(kind.tag());
    v
}

/// The first key after every key starting with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xff; prefix.len() + 1]
}

/// Serialises a record.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising plain data structs into a Vec cannot fail; postcard only errors on
    // unsupported serde features (maps with unknown length), which records do not use.
    crate::codec::to_sized_vec(value).expect("record types are postcard-serialisable")
}

/// Deserialises a record, naming the key on failure.
pub fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, StateError> {
    postcard::from_bytes(bytes).map_err(|e| StateError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        message: e.to_string(),
    })
}

/// Splits `kind | object key | 0 | ...` into the key and the rest.
pub fn split_object_key(key: &[u8]) -> Option<(ObjectKey, &[u8])> {
    let zero = key.iter().position(|&b| b == 0)?;
    let k = ObjectKey::parse(std::str::from_utf8(&key[1..zero]).ok()?)?;
    Some((k, &key[zero + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_order_is_byte_order() {
        let ts = [-5i64, 0, 7, 1_700_000_000_000_000];
        for w in ts.windows(2) {
            assert!(time_bytes(w[0]) < time_bytes(w[1]));
        }
        assert_eq!(time_from(&time_bytes(-5)), -5);
        assert_eq!(prefix_end(b"ab"), b"ac");
        assert_eq!(prefix_end(&[1, 0xff]), vec![2]);
    }

    #[test]
    fn window_index_keys_of_both_layouts_parse() {
        let key = ObjectKey::new("c1", "apps", "deployments", "ns", "web");
        let new = window_index_key(1_800, &key);
        assert!(new.starts_with(&window_name_prefix(1_800, "web")));
        assert_eq!(parse_window_index(&new), Some((1_800, key.clone())));
        let mut old = window_start_prefix(-3_600);
        old.extend_from_slice(key.to_string().as_bytes());
        assert_eq!(parse_window_index(&old), Some((-3_600, key)));
        assert_eq!(parse_window_index(b"w123"), None);
    }
}
