//! In-process controllers, each acting through the API server's operations under its
//! real identity, so their requests are audited like the real ones. Each reacts to
//! the store's changes in order; one that falls behind re-lists what it owns.
//!
//! - [`client`]: the controllers' view of the API (typed targets, request URIs).
//! - [`owned`]: reading owned objects; [`events`]: recording Events.
//! - [`deployment`], [`replicaset`]: the workload controllers.
//! - [`scheduler`], [`kubelet`]: binding Pods, starting them, node leases.
//! - [`gc`]: the owner garbage collector.

pub mod client;
pub mod deployment;
pub mod events;
pub mod gc;
pub mod kubelet;
pub mod owned;
pub mod replicaset;
pub mod scheduler;

use crate::apiserver::ApiServer;
use crate::store::{Change, ResourceId};
use client::Client;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

/// Starts every controller, with kubelets for `nodes` nodes (`sim-node-0`, ...).
pub fn start_all(api: &Arc<ApiServer>, nodes: usize) {
    let names: Vec<String> = (0..nodes).map(|i| format!("sim-node-{i}")).collect();
    for n in &names {
        kubelet::register(api, n);
    }
    tokio::spawn(kubelet::renew_leases(api.clone(), names));
    tokio::spawn(gc::run(api.clone()));
    let deploy = Client::new(
        api.clone(),
        "deployment-controller",
        "kube-controller-manager",
    );
    tokio::spawn(follow(
        api.clone(),
        ResourceId::new("apps", "deployments"),
        move |c| {
            if let Some(d) = c.and_then(|c| deployment::affected(&deploy, c)) {
                deployment::reconcile(&deploy, &d);
            }
        },
    ));
    let rs = Client::new(
        api.clone(),
        "replicaset-controller",
        "kube-controller-manager",
    );
    tokio::spawn(follow(
        api.clone(),
        ResourceId::new("apps", "replicasets"),
        move |c| {
            if let Some(r) = c.and_then(|c| replicaset::affected(&rs, c)) {
                replicaset::reconcile(&rs, &r);
            }
        },
    ));
    let sched = scheduler::client(api.clone());
    tokio::spawn(follow(api.clone(), ResourceId::new("", "pods"), move |c| {
        if let Some(c) = c {
            scheduler::on_change(&sched, c);
        }
    }));
    let k = api.clone();
    tokio::spawn(follow(api.clone(), ResourceId::new("", "pods"), move |c| {
        if let Some(c) = c {
            kubelet::on_change(&k, c);
        }
    }));
}

/// Feeds every change to `handle`, in order. After missing changes it hands each
/// current object of `resync` to `handle` as if it had just been added.
async fn follow(api: Arc<ApiServer>, resync: ResourceId, mut handle: impl FnMut(Option<&Change>)) {
    let Ok(mut start) = api.store().watch_from(api.store().current_rv()) else {
        return;
    };
    loop {
        match start.live.recv().await {
            Ok(c) => {
                // A malformed object must not end the controller: the panic of one
                // reconcile is logged and the next change is handled.
                let run = std::panic::AssertUnwindSafe(|| handle(Some(&c)));
                if std::panic::catch_unwind(run).is_err() {
                    tracing::error!(resource = %c.resource.plural, "a controller panicked on a change; going on");
                }
            }
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(missed, resource = %resync.plural, "a controller fell behind; re-listing");
                let (items, rv) = api.store().list(&resync, None);
                for o in items {
                    let ns = o["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    let c = Change {
                        rv,
                        change: crate::store::ChangeType::Added,
                        resource: resync.clone(),
                        namespace: ns,
                        object: Arc::new(o),
                        previous: None,
                    };
                    handle(Some(&c));
                }
            }
            Err(RecvError::Closed) => return,
        }
    }
}
