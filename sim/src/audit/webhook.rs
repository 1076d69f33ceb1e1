//! The audit webhook backend, batching like the API server's: events are buffered
//! (bounded; an overflow drops and counts, as the real buffer does), sent as one
//! `EventList` per batch once it is full or its first event has waited
//! `--audit-batch-max-wait`, and a failed batch is retried with exponential backoff.

use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the backend batches and retries.
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    /// Where batches are POSTed.
    pub url: String,
    /// Longest an event waits for its batch to fill.
    pub max_wait: Duration,
    /// Most events per batch.
    pub max_batch: usize,
    /// Events buffered before new ones are dropped.
    pub buffer: usize,
    /// First retry delay; doubles per attempt up to 30 s.
    pub initial_backoff: Duration,
    /// Attempts per batch before it is dropped.
    pub max_attempts: u32,
}

/// What the backend did so far.
#[derive(Default, Debug)]
pub struct WebhookCounters {
    /// Events the webhook acknowledged (2xx).
    pub sent: AtomicU64,
    /// Events dropped: buffer overflow or a batch out of attempts.
    pub dropped: AtomicU64,
    /// Events buffered or in a batch not yet acknowledged.
    pub pending: AtomicU64,
    /// Batch attempts that failed.
    pub failed_attempts: AtomicU64,
}

impl WebhookCounters {
    /// The counters as JSON (for `GET /sim/audit`).
    pub fn to_json(&self) -> Value {
        json!({
            "sent": self.sent.load(Ordering::Relaxed),
            "dropped": self.dropped.load(Ordering::Relaxed),
            "pending": self.pending.load(Ordering::Relaxed),
            "failedAttempts": self.failed_attempts.load(Ordering::Relaxed),
        })
    }
}

/// The sending side: cheap to clone, never blocks.
#[derive(Clone)]
pub struct AuditSink {
    tx: Option<SyncSender<Value>>,
    counters: Arc<WebhookCounters>,
}

impl AuditSink {
    /// A sink that discards everything (no `--audit-webhook`).
    pub fn disabled() -> Self {
        Self {
            tx: None,
            counters: Arc::default(),
        }
    }

    /// Starts the backend thread posting to `settings.url`.
    pub fn start(settings: WebhookSettings) -> Self {
        let (tx, rx) = sync_channel(settings.buffer.max(1));
        let counters = Arc::new(WebhookCounters::default());
        let c = counters.clone();
        std::thread::Builder::new()
            .name("audit-webhook".into())
            .spawn(move || run(settings, rx, &c))
            .expect("spawning the audit webhook thread");
        Self {
            tx: Some(tx),
            counters,
        }
    }

    /// Queues events; drops them (counted) when the buffer is full.
    pub fn send(&self, events: Vec<Value>) {
        let Some(tx) = &self.tx else {
            return;
        };
        for e in events {
            match tx.try_send(e) {
                Ok(()) => {
                    self.counters.pending.fetch_add(1, Ordering::Relaxed);
                }
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// The backend's counters.
    pub fn counters(&self) -> &WebhookCounters {
        &self.counters
    }
}

fn run(settings: WebhookSettings, rx: Receiver<Value>, counters: &WebhookCounters) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    loop {
        let first = match rx.recv() {
            Ok(e) => e,
            Err(_) => return,
        };
        let mut batch = vec![first];
        let deadline = Instant::now() + settings.max_wait;
        while batch.len() < settings.max_batch {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(e) => batch.push(e),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        post(&agent, &settings, batch, counters);
    }
}

fn post(agent: &ureq::Agent, s: &WebhookSettings, batch: Vec<Value>, counters: &WebhookCounters) {
    let n = batch.len() as u64;
    let body = json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1",
                      "metadata": {}, "items": batch})
    .to_string();
    let mut backoff = s.initial_backoff;
    for attempt in 1..=s.max_attempts {
        let result = agent
            .post(&s.url)
            .header("Content-Type", "application/json")
            .send(body.as_bytes());
        match result {
            Ok(r) if r.status().is_success() => {
                counters.sent.fetch_add(n, Ordering::Relaxed);
                counters.pending.fetch_sub(n, Ordering::Relaxed);
                return;
            }
            Ok(r) => tracing::warn!(
                status = r.status().as_u16(),
                attempt,
                events = n,
                "audit webhook refused a batch; retrying"
            ),
            Err(e) => {
                tracing::warn!(error = %e, attempt, events = n, "audit webhook unreachable; retrying")
            }
        }
        counters.failed_attempts.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
    tracing::error!(
        events = n,
        attempts = s.max_attempts,
        "audit batch dropped after its last attempt"
    );
    counters.dropped.fetch_add(n, Ordering::Relaxed);
    counters.pending.fetch_sub(n, Ordering::Relaxed);
}
