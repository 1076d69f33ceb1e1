//! What the simulator's tests share: the simulator process as kubectl drives it, a
//! minimal audit webhook on loopback, and manifests of owned objects.
// Each test binary uses a part of this module.
#![allow(dead_code)]

use kelemetry_testkit::sim::{deployment_manifest, SimProcess};
use kelemetry_testkit::Client;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Audit events received by a minimal webhook on loopback.
#[derive(Clone, Default)]
pub struct Received(pub Arc<Mutex<Vec<Value>>>);

impl Received {
    /// Serves `POST` requests on a loopback port, collecting each body's `items`.
    pub fn serve() -> (Self, String) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/audit/sim", listener.local_addr().unwrap());
        let received = Received::default();
        let sink = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream);
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; len];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                if let Ok(list) = serde_json::from_slice::<Value>(&body) {
                    let items = list["items"].as_array().cloned().unwrap_or_default();
                    sink.0.lock().unwrap().extend(items);
                }
                let mut out = reader.into_inner();
                let _ = out.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
                );
            }
        });
        (received, url)
    }

    pub fn events(&self) -> Vec<Value> {
        self.0.lock().unwrap().clone()
    }
}

/// The simulator of this build, with panicking helpers.
pub struct Sim(pub SimProcess);

impl Sim {
    pub fn start(extra: &[&str]) -> Sim {
        let mut args = vec!["--audit-batch-max-wait", "100ms"];
        args.extend_from_slice(extra);
        Sim(SimProcess::start(Path::new(env!("CARGO_BIN_EXE_kelemetry-sim")), &args).unwrap())
    }

    pub fn kubectl(&self, args: &[&str]) -> String {
        self.0.kubectl(args).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn get_json(&self, args: &[&str]) -> Value {
        self.0.kubectl_json(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A raw GET, for streams.
    pub fn raw(&self, path: &str) -> ureq::http::Response<ureq::Body> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        agent
            .get(format!("{}{path}", self.0.server()))
            .call()
            .unwrap()
    }

    /// A request with a body, as the admin; its status.
    pub fn send(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> u16 {
        let url = format!("{}{path}", self.0.server());
        let headers = [
            ("Content-Type", content_type),
            ("Impersonate-User", "kubernetes-admin"),
        ];
        Client::new(Duration::from_secs(10))
            .send(method, &url, &headers, Some(body))
            .unwrap()
            .0
    }

    pub fn audit_flushed(&self) {
        let counters = self.0.audit_flushed(Duration::from_secs(20)).unwrap();
        assert_eq!(counters["dropped"], 0, "{counters}");
    }
}

pub fn write_json(dir: &Path, name: &str, v: &Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, v.to_string()).unwrap();
    p.to_string_lossy().into_owned()
}

pub fn owned_replicaset(owner_uid: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
           "metadata": {"name": "demo-rs", "labels": {"app": "demo"},
                        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo",
                                             "uid": owner_uid, "controller": true, "blockOwnerDeletion": true}]},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "demo"}},
                    "template": {"metadata": {"labels": {"app": "demo"}},
                                 "spec": {"containers": [{"name": "nginx", "image": "nginx:1"}]}}}})
}

/// Creates the Deployment and a ReplicaSet it owns; returns the Deployment's uid.
pub fn create_owned_pair(sim: &Sim, dir: &Path) -> String {
    sim.kubectl(&[
        "create",
        "-f",
        &write_json(dir, "d.json", &deployment_manifest("demo", 2, "nginx:1")),
    ]);
    let uid = sim.get_json(&["get", "deployment", "demo"])["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    sim.kubectl(&[
        "create",
        "-f",
        &write_json(dir, "rs.json", &owned_replicaset(&uid)),
    ]);
    uid
}

pub fn replicasets(sim: &Sim) -> Vec<Value> {
    sim.get_json(&["get", "replicasets"])["items"]
        .as_array()
        .unwrap()
        .clone()
}
