//! Trace IDs of rendered results: `ff` + 8 hex mode + `e1e3e7` + 16 hex cache key.
//!
//! The cache key names a stored search (which objects and windows, which time range);
//! the mode digits only choose how to render it, so editing them in a URL re-renders
//! the same result in another mode.

use super::mode::DisplayMode;

const PREFIX: u128 = 0xff;
const SUFFIX: u128 = 0xe1_e3e7;

/// The trace ID of cached search `cache_key` rendered in `mode`.
pub fn encode(mode: DisplayMode, cache_key: u64) -> u128 {
    let high = (PREFIX << 56) | (u128::from(mode.id()) << 24) | SUFFIX;
    (high << 64) | u128::from(cache_key)
}

/// The mode and cache key of a rendered trace ID; `None` for any other ID (for
/// example a stored object trace's own ID).
pub fn decode(id: u128) -> Option<(DisplayMode, u64)> {
    let high = id >> 64;
    if high >> 56 != PREFIX || high & 0xff_ffff != SUFFIX {
        return None;
    }
    let mode = DisplayMode::from_id(((high >> 24) & 0xffff_ffff) as u32)?;
    Some((mode, id as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_spec_and_mode_digits_are_editable() {
        let mode = DisplayMode::from_id(0x2000_0000).unwrap();
        let id = encode(mode, 0x9c1f_3e0d_2a4b_5c6d);
        let hex = format!("{id:032x}");
        assert_eq!(hex, "ff20000000e1e3e79c1f3e0d2a4b5c6d");
        let edited = format!("ff21000000{}", &hex[10..]);
        let (m, key) = decode(u128::from_str_radix(&edited, 16).unwrap()).unwrap();
        assert_eq!(m.to_string(), "tracing [full tree]");
        assert_eq!(key, 0x9c1f_3e0d_2a4b_5c6d);
        assert!(decode(0x0000_0001_1234_5678_9abc_def0_1234_5678).is_none());
    }
}
