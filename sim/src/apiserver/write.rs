//! What a write does to stored objects: server-filled fields, the `status` and
//! `scale` subresources, optimistic concurrency, finalizers and delete propagation.

use super::patch::{self, PatchType};
use super::{ApiServer, Target};
use crate::status::ApiError;
use crate::store::ResourceId;
use serde_json::{json, Value};

/// How a delete treats the objects the deleted one owns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeletePropagation {
    /// Delete now; the garbage collector deletes dependents afterwards.
    #[default]
    Background,
    /// Mark deleting; the garbage collector deletes dependents, then the owner.
    Foreground,
    /// Delete now and leave dependents without this owner.
    Orphan,
}

impl DeletePropagation {
    /// From `DeleteOptions.propagationPolicy` (or the query parameter).
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        match s {
            "" | "Background" => Ok(Self::Background),
            "Foreground" => Ok(Self::Foreground),
            "Orphan" => Ok(Self::Orphan),
            other => Err(ApiError::bad_request(format!(
                "propagationPolicy: Unsupported value: {other:?}: supported values: \"Orphan\", \"Background\", \"Foreground\""
            ))),
        }
    }
}

/// The `autoscaling/v1` Scale view of an object with `spec.replicas`.
pub fn scale_of(obj: &Value) -> Value {
    let meta = &obj["metadata"];
    let selector = obj["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
                     "resourceVersion": meta["resourceVersion"],
                     "creationTimestamp": meta["creationTimestamp"]},
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector},
    })
}

fn check_kind(t: &Target, body: &mut Value) -> Result<(), ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    match body["kind"].as_str() {
        None => body["kind"] = t.kind.kind.clone().into(),
        Some(k) if k == t.kind.kind => {}
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "the kind {k:?} of the body does not match the resource {}",
                t.kind.plural
            )))
        }
    }
    if body["apiVersion"].as_str().is_none() {
        body["apiVersion"] = t.kind.api_version().into();
    }
    if !body["metadata"].is_object() {
        body["metadata"] = json!({});
    }
    if !t.kind.namespaced {
        if let Some(m) = body["metadata"].as_object_mut() {
            m.remove("namespace");
        }
    }
    Ok(())
}

/// Creates `body` in `t`'s collection.
pub fn create(api: &ApiServer, t: &Target, mut body: Value) -> Result<Value, ApiError> {
    check_kind(t, &mut body)?;
    if t.kind.namespaced {
        let ns = ResourceId::new("", "namespaces");
        if api.store().get(&ns, "", &t.namespace).is_none() {
            return Err(ApiError::not_found("namespaces", &t.namespace));
        }
    }
    if t.kind.group == "apps" {
        body["status"] = json!({});
    }
    if t.kind.kind == "Pod" && body["status"].get("phase").is_none() {
        body["status"] = json!({"phase": "Pending"});
    }
    let ns = if t.kind.namespaced {
        t.namespace.as_str()
    } else {
        ""
    };
    api.store().create(&t.resource(), ns, body)
}

/// `POST pods/{name}/binding`: assigns the Pod to the node the Binding names.
pub fn bind(api: &ApiServer, t: &Target, binding: &Value) -> Result<Value, ApiError> {
    if t.kind.kind != "Pod" {
        return Err(ApiError::not_found("binding", &t.name));
    }
    let node = binding["target"]["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::invalid("target.name: Required value"))?;
    let mut pod = current(api, t)?;
    if pod["spec"]["nodeName"]
        .as_str()
        .is_some_and(|n| !n.is_empty())
    {
        return Err(ApiError::conflict("pods/binding", &t.name));
    }
    pod["spec"]["nodeName"] = node.into();
    let rv = pod["metadata"]["resourceVersion"]
        .as_str()
        .map(str::to_string);
    api.store()
        .replace(&t.resource(), &t.namespace, &t.name, pod, rv.as_deref())?;
    Ok(crate::status::success())
}

/// The object `incoming` makes of `old` when written to `t` (main resource, `status`
/// or `scale`).
fn merged(t: &Target, old: &Value, incoming: &Value) -> Result<Value, ApiError> {
    if !incoming.is_object() {
        return Err(ApiError::invalid(
            "the written object must be a JSON object",
        ));
    }
    let mut new = match t.subresource.as_str() {
        "" => {
            let mut n = incoming.clone();
            if t.kind.status {
                n["status"] = old["status"].clone();
            }
            n
        }
        "status" if t.kind.status => {
            let mut n = old.clone();
            n["status"] = incoming["status"].clone();
            n
        }
        "scale" if t.kind.scale => {
            let replicas = incoming["spec"]["replicas"]
                .as_i64()
                .ok_or_else(|| ApiError::invalid("spec.replicas: Required value"))?;
            let mut n = old.clone();
            n["spec"]["replicas"] = replicas.into();
            n
        }
        other => return Err(ApiError::not_found(other, &t.name)),
    };
    if !new["metadata"].is_object() {
        new["metadata"] = json!({});
    }
    // Only a delete starts a deletion: these fields always come from the stored
    // object, whatever a write sends.
    for k in ["deletionTimestamp", "deletionGracePeriodSeconds"] {
        match (old["metadata"].get(k), new["metadata"].as_object_mut()) {
            (Some(v), Some(m)) => {
                m.insert(k.into(), v.clone());
            }
            (None, Some(m)) => {
                m.remove(k);
            }
            _ => {}
        }
    }
    Ok(new)
}

fn finalizers(obj: &Value) -> usize {
    obj["metadata"]["finalizers"].as_array().map_or(0, Vec::len)
}

/// Writes `incoming` over the stored object; a deleting object whose last finalizer
/// is removed is deleted.
fn write(
    api: &ApiServer,
    t: &Target,
    old: &Value,
    incoming: &Value,
    expected_rv: Option<&str>,
) -> Result<Value, ApiError> {
    let mut new = merged(t, old, incoming)?;
    if t.subresource.is_empty() {
        check_kind(t, &mut new)?;
    }
    let stored = api
        .store()
        .replace(&t.resource(), &t.namespace, &t.name, new, expected_rv)?;
    if stored["metadata"].get("deletionTimestamp").is_some() && finalizers(&stored) == 0 {
        api.store().delete(&t.resource(), &t.namespace, &t.name)?;
    }
    Ok(if t.subresource == "scale" {
        scale_of(&stored)
    } else {
        stored
    })
}

fn current(api: &ApiServer, t: &Target) -> Result<Value, ApiError> {
    api.store()
        .get(&t.resource(), &t.namespace, &t.name)
        .ok_or_else(|| ApiError::not_found(&t.kind.plural, &t.name))
}

/// PUT: `body` replaces the object (or subresource), guarded by the
/// resourceVersion it carries.
pub fn update(
    api: &ApiServer,
    t: &Target,
    mut body: Value,
    expected: Option<&str>,
) -> Result<Value, ApiError> {
    if t.subresource.is_empty() {
        check_kind(t, &mut body)?;
    }
    let old = current(api, t)?;
    let rv = body["metadata"]["resourceVersion"]
        .as_str()
        .map(str::to_string)
        .or(expected.map(str::to_string));
    write(api, t, &old, &body, rv.as_deref())
}

/// PATCH: applies the patch to the current object (or its Scale view) and writes the
/// result; retried on a concurrent write, as the real server does.
pub fn patch(
    api: &ApiServer,
    t: &Target,
    kind: PatchType,
    body: &Value,
) -> Result<Value, ApiError> {
    let mut last = None;
    for _ in 0..5 {
        let old = current(api, t)?;
        let view = if t.subresource == "scale" {
            scale_of(&old)
        } else {
            old.clone()
        };
        let patched = patch::apply(&view, kind, body)?;
        let rv = old["metadata"]["resourceVersion"]
            .as_str()
            .map(str::to_string);
        match write(api, t, &old, &patched, rv.as_deref()) {
            Err(e) if e.reason == "Conflict" => last = Some(e),
            other => return other,
        }
    }
    Err(last.unwrap_or_else(|| ApiError::conflict(&t.kind.plural, &t.name)))
}

/// DELETE: removes the object now, or marks it deleting while finalizers (the
/// foreground-deletion one included) remain.
pub fn delete(api: &ApiServer, t: &Target, p: DeletePropagation) -> Result<Value, ApiError> {
    if !t.subresource.is_empty() {
        return Err(ApiError::method_not_allowed(format!(
            "the {} subresource cannot be deleted",
            t.subresource
        )));
    }
    // Marking an object deleting is a write guarded by the version just read; a
    // concurrent write (a controller's status update) is retried, as the real
    // server does, instead of answering 409 to a delete without preconditions.
    let mut attempts = 0;
    loop {
        let old = current(api, t)?;
        if old["metadata"].get("deletionTimestamp").is_some() {
            return Ok(old);
        }
        if finalizers(&old) == 0 && p == DeletePropagation::Background {
            break;
        }
        match mark_deleting(api, t, &old, p) {
            Err(e) if e.reason == "Conflict" && attempts < 5 => attempts += 1,
            other => return other,
        }
    }
    api.store().delete(&t.resource(), &t.namespace, &t.name)
}

/// Sets the deletion timestamp (and, for a foreground or orphan deletion, the
/// collector's finalizer), so the object is deleted once its finalizers are gone.
fn mark_deleting(
    api: &ApiServer,
    t: &Target,
    old: &Value,
    p: DeletePropagation,
) -> Result<Value, ApiError> {
    let mut marked = old.clone();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    marked["metadata"]["deletionTimestamp"] = now.into();
    marked["metadata"]["deletionGracePeriodSeconds"] = 0.into();
    // Foreground and orphan deletions wait for the garbage collector: it deletes
    // the dependents, or removes their references to the owner, then drops the
    // finalizer, which completes the deletion.
    let finalizer = match p {
        DeletePropagation::Foreground => Some("foregroundDeletion"),
        DeletePropagation::Orphan => Some("orphan"),
        DeletePropagation::Background => None,
    };
    if let Some(finalizer) = finalizer {
        let mut list: Vec<Value> = marked["metadata"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if !list.iter().any(|f| f == finalizer) {
            list.push(finalizer.into());
        }
        marked["metadata"]["finalizers"] = list.into();
    }
    let rv = old["metadata"]["resourceVersion"]
        .as_str()
        .map(str::to_string);
    api.store()
        .replace(&t.resource(), &t.namespace, &t.name, marked, rv.as_deref())
}
