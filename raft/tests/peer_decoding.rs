//! The receiving side of the peer RPC against hostile payloads: any bytes, for any
//! group and message kind, are refused as undecodable (or answered), never a panic,
//! and the node's groups keep working afterwards.

use kelemetry_proto::kelemetry::cluster::v1::RaftKind;
use kelemetry_raft::{Engine, InboundError, RaftSettings, ShardSet};
use proptest::prelude::*;
use std::sync::OnceLock;
use std::time::Duration;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    set: ShardSet,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let set = runtime.block_on(async {
            let engine = Engine::open(dir.path()).unwrap();
            let settings = RaftSettings::single(1, "127.0.0.1:7071".into(), 2);
            let set = ShardSet::open(engine, &settings).await.unwrap();
            assert!(set.wait_for_leaders(Duration::from_secs(10)).await);
            set
        });
        Fixture {
            runtime,
            set,
            _dir: dir,
        }
    })
}

const KINDS: [RaftKind; 3] = [
    RaftKind::AppendEntries,
    RaftKind::Vote,
    RaftKind::InstallSnapshot,
];

proptest! {

    #[test]
    fn any_payload_is_refused_or_answered_never_a_panic(
        group in 0u32..3,
        kind in 0usize..3,
        payload in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let f = fixture();
        let result = f
            .runtime
            .block_on(f.set.handle_raft(group, KINDS[kind], &payload));
        if let Err(e) = result {
            prop_assert!(
                matches!(e, InboundError::Undecodable(_)),
                "{e:?}"
            );
        }
    }
}

#[test]
fn the_groups_still_lead_after_hostile_payloads() {
    let f = fixture();
    for kind in KINDS {
        for payload in [&[][..], &[0xff; 64][..], &[0u8; 1024][..]] {
            let _ = f.runtime.block_on(f.set.handle_raft(1, kind, payload));
        }
    }
    assert!(f
        .runtime
        .block_on(f.set.wait_for_leaders(Duration::from_secs(10))));
}
