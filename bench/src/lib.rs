//! What the benchmark programs share: webhook clients posting pod-churn batches, and
//! the growth mode's preload of a store.

use kelemetry_testkit::workload::pod_churn_batch;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How hard the clients drive the webhook.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    /// Concurrent clients, one thread each.
    pub clients: usize,
    /// Audit events per request.
    pub batch: u64,
}

/// When the clients stop.
#[derive(Clone)]
pub enum Stop {
    /// At this time.
    At(Instant),
    /// Once this many events are acknowledged in all.
    After(u64),
}

/// Webhook clients posting pod-churn batches (numbered from a shared counter, so
/// every batch is new objects; a refused batch is retried as it was) until told to
/// stop, each on its own thread.
pub struct Clients {
    /// The client threads.
    pub workers: Vec<std::thread::JoinHandle<()>>,
    /// Events acknowledged so far.
    pub acked: Arc<AtomicU64>,
    /// Requests refused (any status but 200).
    pub refused: Arc<AtomicU64>,
    /// Latency of every acknowledged request.
    pub latencies: Arc<Mutex<Vec<Duration>>>,
    /// Numbers of the acknowledged batches (their audit IDs are
    /// [`pod_churn_batch`]'s for that number).
    pub acked_batches: Arc<Mutex<Vec<u64>>>,
}

impl Clients {
    /// Starts `load.clients` threads spread over `urls` round-robin.
    pub fn start(
        load: Load,
        urls: &[String],
        t0: i64,
        next_batch: &Arc<AtomicU64>,
        stop: Stop,
    ) -> Self {
        let acked = Arc::new(AtomicU64::new(0));
        let refused = Arc::new(AtomicU64::new(0));
        let latencies = Arc::new(Mutex::new(Vec::new()));
        let acked_batches = Arc::new(Mutex::new(Vec::new()));
        let workers = (0..load.clients)
            .map(|i| {
                let (url, next_batch, acked, refused, latencies, stop) = (
                    urls[i % urls.len()].clone(),
                    next_batch.clone(),
                    acked.clone(),
                    refused.clone(),
                    latencies.clone(),
                    stop.clone(),
                );
                let acked_batches = acked_batches.clone();
                let batch = load.batch;
                std::thread::spawn(move || {
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .build()
                        .into();
                    let mut local = Vec::new();
                    let mut mine = Vec::new();
                    let running = || match stop {
                        Stop::At(deadline) => Instant::now() < deadline,
                        Stop::After(n) => acked.load(Ordering::Relaxed) < n,
                    };
                    // A refused batch is sent again as it was, as the API server's
                    // webhook backend does, until it is taken or the clients stop.
                    let mut pending: Option<(u64, String)> = None;
                    while running() {
                        let (n, body) = pending.take().unwrap_or_else(|| {
                            let n = next_batch.fetch_add(1, Ordering::Relaxed);
                            (n, pod_churn_batch(n, batch, t0).to_string())
                        });
                        let sent = Instant::now();
                        // The answer's body is read whole, as the API server's
                        // client does, so the connection goes back to the pool;
                        // one dropped unread is closed, and every refusal would
                        // then open a new connection.
                        let answer = agent
                            .post(&url)
                            .header("Content-Type", "application/json")
                            .send(body.as_bytes())
                            .and_then(|mut r| {
                                r.body_mut().read_to_vec()?;
                                Ok(r)
                            });
                        match answer {
                            Ok(r) if r.status() == 200 => {
                                local.push(sent.elapsed());
                                mine.push(n);
                                acked.fetch_add(batch, Ordering::Relaxed);
                            }
                            Ok(r) if r.status() != 429 && r.status() != 503 => {
                                panic!("batch {n} refused for good: HTTP {}", r.status())
                            }
                            Ok(_) => {
                                refused.fetch_add(1, Ordering::Relaxed);
                                pending = Some((n, body));
                                std::thread::sleep(Duration::from_millis(50));
                            }
                            Err(e) => panic!("request failed: {e}"),
                        }
                    }
                    latencies.lock().map(|mut l| l.extend(local)).ok();
                    acked_batches.lock().map(|mut l| l.extend(mine)).ok();
                })
            })
            .collect();
        Self {
            workers,
            acked,
            refused,
            latencies,
            acked_batches,
        }
    }
}

/// The Prometheus text a node serves at `base` (`http://host:port`) + `/metrics`.
pub fn metrics_text(base: &str) -> Result<String, ureq::Error> {
    ureq::get(&format!("{}/metrics", base.trim_end_matches('/')))
        .call()?
        .into_body()
        .read_to_string()
}

/// The text of `/proc/PID/<name>` (`None` for `pid`: this process's).
fn proc_file(pid: Option<u32>, name: &str) -> Option<String> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/{name}"),
        None => format!("/proc/self/{name}"),
    };
    std::fs::read_to_string(path).ok()
}

/// Resident memory of process `pid` (`None`: this process), MiB.
pub fn rss_mib(pid: Option<u32>) -> Option<f64> {
    let status = proc_file(pid, "status")?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// CPU time (user and system) process `pid` has used so far (`None`: this process),
/// seconds. `/proc` counts it in USER_HZ ticks, which Linux fixes at 100 per second.
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    cpu_seconds_of_stat(&proc_file(pid, "stat")?)
}

/// [`cpu_seconds`] from the text of a `/proc/PID/stat` file: its 14th and 15th
/// fields, counted after the command name (which may hold spaces and parentheses).
fn cpu_seconds_of_stat(stat: &str) -> Option<f64> {
    const USER_HZ: f64 = 100.0;
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// Bytes under `dir`.
pub fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// The growth mode's first phase: ingests `--preload` events (progress every 10 s),
/// then reports the data directory's size per stored event.
pub fn preload(
    load: Load,
    events: u64,
    urls: &[String],
    t0: i64,
    next_batch: &Arc<AtomicU64>,
    data: &std::path::Path,
) -> anyhow::Result<()> {
    println!("preloading {events} events ...");
    let started = Instant::now();
    let clients = Clients::start(load, urls, t0, next_batch, Stop::After(events));
    while clients.acked.load(Ordering::Relaxed) < events {
        std::thread::sleep(Duration::from_secs(10));
        let n = clients.acked.load(Ordering::Relaxed);
        println!(
            "  preload {:>6.0}s  {n:>10} events  {:>8.0} events/s",
            started.elapsed().as_secs_f64(),
            n as f64 / started.elapsed().as_secs_f64()
        );
    }
    for w in clients.workers {
        w.join()
            .map_err(|_| anyhow::anyhow!("client thread panicked"))?;
    }
    let events = clients.acked.load(Ordering::Relaxed);
    let bytes = dir_bytes(data);
    if bytes > 0 {
        println!(
            "preloaded {events} events in {:.0}s; data directory {:.2} GiB, {:.0} bytes per event",
            started.elapsed().as_secs_f64(),
            bytes as f64 / (1u64 << 30) as f64,
            bytes as f64 / events as f64
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_after_a_command_name_with_spaces() {
        let stat = "4242 (kelemetry (x) y) S 1 4242 4242 0 -1 4194560 2113 0 0 0 \
                    1234 567 0 0 20 0 9 0 12345 1000000 2000 18446744073709551615";
        assert_eq!(cpu_seconds_of_stat(stat), Some(18.01));
        assert_eq!(cpu_seconds_of_stat("4242 (cut) S 1 2"), None);
        assert!(
            cpu_seconds(None).is_some(),
            "this process's own stat file parses"
        );
    }
}
