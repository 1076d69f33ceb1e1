//! The window index: which objects have a trace in which window. Entries are ordered
//! by window, then by object name, so a search that names the object seeks to its
//! entries in each window of the range instead of reading every entry of the range.
//!
//! Stores written before that order hold entries ordered by window, then object key.
//! The first apply that indexes an object records from which window on every entry
//! has the name order ([`schema::WINDOW_BY_NAME_SINCE`]); searches still read the
//! earlier windows whole, so nothing an older version indexed is missed.

use super::kv::{KvRead, StateError};
use super::schema::{self, decode};
use crate::key::ObjectKey;

/// The start of the first window at or after `from_us` that has an index entry.
fn first_window_at_or_after(kv: &dyn KvRead, from_us: i64) -> Result<Option<i64>, StateError> {
    let mut found = None;
    kv.scan(
        &schema::window_start_prefix(from_us),
        &[schema::WINDOW + 1],
        &mut |k, _| {
            found = Some(schema::time_from(&k[1..9]));
            false
        },
    )?;
    Ok(found)
}

/// From which window start on the index of a store without the marker may be read by
/// name: the window after the last one holding any entry (entries of an older version
/// can be dated ahead of now, up to the allowed clock skew), and never before the
/// current window `now_window_us`; the very beginning for a store with no entries.
pub(super) fn by_name_from(kv: &dyn KvRead, now_window_us: i64) -> Result<i64, StateError> {
    if first_window_at_or_after(kv, i64::MIN)?.is_none() {
        return Ok(i64::MIN);
    }
    let mut since = now_window_us;
    while let Some(start) = first_window_at_or_after(kv, since)? {
        since = start.saturating_add(1);
    }
    Ok(since)
}

/// The recorded [`by_name_from`], if any apply has indexed an object since the layout
/// changed.
fn by_name_since(kv: &dyn KvRead) -> Result<Option<i64>, StateError> {
    let key = schema::WINDOW_BY_NAME_SINCE;
    kv.get(key)?.map(|b| decode(key, &b)).transpose()
}

/// Every (window start, object) indexed in windows starting in `[from_us, to_us)` whose
/// object passes `keep`, ordered by window start and then object key. With `name`,
/// windows from the recorded layout change on are read only at that name.
pub(super) fn entries(
    kv: &dyn KvRead,
    from_us: i64,
    to_us: i64,
    name: Option<&str>,
    keep: &dyn Fn(&ObjectKey) -> bool,
) -> Result<Vec<(i64, ObjectKey)>, StateError> {
    let mut out = Vec::new();
    let mut collect = |k: &[u8], _: &[u8]| {
        if let Some((start, key)) = schema::parse_window_index(k) {
            if keep(&key) {
                out.push((start, key));
            }
        }
        true
    };
    let seek_from = match (name, by_name_since(kv)?) {
        (Some(_), Some(since)) => since.max(from_us).min(to_us),
        _ => to_us,
    };
    kv.scan(
        &schema::window_start_prefix(from_us),
        &schema::window_start_prefix(seek_from),
        &mut collect,
    )?;
    if let Some(name) = name {
        let mut next = seek_from;
        while next < to_us {
            let Some(start) = first_window_at_or_after(kv, next)? else {
                break;
            };
            if start >= to_us {
                break;
            }
            let prefix = schema::window_name_prefix(start, name);
            kv.scan(&prefix, &schema::prefix_end(&prefix), &mut collect)?;
            next = start.saturating_add(1);
        }
    }
    out.sort();
    Ok(out)
}
