//! The hot records of a shard: read from the store once, then served from memory
//! as the committed writes left them, within a bound.

use super::*;
use crate::state::hot_keys::MAX_HOT_KEYS;

#[test]
fn hot_records_are_read_from_the_store_once_and_follow_committed_writes() {
    let mut kv = MemKv::default();
    kv.commit(vec![(b"mcount".to_vec(), Some(b"1".to_vec()))]);
    let store = Counting::new(&kv);
    let mut hot = HotKeys::default();
    for _ in 0..3 {
        let view = HotView::new(&store, &mut hot);
        assert_eq!(view.get(b"mcount").unwrap(), Some(b"1".to_vec()));
        assert_eq!(view.get(b"cbench").unwrap(), None);
    }
    assert_eq!(store.reads.get(), 2, "one store read per hot key");

    let writes = vec![
        (b"mcount".to_vec(), Some(b"2".to_vec())),
        (b"cbench".to_vec(), Some(Vec::new())),
        (b"oobject".to_vec(), Some(b"span".to_vec())),
    ];
    hot.committed(HotKeys::hot_writes(&writes));
    assert_eq!(hot.len(), 2, "only hot keys are remembered");
    let view = HotView::new(&store, &mut hot);
    assert_eq!(view.get(b"mcount").unwrap(), Some(b"2".to_vec()));
    assert_eq!(view.get(b"cbench").unwrap(), Some(Vec::new()));
    assert_eq!(
        view.get(b"oobject").unwrap(),
        None,
        "other keys read the store"
    );
    assert_eq!(store.reads.get(), 3);
}

#[test]
fn the_cache_is_bounded() {
    let store = MemKv::default();
    let mut hot = HotKeys::default();
    let view = HotView::new(&store, &mut hot);
    for i in 0..MAX_HOT_KEYS + 10 {
        view.get(format!("ccluster-{i}").as_bytes()).unwrap();
    }
    assert_eq!(hot.len(), MAX_HOT_KEYS);
}

#[test]
fn a_harness_shard_reads_its_counters_and_markers_once_across_proposals() {
    let mut h = Harness::new(4);
    let shard = 0u32;
    // Five pod creations owned by `shard`, named after proposal `i`.
    let commands = |i: i64| -> Vec<Command> {
        (0..)
            .map(|p| format!("p{i}-{p}"))
            .filter(|name| shard_of(&key("pods", "", name), 4) == shard)
            .take(5)
            .map(|name| {
                let pod = object("Pod", "v1", &name, 7, None, json!({}));
                let k = key("pods", "", &name);
                audit(&k, &name, "create", "", T0 + i, "", Some(pod), 201)
            })
            .collect()
    };
    // Every proposal of one shard through one cache: after the first proposal, its
    // counters, layout marker and cluster marker are not read from the store again.
    let mut hot = HotKeys::default();
    let mut reads_per_proposal = Vec::new();
    for i in 0..4 {
        let mine = commands(i);
        let store = Counting::new(&h.shards[shard as usize]);
        let writes = {
            let view = HotView::new(&store, &mut hot);
            let mut overlay = Overlay::new(&view);
            apply_proposal(
                &mut overlay,
                &ShardContext { shard, shards: 4 },
                &Proposal {
                    span_ttl_us: TTL,
                    now_us: h.now_us,
                    export_backlog: 0,
                    commands: mine.clone(),
                },
            )
            .unwrap();
            overlay.into_writes()
        };
        reads_per_proposal.push(store.reads.get());
        let hot_writes = HotKeys::hot_writes(&writes);
        h.shards[shard as usize].commit(writes);
        hot.committed(hot_writes);
    }
    assert!(!hot.is_empty());
    // The same number of commands costs fewer store reads once the cache is warm.
    let first = reads_per_proposal[0];
    assert!(
        reads_per_proposal[1..].iter().all(|later| *later < first),
        "{reads_per_proposal:?}: later proposals read as much as the first"
    );
}
