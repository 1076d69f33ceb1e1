//! Per-cluster and per-client rate limits of the audit webhook: token buckets of
//! audit events, so that one noisy cluster or one misbehaving sender is told to slow
//! down (429 with `Retry-After`) before it crowds out the others.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Seconds of traffic at the sustained rate a bucket can hold (the burst).
const BURST_SECONDS: f64 = 2.0;

/// Most keys tracked; past it, buckets that have refilled (idle senders) are dropped,
/// so a flood of distinct client addresses cannot grow the map without bound.
const MAX_KEYS: usize = 10_000;

/// A token bucket per key, refilled at `rate` events per second.
pub struct Limiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Limiter {
    /// A limiter of `rate` events per second per key.
    pub fn new(rate: f64) -> Self {
        Self {
            rate,
            burst: (rate * BURST_SECONDS).max(1.0),
            buckets: Mutex::default(),
        }
    }

    /// Takes `n` events for `key` at `now`, or says how long to wait. A request larger
    /// than the burst passes when the bucket is full (the bucket goes into debt), so
    /// no request size is refused forever.
    pub fn take(&self, key: &str, n: usize, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(key) {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, b| b.tokens + rate * (now - b.at).as_secs_f64() < burst);
        }
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + self.rate * elapsed).min(self.burst);
        bucket.at = now;
        let need = (n as f64).min(self.burst);
        if bucket.tokens >= need {
            bucket.tokens -= n as f64;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((need - bucket.tokens) / self.rate))
        }
    }
}

impl Limiter {
    /// Returns `n` events taken for `key` (the request was refused by another limit).
    fn give_back(&self, key: &str, n: usize) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = buckets.get_mut(key) {
            b.tokens = (b.tokens + n as f64).min(self.burst);
        }
    }
}

/// The webhook's limits: per cluster and per client address, each optional.
#[derive(Default)]
pub struct RateLimits {
    /// Events per second per cluster (`--cluster-rate-limit`).
    pub per_cluster: Option<Limiter>,
    /// Events per second per client address (`--client-rate-limit`).
    pub per_client: Option<Limiter>,
}

/// Which limit refused a request, and when to retry.
#[derive(Debug, PartialEq)]
pub struct Limited {
    /// The flag of the limit that was hit.
    pub flag: &'static str,
    /// How long until the request would pass.
    pub retry_after: Duration,
}

impl RateLimits {
    /// Limits from the flags' events-per-second values.
    pub fn new(per_cluster: Option<f64>, per_client: Option<f64>) -> Self {
        Self {
            per_cluster: per_cluster.map(Limiter::new),
            per_client: per_client.map(Limiter::new),
        }
    }

    /// Takes `n` events of `cluster` sent by `client`, or says which limit refused.
    /// A refused request spends neither budget.
    pub fn take(&self, cluster: &str, client: &str, n: usize) -> Result<(), Limited> {
        let now = Instant::now();
        if let Some(l) = &self.per_client {
            l.take(client, n, now).map_err(|retry_after| Limited {
                flag: "--client-rate-limit",
                retry_after,
            })?;
        }
        if let Some(l) = &self.per_cluster {
            if let Err(retry_after) = l.take(cluster, n, now) {
                if let Some(c) = &self.per_client {
                    c.give_back(client, n);
                }
                return Err(Limited {
                    flag: "--cluster-rate-limit",
                    retry_after,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refill_at_the_rate_and_big_requests_pass_when_full() {
        let l = Limiter::new(10.0);
        let t0 = Instant::now();
        assert_eq!(l.take("a", 15, t0), Ok(()));
        let wait = l.take("a", 10, t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert_eq!(l.take("b", 20, t0), Ok(()), "keys are independent");
        assert_eq!(l.take("a", 10, t0 + Duration::from_millis(500)), Ok(()));
        // Larger than the burst (20): passes once the bucket is full again, in debt.
        assert_eq!(l.take("c", 50, t0), Ok(()));
        let wait = l.take("c", 1, t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(3_100));
    }

    #[test]
    fn idle_keys_are_dropped_when_the_map_is_full() {
        let l = Limiter::new(1.0);
        let t0 = Instant::now();
        for i in 0..MAX_KEYS {
            l.take(&i.to_string(), 1, t0).unwrap();
        }
        l.take("new", 1, t0 + Duration::from_secs(5)).unwrap();
        assert_eq!(l.buckets.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_refused_request_spends_neither_budget() {
        let limits = RateLimits::new(Some(100.0), Some(5.0));
        assert!(limits.take("c", "10.0.0.1", 10).is_ok());
        let refused = limits.take("c", "10.0.0.1", 10).unwrap_err();
        assert_eq!(refused.flag, "--client-rate-limit");
        assert!(limits.take("c", "10.0.0.2", 10).is_ok());
        let limits = RateLimits::new(Some(5.0), Some(100.0));
        assert!(limits.take("a", "10.0.0.1", 10).is_ok());
        let refused = limits.take("a", "10.0.0.1", 10).unwrap_err();
        assert_eq!(refused.flag, "--cluster-rate-limit");
        // The client's 190 left are intact: 190 more for other clusters pass.
        assert!(limits.take("b", "10.0.0.1", 10).is_ok());
        assert!(limits.take("c", "10.0.0.1", 180).is_ok());
    }
}
