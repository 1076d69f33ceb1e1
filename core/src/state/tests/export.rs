//! Export entries: every new span is queued once, and the backlog bound is applied
//! the same way on every replica.

use super::*;
use crate::outbox::{ExportItem, OutboxPayload};

fn create(k: &ObjectKey, id: &str, t: i64) -> Command {
    let name = k.name.clone();
    audit(
        k,
        id,
        "create",
        "",
        t,
        "",
        Some(object("Pod", "v1", &name, 1, None, json!({}))),
        201,
    )
}

#[test]
fn each_new_span_is_queued_for_export_once() {
    let mut h = Harness::new(1);
    h.export_backlog = 100;
    let p = key("pods", "", "p");
    h.apply(vec![create(&p, "a1", T0), create(&p, "a1", T0)]);
    let entries = list_outbox(&h.shards[0], OutboxKind::Export, 0, 10).unwrap();
    let items: Vec<ExportItem> = entries
        .into_iter()
        .map(|(_, e)| match e.payload {
            OutboxPayload::Export(r) => r.item,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        items.len(),
        2,
        "the object span and one event span: {items:?}"
    );
    assert_eq!(items[0], ExportItem::Object);
    assert!(matches!(items[1], ExportItem::Event(_)));
    assert_eq!(outbox_len(&h.shards[0], OutboxKind::Export).unwrap(), 2);
}

#[test]
fn a_full_backlog_stores_spans_without_queueing_them_and_acks_make_room() {
    let mut h = Harness::new(1);
    h.export_backlog = 3;
    let pods: Vec<ObjectKey> = (0..3).map(|i| key("pods", "", &format!("p{i}"))).collect();
    let commands: Vec<Command> = pods
        .iter()
        .enumerate()
        .map(|(i, k)| create(k, &format!("a{i}"), T0))
        .collect();
    let ctx = ShardContext {
        shard: 0,
        shards: 1,
    };
    let base = h.shards[0].clone();
    let mut o = Overlay::new(&base);
    let out = apply_proposal(
        &mut o,
        &ctx,
        &Proposal {
            span_ttl_us: TTL,
            now_us: T0,
            export_backlog: 3,
            commands,
        },
    )
    .unwrap();
    h.shards[0].commit(o.into_writes());
    assert_eq!(out.export_dropped, 3, "6 new spans, room for 3");
    assert_eq!(outbox_len(&h.shards[0], OutboxKind::Export).unwrap(), 3);
    for k in &pods {
        assert_eq!(h.trace(k, T0).events.len(), 1, "every span is stored");
    }
    let (seq, _) = list_outbox(&h.shards[0], OutboxKind::Export, 0, 1).unwrap()[0].clone();
    h.apply_on(
        0,
        vec![Command::AckOutbox {
            kind: OutboxKind::Export,
            seq,
        }],
    );
    assert_eq!(outbox_len(&h.shards[0], OutboxKind::Export).unwrap(), 2);
    let rest: Vec<u64> = list_outbox(&h.shards[0], OutboxKind::Export, 0, 10)
        .unwrap()
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(rest.len(), 2);
    assert!(
        rest.iter().all(|s| *s > seq),
        "the acknowledged entry is gone"
    );
    let after: Vec<u64> = list_outbox(&h.shards[0], OutboxKind::Export, rest[1], 10)
        .unwrap()
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(
        after,
        vec![rest[1]],
        "a read from a sequence number starts there"
    );
    assert!(
        list_outbox(&h.shards[0], OutboxKind::Export, rest[1] + 1, 10)
            .unwrap()
            .is_empty()
    );
}
