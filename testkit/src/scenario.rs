//! The demo's scripted scenario, driven over the simulator's API as kubectl would:
//! a Deployment created with 2 replicas, scaled to 4, rolled to a new image, scaled
//! to 2 and deleted, each step waiting for the controllers to finish the rollout.

use crate::client::{json_or_null, Client};
use crate::TestkitError;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Who the scenario acts as, and how the audit log shows it.
const HEADERS: &[(&str, &str)] = &[
    ("Impersonate-User", "kubernetes-admin"),
    ("User-Agent", "kelemetry-demo/scenario"),
];

/// One step: what it does, for the progress line.
pub struct Step {
    /// Shown while it runs.
    pub title: String,
}

fn deployment_url(server: &str, ns: &str, name: &str) -> String {
    format!("{server}/apis/apps/v1/namespaces/{ns}/deployments/{name}")
}

fn call(
    client: &Client,
    method: &str,
    url: &str,
    content_type: &str,
    body: &Value,
) -> Result<Value, TestkitError> {
    let mut headers = HEADERS.to_vec();
    headers.push(("Content-Type", content_type));
    let (status, text) = client.send(method, url, &headers, Some(body.to_string().as_bytes()))?;
    if status >= 300 {
        return Err(TestkitError::Http {
            url: format!("{method} {url}"),
            message: format!("answered {status}: {text}"),
        });
    }
    Ok(json_or_null(&text))
}

/// Waits until the Deployment's status observed `generation` with `ready` Pods.
fn wait_rolled_out(
    client: &Client,
    url: &str,
    generation: i64,
    ready: i64,
) -> Result<(), TestkitError> {
    let timeout = Duration::from_secs(60);
    let deadline = Instant::now() + timeout;
    loop {
        let (_, d) = client.get_json(url)?;
        let s = &d["status"];
        if s["observedGeneration"] == generation
            && s["readyReplicas"] == ready
            && s["replicas"] == ready
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(TestkitError::Timeout {
                what: format!("rollout to generation {generation}: {s}"),
                timeout,
                log: String::new(),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs the scenario on Deployment `name` in `default`, calling `progress` before
/// each step.
pub fn rollout(
    server: &str,
    name: &str,
    mut progress: impl FnMut(&Step),
) -> Result<(), TestkitError> {
    let client = Client::new(Duration::from_secs(30));
    let url = deployment_url(server, "default", name);
    let collection = format!("{server}/apis/apps/v1/namespaces/default/deployments");
    let manifest = crate::sim::deployment_manifest(name, 2, "nginx:1.27");
    let json_ct = "application/json";
    let merge = "application/merge-patch+json";
    let strategic = "application/strategic-merge-patch+json";
    let mut step = |title: String| progress(&Step { title });

    step(format!("create deployment {name} with 2 replicas"));
    call(&client, "POST", &collection, json_ct, &manifest)?;
    wait_rolled_out(&client, &url, 1, 2)?;
    step(format!("scale deployment {name} to 4"));
    call(
        &client,
        "PATCH",
        &format!("{url}/scale"),
        merge,
        &json!({"spec": {"replicas": 4}}),
    )?;
    wait_rolled_out(&client, &url, 2, 4)?;
    step(format!("set image of deployment {name} to nginx:1.28"));
    let image = json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.28"}]}}}});
    call(&client, "PATCH", &url, strategic, &image)?;
    wait_rolled_out(&client, &url, 3, 4)?;
    step(format!("scale deployment {name} to 2"));
    call(
        &client,
        "PATCH",
        &format!("{url}/scale"),
        merge,
        &json!({"spec": {"replicas": 2}}),
    )?;
    wait_rolled_out(&client, &url, 4, 2)?;
    step(format!("delete deployment {name}"));
    call(
        &client,
        "DELETE",
        &url,
        json_ct,
        &json!({"propagationPolicy": "Background"}),
    )?;
    Ok(())
}
