//! State-machine tests: the in-memory multi-shard harness and record builders they
//! share; the tests themselves are in the submodules, by concern.

use super::*;
use crate::audit::AuditRecord;
use crate::command::{Command, CommandOutcome, Proposal};
use crate::event::KubeEventRecord;
use crate::ids::shard_of;
use crate::key::ObjectKey;
use crate::model::{EventSource, LinkRole, LOG_DIFF, LOG_REAL_VERBOSE, LOG_SNAPSHOT};
use crate::outbox::{Destination, OutboxKind, OutboxPayload};
use crate::version::ObjectVersionRecord;
use serde_json::json;

mod export;
mod hot_keys;
mod ingest;
mod join;
mod reads;
mod retention;
mod window_index;

/// A store that counts its point reads and the keys its scans visit.
struct Counting<'a> {
    kv: &'a MemKv,
    reads: std::cell::Cell<usize>,
    visited: std::cell::Cell<usize>,
}

impl<'a> Counting<'a> {
    fn new(kv: &'a MemKv) -> Self {
        Self {
            kv,
            reads: Default::default(),
            visited: Default::default(),
        }
    }
}

impl KvRead for Counting<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        self.reads.set(self.reads.get() + 1);
        self.kv.get(key)
    }

    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StateError> {
        self.kv.scan(start, end, &mut |k, v| {
            self.visited.set(self.visited.get() + 1);
            visit(k, v)
        })
    }
}

const TTL: i64 = 30 * 60 * 1_000_000;
const T0: i64 = 1_689_843_600_000_000; // 2023-07-20T09:00:00Z

/// Several shards in memory, with outbox delivery between them.
struct Harness {
    shards: Vec<MemKv>,
    /// The leader's clock put into every proposal.
    now_us: i64,
    /// The export backlog put into every proposal (0: export off).
    export_backlog: u32,
}

impl Harness {
    fn new(n: u32) -> Self {
        Self {
            shards: vec![MemKv::default(); n as usize],
            now_us: T0,
            export_backlog: 0,
        }
    }

    fn n(&self) -> u32 {
        self.shards.len() as u32
    }

    fn apply_on(&mut self, shard: u32, commands: Vec<Command>) -> Vec<CommandOutcome> {
        self.apply_counted(shard, commands).0
    }

    /// Applies `commands` as one proposal on `shard` and commits its writes; returns
    /// the outcomes and how many point reads the shard's store served.
    fn apply_counted(
        &mut self,
        shard: u32,
        commands: Vec<Command>,
    ) -> (Vec<CommandOutcome>, usize) {
        let ctx = ShardContext {
            shard,
            shards: self.n(),
        };
        let p = Proposal {
            span_ttl_us: TTL,
            now_us: self.now_us,
            export_backlog: self.export_backlog,
            commands,
        };
        let store = Counting::new(&self.shards[shard as usize]);
        let mut o = Overlay::new(&store);
        let out = apply_proposal(&mut o, &ctx, &p).unwrap();
        let writes = o.into_writes();
        let reads = store.reads.get();
        self.shards[shard as usize].commit(writes);
        (out.outcomes, reads)
    }

    /// Routes each command to its object's shard, then drains every outbox.
    fn apply(&mut self, commands: Vec<Command>) -> Vec<CommandOutcome> {
        let mut outcomes = Vec::new();
        for c in commands {
            let shard = shard_of(c.routing_key().unwrap(), self.n());
            outcomes.extend(self.apply_on(shard, vec![c]));
        }
        self.drain_outboxes();
        outcomes
    }

    fn drain_outboxes(&mut self) {
        for s in 0..self.n() {
            for (seq, entry) in
                list_outbox(&self.shards[s as usize], OutboxKind::Link, 0, 100).unwrap()
            {
                let (Destination::Shard(target), OutboxPayload::Link(link)) =
                    (entry.destination, entry.payload)
                else {
                    panic!("a link entry goes to a shard");
                };
                assert_eq!(
                    target,
                    shard_of(&link.target, self.n()),
                    "entry names its shard"
                );
                self.apply_on(target, vec![Command::Link(link)]);
                let ack = Command::AckOutbox {
                    kind: OutboxKind::Link,
                    seq,
                };
                self.apply_on(s, vec![ack]);
            }
        }
    }

    fn trace(&self, key: &ObjectKey, time_us: i64) -> StoredTrace {
        let shard = shard_of(key, self.n());
        let start = crate::window::Window::containing(time_us, TTL).start_us;
        load_trace(&self.shards[shard as usize], key, start)
            .unwrap()
            .unwrap()
    }
}

fn key(resource: &str, group: &str, name: &str) -> ObjectKey {
    ObjectKey::new("c1", group, resource, "default", name)
}

fn object(
    kind: &str,
    api: &str,
    name: &str,
    rv: u64,
    owner: Option<(&str, &str)>,
    extra: serde_json::Value,
) -> String {
    let mut o = json!({"apiVersion": api, "kind": kind,
        "metadata": {"name": name, "namespace": "default", "resourceVersion": rv.to_string()}});
    if let Some((okind, oname)) = owner {
        o["metadata"]["ownerReferences"] =
            json!([{"apiVersion": "apps/v1", "kind": okind, "name": oname, "controller": true}]);
    }
    for (k, v) in extra.as_object().unwrap() {
        o[k] = v.clone();
    }
    o.to_string()
}

#[allow(clippy::too_many_arguments)]
fn audit(
    k: &ObjectKey,
    id: &str,
    verb: &str,
    sub: &str,
    t: i64,
    req_rv: &str,
    resp: Option<String>,
    code: i32,
) -> Command {
    Command::Audit(AuditRecord {
        key: k.clone(),
        version: "v1".into(),
        audit_id: id.into(),
        stage: "ResponseComplete".into(),
        verb: verb.into(),
        subresource: sub.into(),
        title: format!("admin {verb}"),
        start_us: t,
        end_us: t + 1000,
        tags: vec![("auditId".into(), id.into())],
        request_rv: req_rv.into(),
        response_code: code,
        error_logs: if code >= 300 {
            vec!["Conflict: modified".into()]
        } else {
            vec![]
        },
        response_object: resp,
        diff_wait_us: 0,
    })
}

fn logs_of(t: &StoredTrace, log_type: &str) -> Vec<String> {
    t.events
        .iter()
        .flat_map(|e| e.logs.iter())
        .filter(|l| l.log_type == log_type)
        .map(|l| l.message.clone())
        .collect()
}
