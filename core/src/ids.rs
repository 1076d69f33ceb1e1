//! Deterministic identifiers and shard assignment.
//!
//! Every replica must derive the same IDs from the same command log, so IDs are hashes
//! of stable inputs, never random numbers or clock readings.

use crate::key::ObjectKey;
use crate::window::Window;
use xxhash_rust::xxh3::{xxh3_128, xxh3_64};

/// The shard that owns `key` among `shards` shards (jump consistent hash of the key).
pub fn shard_of(key: &ObjectKey, shards: u32) -> u32 {
    jump_hash(xxh3_64(key.to_string().as_bytes()), shards.max(1))
}

/// Lamping and Veach's jump consistent hash: maps a 64-bit key to a bucket in
/// `0..buckets` so that growing the bucket count moves only about 1/n of the keys.
fn jump_hash(mut key: u64, buckets: u32) -> u32 {
    let mut b: i64 = -1;
    let mut j: i64 = 0;
    while j < i64::from(buckets) {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b as u32
}

/// The trace ID of an object's trace in one window.
///
/// The top 32 bits carry the shard number so that a lookup by trace ID goes straight to
/// the owning shard; the rest is a hash of the object key and the window start.
pub fn trace_id(key: &ObjectKey, shard: u32, window: &Window) -> u128 {
    let h = xxh3_128(format!("trace\0{key}\0{}", window.start_us).as_bytes());
    (u128::from(shard) << 96) | (h & ((1u128 << 96) - 1))
}

/// The shard encoded in a trace ID made by [`trace_id`].
pub fn shard_of_trace(trace_id: u128) -> u32 {
    (trace_id >> 96) as u32
}

/// A non-zero span ID derived from the given parts.
pub fn span_id(parts: &[&str]) -> u64 {
    let h = xxh3_64(parts.join("\0").as_bytes());
    if h == 0 {
        1
    } else {
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_spread() {
        let mut counts = vec![0u32; 64];
        for i in 0..6400 {
            let k = ObjectKey::new("c", "", "pods", "default", format!("pod-{i}"));
            let s = shard_of(&k, 64);
            assert_eq!(s, shard_of(&k, 64));
            counts[s as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 50 && c < 160), "{counts:?}");
    }

    #[test]
    fn growing_buckets_moves_few_keys() {
        let moved = (0..10_000u64)
            .filter(|&k| jump_hash(k, 10) != jump_hash(k, 11))
            .count();
        assert!(moved < 1_300, "moved {moved}");
    }

    #[test]
    fn trace_ids_carry_the_shard() {
        let k = ObjectKey::new("c", "apps", "deployments", "default", "demo");
        let w = Window::containing(0, 1_800_000_000);
        let id = trace_id(&k, 17, &w);
        assert_eq!(shard_of_trace(id), 17);
        assert_ne!(
            id,
            trace_id(&k, 17, &Window::containing(1_800_000_000, 1_800_000_000))
        );
    }
}
