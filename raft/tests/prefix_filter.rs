//! The state family keeps filters of filter prefixes (one trace's records, one
//! object's windows, one name in a window). Scans within a prefix use them to skip
//! tables; every other scan must still see every key of its range, whichever tables
//! hold the range's prefixes. Both are checked against an in-memory copy, over keys
//! spread across several flushed tables and the memtable, and again after a reopen.

use kelemetry_core::key::ObjectKey;
use kelemetry_core::state::schema;
use kelemetry_core::state::KvRead;
use kelemetry_raft::engine::Op;
use kelemetry_raft::keys;
use kelemetry_raft::Engine;
use proptest::prelude::*;
use std::collections::BTreeMap;

const GROUP: u32 = 7;
const WINDOW_US: i64 = 1_800_000_000;

/// A record of object `object` in window `window`: an event span, a link, the object
/// span or the window index entry.
#[derive(Clone, Debug)]
struct Record {
    kind: u8,
    object: u8,
    window: u8,
    span: u8,
}

fn object(n: u8) -> ObjectKey {
    ObjectKey::new("c1", "", "pods", "ns", format!("pod-{n}"))
}

fn start_us(window: u8) -> i64 {
    (i64::from(window) - 1) * WINDOW_US
}

fn key_of(r: &Record) -> Vec<u8> {
    let (key, start) = (object(r.object), start_us(r.window));
    match r.kind {
        0 => schema::event_key(&key, start, u64::from(r.span)),
        1 => schema::link_key(&key, start, &object(r.span)),
        2 => schema::window_prefix(schema::OBJECT, &key, start),
        _ => schema::window_index_key(start, &key),
    }
}

fn record() -> impl Strategy<Value = Record> {
    (0u8..4, 0u8..6, 0u8..3, 0u8..4).prop_map(|(kind, object, window, span)| Record {
        kind,
        object,
        window,
        span,
    })
}

/// Keys of the copy in `[start, end)`.
fn expected(copy: &BTreeMap<Vec<u8>, Vec<u8>>, start: &[u8], end: &[u8]) -> Vec<Vec<u8>> {
    copy.range(start.to_vec()..end.to_vec())
        .map(|(k, _)| k.clone())
        .collect()
}

fn scanned(view: &dyn KvRead, start: &[u8], end: &[u8], in_prefix: bool) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut visit = |k: &[u8], _: &[u8]| {
        out.push(k.to_vec());
        true
    };
    if in_prefix {
        view.scan_in_prefix(start, end, &mut visit).unwrap();
    } else {
        view.scan(start, end, &mut visit).unwrap();
    }
    out
}

/// Every prefix scan the reads make (a trace's events and links, an object's
/// windows, a name's index entries), plus total-order scans that start at prefixes
/// some tables do not hold.
fn check_scans(engine: &Engine, copy: &BTreeMap<Vec<u8>, Vec<u8>>) {
    let view = engine.view(keys::state_prefix(GROUP));
    for o in 0..7 {
        let key = object(o);
        for w in 0..4 {
            for kind in [schema::EVENT, schema::LINK] {
                let prefix = schema::window_prefix(kind, &key, start_us(w));
                let end = schema::prefix_end(&prefix);
                assert_eq!(
                    scanned(&view, &prefix, &end, true),
                    expected(copy, &prefix, &end)
                );
            }
            let named = schema::window_name_prefix(start_us(w), &key.name);
            let end = schema::prefix_end(&named);
            assert_eq!(
                scanned(&view, &named, &end, true),
                expected(copy, &named, &end)
            );
        }
        let from = schema::window_prefix(schema::OBJECT, &key, start_us(1));
        let to = schema::window_prefix(schema::OBJECT, &key, start_us(3));
        assert_eq!(scanned(&view, &from, &to, true), expected(copy, &from, &to));
        for kind in [schema::EVENT, schema::OBJECT, schema::WINDOW] {
            let from = match kind {
                schema::WINDOW => schema::window_name_prefix(start_us(0), &key.name),
                _ => schema::object_prefix(kind, &key),
            };
            let end = [kind + 1];
            assert_eq!(
                scanned(&view, &from, &end, false),
                expected(copy, &from, &end),
                "a total-order scan from {} skipped keys",
                String::from_utf8_lossy(&from)
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn prefix_scans_and_total_order_scans_see_every_key_of_their_range(
        tables in prop::collection::vec(prop::collection::vec(record(), 1..12), 1..5),
        in_memtable in prop::collection::vec(record(), 0..8),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut copy = BTreeMap::new();
        let write = |engine: &Engine, records: &[Record], copy: &mut BTreeMap<Vec<u8>, Vec<u8>>| {
            let view = engine.view(keys::state_prefix(GROUP));
            let ops: Vec<Op> = records
                .iter()
                .map(|r| {
                    let key = key_of(r);
                    copy.insert(key.clone(), vec![r.span]);
                    view.op(key, Some(vec![r.span]))
                })
                .collect();
            engine.write(ops, false).unwrap();
        };
        // One table per opening: `flush` writes the memtable out and ends the
        // engine's background work.
        for table in &tables {
            let engine = Engine::open(dir.path()).unwrap();
            write(&engine, table, &mut copy);
            engine.flush().unwrap();
        }
        {
            let engine = Engine::open(dir.path()).unwrap();
            write(&engine, &in_memtable, &mut copy);
            check_scans(&engine, &copy);
        }
        let engine = Engine::open(dir.path()).unwrap();
        check_scans(&engine, &copy);
    }
}

#[test]
fn only_state_records_of_a_trace_an_object_or_a_name_have_a_filter_prefix() {
    let key = object(1);
    let mut event = keys::state_prefix(GROUP);
    event.extend_from_slice(&schema::event_key(&key, start_us(1), 9));
    let mut trace = keys::state_prefix(GROUP);
    trace.extend_from_slice(&schema::window_prefix(schema::EVENT, &key, start_us(1)));
    assert_eq!(keys::state_filter_prefix(&event), Some(trace.as_slice()));
    assert_eq!(keys::state_filter_prefix(&trace), Some(trace.as_slice()));
    assert_eq!(keys::state_filter_prefix(&keys::log(GROUP, 5)), None);
    assert_eq!(keys::state_filter_prefix(&keys::vote(GROUP)), None);
    let mut meta = keys::state_prefix(keys::META_GROUP);
    meta.extend_from_slice(keys::META_RECORD);
    assert_eq!(keys::state_filter_prefix(&meta), None);
}
