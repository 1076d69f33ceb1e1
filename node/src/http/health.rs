//! Liveness and readiness.

use crate::app::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use kelemetry_core::ring::MemberState;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// 200 while the process runs.
pub async fn healthz() -> &'static str {
    "ok"
}

/// 200 only when the node is an active member of the ring, the metadata group and
/// every shard replica on this node have a leader, and the node accepts writes.
pub async fn readyz(State(state): State<Arc<AppState>>) -> (StatusCode, String) {
    if state.shutting_down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down".into());
    }
    if let Some(why) = state.shards.lost_data_refusal() {
        return (StatusCode::SERVICE_UNAVAILABLE, why);
    }
    if !state.shards.meta().has_leader() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the metadata group has no leader".into(),
        );
    }
    // Joined: an active member of the ring (a joining node is activated within a
    // controller round; a draining or removed one takes no new traffic).
    let ring = state.shards.ring();
    match ring.members.get(&state.shards.node_id()).map(|m| m.state) {
        Some(MemberState::Active) => {}
        Some(other) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("this node is {} in the ring, not active", other.as_str()),
            )
        }
        None => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "this node is not (yet) a member of the ring".into(),
            )
        }
    }
    // Out of the Service while short of disk: writes sent here would be refused.
    if let Some(refusal) = state.shards.disk_refusal() {
        return (StatusCode::SERVICE_UNAVAILABLE, refusal);
    }
    let without: Vec<u32> = state
        .shards
        .placed_locals()
        .iter()
        .filter(|s| !s.has_leader())
        .map(|s| s.shard())
        .collect();
    if without.is_empty() {
        (StatusCode::OK, "ready".into())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{} shards have no leader: {without:?}", without.len()),
        )
    }
}
