//! The API server's operations, independent of HTTP: the HTTP layer and the
//! in-process controllers both call them, and every call is audited with the caller's
//! identity.
//!
//! - [`patch`]: merge, JSON and strategic merge patches.
//! - [`select`]: label and field selectors.
//! - `write`: create, update, patch and delete semantics (subresources, generation,
//!   finalizers, CRD registration).

pub mod patch;
pub mod select;
mod write;

use crate::audit::policy::Policy;
use crate::audit::webhook::AuditSink;
use crate::audit::{AuditedRequest, ObjectRef, Requester};
use crate::kinds::Kind;
use crate::status::ApiError;
use crate::store::{ResourceId, Store};
use select::Selector;
use serde_json::{json, Value};
use std::sync::{Arc, RwLock};

pub use write::DeletePropagation;

/// Which object (or collection) a request addresses.
#[derive(Clone, Debug)]
pub struct Target {
    /// The resource's kind.
    pub kind: Kind,
    /// Namespace; empty for cluster-scoped objects and for all-namespace lists.
    pub namespace: String,
    /// Object name; empty for collections.
    pub name: String,
    /// Subresource (`status`, `scale`), or empty.
    pub subresource: String,
}

impl Target {
    /// The store's key of the resource.
    pub fn resource(&self) -> ResourceId {
        ResourceId::new(&self.kind.group, &self.kind.plural)
    }

    fn object_ref(&self, body: Option<&Value>) -> ObjectRef {
        let meta = body.map(|b| &b["metadata"]);
        let from_body = |k: &str| {
            meta.and_then(|m| m[k].as_str())
                .unwrap_or_default()
                .to_string()
        };
        ObjectRef {
            resource: self.kind.plural.clone(),
            namespace: self.namespace.clone(),
            name: if self.name.is_empty() {
                from_body("name")
            } else {
                self.name.clone()
            },
            api_group: self.kind.group.clone(),
            api_version: self.kind.version.clone(),
            subresource: self.subresource.clone(),
            resource_version: from_body("resourceVersion"),
        }
    }
}

/// Options of a list.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// `labelSelector`.
    pub labels: Selector,
    /// `fieldSelector`.
    pub fields: Selector,
    /// `limit` (0: all).
    pub limit: usize,
    /// `continue` token of the previous page.
    pub continue_token: Option<String>,
    /// `resourceVersion` with `resourceVersionMatch=Exact`: 410 if compacted.
    pub exact_rv: Option<u64>,
}

/// The first page's resourceVersion and the last key sent, from a `continue` token.
fn parse_continue(token: &str) -> Result<(u64, Option<(String, String)>), ApiError> {
    let bad = || ApiError::bad_request(format!("continue: invalid token {token:?}"));
    let mut parts = token.splitn(3, '/');
    let rv = parts.next().and_then(|r| r.parse().ok()).ok_or_else(bad)?;
    let ns = parts.next().ok_or_else(bad)?.to_string();
    let name = parts.next().ok_or_else(bad)?.to_string();
    Ok((rv, Some((ns, name))))
}

/// The simulated API server.
pub struct ApiServer {
    store: Arc<Store>,
    kinds: RwLock<Vec<Kind>>,
    audit: AuditSink,
    policy: Policy,
}

impl ApiServer {
    /// A server over `store` auditing into `audit` as `policy` says, with the
    /// built-in kinds and the four namespaces every cluster has.
    pub fn new(store: Arc<Store>, audit: AuditSink, policy: Policy) -> Self {
        let server = Self {
            store,
            kinds: RwLock::new(crate::kinds::builtin()),
            audit,
            policy,
        };
        let ns = ResourceId::new("", "namespaces");
        for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name},
                             "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
            let _ = server.store.create(&ns, "", obj);
        }
        server
    }

    /// The object store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The audit backend's counters.
    pub fn audit_counters(&self) -> &crate::audit::webhook::WebhookCounters {
        self.audit.counters()
    }

    /// Every served kind, built-in and CRD-defined.
    pub fn kinds(&self) -> Vec<Kind> {
        self.kinds.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The kind served at `group`/`version` as `plural`.
    pub fn find_kind(&self, group: &str, version: &str, plural: &str) -> Option<Kind> {
        self.kinds()
            .into_iter()
            .find(|k| k.group == group && k.version == version && k.plural == plural)
    }

    /// The kind of `kind` name in `group` (for owner references and Events).
    pub fn kind_named(&self, group: &str, kind: &str) -> Option<Kind> {
        self.kinds()
            .into_iter()
            .find(|k| k.group == group && k.kind == kind)
    }

    /// Serves the kind of a CRD as it is after an update or patch of its main
    /// resource (a new version, names or scope).
    fn crd_changed(&self, t: &Target, crd: &Value) {
        if t.kind.plural == "customresourcedefinitions" && t.subresource.is_empty() {
            self.register_crd(crd, true);
        }
    }

    fn register_crd(&self, crd: &Value, present: bool) {
        let Some(k) = crate::kinds::from_crd(crd) else {
            return;
        };
        let mut kinds = self.kinds.write().unwrap_or_else(|p| p.into_inner());
        kinds.retain(|old| !(old.group == k.group && old.plural == k.plural));
        if present {
            tracing::info!(group = %k.group, plural = %k.plural, "custom resource registered");
            kinds.push(k);
        }
    }

    /// Runs `op` and audits it as `verb` on `target` by `who`.
    fn audited(
        &self,
        who: &Requester,
        verb: &str,
        uri: &str,
        target: &Target,
        body: Option<&Value>,
        op: impl FnOnce() -> Result<(u16, Value), ApiError>,
    ) -> Result<Value, ApiError> {
        let req = AuditedRequest {
            who,
            verb,
            uri,
            object_ref: target.object_ref(body),
            request_object: body,
            received: chrono::Utc::now(),
        };
        let result = op();
        let (code, response) = match &result {
            Ok((code, v)) => (*code, v.clone()),
            Err(e) => (e.code, e.to_status()),
        };
        let response = (!response.is_null()).then_some(&response);
        self.audit
            .send(req.events(&self.policy.decide(&req), code, response));
        result.map(|(_, v)| v)
    }

    /// Audits a request rejected before it reached its object (a malformed body,
    /// selector or patch type, an unsupported method) with the error it got.
    pub fn audit_rejected(&self, who: &Requester, verb: &str, uri: &str, t: &Target, e: &ApiError) {
        let _ = self.audited(who, verb, uri, t, None, || Err(e.clone()));
    }

    /// Audits the start of a `watch` (its stream is served by the HTTP layer).
    pub fn watch_started(&self, who: &Requester, uri: &str, t: &Target) {
        let _ = self.audited(who, "watch", uri, t, None, || Ok((200, Value::Null)));
    }

    /// `get` of one object or subresource.
    pub fn get(&self, who: &Requester, uri: &str, t: &Target) -> Result<Value, ApiError> {
        self.audited(who, "get", uri, t, None, || {
            let obj = self
                .store
                .get(&t.resource(), &t.namespace, &t.name)
                .ok_or_else(|| ApiError::not_found(&t.kind.plural, &t.name))?;
            match t.subresource.as_str() {
                "scale" if t.kind.scale => Ok((200, write::scale_of(&obj))),
                "" | "status" => Ok((200, obj)),
                other => Err(ApiError::not_found(other, &t.name)),
            }
        })
    }

    /// `list` of a collection.
    pub fn list(
        &self,
        who: &Requester,
        uri: &str,
        t: &Target,
        o: &ListOptions,
    ) -> Result<Value, ApiError> {
        self.audited(who, "list", uri, t, None, || {
            if let Some(rv) = o.exact_rv {
                if rv < self.store.oldest_rv() {
                    return Err(ApiError::gone(rv, self.store.oldest_rv()));
                }
            }
            let ns = (!t.namespace.is_empty()).then_some(t.namespace.as_str());
            let (items, rv) = self.store.list(&t.resource(), ns);
            // A continuation names the first page's resourceVersion and the last key
            // sent: later pages go on after that key and report the first page's
            // version, so a watch started from it replays whatever changed while the
            // pages were read (nothing is skipped when objects come or go meanwhile).
            let (list_rv, after) = match o.continue_token.as_deref() {
                Some(token) => parse_continue(token)?,
                None => (rv, None),
            };
            let key = |i: &Value| {
                let m = &i["metadata"];
                (
                    m["namespace"].as_str().unwrap_or_default().to_string(),
                    m["name"].as_str().unwrap_or_default().to_string(),
                )
            };
            let mut rest = items
                .into_iter()
                .filter(|i| o.labels.matches_labels(i) && o.fields.matches_fields(i))
                .filter(|i| after.as_ref().is_none_or(|a| key(i) > *a));
            let limit = if o.limit == 0 { usize::MAX } else { o.limit };
            let page: Vec<Value> = rest.by_ref().take(limit).collect();
            let mut meta = json!({"resourceVersion": list_rv.to_string()});
            if rest.next().is_some() {
                if let Some(last) = page.last() {
                    let (lns, lname) = key(last);
                    meta["continue"] = format!("{list_rv}/{lns}/{lname}").into();
                }
            }
            Ok((
                200,
                json!({"kind": format!("{}List", t.kind.kind), "apiVersion": t.kind.api_version(),
                       "metadata": meta, "items": page}),
            ))
        })
    }

    /// `create` in a collection.
    pub fn create(
        &self,
        who: &Requester,
        uri: &str,
        t: &Target,
        body: Value,
    ) -> Result<Value, ApiError> {
        self.audited(who, "create", uri, t, Some(&body), || {
            if t.subresource == "binding" {
                return write::bind(self, t, &body).map(|v| (201, v));
            }
            let created = write::create(self, t, body.clone())?;
            if t.kind.plural == "customresourcedefinitions" {
                self.register_crd(&created, true);
            }
            Ok((201, created))
        })
    }

    /// `update` (PUT) of an object or subresource.
    pub fn update(
        &self,
        who: &Requester,
        uri: &str,
        t: &Target,
        body: Value,
    ) -> Result<Value, ApiError> {
        self.audited(who, "update", uri, t, Some(&body), || {
            let updated = write::update(self, t, body.clone(), None)?;
            self.crd_changed(t, &updated);
            Ok((200, updated))
        })
    }

    /// `patch` of an object or subresource.
    pub fn patch(
        &self,
        who: &Requester,
        uri: &str,
        t: &Target,
        kind: patch::PatchType,
        body: Value,
    ) -> Result<Value, ApiError> {
        self.audited(who, "patch", uri, t, Some(&body), || {
            let patched = write::patch(self, t, kind, &body)?;
            self.crd_changed(t, &patched);
            Ok((200, patched))
        })
    }

    /// `delete` of an object.
    pub fn delete(
        &self,
        who: &Requester,
        uri: &str,
        t: &Target,
        propagation: DeletePropagation,
        body: Option<Value>,
    ) -> Result<Value, ApiError> {
        self.audited(who, "delete", uri, t, body.as_ref(), || {
            let gone = write::delete(self, t, propagation)?;
            if t.kind.plural == "customresourcedefinitions" {
                self.register_crd(&gone, false);
            }
            Ok((200, gone))
        })
    }
}
