//! Golden tests: a fixed Deployment -> ReplicaSets -> Pods history, built through the
//! real state machine, rendered after each transform step and in each of the 16 modes.
//! Set `UPDATE_GOLDEN=1` to rewrite the files after reviewing a deliberate change.

use super::assemble::{Component, Follower};
use super::links::Selector;
use super::mode::{all, DisplayMode};
use super::transform::{apply, Step};
use super::tree::Span;
use crate::audit::AuditRecord;
use crate::command::{Command, Proposal};
use crate::event::KubeEventRecord;
use crate::ids::shard_of;
use crate::key::ObjectKey;
use crate::outbox::{Destination, OutboxKind, OutboxPayload};
use crate::state::{
    apply_proposal, find_traces, list_outbox, MemKv, Overlay, ShardContext, StoredTrace, TraceQuery,
};
use serde_json::json;
use std::fmt::Write;
use std::path::PathBuf;

const TTL: i64 = 30 * 60 * 1_000_000;
const T0: i64 = 1_689_843_600_000_000; // 2023-07-20T09:00:00Z
const SHARDS: u32 = 4;

struct Store(Vec<MemKv>);

impl Store {
    fn apply_on(&mut self, shard: u32, commands: Vec<Command>) {
        let ctx = ShardContext {
            shard,
            shards: SHARDS,
        };
        let base = self.0[shard as usize].clone();
        let mut o = Overlay::new(&base);
        apply_proposal(
            &mut o,
            &ctx,
            &Proposal {
                span_ttl_us: TTL,
                now_us: T0,
                export_backlog: 0,
                commands,
            },
        )
        .unwrap();
        let w = o.into_writes();
        self.0[shard as usize].commit(w);
    }

    fn apply(&mut self, commands: Vec<Command>) {
        for c in commands {
            self.apply_on(shard_of(c.routing_key().unwrap(), SHARDS), vec![c]);
        }
        for s in 0..SHARDS {
            for (seq, entry) in list_outbox(&self.0[s as usize], OutboxKind::Link, 0, 1000).unwrap()
            {
                let (Destination::Shard(target), OutboxPayload::Link(l)) =
                    (entry.destination, entry.payload)
                else {
                    panic!("a link entry goes to a shard");
                };
                self.apply_on(target, vec![Command::Link(l)]);
                let ack = Command::AckOutbox {
                    kind: OutboxKind::Link,
                    seq,
                };
                self.apply_on(s, vec![ack]);
            }
        }
    }

    fn windows(&self, key: &ObjectKey) -> Vec<StoredTrace> {
        let tags = crate::key::IDENTITY_TAGS
            .iter()
            .map(|t| (t.to_string(), key.tag(t).unwrap().to_string()))
            .collect();
        let q = TraceQuery {
            tags,
            start_us: T0,
            end_us: T0 + TTL,
            limit: 10,
            max_window_us: TTL,
            ..Default::default()
        };
        find_traces(&self.0[shard_of(key, SHARDS) as usize], &q).unwrap()
    }
}

fn obj(
    kind: &str,
    api: &str,
    name: &str,
    rv: u64,
    owner: Option<(&str, &str)>,
    extra: serde_json::Value,
) -> String {
    let mut o = json!({"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": "default", "resourceVersion": rv.to_string(),
        "managedFields": [{"manager": "kubectl", "time": format!("t{rv}")}]}});
    if let Some((k, n)) = owner {
        o["metadata"]["ownerReferences"] =
            json!([{"apiVersion": "apps/v1", "kind": k, "name": n, "controller": true}]);
    }
    for (k, v) in extra.as_object().unwrap() {
        o[k] = v.clone();
    }
    o.to_string()
}

#[allow(clippy::too_many_arguments)] // a test fixture spelling out one audit event
fn audit(
    key: &ObjectKey,
    id: &str,
    user: &str,
    verb: &str,
    sub: &str,
    t: i64,
    req_rv: &str,
    resp: String,
) -> Command {
    let title = if sub.is_empty() {
        format!("{user} {verb}")
    } else {
        format!("{user} {verb} {sub}")
    };
    Command::Audit(AuditRecord {
        key: key.clone(),
        version: "v1".into(),
        audit_id: id.into(),
        stage: "ResponseComplete".into(),
        verb: verb.into(),
        subresource: sub.into(),
        title,
        start_us: t,
        end_us: t + 20_000,
        tags: vec![
            ("userAgent".into(), "kubectl/v1.29".into()),
            ("sourceIP".into(), "10.0.0.1".into()),
        ],
        request_rv: req_rv.into(),
        response_code: 200,
        error_logs: vec![],
        response_object: Some(resp),
        diff_wait_us: 0,
    })
}

fn key(resource: &str, group: &str, name: &str) -> ObjectKey {
    ObjectKey::new("tracetest", group, resource, "default", name)
}

/// The fixed input: Deployment demo, ReplicaSets demo-a and demo-b, two pods each.
fn store() -> Store {
    let mut s = Store(vec![MemKv::default(); SHARDS as usize]);
    let d = key("deployments", "apps", "demo");
    let dep = |rv, gen, img: &str| {
        obj(
            "Deployment",
            "apps/v1",
            "demo",
            rv,
            None,
            json!({"spec": {"template": {"spec": {"containers": [{"image": img}]}}}, "status": {"observedGeneration": gen}}),
        )
    };
    let sec = 1_000_000;
    let mut cmds = vec![
        audit(
            &d,
            "d1",
            "admin",
            "create",
            "",
            T0 + 60 * sec,
            "",
            dep(1, 0, "alpine:3.16"),
        ),
        audit(
            &d,
            "d2",
            "kwok-admin",
            "update",
            "status",
            T0 + 61 * sec,
            "1",
            dep(2, 1, "alpine:3.16"),
        ),
        audit(
            &d,
            "d3",
            "admin",
            "patch",
            "",
            T0 + 120 * sec,
            "",
            dep(3, 1, "alpine:3.17"),
        ),
        audit(
            &d,
            "d4",
            "kwok-admin",
            "update",
            "status",
            T0 + 121 * sec,
            "3",
            dep(4, 2, "alpine:3.17"),
        ),
        Command::KubeEvent(KubeEventRecord {
            key: d.clone(),
            version: "v1".into(),
            uid: "e1".into(),
            resource_version: "1".into(),
            reason: "ScalingReplicaSet".into(),
            message: "Scaled up replica set demo-a to 2".into(),
            source: "deployment-controller".into(),
            action: String::new(),
            time_us: T0 + 62 * sec,
        }),
    ];
    for (i, rs) in ["demo-a", "demo-b"].iter().enumerate() {
        let t = T0 + (62 + 60 * i as i64) * sec;
        cmds.push(audit(
            &key("replicasets", "apps", rs),
            &format!("{rs}-c"),
            "rs-controller",
            "create",
            "",
            t,
            "",
            obj(
                "ReplicaSet",
                "apps/v1",
                rs,
                10 + i as u64,
                Some(("Deployment", "demo")),
                json!({}),
            ),
        ));
        for p in 0..2 {
            let name = format!("{rs}-p{p}");
            cmds.push(audit(
                &key("pods", "", &name),
                &format!("{name}-c"),
                "rs-controller",
                "create",
                "",
                t + sec,
                "",
                obj(
                    "Pod",
                    "v1",
                    &name,
                    20 + p,
                    Some(("ReplicaSet", rs)),
                    json!({"spec": {"nodeName": "node-1"}}),
                ),
            ));
        }
    }
    s.apply(cmds);
    s
}

/// Runs the follower the way the query service does, over the in-memory shards.
fn components(s: &Store, seed: &ObjectKey, mode: DisplayMode) -> Vec<Component> {
    let mut f = Follower::new(1000);
    f.add_seed(
        seed.clone(),
        s.windows(seed),
        Selector::for_modifier(mode.modifier),
    );
    drive(s, &mut f);
    f.assemble((T0, T0 + TTL), "limit")
}

/// Feeds the follower every object it asks for until it asks for none.
fn drive(s: &Store, f: &mut Follower) {
    loop {
        let next = f.take_pending();
        if next.is_empty() {
            break;
        }
        for (k, sel) in next {
            let w = s.windows(&k);
            f.add_fetched(k, w, sel);
        }
    }
}

fn text(span: &Span) -> String {
    let mut out = String::new();
    fn go(s: &Span, depth: usize, out: &mut String) {
        let pad = "  ".repeat(depth);
        let _ = writeln!(
            out,
            "{pad}[{}] {} @{}+{}ms",
            s.service,
            s.operation,
            (s.start_us - T0) / 1000,
            s.duration_us / 1000
        );
        let tags: Vec<String> = s.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(out, "{pad}  tags: {}", tags.join(", "));
        for l in &s.logs {
            let f: Vec<String> = l
                .fields
                .iter()
                .map(|(k, v)| format!("{k}={}", v.replace('\n', "\\n")))
                .collect();
            let _ = writeln!(
                out,
                "{pad}  log @{}ms: {}",
                (l.timestamp_us - T0) / 1000,
                f.join(" | ")
            );
        }
        if !s.warnings.is_empty() {
            let _ = writeln!(out, "{pad}  warnings: {:?}", s.warnings);
        }
        for c in &s.children {
            go(c, depth + 1, out);
        }
    }
    go(span, 0, &mut out);
    out
}

fn check(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/display/golden")
        .join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing golden {}; run with UPDATE_GOLDEN=1",
            path.display()
        )
    });
    assert_eq!(actual, expected, "golden {name} differs");
}

fn full_tree_input(s: &Store) -> Span {
    let mode = DisplayMode::from_id(0x0100_0000).unwrap();
    let mut c = components(s, &key("deployments", "apps", "demo"), mode);
    assert_eq!(c.len(), 1);
    c.remove(0).tree
}

#[test]
fn golden_each_transform_step() {
    let s = store();
    let input = full_tree_input(&s);
    check("input_full_tree", &text(&input));
    let all_steps = [
        ("prune_childless", Step::PruneChildless),
        ("replace_name", Step::ReplaceName),
        (
            "object_tags",
            Step::ObjectTags(vec!["nodes".into(), "source".into()]),
        ),
        ("object_service", Step::ObjectService),
        ("object_operation", Step::ObjectOperation),
        ("collapse_nesting", Step::CollapseNesting),
        (
            "extract_nesting_link_class",
            Step::ExtractNesting("linkClass"),
        ),
        (
            "group_by_trace_source",
            Step::GroupByTraceSource(vec!["event"]),
        ),
        ("compact_duration", Step::CompactDuration),
        ("cluster_name", Step::ClusterName),
        ("prune_tags", Step::PruneTags),
    ];
    for (name, step) in all_steps {
        let mut t = input.clone();
        apply(&mut t, &step);
        let mut collapsed = input.clone();
        if matches!(step, Step::GroupByTraceSource(_) | Step::CompactDuration) {
            apply(&mut collapsed, &Step::CollapseNesting);
            apply(&mut collapsed, &step);
            t = collapsed;
        }
        check(&format!("step_{name}"), &text(&t));
    }
}

#[test]
fn golden_each_mode() {
    let s = store();
    for mode in all() {
        for (seed_name, seed) in [
            ("deployment", key("deployments", "apps", "demo")),
            ("replicaset", key("replicasets", "apps", "demo-a")),
        ] {
            let rendered: Vec<String> = components(&s, &seed, mode)
                .into_iter()
                .map(|c| text(&super::render(c.tree, mode)))
                .collect();
            let file = format!("mode_{:08x}_{seed_name}", mode.id());
            check(
                &file,
                &format!("# {mode} from {seed_name}\n{}", rendered.join("---\n")),
            );
        }
    }
}

fn children_of(span: &Span) -> Vec<String> {
    span.children.iter().map(|c| c.operation.clone()).collect()
}

#[test]
fn original_end_to_end_checks_hold() {
    let s = store();
    // tracing [full tree] from the Deployment: single root, two ReplicaSets as children.
    let mode = DisplayMode::from_id(0x2100_0000).unwrap();
    let c = components(&s, &key("deployments", "apps", "demo"), mode);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].members.len(), 7);
    let root = super::render(c.into_iter().next().unwrap().tree, mode);
    assert_eq!(root.tag("resource"), Some("deployments"));
    assert_eq!(root.service, "tracetest deployments");
    assert!(root.operation.starts_with("demo / "), "{}", root.operation);
    assert_eq!(children_of(&root), vec!["demo-a", "demo-b"]);
    let field = |name: &str| -> Vec<String> {
        root.logs
            .iter()
            .filter_map(|l| l.field(name).map(str::to_string))
            .collect()
    };
    assert!(field("audit").contains(&"kwok-admin update status".to_string()));
    assert!(
        field("diff")
            .iter()
            .any(|d| d.contains("status.observedGeneration 1 -> 2")),
        "{:?}",
        field("diff")
    );
    assert!(field("diff")
        .iter()
        .all(|d| !d.contains("metadata.managedFields")));
    assert!(field("verbose diff")
        .iter()
        .any(|d| d.contains("metadata.resourceVersion")));
    assert!(root.tags.iter().all(|(k, _)| !k.starts_with("zzz-")));
    // Pods are nested under their ReplicaSet.
    assert_eq!(
        children_of(&root.children[0]),
        vec!["demo-a-p0", "demo-a-p1"]
    );
    assert_eq!(root.children[0].children[0].service, "pods");

    // tracing [ancestors] from a ReplicaSet: the Deployment is root with one child.
    let mode = DisplayMode::from_id(0x2200_0000).unwrap();
    let c = components(&s, &key("replicasets", "apps", "demo-a"), mode);
    assert_eq!(c.len(), 1);
    let root = super::render(c.into_iter().next().unwrap().tree, mode);
    assert_eq!(root.tag("name"), Some("demo"));
    assert_eq!(children_of(&root), vec!["demo-a"]);
    assert!(
        root.children[0].children.is_empty(),
        "pods are not ancestors"
    );

    // Plain tracing follows nothing.
    let c = components(
        &s,
        &key("replicasets", "apps", "demo-a"),
        DisplayMode::from_id(0x2000_0000).unwrap(),
    );
    assert_eq!(c[0].members.len(), 1);
}

#[test]
fn the_follow_limit_warns_instead_of_truncating_silently() {
    let s = store();
    let mode = DisplayMode::from_id(0x2100_0000).unwrap();
    let seed = key("deployments", "apps", "demo");
    let mut f = Follower::new(3);
    f.add_seed(
        seed.clone(),
        s.windows(&seed),
        Selector::for_modifier(mode.modifier),
    );
    drive(&s, &mut f);
    assert!(f.truncated());
    let c = f.assemble((T0, T0 + TTL), "link following stopped at 3 objects");
    assert_eq!(
        c[0].tree.warnings,
        vec!["link following stopped at 3 objects"]
    );
    assert_eq!(c[0].members.len(), 3);
}
