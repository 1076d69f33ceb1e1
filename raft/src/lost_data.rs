//! A node that lost its data: a damaged database moved aside, or a fresh data
//! directory under an id the cluster may already know.
//!
//! Raft's safety rests on every voter remembering its vote and the entries it
//! acknowledged. A replica that forgot them and answered again as the same voter
//! could elect a second leader in a term or drop a committed entry. So such a node
//! answers no Raft message, for any group, until the metadata leader confirms that
//! its id holds no replica any more (its old replicas were moved off as for a dead
//! node). It then joins like a new node and receives its replicas from its peers.
//!
//! The state is a node-level key, written before the node serves anything, so a
//! restart in the middle keeps it.

use crate::engine::{Engine, EngineError, Op};
use crate::keys;
use std::sync::atomic::{AtomicBool, Ordering};

const KEY: &str = "lost_data";

/// Whether this node is waiting to be readmitted after losing its data.
#[derive(Debug, Default)]
pub struct LostData(AtomicBool);

impl LostData {
    /// The state recorded in `engine`.
    pub(crate) fn load(engine: &Engine) -> Result<Self, EngineError> {
        Ok(Self(AtomicBool::new(
            engine.get(&keys::node_meta(KEY))?.is_some(),
        )))
    }

    /// Records (durably) that this node's data is lost and it must be readmitted.
    pub(crate) fn mark(&self, engine: &Engine) -> Result<(), EngineError> {
        engine.write([Op::Put(keys::node_meta(KEY), Vec::new())], true)?;
        self.0.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Clears the state (durably) once the cluster has let the node back in.
    pub(crate) fn clear(&self, engine: &Engine) -> Result<(), EngineError> {
        engine.write([Op::Delete(keys::node_meta(KEY))], true)?;
        self.0.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// Whether the node is waiting to be readmitted.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Marks the database at `engine` as belonging to a node that lost its data (used
/// after a damaged database was moved aside and an empty one opened in its place).
pub fn mark_lost(engine: &Engine) -> Result<(), EngineError> {
    LostData::default().mark(engine)
}
