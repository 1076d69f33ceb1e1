//! A `kelemetry-sim` process and `kubectl` pointed at it.

use crate::client::{json_or_null, Client};
use crate::TestkitError;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running simulator and the kubeconfig it wrote.
pub struct SimProcess {
    child: Child,
    kubeconfig: PathBuf,
    server: String,
    client: Client,
    _dir: tempfile::TempDir,
}

/// An `apps/v1` Deployment manifest for `kubectl create -f`: `replicas` Pods of one
/// container `nginx` running `image`, selected by `app: NAME`.
pub fn deployment_manifest(name: &str, replicas: u32, image: &str) -> Value {
    serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": name, "labels": {"app": name}},
           "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                                 "spec": {"containers": [{"name": "nginx", "image": image}]}}}})
}

/// A CustomResourceDefinition with an irregular plural: kind `Mouse`, plural `mice`,
/// singular `mouse`, short name `ms`, in group `zoo.example.com`.
pub fn mouse_crd() -> Value {
    serde_json::json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "mice.zoo.example.com"},
        "spec": {"group": "zoo.example.com", "scope": "Namespaced",
                 "names": {"plural": "mice", "singular": "mouse", "kind": "Mouse", "shortNames": ["ms"]},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object",
                                          "x-kubernetes-preserve-unknown-fields": true}},
                               "subresources": {"status": {}}}]}})
}

/// The binary `name` built next to `sibling` (binaries of one workspace build share
/// a directory), or a message saying how to build it.
pub fn sibling_binary(sibling: &Path, name: &str) -> Result<PathBuf, TestkitError> {
    let path = sibling.with_file_name(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(TestkitError::Io {
            what: format!(
                "{} (build the workspace's binaries: cargo build --workspace --bins)",
                path.display()
            ),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })
    }
}

impl SimProcess {
    /// Starts `binary` on a free loopback port with `extra` flags and waits for its
    /// kubeconfig.
    pub fn start(binary: &Path, extra: &[&str]) -> Result<Self, TestkitError> {
        let dir = tempfile::tempdir().map_err(TestkitError::io("creating a temp dir"))?;
        let kubeconfig = dir.path().join("kubeconfig");
        Self::start_at(binary, &kubeconfig, extra, dir)
    }

    /// Like [`SimProcess::start`], writing the kubeconfig to `kubeconfig` (for a
    /// watcher given that path before the simulator runs); `keep` lives as long as
    /// the process.
    pub fn start_at(
        binary: &Path,
        kubeconfig: &Path,
        extra: &[&str],
        keep: tempfile::TempDir,
    ) -> Result<Self, TestkitError> {
        Self::launch(binary, kubeconfig, extra, keep, false)
    }

    /// Like [`SimProcess::start_at`], and the simulator receives SIGTERM when the
    /// calling thread exits, even when this process is killed (see
    /// [`crate::parent_death`]).
    pub fn start_tied_at(
        binary: &Path,
        kubeconfig: &Path,
        extra: &[&str],
        keep: tempfile::TempDir,
    ) -> Result<Self, TestkitError> {
        Self::launch(binary, kubeconfig, extra, keep, true)
    }

    fn launch(
        binary: &Path,
        kubeconfig: &Path,
        extra: &[&str],
        keep: tempfile::TempDir,
        tied_to_thread: bool,
    ) -> Result<Self, TestkitError> {
        let dir = keep;
        let kubeconfig = kubeconfig.to_path_buf();
        let mut command = Command::new(binary);
        command
            .args(["--addr", "127.0.0.1:0"])
            .arg("--kubeconfig-out")
            .arg(&kubeconfig)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if tied_to_thread {
            crate::parent_death::terminate_with_this_thread(&mut command);
        }
        let mut child = command
            .spawn()
            .map_err(TestkitError::io(format!("starting {}", binary.display())))?;
        let timeout = Duration::from_secs(20);
        let deadline = Instant::now() + timeout;
        while !kubeconfig.exists() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(TestkitError::Exited {
                    status,
                    log: String::new(),
                });
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(TestkitError::Timeout {
                    what: "no kubeconfig from the simulator".into(),
                    timeout,
                    log: String::new(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let text = std::fs::read_to_string(&kubeconfig)
            .map_err(TestkitError::io("reading the kubeconfig"))?;
        let server = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("server: "))
            .unwrap_or_default()
            .to_string();
        Ok(Self {
            child,
            kubeconfig,
            server,
            client: Client::new(Duration::from_secs(10)),
            _dir: dir,
        })
    }

    /// The API server URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The kubeconfig it wrote.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// Runs `kubectl` against the simulator; its stdout, or an error with its output.
    pub fn kubectl(&self, args: &[&str]) -> Result<String, TestkitError> {
        self.kubectl_at(Path::new("kubectl"), args)
    }

    /// Runs the kubectl binary at `binary` (another version than the one on the
    /// PATH) against the simulator.
    pub fn kubectl_at(&self, binary: &Path, args: &[&str]) -> Result<String, TestkitError> {
        let out = Command::new(binary)
            .env("KUBECONFIG", &self.kubeconfig)
            .args(args)
            .output()
            .map_err(TestkitError::io(
                "running kubectl (scripts/setup.sh installs it)",
            ))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(stdout)
        } else {
            Err(TestkitError::Http {
                url: format!("kubectl {}", args.join(" ")),
                message: format!("{}{stdout}", String::from_utf8_lossy(&out.stderr)),
            })
        }
    }

    /// `kubectl ... -o json`, parsed.
    pub fn kubectl_json(&self, args: &[&str]) -> Result<Value, TestkitError> {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        Ok(json_or_null(&self.kubectl(&all)?))
    }

    /// A GET of `path` on the API server (unauthenticated), as status and JSON.
    pub fn get(&self, path: &str) -> Result<(u16, Value), TestkitError> {
        self.client.get_json(&format!("{}{path}", self.server))
    }

    /// A POST of `path` on the API server with an empty body, as status and JSON.
    pub fn post(&self, path: &str) -> Result<(u16, Value), TestkitError> {
        let (status, text) = self.client.post(&format!("{}{path}", self.server), b"")?;
        Ok((status, json_or_null(&text)))
    }

    /// Waits until the audit backend has nothing pending; returns its counters.
    pub fn audit_flushed(&self, timeout: Duration) -> Result<Value, TestkitError> {
        let deadline = Instant::now() + timeout;
        loop {
            let (_, v) = self.get("/sim/audit")?;
            if v["pending"] == 0 {
                return Ok(v);
            }
            if Instant::now() > deadline {
                return Err(TestkitError::Timeout {
                    what: format!("audit still pending: {v}"),
                    timeout,
                    log: String::new(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
