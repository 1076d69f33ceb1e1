//! Kind to resource mapping without API discovery.
//!
//! Owner references and Kubernetes Events name objects by `apiVersion` + `kind`, while
//! object keys use the plural resource. The state machine must map them the same way on
//! every replica and cannot call the API server, so the mapping is a fixed table of the
//! built-in kinds plus the regular English plural that `kubectl` and CRDs follow.

/// Built-in kinds whose resource name is not the regular plural, and cluster-scoped
/// built-in kinds, as (kind, resource, cluster_scoped).
const KNOWN: &[(&str, &str, bool)] = &[
    ("Endpoints", "endpoints", false),
    ("Ingress", "ingresses", false),
    ("IngressClass", "ingressclasses", true),
    ("NetworkPolicy", "networkpolicies", false),
    ("PodSecurityPolicy", "podsecuritypolicies", true),
    ("PriorityClass", "priorityclasses", true),
    ("StorageClass", "storageclasses", true),
    ("RuntimeClass", "runtimeclasses", true),
    ("Node", "nodes", true),
    ("Namespace", "namespaces", true),
    ("PersistentVolume", "persistentvolumes", true),
    ("ClusterRole", "clusterroles", true),
    ("ClusterRoleBinding", "clusterrolebindings", true),
    (
        "CustomResourceDefinition",
        "customresourcedefinitions",
        true,
    ),
    ("APIService", "apiservices", true),
    (
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        true,
    ),
    (
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        true,
    ),
    (
        "ValidatingAdmissionPolicy",
        "validatingadmissionpolicies",
        true,
    ),
    ("CSIDriver", "csidrivers", true),
    ("CSINode", "csinodes", true),
    ("VolumeAttachment", "volumeattachments", true),
    (
        "CertificateSigningRequest",
        "certificatesigningrequests",
        true,
    ),
    ("FlowSchema", "flowschemas", true),
    (
        "PriorityLevelConfiguration",
        "prioritylevelconfigurations",
        true,
    ),
    ("ComponentStatus", "componentstatuses", true),
];

/// The plural resource name of a kind.
pub fn resource_of_kind(kind: &str) -> String {
    if let Some((_, r, _)) = KNOWN.iter().find(|(k, _, _)| *k == kind) {
        return (*r).to_string();
    }
    let lower = kind.to_ascii_lowercase();
    if lower.ends_with('s')
        || lower.ends_with('x')
        || lower.ends_with("ch")
        || lower.ends_with("sh")
    {
        format!("{lower}es")
    } else if let Some(stem) = lower.strip_suffix('y') {
        if stem.ends_with(['a', 'e', 'i', 'o', 'u']) {
            format!("{lower}s")
        } else {
            format!("{stem}ies")
        }
    } else {
        format!("{lower}s")
    }
}

/// Whether a built-in kind is cluster-scoped (has no namespace).
pub fn is_cluster_scoped(kind: &str) -> bool {
    KNOWN.iter().any(|(k, _, scoped)| *k == kind && *scoped)
}

/// The API group of an `apiVersion` (`apps/v1` -> `apps`, `v1` -> ``).
pub fn group_of_api_version(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

/// The version part of an `apiVersion` (`apps/v1` -> `v1`).
pub fn version_of_api_version(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or(api_version, |(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals() {
        for (k, r) in [
            ("Deployment", "deployments"),
            ("ReplicaSet", "replicasets"),
            ("Pod", "pods"),
            ("Ingress", "ingresses"),
            ("NetworkPolicy", "networkpolicies"),
            ("Gateway", "gateways"),
            ("Endpoints", "endpoints"),
            ("Node", "nodes"),
        ] {
            assert_eq!(resource_of_kind(k), r);
        }
        assert!(is_cluster_scoped("Node"));
        assert!(!is_cluster_scoped("ReplicaSet"));
        assert_eq!(group_of_api_version("apps/v1"), "apps");
        assert_eq!(group_of_api_version("v1"), "");
        assert_eq!(version_of_api_version("apps/v1"), "v1");
    }
}
