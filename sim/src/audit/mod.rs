//! Audit: every request, kubectl's and the controllers', becomes `audit.k8s.io/v1`
//! events filled the way the real API server fills them, at the configured level, and
//! goes to the webhook backend ([`webhook`]).

pub mod policy;
pub mod webhook;

use policy::Decision;
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};

/// How much of a request an audit event records; spelled as in an audit Policy.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum, serde::Deserialize,
)]
pub enum Level {
    /// No events.
    #[value(name = "None")]
    None,
    /// Who did what to which object, without bodies.
    #[value(name = "Metadata")]
    Metadata,
    /// Plus the request body.
    #[value(name = "Request")]
    Request,
    /// Plus the response body.
    #[value(name = "RequestResponse")]
    RequestResponse,
}

impl Level {
    /// The level's name in audit events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Metadata => "Metadata",
            Self::Request => "Request",
            Self::RequestResponse => "RequestResponse",
        }
    }
}

/// Who sent a request, as authentication would tell the API server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requester {
    /// User name, e.g. `kubernetes-admin` or
    /// `system:serviceaccount:kube-system:deployment-controller`.
    pub user: String,
    /// Groups of the user.
    pub groups: Vec<String>,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// The client's address.
    pub source_ip: String,
}

impl Requester {
    /// An in-process controller acting under its service account in `kube-system`.
    pub fn controller(service_account: &str, component: &str) -> Self {
        Self {
            user: format!("system:serviceaccount:kube-system:{service_account}"),
            groups: vec![
                "system:serviceaccounts".into(),
                "system:serviceaccounts:kube-system".into(),
                "system:authenticated".into(),
            ],
            user_agent: format!(
                "{component}/v1.32.0 (linux/amd64) kubernetes/kelemetry-sim/system:serviceaccount:kube-system:{service_account}"
            ),
            source_ip: "127.0.0.1".into(),
        }
    }
}

impl Requester {
    /// A component acting as a plain user (the scheduler, a kubelet).
    pub fn component(user: &str, groups: &[&str], user_agent: &str) -> Self {
        Self {
            user: user.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            user_agent: user_agent.into(),
            source_ip: "127.0.0.1".into(),
        }
    }
}

/// The object a request is about, as `objectRef`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectRef {
    /// Plural resource.
    pub resource: String,
    /// Namespace, empty when cluster-scoped.
    pub namespace: String,
    /// Name, empty for collections (filled from the request body on create).
    pub name: String,
    /// API group.
    pub api_group: String,
    /// API version.
    pub api_version: String,
    /// Subresource, if any.
    pub subresource: String,
    /// `metadata.resourceVersion` of the request body (updates carry the version the
    /// client read).
    pub resource_version: String,
}

/// One request to be audited.
pub struct AuditedRequest<'a> {
    /// Who sent it.
    pub who: &'a Requester,
    /// Verb: get, list, watch, create, update, patch, delete, deletecollection.
    pub verb: &'a str,
    /// Path and query.
    pub uri: &'a str,
    /// The object.
    pub object_ref: ObjectRef,
    /// The request body, if any.
    pub request_object: Option<&'a Value>,
    /// When it arrived.
    pub received: chrono::DateTime<chrono::Utc>,
}

fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

static AUDIT_SEQ: AtomicU64 = AtomicU64::new(0);

fn audit_id() -> String {
    let n = AUDIT_SEQ.fetch_add(1, Ordering::Relaxed);
    let seed = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) as u64;
    let h = xxhash_rust::xxh3::xxh3_128(&[n.to_be_bytes(), seed.to_be_bytes()].concat());
    let hex = format!("{h:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

impl AuditedRequest<'_> {
    /// The `RequestReceived` and `ResponseComplete` (`ResponseStarted` for a watch)
    /// events of this request answered with `code` and `response`, at the level the
    /// policy decided (none at level `None`), minus the omitted stages.
    pub fn events(&self, decision: &Decision, code: u16, response: Option<&Value>) -> Vec<Value> {
        let level = decision.level;
        if level == Level::None {
            return vec![];
        }
        let id = audit_id();
        let mut object_ref = Map::new();
        let r = &self.object_ref;
        for (k, v) in [
            ("resource", &r.resource),
            ("namespace", &r.namespace),
            ("name", &r.name),
            ("apiGroup", &r.api_group),
            ("apiVersion", &r.api_version),
            ("subresource", &r.subresource),
            ("resourceVersion", &r.resource_version),
        ] {
            if !v.is_empty() {
                object_ref.insert(k.into(), v.clone().into());
            }
        }
        let base = |stage: &str, stage_time: String| {
            json!({
                "kind": "Event",
                "apiVersion": "audit.k8s.io/v1",
                "level": level.as_str(),
                "auditID": id,
                "stage": stage,
                "requestURI": self.uri,
                "verb": self.verb,
                "user": {"username": self.who.user, "groups": self.who.groups},
                "sourceIPs": [self.who.source_ip],
                "userAgent": self.who.user_agent,
                "objectRef": object_ref,
                "requestReceivedTimestamp": time(self.received),
                "stageTimestamp": stage_time,
            })
        };
        let mut received = base("RequestReceived", time(self.received));
        // A watch's response is a stream: its second stage is ResponseStarted, sent
        // when the stream begins (the real server sends ResponseComplete when it
        // ends, which a simulated stream does not report).
        let last_stage = if self.verb == "watch" {
            "ResponseStarted"
        } else {
            "ResponseComplete"
        };
        let mut complete = base(last_stage, time(chrono::Utc::now()));
        complete["responseStatus"] = json!({"metadata": {}, "code": code});
        if code >= 400 {
            if let Some(r) = response {
                complete["responseStatus"]["status"] = "Failure".into();
                complete["responseStatus"]["message"] = r["message"].clone();
                complete["responseStatus"]["reason"] = r["reason"].clone();
            }
        }
        complete["annotations"] = json!({"authorization.k8s.io/decision": "allow",
            "authorization.k8s.io/reason": ""});
        if level >= Level::Request {
            if let Some(body) = self.request_object {
                received["requestObject"] = body.clone();
                complete["requestObject"] = body.clone();
            }
        }
        if level >= Level::RequestResponse {
            if let Some(body) = response {
                complete["responseObject"] = body.clone();
            }
        }
        [received, complete]
            .into_iter()
            .filter(|e| {
                let stage = e["stage"].as_str().unwrap_or_default();
                !decision.omit_stages.iter().any(|s| s == stage)
            })
            .collect()
    }
}
