//! Reading the objects a controller owns: by controller owner reference, from the
//! store (as a controller reads its informer cache, unaudited).

use crate::apiserver::ApiServer;
use crate::store::ResourceId;
use serde_json::Value;

/// The uid of the controller owner of `obj`, if any.
pub fn controller_uid(obj: &Value) -> Option<&str> {
    obj["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)?["uid"]
        .as_str()
}

/// The objects of `resource` in `ns` whose controller is the object with `uid`, not
/// being deleted.
pub fn owned_by(api: &ApiServer, resource: &ResourceId, ns: &str, uid: &str) -> Vec<Value> {
    let (items, _) = api.store().list(resource, Some(ns));
    items
        .into_iter()
        .filter(|o| controller_uid(o) == Some(uid))
        .filter(|o| o["metadata"].get("deletionTimestamp").is_none())
        .collect()
}

/// The object of `resource` in `ns` with `uid`.
pub fn by_uid(api: &ApiServer, resource: &ResourceId, ns: &str, uid: &str) -> Option<Value> {
    let (items, _) = api.store().list(resource, Some(ns));
    items
        .into_iter()
        .find(|o| o["metadata"]["uid"].as_str() == Some(uid))
}

/// A controller owner reference to `owner` of `kind` in `api_version`.
pub fn owner_ref(owner: &Value, kind: &str, api_version: &str) -> Value {
    serde_json::json!({
        "apiVersion": api_version,
        "kind": kind,
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// `spec.replicas`, defaulting to 1 as the API does.
pub fn replicas(obj: &Value) -> i64 {
    obj["spec"]["replicas"].as_i64().unwrap_or(1)
}
