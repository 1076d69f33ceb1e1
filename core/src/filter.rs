//! Which audit events become spans (SPEC 2.3-2.4).

use crate::key::ObjectKey;

/// Audit filtering configuration; defaults follow the original.
#[derive(Clone, Debug)]
pub struct AuditFilter {
    /// Excluded types as `resource` (core group) or `group/resource`.
    pub exclude_types: Vec<String>,
    /// Substrings of user agents whose requests are dropped.
    pub exclude_user_agents: Vec<String>,
}

/// Verbs that change objects; the only ones traced.
pub const TRACED_VERBS: [&str; 4] = ["create", "update", "patch", "delete"];

/// The only audit stage traced: the request has finished and its response is known.
pub const TRACED_STAGE: &str = "ResponseComplete";

impl Default for AuditFilter {
    fn default() -> Self {
        Self {
            exclude_types: vec![
                "events".into(),
                "events.k8s.io/events".into(),
                "coordination.k8s.io/leases".into(),
            ],
            exclude_user_agents: vec!["/leader-election".into(), "local-path-provisioner/".into()],
        }
    }
}

/// Why an audit event was not turned into a span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterReason {
    /// Not create/update/patch/delete.
    Verb,
    /// Not the ResponseComplete stage.
    Stage,
    /// No objectRef (non-resource request) or no resolvable name.
    NoObject,
    /// The resource type is excluded.
    Type,
    /// The user agent is excluded.
    UserAgent,
}

impl FilterReason {
    /// Label value used in metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Verb => "verb",
            Self::Stage => "stage",
            Self::NoObject => "no_object",
            Self::Type => "type",
            Self::UserAgent => "user_agent",
        }
    }
}

impl AuditFilter {
    /// Whether an object type is excluded.
    pub fn excludes_type(&self, key: &ObjectKey) -> bool {
        self.exclude_types.iter().any(|t| match t.split_once('/') {
            Some((g, r)) => g == key.group && r == key.resource,
            None => key.group.is_empty() && t == &key.resource,
        })
    }

    /// Whether a user agent is excluded.
    pub fn excludes_user_agent(&self, user_agent: &str) -> bool {
        self.exclude_user_agents
            .iter()
            .any(|s| !s.is_empty() && user_agent.contains(s.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_exclusions() {
        let f = AuditFilter::default();
        assert!(f.excludes_type(&ObjectKey::new("c", "", "events", "ns", "e")));
        assert!(f.excludes_type(&ObjectKey::new(
            "c",
            "coordination.k8s.io",
            "leases",
            "ns",
            "l"
        )));
        assert!(!f.excludes_type(&ObjectKey::new("c", "apps", "events", "ns", "e")));
        assert!(f.excludes_user_agent("kube-scheduler/v1.28.0 (linux/amd64)/leader-election"));
        assert!(!f.excludes_user_agent("kubectl/v1.28.0"));
    }
}
