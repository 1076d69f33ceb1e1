//! Time windows: one object trace per object per window (default 30 minutes).

use serde::{Deserialize, Serialize};

/// A half-open interval `[start_us, start_us + len_us)` aligned to the Unix epoch.
///
/// The window of an event is computed from the event's own time, never from the time
/// it was processed, so late events land in their historical window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Window {
    /// Start in microseconds since the epoch.
    pub start_us: i64,
    /// Length in microseconds (the span TTL).
    pub len_us: i64,
}

impl Window {
    /// The window of length `len_us` that contains `time_us`.
    pub fn containing(time_us: i64, len_us: i64) -> Self {
        let len_us = len_us.max(1);
        Self {
            start_us: time_us.div_euclid(len_us) * len_us,
            len_us,
        }
    }

    /// End of the window (exclusive), microseconds since the epoch.
    pub fn end_us(&self) -> i64 {
        self.start_us + self.len_us
    }

    /// Whether the window overlaps `[start_us, end_us]`.
    pub fn overlaps(&self, start_us: i64, end_us: i64) -> bool {
        self.start_us <= end_us && self.end_us() > start_us
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_example_lands_in_the_nine_oclock_window() {
        // 2023-07-20T09:27:41Z -> window 09:00:00-09:30:00 (SPEC 1.5).
        let t = 1_689_845_261_000_000;
        let w = Window::containing(t, 30 * 60 * 1_000_000);
        assert_eq!(w.start_us, 1_689_843_600_000_000);
        assert_eq!(w.end_us(), 1_689_845_400_000_000);
        assert!(w.overlaps(t, t));
        assert!(!w.overlaps(w.end_us(), w.end_us() + 1));
    }
}
