//! Audit policies in the real `audit.k8s.io/v1` `Policy` format: the first rule that
//! matches a request decides its level; `omitStages` of the policy and of that rule
//! drop stages. A request no rule matches is not audited. `--audit-level L` is the
//! one-rule policy "everything at L".

use super::{AuditedRequest, Level};
use serde::Deserialize;

/// A parsed audit policy.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    /// Stages no event is generated for.
    #[serde(default)]
    pub omit_stages: Vec<String>,
    /// Rules, first match wins.
    pub rules: Vec<Rule>,
}

/// One policy rule: every selector given must match.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// Level of matching requests.
    pub level: Level,
    /// User names.
    #[serde(default)]
    pub users: Vec<String>,
    /// User groups (any of them).
    #[serde(default)]
    pub user_groups: Vec<String>,
    /// Verbs.
    #[serde(default)]
    pub verbs: Vec<String>,
    /// Resources by group.
    #[serde(default)]
    pub resources: Vec<GroupResources>,
    /// Namespaces (`""` matches cluster-scoped objects).
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Non-resource URLs (a trailing `*` is a prefix match).
    #[serde(default, rename = "nonResourceURLs")]
    pub non_resource_urls: Vec<String>,
    /// Stages dropped for matching requests, besides the policy's.
    #[serde(default)]
    pub omit_stages: Vec<String>,
}

/// Resources of one API group in a rule.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupResources {
    /// API group (`""` is the core group).
    #[serde(default)]
    pub group: String,
    /// `resource`, `resource/subresource`, `*`, `*/subresource` or `resource/*`;
    /// empty matches every resource of the group.
    #[serde(default)]
    pub resources: Vec<String>,
    /// Object names; empty matches any.
    #[serde(default)]
    pub resource_names: Vec<String>,
}

/// What the policy decided for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The level (`None`: no events).
    pub level: Level,
    /// Stages not to emit.
    pub omit_stages: Vec<String>,
}

/// Why a policy file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// Not a Policy document.
    #[error("not an audit.k8s.io/v1 Policy: {0}")]
    Invalid(String),
}

impl Policy {
    /// Everything at `level`.
    pub fn uniform(level: Level) -> Self {
        Self {
            omit_stages: Vec::new(),
            rules: vec![Rule {
                level,
                users: vec![],
                user_groups: vec![],
                verbs: vec![],
                resources: vec![],
                namespaces: vec![],
                non_resource_urls: vec![],
                omit_stages: vec![],
            }],
        }
    }

    /// Reads a policy file's text (YAML or JSON).
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Head {
            api_version: String,
            kind: String,
        }
        let head: Head =
            serde_yaml_ng::from_str(text).map_err(|e| PolicyError::Invalid(e.to_string()))?;
        if head.kind != "Policy" || !head.api_version.starts_with("audit.k8s.io/") {
            return Err(PolicyError::Invalid(format!(
                "apiVersion {} kind {}",
                head.api_version, head.kind
            )));
        }
        serde_yaml_ng::from_str(text).map_err(|e| PolicyError::Invalid(e.to_string()))
    }

    /// The level and omitted stages of `req`.
    pub fn decide(&self, req: &AuditedRequest<'_>) -> Decision {
        match self.rules.iter().find(|r| r.matches(req)) {
            Some(rule) => Decision {
                level: rule.level,
                omit_stages: self
                    .omit_stages
                    .iter()
                    .chain(&rule.omit_stages)
                    .cloned()
                    .collect(),
            },
            None => Decision {
                level: Level::None,
                omit_stages: Vec::new(),
            },
        }
    }
}

impl Rule {
    fn matches(&self, req: &AuditedRequest<'_>) -> bool {
        let r = &req.object_ref;
        let any = |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x == v);
        if !any(&self.users, &req.who.user)
            || !(self.user_groups.is_empty()
                || req.who.groups.iter().any(|g| self.user_groups.contains(g)))
            || !any(&self.verbs, req.verb)
        {
            return false;
        }
        if r.resource.is_empty() {
            // A non-resource request: only rules naming URLs (or nothing) match it.
            let path = req.uri.split('?').next().unwrap_or_default();
            return self.resources.is_empty()
                && self.namespaces.is_empty()
                && (self.non_resource_urls.is_empty()
                    || self
                        .non_resource_urls
                        .iter()
                        .any(|u| match u.strip_suffix('*') {
                            Some(prefix) => path.starts_with(prefix),
                            None => path == u,
                        }));
        }
        if !self.non_resource_urls.is_empty() || !any(&self.namespaces, &r.namespace) {
            return false;
        }
        self.resources.is_empty()
            || self
                .resources
                .iter()
                .any(|g| g.matches(&r.api_group, &r.resource, &r.subresource, &r.name))
    }
}

impl GroupResources {
    fn matches(&self, group: &str, resource: &str, subresource: &str, name: &str) -> bool {
        if self.group != group {
            return false;
        }
        if !self.resource_names.is_empty() && !self.resource_names.iter().any(|n| n == name) {
            return false;
        }
        let full = if subresource.is_empty() {
            resource.to_string()
        } else {
            format!("{resource}/{subresource}")
        };
        self.resources.is_empty()
            || self.resources.iter().any(|p| {
                p == "*" && subresource.is_empty()
                    || *p == full
                    || p.strip_prefix("*/") == Some(subresource) && !subresource.is_empty()
                    || p.strip_suffix("/*") == Some(resource) && !subresource.is_empty()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{ObjectRef, Requester};

    const POLICY: &str = r#"
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: None
    users: ["system:kube-scheduler"]
  - level: None
    resources:
      - group: coordination.k8s.io
        resources: ["leases"]
  - level: RequestResponse
    resources:
      - group: apps
        resources: ["deployments", "deployments/scale"]
  - level: Request
    verbs: ["create"]
    namespaces: ["kube-system"]
  - level: Metadata
    omitStages: ["ResponseStarted"]
"#;

    fn request<'a>(
        who: &'a Requester,
        verb: &'a str,
        group: &str,
        resource: &str,
        sub: &str,
        ns: &str,
    ) -> AuditedRequest<'a> {
        AuditedRequest {
            who,
            verb,
            uri: "/x",
            object_ref: ObjectRef {
                resource: resource.into(),
                namespace: ns.into(),
                name: "n".into(),
                api_group: group.into(),
                api_version: "v1".into(),
                subresource: sub.into(),
                resource_version: String::new(),
            },
            request_object: None,
            received: chrono::Utc::now(),
        }
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let p = Policy::parse(POLICY).unwrap();
        let admin = Requester::component("kubernetes-admin", &["system:masters"], "kubectl");
        let sched = Requester::component("system:kube-scheduler", &[], "kube-scheduler");
        let level = |r: AuditedRequest<'_>| p.decide(&r).level;
        assert_eq!(
            level(request(&sched, "update", "", "pods", "binding", "d")),
            Level::None
        );
        assert_eq!(
            level(request(
                &admin,
                "update",
                "coordination.k8s.io",
                "leases",
                "",
                "d"
            )),
            Level::None
        );
        assert_eq!(
            level(request(
                &admin,
                "patch",
                "apps",
                "deployments",
                "scale",
                "d"
            )),
            Level::RequestResponse
        );
        assert_eq!(
            level(request(
                &admin,
                "update",
                "apps",
                "deployments",
                "status",
                "d"
            )),
            Level::Metadata,
            "deployments/status is not listed"
        );
        assert_eq!(
            level(request(
                &admin,
                "create",
                "",
                "configmaps",
                "",
                "kube-system"
            )),
            Level::Request
        );
        let d = p.decide(&request(&admin, "watch", "", "pods", "", "d"));
        assert_eq!(d.level, Level::Metadata);
        assert_eq!(d.omit_stages, vec!["RequestReceived", "ResponseStarted"]);
    }

    #[test]
    fn a_file_that_is_not_a_policy_is_refused() {
        let err = Policy::parse("apiVersion: v1\nkind: ConfigMap\n").unwrap_err();
        assert!(err.to_string().contains("kind ConfigMap"), "{err}");
    }
}
