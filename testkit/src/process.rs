//! One `kelemetry serve` process on its own data directory.
//!
//! Every server binds port 0 and the node reports its ports in an address file
//! (`--addr-file`), so processes started in parallel never race for ports; only the
//! peer port, which other nodes must know up front, comes from the caller's flags.

use crate::client::Client;
use crate::TestkitError;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// The addresses a running node bound, as `host:port`; empty until it is up.
#[derive(Clone, Debug, Default)]
pub struct Addresses {
    /// Audit webhook, `/redirect`, ring admin API, `/healthz`, `/readyz`.
    pub http: String,
    /// Jaeger HTTP API.
    pub query: String,
    /// Prometheus `/metrics`.
    pub metrics: String,
    /// Jaeger remote storage gRPC.
    pub grpc: String,
    /// Peer RPC.
    pub peer: String,
}

/// A node process that can be started, signalled, killed and started again on the
/// same data directory.
pub struct NodeProcess {
    binary: PathBuf,
    dir: PathBuf,
    args: Vec<String>,
    log_filter: String,
    envs: Vec<(String, String)>,
    tied_to_thread: bool,
    child: Option<Child>,
    /// The bound addresses of the current run (empty before the first wait).
    pub addrs: Addresses,
}

/// How often waits poll the node.
const POLL: Duration = Duration::from_millis(50);

impl NodeProcess {
    /// A node of `binary` on data directory `dir` with extra `serve` flags; not
    /// started yet. Its log goes to `node.log` in `dir`.
    pub fn new(binary: impl Into<PathBuf>, dir: &Path, args: &[impl AsRef<str>]) -> Self {
        Self {
            binary: binary.into(),
            dir: dir.to_path_buf(),
            args: args.iter().map(|a| a.as_ref().to_string()).collect(),
            log_filter: "info".to_string(),
            envs: Vec::new(),
            tied_to_thread: false,
            child: None,
            addrs: Addresses::default(),
        }
    }

    /// Sets an environment variable of the node's process.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.envs.push((key.to_string(), value.to_string()));
        self
    }

    /// Sets the node's `RUST_LOG` (default `info`).
    pub fn log_filter(mut self, filter: &str) -> Self {
        self.log_filter = filter.to_string();
        self
    }

    /// Makes every run of the node receive SIGTERM when the thread that started it
    /// exits, even when this process is killed (see [`crate::parent_death`]).
    pub fn terminate_with_spawning_thread(mut self) -> Self {
        self.tied_to_thread = true;
        self
    }

    /// The node id given with `--node-id`, if any.
    pub fn node_id(&self) -> Option<u64> {
        let at = self.args.iter().rposition(|a| a == "--node-id")?;
        self.args.get(at + 1)?.parse().ok()
    }

    /// The node's data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn addr_file(&self) -> PathBuf {
        self.dir.join("addresses.json")
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.binary);
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
            .args(&self.args)
            .env("RUST_LOG", &self.log_filter)
            .envs(self.envs.iter().map(|(k, v)| (k, v)));
        if self.tied_to_thread {
            crate::parent_death::terminate_with_this_thread(&mut c);
        }
        c
    }

    /// Starts the process without waiting for it (a ring member is ready only once
    /// its peers run too).
    pub fn spawn(&mut self) -> Result<(), TestkitError> {
        std::fs::create_dir_all(&self.dir).map_err(TestkitError::io("creating the data dir"))?;
        let _ = std::fs::remove_file(self.addr_file());
        self.addrs = Addresses::default();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("node.log"))
            .map_err(TestkitError::io("opening node.log"))?;
        let stdout = log
            .try_clone()
            .map_err(TestkitError::io("opening node.log"))?;
        let child = self
            .command()
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(TestkitError::io(format!(
                "starting {}",
                self.binary.display()
            )))?;
        self.child = Some(child);
        Ok(())
    }

    /// Runs the binary once in the foreground with this node's flags plus `extra`
    /// (for start-up errors and CLI checks).
    pub fn run_once(&self, extra: &[&str]) -> Result<Output, TestkitError> {
        self.command()
            .args(extra)
            .output()
            .map_err(TestkitError::io(format!(
                "running {}",
                self.binary.display()
            )))
    }

    /// Waits until the node has written its address file and answers 200 on
    /// `probe` (`/healthz` for a process that serves, `/readyz` for one whose
    /// shards have leaders).
    fn wait_for(&mut self, probe: &str, timeout: Duration) -> Result<(), TestkitError> {
        let client = Client::new(Duration::from_secs(5));
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let child = self.child.as_mut().ok_or(TestkitError::NotRunning)?;
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Err(TestkitError::Exited {
                    status,
                    log: self.log(),
                });
            }
            if let Some(addrs) = self.read_addr_file() {
                let up = client
                    .get(&format!("http://{}{probe}", addrs.http))
                    .is_ok_and(|(status, _)| status == 200);
                self.addrs = addrs;
                if up {
                    return Ok(());
                }
            }
            std::thread::sleep(POLL);
        }
        Err(TestkitError::Timeout {
            what: format!("no 200 on {probe}"),
            timeout,
            log: self.log(),
        })
    }

    /// Waits until the node has bound its listeners and written its address file,
    /// without probing them (for listeners this harness cannot speak to, such as
    /// TLS ones).
    pub fn wait_listening(&mut self, timeout: Duration) -> Result<(), TestkitError> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(addrs) = self.read_addr_file() {
                self.addrs = addrs;
                return Ok(());
            }
            if !self.running() {
                return Err(TestkitError::NotRunning);
            }
            std::thread::sleep(POLL);
        }
        Err(TestkitError::Timeout {
            what: "no address file".into(),
            timeout,
            log: self.log(),
        })
    }

    fn read_addr_file(&self) -> Option<Addresses> {
        let text = std::fs::read_to_string(self.addr_file()).ok()?;
        let a: Value = serde_json::from_str(&text).ok()?;
        let addr = |k: &str| a[k].as_str().unwrap_or_default().to_string();
        Some(Addresses {
            http: addr("http"),
            query: addr("query"),
            metrics: addr("metrics"),
            grpc: addr("grpc"),
            peer: addr("peer"),
        })
    }

    /// Waits until the node serves (`/healthz`).
    pub fn wait_up(&mut self, timeout: Duration) -> Result<(), TestkitError> {
        self.wait_for("/healthz", timeout)
    }

    /// Waits until the node is ready (`/readyz`: every placed shard has a leader).
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<(), TestkitError> {
        self.wait_for("/readyz", timeout)
    }

    /// Starts the process again on the same data directory and waits until it is
    /// ready; ports are chosen anew.
    pub fn restart(&mut self, timeout: Duration) -> Result<(), TestkitError> {
        self.spawn()?;
        self.wait_ready(timeout)
    }

    /// SIGKILL: no shutdown work at all. Does nothing when the node is not running.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits up to `timeout` for the exit.
    pub fn terminate(&mut self, timeout: Duration) -> Result<ExitStatus, TestkitError> {
        self.signal("-TERM")?;
        let mut c = self.child.take().ok_or(TestkitError::NotRunning)?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = c.try_wait().map_err(TestkitError::io("waiting for exit"))? {
                return Ok(s);
            }
            if Instant::now() >= deadline {
                self.child = Some(c);
                return Err(TestkitError::Timeout {
                    what: "no exit after SIGTERM".to_string(),
                    timeout,
                    log: self.log(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to `timeout` for the process to end by itself; `None` while it
    /// still runs.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let c = self.child.as_mut()?;
        loop {
            if let Ok(Some(s)) = c.try_wait() {
                self.child = None;
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Freezes the process (SIGSTOP): it keeps its sockets but answers nothing, like
    /// a node stuck in a long pause.
    pub fn pause(&self) -> Result<(), TestkitError> {
        self.signal("-STOP")
    }

    /// Thaws a paused process (SIGCONT).
    pub fn resume(&self) -> Result<(), TestkitError> {
        self.signal("-CONT")
    }

    fn signal(&self, sig: &str) -> Result<(), TestkitError> {
        let pid = self.child.as_ref().ok_or(TestkitError::NotRunning)?.id();
        let status = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .map_err(TestkitError::io(format!("kill {sig} {pid}")))?;
        if status.success() {
            Ok(())
        } else {
            Err(TestkitError::Io {
                what: format!("kill {sig} {pid}"),
                source: std::io::Error::other(status.to_string()),
            })
        }
    }

    /// The process id while the process runs (for sampling its memory).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process was started and not killed or stopped since.
    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// The node's log so far (every run on this data directory).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
