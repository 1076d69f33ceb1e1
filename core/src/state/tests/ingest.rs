//! Ingest end to end on the harness: an object's lifecycle, replays, windows,
//! watched versions, Kubernetes Events and cluster markers.

use super::*;

#[test]
fn deployment_lifecycle_diffs_snapshots_and_links() {
    let mut h = Harness::new(8);
    let d = key("deployments", "apps", "demo");
    let rs = key("replicasets", "apps", "demo-5d8");
    let pod = key("pods", "", "demo-5d8-abc");
    let spec = |img: &str, replicas: u32| json!({"spec": {"replicas": replicas, "template": {"spec": {"containers": [{"image": img}]}}}});
    let dep = |rv, img, replicas, gen| {
        let mut extra = spec(img, replicas);
        extra["status"] = json!({"observedGeneration": gen});
        object("Deployment", "apps/v1", "demo", rv, None, extra)
    };
    let outcomes = h.apply(vec![
        audit(
            &d,
            "a1",
            "create",
            "",
            T0 + 1,
            "",
            Some(dep(1, "alpine:3.16", 2, 0)),
            201,
        ),
        audit(
            &d,
            "a2",
            "update",
            "status",
            T0 + 2,
            "1",
            Some(dep(2, "alpine:3.16", 2, 1)),
            200,
        ),
        audit(
            &rs,
            "a3",
            "create",
            "",
            T0 + 3,
            "",
            Some(object(
                "ReplicaSet",
                "apps/v1",
                "demo-5d8",
                3,
                Some(("Deployment", "demo")),
                json!({}),
            )),
            201,
        ),
        audit(
            &pod,
            "a4",
            "create",
            "",
            T0 + 4,
            "",
            Some(object(
                "Pod",
                "v1",
                "demo-5d8-abc",
                4,
                Some(("ReplicaSet", "demo-5d8")),
                json!({}),
            )),
            201,
        ),
        audit(
            &d,
            "a5",
            "update",
            "",
            T0 + 5,
            "2",
            Some(dep(5, "alpine:3.16", 4, 1)),
            200,
        ),
        audit(
            &d,
            "a6",
            "update",
            "status",
            T0 + 6,
            "5",
            Some(dep(6, "alpine:3.16", 4, 2)),
            200,
        ),
        audit(
            &d,
            "a7",
            "update",
            "",
            T0 + 7,
            "6",
            Some(dep(7, "alpine:3.17", 4, 2)),
            200,
        ),
        audit(
            &d,
            "a8",
            "update",
            "",
            T0 + 8,
            "7",
            Some(dep(7, "alpine:3.17", 4, 2)),
            200,
        ),
        audit(&d, "a9", "update", "", T0 + 9, "7", None, 409),
        audit(
            &d,
            "a10",
            "delete",
            "",
            T0 + 10,
            "",
            Some(json!({"kind": "Status", "status": "Success"}).to_string()),
            200,
        ),
    ]);
    assert!(
        outcomes.iter().all(|o| *o == CommandOutcome::Applied),
        "{outcomes:?}"
    );

    let t = h.trace(&d, T0);
    assert_eq!(
        t.events.len(),
        8,
        "the ReplicaSet and Pod events live in their own traces"
    );
    let diffs = logs_of(&t, LOG_DIFF).join("");
    assert!(
        diffs.contains("status.observedGeneration 1 -> 2\n"),
        "{diffs}"
    );
    assert!(diffs.contains("spec.replicas 2 -> 4\n"));
    assert!(diffs
        .contains("spec.template.spec.containers[0].image \"alpine:3.16\" -> \"alpine:3.17\"\n"));
    assert_eq!(logs_of(&t, LOG_REAL_VERBOSE), vec!["No-op update"]);
    let snapshots = logs_of(&t, LOG_SNAPSHOT);
    assert_eq!(snapshots.len(), 2, "creation and deletion snapshots");
    let deletion: serde_json::Value = serde_json::from_str(&snapshots[1]).unwrap();
    assert_eq!(deletion["metadata"]["name"], "demo");
    assert_eq!(
        deletion["spec"]["template"]["spec"]["containers"][0]["image"],
        "alpine:3.17"
    );
    assert!(logs_of(&t, "realError").contains(&"Conflict: modified".to_string()));

    // Links in both directions along the owner chain.
    assert_eq!(t.links.len(), 1);
    assert_eq!(
        (t.links[0].linked.clone(), t.links[0].role),
        (rs.clone(), LinkRole::Child)
    );
    let trs = h.trace(&rs, T0);
    let mut rs_links: Vec<_> = trs
        .links
        .iter()
        .map(|l| (l.linked.clone(), l.role))
        .collect();
    rs_links.sort();
    assert_eq!(
        rs_links,
        vec![
            (pod.clone(), LinkRole::Child),
            (d.clone(), LinkRole::Parent)
        ]
    );
    let tp = h.trace(&pod, T0);
    assert_eq!(tp.links.len(), 1);
    assert_eq!(tp.links[0].role, LinkRole::Parent);
    for s in &h.shards {
        assert!(
            list_outbox(s, OutboxKind::Link, 0, 10).unwrap().is_empty(),
            "outboxes drained"
        );
    }
}

#[test]
fn replay_changes_nothing() {
    let mut h = Harness::new(4);
    let d = key("deployments", "apps", "demo");
    let rs = key("replicasets", "apps", "r");
    let batch = vec![
        audit(
            &d,
            "a1",
            "create",
            "",
            T0,
            "",
            Some(object("Deployment", "apps/v1", "demo", 1, None, json!({}))),
            201,
        ),
        audit(
            &rs,
            "a2",
            "create",
            "",
            T0,
            "",
            Some(object(
                "ReplicaSet",
                "apps/v1",
                "r",
                2,
                Some(("Deployment", "demo")),
                json!({}),
            )),
            201,
        ),
    ];
    h.apply(batch.clone());
    let before: Vec<_> = h.shards.iter().map(|s| s.0.clone()).collect();
    let again = h.apply(batch);
    assert!(again.iter().all(|o| *o == CommandOutcome::Duplicate));
    let after: Vec<_> = h.shards.iter().map(|s| s.0.clone()).collect();
    assert_eq!(before, after);
}

#[test]
fn same_batch_events_share_one_object_span_and_windows_split() {
    let mut h = Harness::new(1);
    let d = key("deployments", "apps", "demo");
    h.apply_on(
        0,
        vec![
            audit(&d, "a1", "create", "", T0 + 5, "", None, 201),
            audit(&d, "a2", "patch", "", T0 + 6, "", None, 200),
            audit(&d, "a3", "patch", "", T0 + TTL + 1, "", None, 200),
        ],
    );
    let q = TraceQuery {
        start_us: T0,
        end_us: T0 + 2 * TTL,
        limit: 10,
        max_window_us: TTL,
        ..Default::default()
    };
    let found = find_traces(&h.shards[0], &q).unwrap();
    assert_eq!(found.len(), 2, "one trace per window");
    assert_eq!(found[0].object.window.start_us, T0 + TTL, "newest first");
    assert_eq!(found[1].events.len(), 2);
    let by_id = find_trace_by_id(&h.shards[0], found[1].object.trace_id)
        .unwrap()
        .unwrap();
    assert_eq!(by_id, found[1]);
    let q_name = TraceQuery {
        tags: vec![("name".into(), "other".into())],
        ..q.clone()
    };
    assert!(find_traces(&h.shards[0], &q_name).unwrap().is_empty());
    let q_events = TraceQuery {
        source: Some(EventSource::Event),
        ..q
    };
    assert!(find_traces(&h.shards[0], &q_events).unwrap().is_empty());
}

#[test]
fn watched_versions_feed_audit_diffs_and_dedupe() {
    let mut h = Harness::new(1);
    let d = key("deployments", "apps", "demo");
    let v = |rv: u64, replicas: u32| {
        ObjectVersionRecord::from_json(
            "c1",
            &object(
                "Deployment",
                "apps/v1",
                "demo",
                rv,
                None,
                json!({"spec": {"replicas": replicas}}),
            ),
            false,
            T0,
        )
        .unwrap()
    };
    assert_eq!(v(1, 1).key, d);
    let out = h.apply_on(
        0,
        vec![
            Command::ObjectVersion(v(1, 1)),
            Command::ObjectVersion(v(2, 3)),
            Command::ObjectVersion(v(2, 3)),
        ],
    );
    assert_eq!(
        out,
        vec![
            CommandOutcome::Applied,
            CommandOutcome::Applied,
            CommandOutcome::Duplicate
        ]
    );
    // An audit update without responseObject but naming rv 2 is not matched (no
    // response rv); one with the response picks up the watcher's diff.
    h.apply_on(
        0,
        vec![audit(
            &d,
            "a1",
            "update",
            "",
            T0,
            "1",
            Some(object(
                "Deployment",
                "apps/v1",
                "demo",
                2,
                None,
                json!({"spec": {"replicas": 3}}),
            )),
            200,
        )],
    );
    let t = h.trace(&d, T0);
    assert_eq!(
        logs_of(&t, LOG_DIFF),
        vec!["metadata.resourceVersion \"1\" -> \"2\"\nspec.replicas 1 -> 3\n"]
    );
    assert!(t.events[0]
        .tags
        .contains(&("newResourceVersion".into(), "2".into())));
}

#[test]
fn kube_events_from_a_recorded_stream_shape() {
    let mut h = Harness::new(2);
    let ev = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"uid": "u1", "resourceVersion": "5361640"},
        "involvedObject": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "px", "namespace": "default"},
        "reason": "ScalingReplicaSet", "message": "Scaled up replica set px-5d567cc74c to 1",
        "source": {"component": "deployment-controller"}, "lastTimestamp": "2021-05-19T09:42:58Z", "eventTime": null});
    let rec = KubeEventRecord::from_json("kind", &ev.to_string()).unwrap();
    assert_eq!(rec.key.to_string(), "kind/apps/deployments/default/px");
    let out = h.apply(vec![
        Command::KubeEvent(rec.clone()),
        Command::KubeEvent(rec.clone()),
    ]);
    assert_eq!(
        out,
        vec![CommandOutcome::Applied, CommandOutcome::Duplicate]
    );
    let t = h.trace(&rec.key, rec.time_us);
    assert_eq!(t.events[0].title, "ScalingReplicaSet");
    assert_eq!(t.events[0].end_us - t.events[0].start_us, 1_000_000);
    assert_eq!(
        logs_of(&t, "event/message"),
        vec!["Scaled up replica set px-5d567cc74c to 1"]
    );
    assert!(t.events[0]
        .tags
        .contains(&("source".into(), "deployment-controller".into())));
    // The same Event without a uid from two clusters is two Events (one shard here,
    // so only the dedupe key can tell them apart).
    let mut one = Harness::new(1);
    let mut no_uid = ev.clone();
    no_uid["metadata"] = json!({});
    let in_cluster =
        |c: &str| Command::KubeEvent(KubeEventRecord::from_json(c, &no_uid.to_string()).unwrap());
    assert_eq!(
        one.apply(vec![
            in_cluster("east"),
            in_cluster("west"),
            in_cluster("east")
        ]),
        vec![
            CommandOutcome::Applied,
            CommandOutcome::Applied,
            CommandOutcome::Duplicate
        ]
    );
}

#[test]
fn a_cluster_marker_is_written_once_not_per_event() {
    let ctx = ShardContext {
        shard: 0,
        shards: 1,
    };
    let pod = |cluster: &str, name: &str, t: i64| {
        let mut k = key("pods", "", name);
        k.cluster = cluster.into();
        audit(
            &k,
            &format!("{cluster}-{name}"),
            "get",
            "",
            t,
            "",
            None,
            200,
        )
    };
    let proposal = |commands| Proposal {
        span_ttl_us: TTL,
        now_us: T0,
        export_backlog: 0,
        commands,
    };
    let cluster_writes = |writes: &[WriteOp]| {
        writes
            .iter()
            .filter(|(k, _)| k.first() == Some(&schema::CLUSTER))
            .count()
    };
    let mut kv = MemKv::default();
    let first = proposal(vec![
        pod("east", "a", T0),
        pod("west", "b", T0),
        pod("east", "c", T0),
    ]);
    let mut o = Overlay::new(&kv);
    apply_proposal(&mut o, &ctx, &first).unwrap();
    let writes = o.into_writes();
    assert_eq!(cluster_writes(&writes), 2);
    kv.commit(writes);
    assert_eq!(clusters(&kv).unwrap(), ["east", "west"]);

    let second = proposal(vec![pod("east", "d", T0 + 1), pod("west", "e", T0 + 1)]);
    let mut o = Overlay::new(&kv);
    let out = apply_proposal(&mut o, &ctx, &second).unwrap();
    assert_eq!(out.outcomes, vec![CommandOutcome::Applied; 2]);
    assert_eq!(cluster_writes(&o.into_writes()), 0, "markers already there");
    assert_eq!(clusters(&kv).unwrap(), ["east", "west"]);
}
