//! Parameters of `GET /api/traces`, with errors that name the parameter.

use crate::query::Search;
use kelemetry_core::display::mode::DisplayMode;
use std::collections::BTreeMap;

/// Default search range when `start` is absent: 48 hours, like Jaeger.
const DEFAULT_LOOKBACK_US: i64 = 48 * 3600 * 1_000_000;
/// Default `limit`: what the Jaeger UI sends.
const DEFAULT_LIMIT: usize = 20;

/// A parsed search request.
pub struct SearchParams {
    /// The search (absent for pure `traceID=` lookups).
    pub search: Option<Search>,
    /// `traceID=` lookups instead of a search.
    pub trace_ids: Vec<u128>,
    /// `raw=true`: stored object traces as written, without display transforms.
    pub raw: bool,
}

/// Parses a trace ID of up to 32 hex digits.
pub fn parse_trace_id(s: &str) -> Option<u128> {
    (!s.is_empty() && s.len() <= 32)
        .then(|| u128::from_str_radix(s, 16).ok())
        .flatten()
}

/// A query parameter that is missing or unusable; the message names it, as Jaeger's
/// own query service does.
#[derive(Debug, thiserror::Error)]
#[error("parameter '{param}' {problem}")]
pub struct ParamError {
    /// The parameter.
    pub param: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl ParamError {
    /// An error about `param`.
    pub fn new(param: &'static str, problem: impl Into<String>) -> Self {
        Self {
            param,
            problem: problem.into(),
        }
    }
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

fn int(name: &'static str, v: &str) -> Result<i64, ParamError> {
    v.parse().map_err(|_| {
        ParamError::new(
            name,
            format!("must be an integer (microseconds since the epoch), got {v:?}"),
        )
    })
}

impl SearchParams {
    /// Parses a raw query string.
    pub fn parse(raw: &str) -> Result<Self, ParamError> {
        let pairs =
            form_urlencoded::parse(raw.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned()));
        let mut service = None;
        let mut operation = None;
        let mut tags = BTreeMap::new();
        let (mut start, mut end, mut limit) = (None, None, None);
        let mut trace_ids = Vec::new();
        let mut raw = false;
        for (k, v) in pairs {
            match k.as_str() {
                "service" => service = Some(v),
                "operation" if !v.is_empty() => operation = Some(v),
                "tags" => {
                    let m: BTreeMap<String, String> = serde_json::from_str(&v).map_err(|e| {
                        ParamError::new("tags", format!("must be a JSON object of strings: {e}"))
                    })?;
                    tags.extend(m);
                }
                "tag" => {
                    let (tk, tv) = v.split_once(':').ok_or_else(|| {
                        ParamError::new("tag", format!("must be key:value, got {v:?}"))
                    })?;
                    tags.insert(tk.to_string(), tv.to_string());
                }
                "start" => start = Some(int("start", &v)?),
                "raw" => raw = v == "true",
                "end" => end = Some(int("end", &v)?),
                "limit" => {
                    limit = Some(v.parse::<usize>().map_err(|_| {
                        ParamError::new(
                            "limit",
                            format!("must be a non-negative integer, got {v:?}"),
                        )
                    })?)
                }
                "traceID" => trace_ids.push(parse_trace_id(&v).ok_or_else(|| {
                    ParamError::new("traceID", format!("is not a hex trace id: {v:?}"))
                })?),
                _ => {}
            }
        }
        if tags.keys().any(String::is_empty) {
            return Err(ParamError::new("tags", "has an empty tag name"));
        }
        let mode = match service.as_deref() {
            Some(name) => Some(DisplayMode::from_name(name).ok_or_else(|| {
                ParamError::new(
                    "service",
                    format!("must be a display mode (see /api/services), got {name:?}"),
                )
            })?),
            None if trace_ids.is_empty() => return Err(ParamError::new("service", "is required")),
            None => None,
        };
        if let Some(cluster) = operation {
            tags.insert("cluster".to_string(), cluster);
        }
        let end_us = end.unwrap_or_else(now_us);
        let start_us = start.unwrap_or(end_us - DEFAULT_LOOKBACK_US);
        if start_us > end_us {
            return Err(ParamError::new("start", "must not be after 'end'"));
        }
        Ok(Self {
            search: mode.map(|mode| Search {
                mode,
                tags: tags.into_iter().collect(),
                start_us,
                end_us,
                limit: match limit {
                    Some(0) | None => DEFAULT_LIMIT,
                    Some(n) => n,
                },
            }),
            trace_ids,
            raw,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {

        /// Trace IDs round-trip through the 32-digit form the API prints and through
        /// the shortened form Jaeger clients send (leading zeros dropped).
        #[test]
        fn trace_ids_round_trip(id in any::<u128>()) {
            prop_assert_eq!(parse_trace_id(&format!("{id:032x}")), Some(id));
            prop_assert_eq!(parse_trace_id(&format!("{id:x}")), Some(id));
            prop_assert_eq!(parse_trace_id(&format!("{id:032X}")), Some(id));
        }

        #[test]
        fn trace_id_parser_survives_any_text(s in ".{0,40}") {
            if let Some(id) = parse_trace_id(&s) {
                prop_assert!(s.len() <= 32);
                prop_assert_eq!(u128::from_str_radix(&s, 16).ok(), Some(id));
            }
        }

        /// Any query string parses or names the parameter it cannot use.
        #[test]
        fn search_parser_survives_any_query(
            q in prop::collection::vec(
                (prop::sample::select(&["service", "operation", "tags", "tag", "start", "end",
                    "limit", "lookback", "minDuration", "traceID", "raw", "x"][..]),
                 ".{0,24}"),
                0..8,
            )
        ) {
            let raw: String = q
                .iter()
                .map(|(k, v)| format!("{k}={}", form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()))
                .collect::<Vec<_>>()
                .join("&");
            if let Err(e) = SearchParams::parse(&raw) {
                prop_assert!(!e.param.is_empty());
                let named = format!("'{}'", e.param);
                prop_assert!(e.to_string().contains(&named), "{}", e);
            }
        }
    }

    #[test]
    fn parses_jaeger_search() {
        let p = SearchParams::parse(
            "service=tracing+%5Bfull+tree%5D&operation=c1&tags=%7B%22name%22%3A%22demo%22%7D&start=10&end=20&limit=5&tag=resource:pods",
        )
        .unwrap();
        let s = p.search.unwrap();
        assert_eq!(s.mode.id(), 0x2100_0000);
        assert_eq!(
            s.tags,
            vec![
                ("cluster".into(), "c1".into()),
                ("name".into(), "demo".into()),
                ("resource".into(), "pods".into())
            ]
        );
        assert_eq!((s.start_us, s.end_us, s.limit), (10, 20, 5));
    }

    #[test]
    fn errors_name_the_parameter() {
        for (q, needle) in [
            ("", "'service'"),
            ("service=nope", "'service'"),
            ("service=tracing&tags=%7B", "'tags'"),
            (
                "service=tracing&tags=%7B%22%22%3A%22x%22%7D",
                "empty tag name",
            ),
            ("service=tracing&start=yesterday", "'start'"),
            ("service=tracing&start=5&end=1", "'start'"),
            ("service=tracing&limit=-1", "'limit'"),
            ("traceID=xyz", "'traceID'"),
        ] {
            let err = SearchParams::parse(q)
                .err()
                .unwrap_or_else(|| panic!("{q} must fail"));
            assert!(err.to_string().contains(needle), "{q}: {err}");
        }
    }
}
