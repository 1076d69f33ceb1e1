//! Cluster administration on `--http-addr`: `GET /cluster/status` (members, shard
//! placement and leaders as this node sees them), `POST /cluster/drain`, and the
//! replica checks the chaos harness uses.

use crate::app::AppState;
use crate::http::errors::{field_error, retry_later};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kelemetry_actors::ring::{proposer, DrainError};
use kelemetry_core::ring::duties::{events_duty, objects_duty};
use kelemetry_core::ring::DutyRoster;
use serde_json::{json, Value};
use std::sync::Arc;

/// Members with their state and replica count, and every shard with its replicas,
/// target, and (for shards this node holds) the leader and term it sees.
pub async fn status(State(state): State<Arc<AppState>>) -> Json<Value> {
    let shards = &state.shards;
    let meta = shards.ring();
    let nodes: Vec<Value> = meta
        .members
        .values()
        .map(|m| {
            json!({"id": m.id, "state": m.state.as_str(), "peer_addr": m.peer_addr,
                "http_addr": m.http_addr, "replicas": meta.shards_of(m.id).len()})
        })
        .collect();
    let moving = meta.moving();
    let per_shard: Vec<Value> = (0..shards.count())
        .map(|shard| {
            let local = shards.local(shard);
            json!({
                "shard": shard,
                "replicas": meta.voters.get(&shard).cloned().unwrap_or_default(),
                "target": meta.target.get(&shard).cloned().unwrap_or_default(),
                "moving": moving.contains(&shard),
                "local": local.is_some(),
                "leader": local.as_ref().and_then(|g| g.leader()),
                "term": local.as_ref().map(|g| g.term()),
                "led_here": local.as_ref().is_some_and(|g| g.is_leader()),
                "leader_role_term": local.as_ref().and_then(|g| g.leader_role_term()),
            })
        })
        .collect();
    let led = shards.led_locals().len();
    let duties = watch_duties(&state, &meta.roster);
    Json(json!({
        "node": shards.node_id(),
        "metadata_leader": shards.meta().leader(),
        "metadata_leader_role_term": shards.meta().leader_role_term(),
        "awaiting_readmission": shards.awaits_readmission(),
        "disk": shards.disk().map(|d| json!({"free_bytes": d.free_bytes(), "min_free_bytes": d.min_free_bytes(), "low": d.low()})),
        "replicas_per_shard": meta.replicas,
        "shards_led": led,
        "shards_moving": moving.len(),
        "duty_roster": {"nodes": meta.roster.nodes, "epoch": meta.roster.epoch},
        "watch_duties": duties,
        "watch_cursors": meta.cursors,
        "nodes": nodes,
        "shards": per_shard,
    }))
}

/// Every watch duty with its holders under `roster`: the Events duty of each watched
/// cluster, and an object duty per resource this node's discovery found.
fn watch_duties(state: &AppState, roster: &DutyRoster) -> Vec<Value> {
    let mut duties = Vec::new();
    for c in &state.watched_clusters {
        duties.push(events_duty(c));
        let resources = state.discovered.watchable(c);
        duties.extend(resources.iter().map(|r| objects_duty(c, r)));
    }
    duties
        .into_iter()
        .map(|d| json!({"nodes": roster.holders(&d), "duty": d}))
        .collect()
}

/// `POST /cluster/drain` with `{"node": N}`: marks the node draining; its replicas
/// and leadership move to other nodes, then it is marked removed.
pub async fn drain(State(state): State<Arc<AppState>>, body: axum::body::Bytes) -> Response {
    let node = match serde_json::from_slice::<Value>(&body) {
        Ok(v) => match v.get("node").and_then(Value::as_u64) {
            Some(n) => n,
            None => {
                return field_error(
                    StatusCode::BAD_REQUEST,
                    "node",
                    "expected {\"node\": <node id>}",
                )
            }
        },
        Err(e) => return field_error(StatusCode::BAD_REQUEST, "body", format!("not JSON: {e}")),
    };
    match proposer::drain(&state.shards, node).await {
        Ok(()) => (
            StatusCode::ACCEPTED,
            Json(json!({"node": node, "state": "draining"})),
        )
            .into_response(),
        Err(DrainError::Invalid(e)) => field_error(StatusCode::BAD_REQUEST, "node", e),
        Err(DrainError::Unavailable(e)) => {
            retry_later(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
    }
}

/// Per-shard state checksums with the applied index they were taken at, for comparing
/// replicas (the chaos harness does).
pub async fn checksums(State(state): State<Arc<AppState>>) -> Json<Value> {
    let shards: Vec<Value> = state
        .shards
        .locals()
        .iter()
        .map(|s| match s.state_checksum() {
            Ok(Some((applied, sum))) => {
                json!({"shard": s.shard(), "applied": applied, "checksum": format!("{sum:016x}")})
            }
            Ok(None) => json!({"shard": s.shard(), "applied": null, "checksum": null}),
            Err(e) => json!({"shard": s.shard(), "error": e.to_string()}),
        })
        .collect();
    Json(json!({"node": state.shards.node_id(), "shards": shards}))
}

/// Every audit ID stored in each of this node's shard replicas (one entry per event
/// span), and per replica the number of object spans next to the number of distinct
/// (object, window) pairs: the chaos harness checks exactly-once storage and one
/// object span per window with it. `audit_ids` at the top lists all of them.
pub async fn audit_ids(State(state): State<Arc<AppState>>) -> Json<Value> {
    let mut all = Vec::new();
    let mut per_shard = Vec::new();
    let mut errors = Vec::new();
    for s in state.shards.locals() {
        match replica_audit_ids(s.reader()) {
            Ok((ids, objects, distinct)) => {
                all.extend(ids.iter().cloned());
                per_shard.push(json!({"shard": s.shard(), "audit_ids": ids,
                    "object_spans": objects, "distinct_object_windows": distinct}));
            }
            Err(e) => errors.push(format!("shard {}: {e}", s.shard())),
        }
    }
    Json(json!({"audit_ids": all, "shards": per_shard, "errors": errors}))
}

/// Audit IDs, object span count and distinct (object, window) count of one replica.
fn replica_audit_ids(
    r: &kelemetry_raft::engine::PrefixView,
) -> Result<(Vec<String>, u64, usize), kelemetry_core::state::StateError> {
    use kelemetry_core::model::{EventSpanRecord, ObjectSpanRecord};
    use kelemetry_core::state::schema::{decode, prefix_end, EVENT, OBJECT};
    use kelemetry_core::state::KvRead;
    let mut ids = Vec::new();
    let mut objects = 0u64;
    let mut distinct = std::collections::BTreeSet::new();
    let mut bad = None;
    r.scan(&[EVENT], &prefix_end(&[EVENT]), &mut |k, v| {
        match decode::<EventSpanRecord>(k, v) {
            Ok(e) => ids.extend(
                e.tags
                    .into_iter()
                    .filter(|(t, _)| t == "auditId")
                    .map(|(_, v)| v),
            ),
            Err(e) => bad = Some(e),
        }
        true
    })?;
    r.scan(&[OBJECT], &prefix_end(&[OBJECT]), &mut |k, v| {
        objects += 1;
        if let Ok(o) = decode::<ObjectSpanRecord>(k, v) {
            distinct.insert((o.key, o.window.start_us));
        }
        true
    })?;
    bad.map_or(Ok((ids, objects, distinct.len())), Err)
}
