//! The resources the simulator serves: the built-in kinds a control plane needs, plus
//! custom resources registered through a CRD.

use serde_json::{json, Value};

/// One served resource (a group, version and plural) and how it behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kind {
    /// API group, empty for the core group.
    pub group: String,
    /// Served version.
    pub version: String,
    /// Kind name, e.g. `Deployment`.
    pub kind: String,
    /// Plural resource name, e.g. `deployments`.
    pub plural: String,
    /// Singular name, e.g. `deployment`.
    pub singular: String,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Short names kubectl accepts.
    pub short_names: Vec<String>,
    /// Whether `status` is a subresource (updates to the main resource keep status).
    pub status: bool,
    /// Whether `scale` is a subresource (`spec.replicas` as an `autoscaling/v1` Scale).
    pub scale: bool,
}

impl Kind {
    /// The `apiVersion` of objects of this kind.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The entries of this kind in an `APIResourceList`.
    pub fn discovery_entries(&self) -> Vec<Value> {
        let verbs = json!([
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch"
        ]);
        let mut out = vec![json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": verbs,
            "shortNames": self.short_names,
        })];
        if self.status {
            out.push(json!({"name": format!("{}/status", self.plural), "singularName": "",
                "namespaced": self.namespaced, "kind": self.kind, "verbs": ["get", "patch", "update"]}));
        }
        if self.scale {
            out.push(
                json!({"name": format!("{}/scale", self.plural), "singularName": "",
                "namespaced": self.namespaced, "group": "autoscaling", "version": "v1",
                "kind": "Scale", "verbs": ["get", "patch", "update"]}),
            );
        }
        out
    }
}

#[allow(clippy::too_many_arguments)]
fn kind(
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    namespaced: bool,
    short: &[&str],
    status: bool,
    scale: bool,
) -> Kind {
    Kind {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        status,
        scale,
    }
}

/// The built-in kinds.
pub fn builtin() -> Vec<Kind> {
    vec![
        kind(
            "",
            "v1",
            "Namespace",
            "namespaces",
            false,
            &["ns"],
            true,
            false,
        ),
        kind("", "v1", "Node", "nodes", false, &["no"], true, false),
        kind("", "v1", "Pod", "pods", true, &["po"], true, false),
        kind("", "v1", "Service", "services", true, &["svc"], true, false),
        kind(
            "",
            "v1",
            "ConfigMap",
            "configmaps",
            true,
            &["cm"],
            false,
            false,
        ),
        kind("", "v1", "Secret", "secrets", true, &[], false, false),
        kind("", "v1", "Event", "events", true, &["ev"], false, false),
        kind(
            "apps",
            "v1",
            "Deployment",
            "deployments",
            true,
            &["deploy"],
            true,
            true,
        ),
        kind(
            "apps",
            "v1",
            "ReplicaSet",
            "replicasets",
            true,
            &["rs"],
            true,
            true,
        ),
        kind(
            "apps",
            "v1",
            "StatefulSet",
            "statefulsets",
            true,
            &["sts"],
            true,
            true,
        ),
        kind(
            "events.k8s.io",
            "v1",
            "Event",
            "events",
            true,
            &["ev"],
            false,
            false,
        ),
        kind(
            "coordination.k8s.io",
            "v1",
            "Lease",
            "leases",
            true,
            &[],
            false,
            false,
        ),
        kind(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
            &["crd", "crds"],
            true,
            false,
        ),
    ]
}

/// The kind a CRD object defines (its first served version), if it is well formed.
pub fn from_crd(crd: &Value) -> Option<Kind> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let version = spec["versions"]
        .as_array()?
        .iter()
        .find(|v| v["served"].as_bool().unwrap_or(true))?;
    let kind = names["kind"].as_str()?.to_string();
    Some(Kind {
        group: spec["group"].as_str()?.to_string(),
        version: version["name"].as_str()?.to_string(),
        plural: names["plural"].as_str()?.to_string(),
        singular: names["singular"]
            .as_str()
            .map_or_else(|| kind.to_lowercase(), str::to_string),
        kind,
        namespaced: spec["scope"].as_str() != Some("Cluster"),
        short_names: names["shortNames"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        status: version["subresources"]["status"].is_object(),
        scale: version["subresources"]["scale"].is_object(),
    })
}
