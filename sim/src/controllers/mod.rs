//! In-process controllers, each acting through the API server's operations under its
//! real service-account name, so their requests are audited like the real ones.
//!
//! - [`client`]: the controllers' view of the API (typed targets, request URIs).
//! - [`gc`]: the owner garbage collector.

pub mod client;
pub mod gc;

use crate::apiserver::ApiServer;
use std::sync::Arc;

/// Starts every controller on `api`; they run until the process exits.
pub fn start_all(api: &Arc<ApiServer>) {
    tokio::spawn(gc::run(api.clone()));
}
