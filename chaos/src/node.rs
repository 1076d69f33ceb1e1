//! One node process of the cluster under test.

use anyhow::{bail, Context};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `kelemetry serve` process that can be killed and restarted on its data dir.
pub struct NodeProc {
    /// Node id.
    pub id: u64,
    binary: PathBuf,
    dir: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    /// Webhook and admin address, once running.
    pub http: String,
    /// Query address, once running.
    pub query: String,
}

impl NodeProc {
    /// A node that is not started yet.
    pub fn new(id: u64, binary: &Path, dir: &Path, args: Vec<String>) -> Self {
        Self {
            id,
            binary: binary.to_path_buf(),
            dir: dir.to_path_buf(),
            args,
            child: None,
            http: String::new(),
            query: String::new(),
        }
    }

    fn addr_file(&self) -> PathBuf {
        self.dir.join("addresses.json")
    }

    /// Starts the process (without waiting for readiness).
    pub fn start(&mut self) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let _ = std::fs::remove_file(self.addr_file());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("node.log"))?;
        let child = Command::new(&self.binary)
            .arg("serve")
            .arg("--data-dir")
            .arg(&self.dir)
            .arg("--addr-file")
            .arg(self.addr_file())
            .args(["--http-addr", "127.0.0.1:0", "--query-addr", "127.0.0.1:0"])
            .args([
                "--metrics-addr",
                "127.0.0.1:0",
                "--grpc-addr",
                "127.0.0.1:0",
            ])
            .args(&self.args)
            .env("RUST_LOG", "warn,openraft=error")
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Waits for the address file, then for `/healthz`.
    pub fn wait_up(&mut self, agent: &ureq::Agent, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!("node {} exited: {status}", self.id);
            }
            if let Ok(text) = std::fs::read_to_string(self.addr_file()) {
                let a: Value = serde_json::from_str(&text)?;
                self.http = a["http"].as_str().unwrap_or_default().to_string();
                self.query = a["query"].as_str().unwrap_or_default().to_string();
                if agent
                    .get(format!("http://{}/healthz", self.http))
                    .call()
                    .is_ok_and(|r| r.status() == 200)
                {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("node {} did not come up within {timeout:?}", self.id)
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Freezes the process (SIGSTOP): it keeps its sockets but answers nothing, like
    /// a node stuck in a long pause.
    pub fn pause(&self) -> anyhow::Result<()> {
        self.signal("-STOP")
    }

    /// Thaws a paused process (SIGCONT).
    pub fn resume(&self) -> anyhow::Result<()> {
        self.signal("-CONT")
    }

    fn signal(&self, sig: &str) -> anyhow::Result<()> {
        let pid = self.child.as_ref().context("node not running")?.id();
        let status = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill {sig} {pid} failed");
        Ok(())
    }

    /// Whether the process runs.
    pub fn running(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        self.kill();
    }
}
