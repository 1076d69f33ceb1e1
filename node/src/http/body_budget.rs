//! A node-wide bound on the webhook bodies being processed at once, in bytes.
//!
//! `--max-concurrent-requests` bounds how many requests run; this bounds how much
//! they hold. A request keeps its body, and the commands parsed from it, until its
//! events are committed, so without a byte bound a few hundred large batches could
//! hold gigabytes. A request that does not fit gets 429 with `Retry-After` at once.

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
        let want = u32::try_from(len)
            .unwrap_or(u32::MAX)
            .clamp(1, self.capacity);
        let permit = self.bytes.clone().try_acquire_many_owned(want).ok()?;
        self.report();
        Some(BodyShare {
            permit: Some(permit),
            budget: self.clone(),
        })
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
    fn a_body_larger_than_the_budget_runs_alone() {
        let budget = BodyBudget::new(100);
        let big = budget.admit(1 << 30).expect("takes the whole budget");
        assert_eq!(budget.in_flight(), 100);
        assert!(budget.admit(1).is_none());
        drop(big);
        assert!(budget.admit(0).is_some(), "an empty body takes one byte");
    }
}
