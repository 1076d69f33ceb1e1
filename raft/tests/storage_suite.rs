//! openraft's own storage test suite (`openraft::testing::Suite`) against our log
//! store and state machine, each case on a fresh RocksDB in a temporary directory:
//! votes, log reads, appends, truncation, purging, membership recovery from log and
//! state machine, applying, and snapshot transfer between two stores.

use kelemetry_core::state::ShardContext;
use kelemetry_raft::keys;
use kelemetry_raft::log_store::LogStore;
use kelemetry_raft::state_machine::ShardStateMachine;
use kelemetry_raft::types::{NodeId, TypeConfig};
use kelemetry_raft::wal_sync::WalSyncer;
use kelemetry_raft::Engine;
use openraft::testing::{StoreBuilder, Suite};
use openraft::{StorageError, StorageIOError};

/// Builds one store per suite case.
struct RocksStores;

/// Keeps a case's directory and WAL syncer alive, and stops the syncer after it.
struct CaseGuard {
    _dir: tempfile::TempDir,
    syncer: WalSyncer,
}

impl Drop for CaseGuard {
    fn drop(&mut self) {
        self.syncer.stop();
    }
}

fn io(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write(&e).into()
}

impl StoreBuilder<TypeConfig, LogStore, ShardStateMachine, CaseGuard> for RocksStores {
    async fn build(
        &self,
    ) -> Result<(CaseGuard, LogStore, ShardStateMachine), StorageError<NodeId>> {
        let dir = tempfile::tempdir().map_err(io)?;
        let engine = Engine::open(dir.path()).map_err(io)?;
        let syncer = WalSyncer::start(engine.clone()).map_err(io)?;
        let group = keys::shard_group(0);
        let log = LogStore::new(engine.clone(), group, syncer.clone());
        let sm = ShardStateMachine::new(
            engine,
            group,
            ShardContext {
                shard: 0,
                shards: 1,
            },
            log.pending_committed(),
        );
        Ok((CaseGuard { _dir: dir, syncer }, log, sm))
    }
}

#[test]
fn log_store_and_state_machine_pass_openraft_storage_suite() {
    Suite::test_all(RocksStores).expect("openraft's storage suite");
}
