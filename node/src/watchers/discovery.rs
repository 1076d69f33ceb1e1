//! API discovery of a watched cluster: which resources can be listed and watched
//! (the object duties), and how every kind maps to its resource and scope (the
//! objects Events are about, custom resources' irregular plurals included).

use kelemetry_core::filter::AuditFilter;
use kelemetry_core::ObjectKey;
use kube::discovery::{verbs, ApiResource, Discovery, Scope};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// What discovery found in one cluster.
#[derive(Clone, Debug, Default)]
pub struct ClusterApi {
    /// Names ([`resource_name`]) of the resources object watchers may watch.
    pub watchable: BTreeSet<String>,
    /// `(group, kind)` to `(plural, namespaced)` for every served kind.
    pub kinds: BTreeMap<(String, String), (String, bool)>,
}

/// What this node's discovery found per watched cluster, shared by the object
/// watchers (which write it), the Event watcher and `/cluster/status`.
#[derive(Clone, Debug, Default)]
pub struct Discovered(Arc<Mutex<BTreeMap<String, ClusterApi>>>);

impl Discovered {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, ClusterApi>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the latest discovery of `cluster`.
    pub fn set(&self, cluster: &str, api: ClusterApi) {
        self.lock().insert(cluster.to_string(), api);
    }

    /// Forgets `cluster` (its watchers stopped).
    pub fn remove(&self, cluster: &str) {
        self.lock().remove(cluster);
    }

    /// The watchable resources of `cluster`.
    pub fn watchable(&self, cluster: &str) -> Vec<String> {
        self.lock()
            .get(cluster)
            .map(|a| a.watchable.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The resource and scope of `kind` in `group` of `cluster`, if discovered.
    pub fn kind(&self, cluster: &str, group: &str, kind: &str) -> Option<(String, bool)> {
        self.lock()
            .get(cluster)?
            .kinds
            .get(&(group.to_string(), kind.to_string()))
            .cloned()
    }
}

/// `group/resource`, or `resource` in the core group (as `--exclude-types` names them).
pub fn resource_name(ar: &ApiResource) -> String {
    if ar.group.is_empty() {
        ar.plural.clone()
    } else {
        format!("{}/{}", ar.group, ar.plural)
    }
}

/// Every listable and watchable resource at its preferred version by
/// [`resource_name`], minus the excluded types, and the cluster's kinds.
pub async fn discover(
    client: &kube::Client,
    filter: &AuditFilter,
) -> Result<(BTreeMap<String, ApiResource>, ClusterApi), kube::Error> {
    let discovery = Discovery::new(client.clone()).run().await?;
    let mut watchable = BTreeMap::new();
    let mut api = ClusterApi::default();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            api.kinds.insert(
                (ar.group.clone(), ar.kind.clone()),
                (ar.plural.clone(), caps.scope == Scope::Namespaced),
            );
            let key = ObjectKey::new("", ar.group.clone(), ar.plural.clone(), "", "");
            if caps.supports_operation(verbs::LIST)
                && caps.supports_operation(verbs::WATCH)
                && !filter.excludes_type(&key)
            {
                api.watchable.insert(resource_name(&ar));
                watchable.insert(resource_name(&ar), ar);
            }
        }
    }
    Ok((watchable, api))
}
