//! A node-wide bound on the webhook bodies being processed at once, in bytes.
//!
//! `--max-concurrent-requests` bounds how many requests run; this bounds how much
//! they hold. A request keeps its body, and the commands parsed from it, until its
//! events are committed, so without a byte bound a few hundred large batches could
//! hold gigabytes. A request that does not fit gets 429 with `Retry-After` at once.
//!
//! The share is taken before the body is read ([`read_body`]): by its declared
//! length, or frame by frame as a body without one arrives. A body that does not
//! fit is read and dropped frame by frame, never held, so an overloaded node's
//! memory does not grow with the requests it refuses. A body over the per-request
//! limit is read and dropped the same way, up to twice the limit in all: the client then
//! reads its 413 instead of a reset connection, and a far larger body is cut off.

use axum::body::{Body, Bytes};
use futures::StreamExt;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The budget shared by every webhook request of this node.
#[derive(Clone, Debug)]
pub struct BodyBudget {
    bytes: Arc<Semaphore>,
    capacity: u32,
}

/// A request's share of the budget, given back when dropped.
#[derive(Debug)]
pub struct BodyShare {
    permit: Option<OwnedSemaphorePermit>,
    budget: BodyBudget,
}

impl BodyShare {
    /// Widens the share to cover `len` bytes in all (at most the whole budget);
    /// false when the difference is not free now.
    pub fn grow(&mut self, len: usize) -> bool {
        let want = self.budget.clamp(len);
        let held = self.permit.as_ref().map_or(0, |p| p.num_permits() as u32);
        if want <= held {
            return true;
        }
        let Ok(more) = self
            .budget
            .bytes
            .clone()
            .try_acquire_many_owned(want - held)
        else {
            return false;
        };
        match &mut self.permit {
            Some(p) => p.merge(more),
            None => self.permit = Some(more),
        }
        self.budget.report();
        true
    }
}

/// Why a webhook body was not read.
#[derive(Debug)]
pub enum BodyRefusal {
    /// Longer than the per-request limit (declared, or as it arrived).
    TooLarge,
    /// Its bytes are not free in the node-wide budget now.
    OverBudget,
    /// The connection failed while the body arrived.
    Broken(String),
}

/// Reads a request body of at most `max` bytes within `budget`, taking the share
/// before the bytes are held; `declared` is its Content-Length, if any.
pub async fn read_body(
    budget: &BodyBudget,
    body: Body,
    declared: Option<usize>,
    max: usize,
) -> Result<(Bytes, BodyShare), BodyRefusal> {
    let mut stream = body.into_data_stream();
    let drain_limit = max.saturating_mul(2);
    if declared.is_some_and(|n| n > max) {
        discard(stream, drain_limit).await;
        return Err(BodyRefusal::TooLarge);
    }
    let Some(mut share) = budget.admit(declared.unwrap_or(0)) else {
        discard(stream, max).await;
        return Err(BodyRefusal::OverBudget);
    };
    let mut buf = Vec::with_capacity(declared.unwrap_or(0));
    while let Some(frame) = stream.next().await {
        let frame = frame.map_err(|e| BodyRefusal::Broken(e.to_string()))?;
        let len = buf.len() + frame.len();
        if len > max {
            drop(buf);
            discard(stream, drain_limit.saturating_sub(len)).await;
            return Err(BodyRefusal::TooLarge);
        }
        if !share.grow(len) {
            drop(share);
            discard(stream, max - len).await;
            return Err(BodyRefusal::OverBudget);
        }
        buf.extend_from_slice(&frame);
    }
    Ok((Bytes::from(buf), share))
}

/// Reads and drops up to `max` bytes of a body refused before it was read (no
/// request permit free), for the same reason as [`discard`]: a response sent while
/// the client is still writing makes the server close the connection, and the client
/// then sees its request reset instead of the 429 it could retry on.
pub async fn discard_body(body: Body, max: usize) {
    discard(body.into_data_stream(), max).await;
}

/// Reads and drops up to `max` more bytes of a refused body, so the connection
/// stays usable for the client's retry without the node holding the bytes.
async fn discard(mut stream: axum::body::BodyDataStream, max: usize) {
    let mut left = max;
    while let Some(Ok(frame)) = stream.next().await {
        match left.checked_sub(frame.len()) {
            Some(l) => left = l,
            None => return,
        }
    }
}

impl Drop for BodyShare {
    fn drop(&mut self) {
        drop(self.permit.take());
        self.budget.report();
    }
}

impl BodyBudget {
    /// A budget of `capacity` bytes (at least 1).
    pub fn new(capacity: u32) -> Self {
        let capacity = capacity.max(1);
        Self {
            bytes: Arc::new(Semaphore::new(capacity as usize)),
            capacity,
        }
    }

    /// Takes `len` bytes of the budget, or `None` if they are not free now. A body
    /// larger than the whole budget takes all of it, so it runs alone rather than
    /// never.
    pub fn admit(&self, len: usize) -> Option<BodyShare> {
        let want = self.clamp(len);
        let permit = self.bytes.clone().try_acquire_many_owned(want).ok()?;
        self.report();
        Some(BodyShare {
            permit: Some(permit),
            budget: self.clone(),
        })
    }

    /// Permits for a body of `len` bytes: at least one, at most the whole budget.
    fn clamp(&self, len: usize) -> u32 {
        u32::try_from(len)
            .unwrap_or(u32::MAX)
            .clamp(1, self.capacity)
    }

    /// The bound, bytes.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Bytes of bodies being processed now.
    pub fn in_flight(&self) -> u64 {
        u64::from(self.capacity).saturating_sub(self.bytes.available_permits() as u64)
    }

    /// Publishes the bound and what is in use on `/metrics`.
    pub fn report(&self) {
        let gauge = &crate::metrics::WEBHOOK_BODY_BYTES;
        gauge
            .with_label_values(&["capacity"])
            .set(i64::from(self.capacity));
        gauge
            .with_label_values(&["in_flight"])
            .set(self.in_flight() as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_share_the_budget_and_give_it_back() {
        let budget = BodyBudget::new(100);
        let first = budget.admit(60).expect("fits");
        assert_eq!(budget.in_flight(), 60);
        assert!(budget.admit(50).is_none(), "60 + 50 exceed 100");
        let second = budget.admit(40).expect("60 + 40 fit");
        drop(first);
        assert_eq!(budget.in_flight(), 40);
        assert!(budget.admit(60).is_some());
        drop(second);
    }

    #[test]
    fn a_share_grows_while_the_budget_has_room() {
        let budget = BodyBudget::new(100);
        let mut share = budget.admit(0).expect("fits");
        assert!(share.grow(70));
        assert_eq!(budget.in_flight(), 70);
        let other = budget.admit(20).expect("70 + 20 fit");
        assert!(!share.grow(90), "90 + 20 exceed 100");
        assert_eq!(budget.in_flight(), 90, "a failed grow takes nothing");
        drop(other);
        assert!(share.grow(1 << 30), "grows to the whole budget at most");
        assert_eq!(budget.in_flight(), 100);
        drop(share);
        assert_eq!(budget.in_flight(), 0);
    }

    #[tokio::test]
    async fn bodies_are_read_within_the_budget_or_not_held() {
        let budget = BodyBudget::new(1_000);
        let body = || Body::from(vec![b'x'; 600]);
        let (bytes, held) = read_body(&budget, body(), Some(600), 10_000)
            .await
            .expect("fits");
        assert_eq!(bytes.len(), 600);
        assert!(matches!(
            read_body(&budget, body(), Some(600), 10_000).await,
            Err(BodyRefusal::OverBudget)
        ));
        // Without a declared length the share grows as the bytes arrive.
        assert!(matches!(
            read_body(&budget, body(), None, 10_000).await,
            Err(BodyRefusal::OverBudget)
        ));
        assert_eq!(budget.in_flight(), 600, "refused bodies hold nothing");
        drop(held);
        let (bytes, _held) = read_body(&budget, body(), None, 10_000)
            .await
            .expect("fits");
        assert_eq!(bytes.len(), 600);
        assert!(matches!(
            read_body(&budget, body(), Some(600), 500).await,
            Err(BodyRefusal::TooLarge)
        ));
        assert!(matches!(
            read_body(&budget, body(), None, 500).await,
            Err(BodyRefusal::TooLarge)
        ));
    }

    /// A body of `frames` frames of 100 bytes, counting the frames read from it.
    fn counted_body(frames: usize, read: &Arc<std::sync::atomic::AtomicUsize>) -> Body {
        let read = read.clone();
        Body::from_stream(futures::stream::iter(0..frames).map(move |_| {
            read.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 100]))
        }))
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_drained_up_to_twice_the_limit() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let budget = BodyBudget::new(10_000);
        for declared in [Some(1_000), None] {
            let read = Arc::new(AtomicUsize::new(0));
            let refused = read_body(&budget, counted_body(10, &read), declared, 500).await;
            assert!(matches!(refused, Err(BodyRefusal::TooLarge)));
            assert_eq!(
                read.load(Ordering::SeqCst),
                10,
                "{declared:?}: drained whole"
            );
            let read = Arc::new(AtomicUsize::new(0));
            let refused = read_body(&budget, counted_body(50, &read), declared, 500).await;
            assert!(matches!(refused, Err(BodyRefusal::TooLarge)));
            let frames = read.load(Ordering::SeqCst);
            assert!(frames < 50, "{declared:?}: cut off after {frames} frames");
        }
        assert_eq!(budget.in_flight(), 0, "refused bodies hold nothing");
    }

    #[test]
    fn a_body_larger_than_the_budget_runs_alone() {
        let budget = BodyBudget::new(100);
        let big = budget.admit(1 << 30).expect("takes the whole budget");
        assert_eq!(budget.in_flight(), 100);
        assert!(budget.admit(1).is_none());
        drop(big);
        assert!(budget.admit(0).is_some(), "an empty body takes one byte");
    }
}
