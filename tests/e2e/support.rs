//! A node process under test and HTTP helpers.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running `kelemetry serve` process.
pub struct Node {
    child: Option<Child>,
    dir: PathBuf,
    extra: Vec<String>,
    pub http: String,
    pub query: String,
    pub metrics: String,
    pub grpc: String,
    agent: ureq::Agent,
}

/// Response status and JSON body (Null when the body is not JSON).
pub type Reply = (u16, Value);

impl Node {
    /// Starts a node on `dir` with extra flags and waits until `/readyz` answers 200.
    pub fn start(dir: &Path, extra: &[&str]) -> Node {
        let mut node = Self::start_no_wait(dir, extra);
        node.wait_ready();
        node
    }

    fn addr_file(&self) -> PathBuf {
        self.dir.join("addresses.json")
    }

    /// Every server binds port 0 and the node reports its ports in the address file,
    /// so tests running in parallel never race for ports.
    /// Starts a node without waiting for readiness (a cluster member is ready only
    /// once its peers run too).
    pub fn start_no_wait(dir: &Path, extra: &[&str]) -> Node {
        let mut node = Node {
            child: None,
            dir: dir.to_path_buf(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            http: String::new(),
            query: String::new(),
            metrics: String::new(),
            grpc: String::new(),
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(60)))
                .build()
                .into(),
        };
        node.spawn();
        node
    }

    fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kelemetry"));
        c.arg("serve")
            .arg("--data-dir")
            .arg(&self.dir)
            .arg("--addr-file")
            .arg(self.addr_file())
            .args(["--http-addr", "127.0.0.1:0"])
            .args(["--query-addr", "127.0.0.1:0"])
            .args(["--metrics-addr", "127.0.0.1:0"])
            .args(["--grpc-addr", "127.0.0.1:0"])
            .args(["--peer-addr", "127.0.0.1:0"])
            .args(&self.extra)
            .env("RUST_LOG", "info");
        c
    }

    fn spawn(&mut self) {
        let _ = std::fs::remove_file(self.addr_file());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("node.log"))
            .unwrap();
        let child = self
            .command()
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn kelemetry");
        self.child = Some(child);
    }

    /// Runs the binary with this node's flags plus `extra` and returns its exit status
    /// and output, for start-up errors.
    pub fn run_once(&self, extra: &[&str]) -> (ExitStatus, String) {
        let out = self.command().args(extra).output().unwrap();
        (
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned()
                + &String::from_utf8_lossy(&out.stdout),
        )
    }

    /// Waits until the node's `/readyz` answers 200.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("node exited during start-up ({status}): {}", self.log());
            }
            if let Ok(text) = std::fs::read_to_string(self.addr_file()) {
                let a: Value = serde_json::from_str(&text).expect("address file is JSON");
                let addr = |k: &str| a[k].as_str().expect("address").to_string();
                (self.http, self.query, self.metrics, self.grpc) =
                    (addr("http"), addr("query"), addr("metrics"), addr("grpc"));
                let ready = self
                    .agent
                    .get(format!("http://{}/readyz", self.http))
                    .call();
                if ready.is_ok_and(|r| r.status() == 200) {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("node not ready: {}", self.log());
    }

    /// The node's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }

    /// SIGKILL: no shutdown work at all.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// SIGTERM, then waits for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("running");
        let ok = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the process again on the same directory (ports are chosen anew).
    pub fn restart(&mut self) {
        self.spawn();
        self.wait_ready();
    }

    fn reply(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
        let mut r = r.expect("HTTP request");
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// POSTs raw bytes to a path of the webhook server.
    pub fn post_raw(&self, path: &str, body: &[u8]) -> Reply {
        Self::reply(
            self.agent
                .post(format!("http://{}{path}", self.http))
                .header("Content-Type", "application/json")
                .send(body),
        )
    }

    /// POSTs an EventList, returning transport errors instead of panicking (for
    /// nodes that may be down or shutting down).
    pub fn try_post_audit(&self, cluster: &str, list: &Value) -> Result<Reply, ureq::Error> {
        let mut r = self
            .agent
            .post(format!("http://{}/audit/{cluster}", self.http))
            .header("Content-Type", "application/json")
            .send(list.to_string().as_bytes())?;
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap_or_default();
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// GET on the webhook server, as JSON.
    pub fn http_get_json(&self, path: &str) -> Reply {
        let (status, text) = self.http_get(path);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// POSTs an EventList to `/audit/<cluster>`.
    pub fn post_audit(&self, cluster: &str, list: &Value) -> Reply {
        self.post_raw(&format!("/audit/{cluster}"), list.to_string().as_bytes())
    }

    /// GET on the query server, as text.
    pub fn query_text(&self, path: &str) -> (u16, String) {
        let mut r = self
            .agent
            .get(format!("http://{}{path}", self.query))
            .call()
            .unwrap();
        (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap_or_default(),
        )
    }

    /// GET on the query server.
    pub fn query(&self, path_and_query: &str) -> Reply {
        Self::reply(
            self.agent
                .get(format!("http://{}{path_and_query}", self.query))
                .call(),
        )
    }

    /// GET on the webhook server without following redirects: status and `Location`
    /// (or the body when there is none).
    pub fn http_get_no_redirect(&self, path: &str) -> (u16, String) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        let mut r = agent
            .get(format!("http://{}{path}", self.http))
            .call()
            .unwrap();
        let location = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let status = r.status().as_u16();
        (
            status,
            location.unwrap_or_else(|| r.body_mut().read_to_string().unwrap_or_default()),
        )
    }

    /// GET on the webhook server.
    pub fn http_get(&self, path: &str) -> (u16, String) {
        let mut r = self
            .agent
            .get(format!("http://{}{path}", self.http))
            .call()
            .unwrap();
        (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap_or_default(),
        )
    }

    /// The Prometheus exposition of the node.
    pub fn metrics_text(&self) -> String {
        let mut r = self
            .agent
            .get(format!("http://{}/metrics", self.metrics))
            .call()
            .unwrap();
        r.body_mut().read_to_string().unwrap()
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

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Percent-encodes a query value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
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
