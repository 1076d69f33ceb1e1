//! `GET /cluster/status`: this node's view of every shard group.

use crate::server::AppState;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;

/// Shards with their leader and term, as this node sees them.
pub async fn status(State(state): State<Arc<AppState>>) -> Json<Value> {
    let shards: Vec<Value> = state
        .shards
        .iter()
        .map(|s| json!({"shard": s.shard(), "leader": s.leader(), "term": s.term(), "led_here": s.is_leader()}))
        .collect();
    let led = state.shards.iter().filter(|s| s.is_leader()).count();
    Json(json!({"node": state.shards.node_id(), "shards_led": led, "shards": shards}))
}

/// Per-shard state checksums with the applied index they were taken at, for comparing
/// replicas (the chaos harness does).
pub async fn checksums(State(state): State<Arc<AppState>>) -> Json<Value> {
    let shards: Vec<Value> = state
        .shards
        .iter()
        .map(|s| match s.state_checksum() {
            Ok(Some((applied, sum))) => {
                json!({"shard": s.shard(), "applied": applied, "checksum": format!("{sum:016x}")})
            }
            Ok(None) => json!({"shard": s.shard(), "applied": null, "checksum": null}),
            Err(e) => json!({"shard": s.shard(), "error": e}),
        })
        .collect();
    Json(json!({"node": state.shards.node_id(), "shards": shards}))
}

/// Every audit ID stored on this node (one entry per event span), and the number of
/// object spans next to the number of distinct (object, window) pairs: the chaos
/// harness checks exactly-once storage and one object span per window with it.
pub async fn audit_ids(State(state): State<Arc<AppState>>) -> Json<Value> {
    use kelemetry_core::model::{EventSpanRecord, ObjectSpanRecord};
    use kelemetry_core::state::schema::{decode, prefix_end, EVENT, OBJECT};
    use kelemetry_core::state::KvRead;
    let mut ids = Vec::new();
    let mut objects = 0u64;
    let mut distinct = std::collections::BTreeSet::new();
    let mut errors = Vec::new();
    for s in state.shards.iter() {
        let r = s.reader();
        let scanned = r.scan(&[EVENT], &prefix_end(&[EVENT]), &mut |k, v| {
            match decode::<EventSpanRecord>(k, v) {
                Ok(e) => ids.extend(
                    e.tags
                        .into_iter()
                        .filter(|(t, _)| t == "auditId")
                        .map(|(_, v)| v),
                ),
                Err(e) => errors.push(e.to_string()),
            }
            true
        });
        let counted = r.scan(&[OBJECT], &prefix_end(&[OBJECT]), &mut |k, v| {
            objects += 1;
            if let Ok(o) = decode::<ObjectSpanRecord>(k, v) {
                distinct.insert((o.key, o.window.start_us));
            }
            true
        });
        errors.extend(
            [scanned, counted]
                .into_iter()
                .filter_map(Result::err)
                .map(|e| e.to_string()),
        );
    }
    Json(
        json!({"audit_ids": ids, "object_spans": objects, "distinct_object_windows": distinct.len(), "errors": errors}),
    )
}
