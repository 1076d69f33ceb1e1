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
