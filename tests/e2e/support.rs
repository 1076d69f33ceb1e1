//! A node process under test with panicking helpers, over the test kit's process
//! harness and HTTP client: a test reads as the steps it takes.

use kelemetry_testkit::client::json_or_null;
pub use kelemetry_testkit::client::urlencode;
use kelemetry_testkit::{Client, NodeProcess, Reply};
use serde_json::Value;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

/// How long a node may take to become ready or to exit.
const PATIENCE: Duration = Duration::from_secs(60);

/// A running `kelemetry serve` process of this build.
pub struct Node {
    process: NodeProcess,
    client: Client,
}

impl Deref for Node {
    type Target = NodeProcess;
    fn deref(&self) -> &NodeProcess {
        &self.process
    }
}

impl DerefMut for Node {
    fn deref_mut(&mut self) -> &mut NodeProcess {
        &mut self.process
    }
}

impl Node {
    /// Starts a node on `dir` with extra flags and waits until `/readyz` answers 200.
    pub fn start(dir: &Path, extra: &[&str]) -> Node {
        let mut node = Self::start_no_wait(dir, extra);
        node.wait_ready();
        node
    }

    /// Starts a node without waiting for readiness (a ring member is ready only
    /// once its peers run too).
    pub fn start_no_wait(dir: &Path, extra: &[&str]) -> Node {
        Self::start_with_env(dir, extra, &[])
    }

    /// Starts a node with extra environment variables, without waiting.
    pub fn start_with_env(dir: &Path, extra: &[&str], envs: &[(&str, &str)]) -> Node {
        let mut process = envs.iter().fold(
            NodeProcess::new(env!("CARGO_BIN_EXE_kelemetry"), dir, extra),
            |p, (k, v)| p.env(k, v),
        );
        process.spawn().expect("spawn kelemetry");
        Node {
            process,
            client: Client::new(PATIENCE),
        }
    }

    /// The webhook server's address.
    pub fn http(&self) -> &str {
        &self.process.addrs.http
    }

    /// The Jaeger HTTP API (and UI) address.
    pub fn query_addr(&self) -> &str {
        &self.process.addrs.query
    }

    /// The Jaeger remote-storage gRPC address.
    pub fn grpc(&self) -> &str {
        &self.process.addrs.grpc
    }

    /// Runs the binary with this node's flags plus `extra` and returns its exit status
    /// and output, for start-up errors.
    pub fn run_once(&self, extra: &[&str]) -> (ExitStatus, String) {
        let out = self.process.run_once(extra).expect("run kelemetry");
        (
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned()
                + &String::from_utf8_lossy(&out.stdout),
        )
    }

    /// Waits until the node's `/readyz` answers 200.
    pub fn wait_ready(&mut self) {
        if let Err(e) = self.process.wait_ready(PATIENCE) {
            panic!("node not ready: {e}");
        }
    }

    /// SIGTERM, then waits for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        self.process
            .terminate(PATIENCE)
            .expect("exit after SIGTERM")
    }

    /// Starts the process again on the same directory (ports are chosen anew).
    pub fn restart(&mut self) {
        if let Err(e) = self.process.restart(PATIENCE) {
            panic!("node not ready after restart: {e}");
        }
    }

    fn url(addr: &str, path: &str) -> String {
        format!("http://{addr}{path}")
    }

    /// POSTs raw bytes to a path of the webhook server.
    pub fn post_raw(&self, path: &str, body: &[u8]) -> Reply {
        self.client
            .post_json(&Self::url(self.http(), path), body)
            .expect("HTTP request")
    }

    /// POSTs an EventList, returning transport errors instead of panicking (for
    /// nodes that may be down or shutting down).
    pub fn try_post_audit(
        &self,
        cluster: &str,
        list: &Value,
    ) -> Result<Reply, kelemetry_testkit::TestkitError> {
        let url = Self::url(self.http(), &format!("/audit/{cluster}"));
        self.client.post_json(&url, list.to_string().as_bytes())
    }

    /// GET on the webhook server, as JSON.
    pub fn http_get_json(&self, path: &str) -> Reply {
        let (status, text) = self.http_get(path);
        (status, json_or_null(&text))
    }

    /// POSTs an EventList to `/audit/<cluster>`.
    pub fn post_audit(&self, cluster: &str, list: &Value) -> Reply {
        self.post_raw(&format!("/audit/{cluster}"), list.to_string().as_bytes())
    }

    /// GET on the query server, as text.
    pub fn query_text(&self, path: &str) -> (u16, String) {
        self.client
            .get(&Self::url(&self.process.addrs.query, path))
            .expect("HTTP request")
    }

    /// GET on the query server.
    pub fn query(&self, path_and_query: &str) -> Reply {
        let (status, text) = self.query_text(path_and_query);
        (status, json_or_null(&text))
    }

    /// GET on the webhook server without following redirects: status and `Location`
    /// (or the body when there is none).
    pub fn http_get_no_redirect(&self, path: &str) -> (u16, String) {
        self.client
            .get_location(&Self::url(self.http(), path))
            .expect("HTTP request")
    }

    /// GET on the webhook server.
    pub fn http_get(&self, path: &str) -> (u16, String) {
        self.try_http_get(path).expect("HTTP request")
    }

    /// GET on the webhook server, with the error when there is no answer (a node
    /// that stops while answering).
    pub fn try_http_get(
        &self,
        path: &str,
    ) -> Result<(u16, String), kelemetry_testkit::TestkitError> {
        self.client.get(&Self::url(self.http(), path))
    }

    /// The Prometheus exposition of the node.
    pub fn metrics_text(&self) -> String {
        let (_, text) = self
            .client
            .get(&Self::url(&self.process.addrs.metrics, "/metrics"))
            .expect("HTTP request");
        text
    }

    /// The stored object traces (`raw=true`) matching identity tags.
    pub fn stored(&self, tags: &[(&str, &str)]) -> Vec<Value> {
        self.search("tracing&raw=true", tags)
    }

    /// The traces `/api/traces` finds for `service` (a mode) and identity tags.
    pub fn search(&self, service: &str, tags: &[(&str, &str)]) -> Vec<Value> {
        let tags: serde_json::Map<String, Value> = tags
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect();
        let q = format!(
            "/api/traces?service={service}&limit=1000&start=0&tags={}",
            urlencode(&Value::Object(tags).to_string())
        );
        let (status, body) = self.query(&q);
        assert_eq!(status, 200, "{body}");
        body["data"].as_array().unwrap().clone()
    }
}

/// Value of tag `key` on a Jaeger JSON span.
pub fn tag<'a>(span: &'a Value, key: &str) -> Option<&'a str> {
    span["tags"].as_array()?.iter().find(|t| t["key"] == key)?["value"].as_str()
}

/// A window start 60 s into the previous half hour, so a short workload stays in one
/// window and inside the default 48 h search range.
pub fn start_of_recent_window() -> i64 {
    let now = chrono::Utc::now().timestamp_micros();
    let half_hour = 1_800_000_000;
    (now / half_hour - 1) * half_hour + 60_000_000
}

/// A reply read with its `Retry-After` header.
pub struct RawReply {
    /// HTTP status.
    pub status: u16,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<String>,
    /// The body as text.
    pub body: String,
}

/// A GET (or, with any other `method`, a JSON POST of `body`) with extra headers, for
/// what the test kit's client does not expose (credentials, response headers).
pub fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> RawReply {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = if method == "GET" {
        let mut r = agent.get(url);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.call()
    } else {
        let mut r = agent.post(url).header("content-type", "application/json");
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.send(body)
    }
    .expect("HTTP request");
    RawReply {
        status: response.status().as_u16(),
        retry_after: response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body: response.body_mut().read_to_string().unwrap_or_default(),
    }
}

/// A CA and one node certificate (for 127.0.0.1) made with the openssl CLI.
pub fn make_certs(dir: &std::path::Path) -> [String; 3] {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-subj",
        "/CN=kelemetry-test-ca",
        "-days",
        "2",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "node.key",
        "-out",
        "node.csr",
        "-subj",
        "/CN=kelemetry-node",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "node.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "node.crt",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    ["node.crt", "node.key", "ca.crt"].map(|f| dir.join(f).to_str().unwrap().to_string())
}
