//! Owner references to link targets (SPEC 5.2).

use crate::key::ObjectKey;
use crate::kinds::{
    group_of_api_version, is_cluster_scoped, resource_of_kind, version_of_api_version,
};
use serde::Deserialize;

/// An owner of an object, as a key plus the API version to record for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// The owner's key.
    pub key: ObjectKey,
    /// The owner's API version.
    pub version: String,
}

/// One entry of `metadata.ownerReferences`.
#[derive(Deserialize, Clone, Debug, Default)]
#[serde(rename_all = "camelCase")]
pub struct OwnerReference {
    /// The owner's `apiVersion`.
    #[serde(default)]
    pub api_version: String,
    /// The owner's kind.
    #[serde(default)]
    pub kind: String,
    /// The owner's name.
    #[serde(default)]
    pub name: String,
    /// Whether this owner is the managing controller.
    #[serde(default)]
    pub controller: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Meta {
    #[serde(default)]
    owner_references: Vec<OwnerReference>,
}

#[derive(Deserialize)]
struct Obj {
    #[serde(default)]
    metadata: Meta,
}

/// The controlling owners of `child` named in its object JSON.
///
/// Only references with `controller: true` count, as in the original. A cluster-scoped
/// owner (a Node, a Namespace) gets an empty namespace instead of the child's.
pub fn controller_owners(child: &ObjectKey, object_json: &str) -> Vec<Owner> {
    match serde_json::from_str::<Obj>(object_json) {
        Ok(obj) => controller_owners_of(child, &obj.metadata.owner_references),
        Err(_) => Vec::new(),
    }
}

/// The controlling owners among already-decoded owner references.
pub fn controller_owners_of(child: &ObjectKey, refs: &[OwnerReference]) -> Vec<Owner> {
    refs.iter()
        .filter(|r| r.controller && !r.name.is_empty() && !r.kind.is_empty())
        .map(|r| Owner {
            key: ObjectKey::new(
                child.cluster.clone(),
                group_of_api_version(&r.api_version),
                resource_of_kind(&r.kind),
                if is_cluster_scoped(&r.kind) {
                    ""
                } else {
                    child.namespace.as_str()
                },
                r.name.clone(),
            ),
            version: version_of_api_version(&r.api_version).to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_refs_only_and_cluster_scoped_owner_namespace() {
        let child = ObjectKey::new("c", "", "pods", "ns", "p");
        let json = r#"{"metadata":{"ownerReferences":[
            {"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs","controller":true},
            {"apiVersion":"v1","kind":"Node","name":"n1","controller":true},
            {"apiVersion":"v1","kind":"ConfigMap","name":"cm"}]}}"#;
        let owners = controller_owners(&child, json);
        assert_eq!(owners.len(), 2);
        assert_eq!(owners[0].key.to_string(), "c/apps/replicasets/ns/rs");
        assert_eq!(owners[1].key.to_string(), "c//nodes//n1");
        assert!(controller_owners(&child, "not json").is_empty());
    }
}
