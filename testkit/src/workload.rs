//! Synthetic audit traffic with known content, for end-to-end tests and benchmarks.
//!
//! The Deployment lifecycle mirrors what a real cluster records for
//! `kubectl create deployment`, a scale, an image change, another scale and a delete:
//! the controllers' status updates, the ReplicaSets and Pods they create with owner
//! references, and `generateName` pods whose names only the response carries.

use serde_json::{json, Value};

/// User of `kubectl` and of the controllers in a kwok cluster.
const ADMIN: &str = "kwok-admin";
const KUBECTL_UA: &str = "kubectl/v1.29.0 (linux/amd64) kubernetes/3f7a50f";
const KCM_UA: &str = "kube-controller-manager/v1.29.0 (linux/amd64) kubernetes/3f7a50f/system:serviceaccount:kube-system:deployment-controller";

/// Builds audit events with increasing times and resource versions.
pub struct AuditStream {
    namespace: String,
    t_us: i64,
    rv: u64,
    seq: u64,
    prefix: String,
}

fn rfc3339(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// What one request did to one object.
pub struct Request<'a> {
    /// Verb.
    pub verb: &'a str,
    /// Resource (plural).
    pub resource: &'a str,
    /// API group.
    pub group: &'a str,
    /// Subresource or empty.
    pub subresource: &'a str,
    /// Object name; empty for `generateName` creates.
    pub name: &'a str,
    /// `objectRef.resourceVersion`.
    pub request_rv: &'a str,
    /// The response object, or `None`.
    pub response: Option<Value>,
    /// HTTP status.
    pub code: u16,
    /// User agent.
    pub user_agent: &'a str,
}

impl AuditStream {
    /// A stream starting at `t_us`, with audit IDs prefixed by `prefix`.
    pub fn new(namespace: &str, t_us: i64, prefix: &str) -> Self {
        Self {
            namespace: namespace.to_string(),
            t_us,
            rv: 100,
            seq: 0,
            prefix: prefix.to_string(),
        }
    }

    /// The next resource version.
    pub fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    /// Current time of the stream.
    pub fn now_us(&self) -> i64 {
        self.t_us
    }

    /// One audit event (stage ResponseComplete) for `r`, 50 ms after the previous one.
    pub fn event(&mut self, r: Request<'_>) -> Value {
        self.t_us += 50_000;
        self.seq += 1;
        let mut e = json!({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
            "auditID": format!("{}-{:06}", self.prefix, self.seq), "stage": "ResponseComplete",
            "requestURI": format!("/apis/{}/namespaces/{}/{}", r.group, self.namespace, r.resource),
            "verb": r.verb, "user": {"username": ADMIN, "groups": ["system:masters"]},
            "sourceIPs": ["172.18.0.1"], "userAgent": r.user_agent,
            "objectRef": {"resource": r.resource, "namespace": self.namespace, "name": r.name,
                          "apiGroup": r.group, "apiVersion": "v1", "resourceVersion": r.request_rv,
                          "subresource": r.subresource},
            "responseStatus": {"metadata": {}, "code": r.code},
            "requestReceivedTimestamp": rfc3339(self.t_us), "stageTimestamp": rfc3339(self.t_us + 3_000),
        });
        if let Some(resp) = r.response {
            e["responseObject"] = resp;
        }
        e
    }
}

fn owner(kind: &str, name: &str) -> Value {
    json!([{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": format!("uid-{name}"),
            "controller": true, "blockOwnerDeletion": true}])
}

fn deployment(
    ns: &str,
    name: &str,
    rv: u64,
    generation: u64,
    replicas: u64,
    image: &str,
    observed: Option<u64>,
) -> Value {
    let mut status = json!({"replicas": replicas, "readyReplicas": replicas});
    if let Some(g) = observed {
        status["observedGeneration"] = json!(g);
    }
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}"), "resourceVersion": rv.to_string(),
                     "generation": generation,
                     "managedFields": [{"manager": "kubectl-create", "operation": "Update", "time": "2024-01-01T00:00:00Z"}]},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "main", "image": image}]}}},
        "status": status})
}

fn replicaset(ns: &str, name: &str, deploy: &str, rv: u64, replicas: u64, image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}"), "resourceVersion": rv.to_string(),
                     "ownerReferences": owner("Deployment", deploy)},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "main", "image": image}]}}}})
}

fn pod(ns: &str, name: &str, rs: &str, rv: u64, image: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "generateName": format!("{rs}-"), "namespace": ns, "uid": format!("uid-{name}"),
                     "resourceVersion": rv.to_string(), "ownerReferences": owner("ReplicaSet", rs)},
        "spec": {"containers": [{"name": "main", "image": image}]}})
}

/// The objects a lifecycle touched, for assertions.
pub struct LifecycleNames {
    /// The Deployment.
    pub deployment: String,
    /// Its two ReplicaSets (first image, second image).
    pub replicasets: [String; 2],
    /// Pods of each ReplicaSet.
    pub pods: Vec<(String, String)>,
}

/// Writes one Deployment lifecycle into audit batches.
struct Lifecycle<'a> {
    s: AuditStream,
    ns: &'a str,
    name: &'a str,
    /// resourceVersion of the Deployment as last written.
    rv: u64,
    pods: Vec<(String, String)>,
    batch: Vec<Value>,
    batches: Vec<Value>,
}

impl<'a> Lifecycle<'a> {
    /// An empty lifecycle whose audit IDs start with `prefix`.
    fn new(ns: &'a str, name: &'a str, t0_us: i64, prefix: &str) -> Self {
        Self {
            s: AuditStream::new(ns, t0_us, prefix),
            ns,
            name,
            rv: 0,
            pods: Vec::new(),
            batch: Vec::new(),
            batches: Vec::new(),
        }
    }

    /// One request on `target` = (resource, group, subresource, name).
    fn request(
        &mut self,
        verb: &str,
        target: (&str, &str, &str, &str),
        request_rv: &str,
        response: Value,
        user_agent: &str,
    ) {
        let (resource, group, subresource, name) = target;
        let code = if verb == "create" { 201 } else { 200 };
        let e = self.s.event(Request {
            verb,
            resource,
            group,
            subresource,
            name,
            request_rv,
            response: Some(response),
            code,
            user_agent,
        });
        self.batch.push(e);
    }

    /// Writes the Deployment (`verb` by kubectl, or a status update by the controller).
    fn deployment(
        &mut self,
        verb: &str,
        subresource: &str,
        generation: u64,
        replicas: u64,
        image: &str,
        observed: Option<u64>,
    ) {
        let request_rv = if verb == "create" || verb == "patch" {
            String::new()
        } else {
            self.rv.to_string()
        };
        self.rv = self.s.next_rv();
        let d = deployment(
            self.ns, self.name, self.rv, generation, replicas, image, observed,
        );
        let ua = if subresource == "status" {
            KCM_UA
        } else {
            KUBECTL_UA
        };
        let name = self.name;
        self.request(
            verb,
            ("deployments", "apps", subresource, name),
            &request_rv,
            d,
            ua,
        );
    }

    fn replicaset(&mut self, rs: &str, replicas: u64, image: &str) {
        let rv = self.s.next_rv();
        let r = replicaset(self.ns, rs, self.name, rv, replicas, image);
        self.request("create", ("replicasets", "apps", "", rs), "", r, KCM_UA);
    }

    /// Pods `from..to` of `rs`, created with `generateName` (empty name in objectRef).
    fn pods(&mut self, rs: &str, from: u32, to: u32, image: &str) {
        for i in from..to {
            let pname = format!("{rs}-p{i}");
            let rv = self.s.next_rv();
            let p = pod(self.ns, &pname, rs, rv, image);
            self.request("create", ("pods", "", "", ""), "", p, KCM_UA);
            self.pods.push((rs.to_string(), pname));
        }
    }

    fn end_batch(&mut self) {
        let items = std::mem::take(&mut self.batch);
        self.batches.push(event_list(items));
    }
}

/// Audit batches of a Deployment lifecycle: create (2 replicas), scale to 4, image
/// `alpine:3.16` -> `alpine:3.17`, scale to 2, delete. Each batch is one EventList.
pub fn deployment_lifecycle(ns: &str, name: &str, t0_us: i64) -> (Vec<Value>, LifecycleNames) {
    let rs1 = format!("{name}-5d8b9c7f4");
    let rs2 = format!("{name}-7f6c5d9b8");
    let mut l = Lifecycle::new(ns, name, t0_us, &format!("{ns}-{name}"));
    // kubectl create; the controller creates the first ReplicaSet and its pods.
    l.deployment("create", "", 1, 2, "alpine:3.16", None);
    l.replicaset(&rs1, 2, "alpine:3.16");
    l.pods(&rs1, 0, 2, "alpine:3.16");
    l.deployment("update", "status", 1, 2, "alpine:3.16", Some(1));
    l.end_batch();

    // kubectl scale --replicas=4 (the response is a Scale, not the Deployment), then
    // the controller observes generation 2.
    let scale_rv = l.s.next_rv();
    let scale = json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": name, "resourceVersion": scale_rv.to_string()}, "spec": {"replicas": 4}});
    l.request(
        "patch",
        ("deployments", "apps", "scale", name),
        "",
        scale,
        KUBECTL_UA,
    );
    l.rv = scale_rv;
    l.deployment("update", "status", 2, 4, "alpine:3.16", Some(2));
    l.pods(&rs1, 2, 4, "alpine:3.16");
    l.end_batch();

    // kubectl set image: a second ReplicaSet.
    l.deployment("patch", "", 3, 4, "alpine:3.17", Some(2));
    l.replicaset(&rs2, 4, "alpine:3.17");
    l.pods(&rs2, 0, 2, "alpine:3.17");
    l.deployment("update", "status", 3, 4, "alpine:3.17", Some(3));
    l.end_batch();

    // kubectl scale --replicas=2, then delete (the response is a Status).
    l.deployment("update", "", 4, 2, "alpine:3.17", Some(3));
    l.deployment("update", "status", 4, 2, "alpine:3.17", Some(4));
    let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Success",
        "details": {"name": name, "group": "apps", "kind": "deployments"}});
    l.request(
        "delete",
        ("deployments", "apps", "", name),
        "",
        status,
        KUBECTL_UA,
    );
    l.end_batch();

    let names = LifecycleNames {
        deployment: name.to_string(),
        replicasets: [rs1, rs2],
        pods: l.pods,
    };
    (l.batches, names)
}

/// Wraps items in an `audit.k8s.io/v1` EventList.
pub fn event_list(items: Vec<Value>) -> Value {
    json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items})
}

/// A batch of `size` pod events (create then updates) for load: distinct pods, so
/// they spread over every shard, each with a response object to diff.
pub fn pod_churn_batch(batch: u64, size: u64, t0_us: i64) -> Value {
    let mut s = AuditStream::new(
        "load",
        t0_us + batch as i64 * 1_000,
        &format!("load-{batch}"),
    );
    let items = (0..size)
        .map(|i| {
            let name = format!("pod-{batch}-{i}");
            let rv = s.next_rv();
            s.event(Request {
                verb: "create",
                resource: "pods",
                group: "",
                subresource: "",
                name: &name,
                request_rv: "",
                response: Some(pod("load", &name, "rs-load", rv, "nginx:1.25")),
                code: 201,
                user_agent: KCM_UA,
            })
        })
        .collect();
    event_list(items)
}

/// Audit batches creating a wide owner tree: one Deployment, `replicasets`
/// ReplicaSets, and `pods_per_rs` Pods under each (generateName, owner references).
pub fn owner_tree(
    ns: &str,
    name: &str,
    replicasets: u32,
    pods_per_rs: u32,
    t0_us: i64,
) -> Vec<Value> {
    let mut l = Lifecycle::new(ns, name, t0_us, &format!("{ns}-{name}-tree"));
    l.deployment("create", "", 1, u64::from(pods_per_rs), "app:1", None);
    l.end_batch();
    for r in 0..replicasets {
        let rs = format!("{name}-rs{r:02}");
        l.replicaset(&rs, u64::from(pods_per_rs), &format!("app:{r}"));
        l.pods(&rs, 0, pods_per_rs, &format!("app:{r}"));
        l.end_batch();
    }
    l.batches
}
