//! The owner garbage collector (`generic-garbage-collector`): deletes objects whose
//! owners are all gone, removes references to a deleted owner from objects that have
//! others, completes foreground deletions once an owner has no dependents left (its
//! dependents deleted in the foreground too), and completes orphan deletions after
//! removing the owner's references from its dependents.

use super::client::{Client, ObjectId};
use crate::apiserver::{ApiServer, DeletePropagation};
use crate::store::{Change, ChangeType, ResourceId};
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

const FOREGROUND: &str = "foregroundDeletion";
const ORPHAN: &str = "orphan";

/// Runs the collector until the store closes.
pub async fn run(api: Arc<ApiServer>) {
    let client = Client::new(
        api.clone(),
        "generic-garbage-collector",
        "kube-controller-manager",
    );
    let Ok(mut start) = api.store().watch_from(api.store().current_rv()) else {
        return;
    };
    loop {
        match start.live.recv().await {
            Ok(c) => handle(&client, &c),
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "garbage collector fell behind; sweeping");
                sweep(&client);
            }
            Err(RecvError::Closed) => return,
        }
    }
}

fn uid(obj: &Value) -> &Value {
    &obj["metadata"]["uid"]
}

fn owner_uids(obj: &Value) -> Vec<Value> {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .map(|refs| refs.iter().map(|r| r["uid"].clone()).collect())
        .unwrap_or_default()
}

/// Whether `obj` is being deleted and waits for the collector's `finalizer`.
fn deleting_with(obj: &Value, finalizer: &str) -> bool {
    obj["metadata"].get("deletionTimestamp").is_some()
        && obj["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == finalizer))
}

fn deleting_in_foreground(obj: &Value) -> bool {
    deleting_with(obj, FOREGROUND)
}

/// Every stored object that may depend on an owner in `ns`: those in `ns` and the
/// cluster-scoped ones; for a cluster-scoped owner (`ns` empty), every object.
fn objects(api: &ApiServer, ns: &str) -> Vec<(ResourceId, Value)> {
    let mut out = Vec::new();
    for k in api.kinds() {
        let r = ResourceId::new(&k.group, &k.plural);
        let scope = if k.namespaced && !ns.is_empty() {
            Some(ns)
        } else {
            None
        };
        let (items, _) = api.store().list(&r, scope);
        out.extend(items.into_iter().map(|o| (r.clone(), o)));
    }
    out
}

fn exists_with_uid(all: &[(ResourceId, Value)], u: &Value) -> bool {
    all.iter().any(|(_, o)| uid(o) == u)
}

fn handle(client: &Client, c: &Change) {
    let obj = &c.object;
    let ns = c.namespace.as_str();
    match c.change {
        ChangeType::Deleted => {
            collect_dependents(client, ns, uid(obj));
            for owner in owner_uids(obj) {
                finish_foreground(client, ns, &owner);
            }
        }
        _ if deleting_in_foreground(obj) => {
            let all = objects(client.api(), ns);
            let dependents: Vec<&(ResourceId, Value)> = all
                .iter()
                .filter(|(_, o)| owner_uids(o).contains(uid(obj)))
                .collect();
            if dependents.is_empty() {
                finish_foreground(client, ns, uid(obj));
            }
            for (r, d) in dependents {
                if d["metadata"].get("deletionTimestamp").is_none() {
                    let _ = client.delete(&ObjectId::of(r, d), DeletePropagation::Foreground);
                }
            }
        }
        _ if deleting_with(obj, ORPHAN) => orphan(client, ns, &c.resource, obj),
        _ => {}
    }
}

/// Completes an orphan deletion: the owner's dependents lose their reference to it,
/// then its `orphan` finalizer goes, which deletes it.
fn orphan(client: &Client, ns: &str, r: &ResourceId, owner: &Value) {
    let owner_uid = uid(owner);
    for (r, d) in objects(client.api(), ns) {
        if owner_uids(&d).contains(owner_uid) {
            let _ = client.update(&ObjectId::of(&r, &d), "", without_owner(&d, owner_uid));
        }
    }
    remove_finalizer(client, r, owner, ORPHAN);
}

/// `d` without its reference to `owner_uid`.
fn without_owner(d: &Value, owner_uid: &Value) -> Value {
    let mut updated = d.clone();
    let kept: Vec<Value> = d["metadata"]["ownerReferences"]
        .as_array()
        .map(|refs| {
            refs.iter()
                .filter(|o| &o["uid"] != owner_uid)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    updated["metadata"]["ownerReferences"] = kept.into();
    updated
}

/// Drops `finalizer` from `obj` of resource `r`.
fn remove_finalizer(client: &Client, r: &ResourceId, obj: &Value, finalizer: &str) {
    let mut updated = obj.clone();
    let kept: Vec<Value> = obj["metadata"]["finalizers"]
        .as_array()
        .map(|f| f.iter().filter(|x| *x != finalizer).cloned().collect())
        .unwrap_or_default();
    updated["metadata"]["finalizers"] = kept.into();
    let _ = client.update(&ObjectId::of(r, obj), "", updated);
}

/// After owner `owner_uid` went away: deletes dependents without another live owner,
/// and drops the dangling reference from the others.
fn collect_dependents(client: &Client, ns: &str, owner_uid: &Value) {
    let all = objects(client.api(), ns);
    for (r, d) in &all {
        let owners = owner_uids(d);
        if !owners.contains(owner_uid) {
            continue;
        }
        let id = ObjectId::of(r, d);
        let others_alive = owners
            .iter()
            .any(|u| u != owner_uid && exists_with_uid(&all, u));
        if others_alive {
            let _ = client.update(&id, "", without_owner(d, owner_uid));
        } else if d["metadata"].get("deletionTimestamp").is_none() {
            let _ = client.delete(&id, DeletePropagation::Background);
        }
    }
}

/// Removes the foreground finalizer of the owner with `owner_uid` once nothing it
/// owns remains, which completes its deletion.
fn finish_foreground(client: &Client, ns: &str, owner_uid: &Value) {
    let all = objects(client.api(), ns);
    let Some((r, owner)) = all.iter().find(|(_, o)| uid(o) == owner_uid) else {
        return;
    };
    if !deleting_in_foreground(owner) || all.iter().any(|(_, o)| owner_uids(o).contains(owner_uid))
    {
        return;
    }
    remove_finalizer(client, r, owner, FOREGROUND);
}

/// Re-checks every object after missed changes: orphans whose owners are gone are
/// collected and foreground deletions re-evaluated.
fn sweep(client: &Client) {
    let all = objects(client.api(), "");
    let namespaces: Vec<String> = all
        .iter()
        .filter(|(r, _)| r.plural == "namespaces")
        .filter_map(|(_, o)| o["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    for ns in namespaces {
        let objs = objects(client.api(), &ns);
        for (r, o) in &objs {
            for owner in owner_uids(o) {
                if !exists_with_uid(&objs, &owner) {
                    collect_dependents(client, &ns, &owner);
                }
            }
            if deleting_in_foreground(o) {
                finish_foreground(client, &ns, uid(o));
            }
            if deleting_with(o, ORPHAN) {
                orphan(client, &ns, r, o);
            }
        }
    }
}
