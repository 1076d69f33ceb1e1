//! Retention: expired windows and markers deleted in bounded steps, cached results
//! deleted at their deadline.

use super::*;

#[test]
fn expire_removes_old_windows_and_markers_in_bounded_steps() {
    let mut h = Harness::new(1);
    let cmds: Vec<_> = (0..5)
        .map(|i| {
            audit(
                &key("pods", "", &format!("p{i}")),
                &format!("a{i}"),
                "create",
                "",
                T0,
                "",
                None,
                201,
            )
        })
        .collect();
    h.apply_on(0, cmds);
    // Dedupe markers as an earlier version wrote them for the old events (audit
    // events write none now): retention still deletes them with their expiry entries.
    for i in 0..5 {
        let marker = schema::dedupe_key(&["a", &format!("a{i}"), "ResponseComplete"]);
        h.shards[0]
            .0
            .insert(schema::expiry_key(T0, &marker), Vec::new());
        h.shards[0].0.insert(marker, Vec::new());
    }
    h.apply_on(
        0,
        vec![audit(
            &key("pods", "", "new"),
            "b",
            "create",
            "",
            T0 + 10 * TTL,
            "",
            None,
            201,
        )],
    );
    let mut total = 0;
    loop {
        let out = h.apply_on(
            0,
            vec![Command::Expire {
                before_us: T0 + 5 * TTL,
                limit: 2,
            }],
        );
        let CommandOutcome::Removed(n) = out[0] else {
            panic!()
        };
        if n == 0 {
            break;
        }
        total += n;
    }
    assert!(total >= 15, "{total}");
    let q = TraceQuery {
        start_us: 0,
        end_us: i64::MAX / 2,
        limit: 100,
        max_window_us: TTL,
        ..Default::default()
    };
    let left = find_traces(&h.shards[0], &q).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].object.key.name, "new");
    // The old markers and their expiry entries are gone; the new event wrote none.
    let markers = h.shards[0]
        .0
        .keys()
        .filter(|k| k[0] == schema::DEDUPE || k[0] == schema::EXPIRY)
        .count();
    assert_eq!(markers, 0);
}

#[test]
fn results_are_idempotent_and_expire_at_their_deadline() {
    use crate::command::ResultEntry;
    let mut h = Harness::new(1);
    let entry = ResultEntry {
        members: vec![key("pods", "", "p")],
        start_us: T0,
        end_us: T0 + TTL,
    };
    let k = entry.cache_key();
    let put = || Command::PutResult {
        key: k,
        entry: entry.clone(),
        expires_us: T0 + 10,
    };
    assert_eq!(
        h.apply_on(0, vec![put(), put()]),
        vec![CommandOutcome::Applied, CommandOutcome::Duplicate]
    );
    assert_eq!(load_result(&h.shards[0], k).unwrap(), Some(entry.clone()));
    // The harness proposes at T0: not yet due.
    h.apply_on(
        0,
        vec![Command::Expire {
            before_us: 0,
            limit: 10,
        }],
    );
    assert!(load_result(&h.shards[0], k).unwrap().is_some());
    let ctx = ShardContext {
        shard: 0,
        shards: 1,
    };
    let p = Proposal {
        span_ttl_us: TTL,
        now_us: T0 + 11,
        export_backlog: 0,
        commands: vec![Command::Expire {
            before_us: 0,
            limit: 10,
        }],
    };
    let base = h.shards[0].clone();
    let mut o = Overlay::new(&base);
    apply_proposal(&mut o, &ctx, &p).unwrap();
    let w = o.into_writes();
    h.shards[0].commit(w);
    assert!(load_result(&h.shards[0], k).unwrap().is_none());
    h.apply_on(
        0,
        vec![audit(
            &key("pods", "", "q"),
            "z",
            "create",
            "",
            T0,
            "",
            None,
            201,
        )],
    );
    assert_eq!(clusters(&h.shards[0]).unwrap(), vec!["c1"]);
}
