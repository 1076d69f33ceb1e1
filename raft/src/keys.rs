//! Key layout of Raft data inside the node's single RocksDB.
//!
//! Every key starts with the 4-byte big-endian group id, then a tag byte. The node's own
//! metadata uses the reserved group `u32::MAX`.

/// A Raft group id: shard `n` is group `n + 1`; 0 is reserved for cluster metadata.
pub type GroupId = u32;

/// The metadata group.
pub const META_GROUP: GroupId = 0;

/// Key, inside the metadata group's state, of the one cluster metadata record (shard
/// state keys start with a letter, so this cannot collide).
pub const META_RECORD: &[u8] = b"\0cluster-meta";

/// The shard of a group, if it is a shard group.
pub fn group_shard(group: GroupId) -> Option<u32> {
    group.checked_sub(1)
}

/// First key of every record of `group` (log, vote, state).
pub fn group_start(group: GroupId) -> Vec<u8> {
    group.to_be_bytes().to_vec()
}

/// End (exclusive) of every record of `group`.
pub fn group_end(group: GroupId) -> Vec<u8> {
    (group + 1).to_be_bytes().to_vec()
}

/// The group of shard `shard`.
pub fn shard_group(shard: u32) -> GroupId {
    shard + 1
}

const LOG: u8 = b'L';
const VOTE: u8 = b'V';
const COMMITTED: u8 = b'C';
const PURGED: u8 = b'P';
const APPLIED: u8 = b'A';
const STATE: u8 = b'S';
const INSTALLING: u8 = b'I';
const REMOVED: u8 = b'R';
const NODE_GROUP: u32 = u32::MAX;

fn tagged(group: GroupId, tag: u8) -> Vec<u8> {
    let mut v = Vec::with_capacity(16);
    v.extend_from_slice(&group.to_be_bytes());
    v.push(tag);
    v
}

/// Key of log entry `index`.
pub fn log(group: GroupId, index: u64) -> Vec<u8> {
    let mut v = tagged(group, LOG);
    v.extend_from_slice(&index.to_be_bytes());
    v
}

/// Key of the saved vote.
pub fn vote(group: GroupId) -> Vec<u8> {
    tagged(group, VOTE)
}

/// Key of the saved committed log id.
pub fn committed(group: GroupId) -> Vec<u8> {
    tagged(group, COMMITTED)
}

/// Key of the last purged log id.
pub fn purged(group: GroupId) -> Vec<u8> {
    tagged(group, PURGED)
}

/// Key present while a snapshot is being installed into `group`'s state (holding
/// the snapshot's meta): found at start-up, the install is redone from its file.
pub fn snapshot_installing(group: GroupId) -> Vec<u8> {
    tagged(group, INSTALLING)
}

/// Key present once this node deleted its replica of `group` (holding the vote the
/// replica had). A replica opened again blank has forgotten what it logged and voted,
/// so until this node is placed on the shard again it answers for the group to no
/// one: a candidate or leader acting on an old configuration that still lists this
/// node could otherwise count it toward a majority.
pub fn removed(group: GroupId) -> Vec<u8> {
    tagged(group, REMOVED)
}

/// Key of the state machine's applied log id and membership.
pub fn applied(group: GroupId) -> Vec<u8> {
    tagged(group, APPLIED)
}

/// Prefix of the state machine's records.
pub fn state_prefix(group: GroupId) -> Vec<u8> {
    tagged(group, STATE)
}

/// Key of a node-level setting.
pub fn node_meta(name: &str) -> Vec<u8> {
    let mut v = tagged(NODE_GROUP, b'M');
    v.extend_from_slice(name.as_bytes());
    v
}
