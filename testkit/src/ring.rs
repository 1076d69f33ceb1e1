//! What the nodes report about the ring through `GET /cluster/status`: which shards
//! each holds and who it sees leading them.

use crate::client::Client;
use std::collections::BTreeMap;

/// The shards the node at `http` holds a placed replica of, with the leader it sees
/// for each (`None` while the shard has none); `None` when the node does not answer.
pub fn local_leaders(client: &Client, http: &str) -> Option<BTreeMap<u32, Option<u64>>> {
    let (status, v) = client
        .get_json(&format!("http://{http}/cluster/status"))
        .ok()?;
    if status != 200 {
        return None;
    }
    let me = v["node"].as_u64()?;
    Some(
        v["shards"]
            .as_array()?
            .iter()
            .filter(|s| s["local"] == true)
            .filter(|s| {
                s["replicas"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|n| n.as_u64() == Some(me)))
            })
            .filter_map(|s| Some((s["shard"].as_u64()? as u32, s["leader"].as_u64())))
            .collect(),
    )
}

/// The leader of `shard` as the first of `nodes` (webhook addresses) holding a
/// replica of it sees it: a replica hears from its leader, so its view is current.
pub fn leader_of(client: &Client, nodes: &[&str], shard: u32) -> Option<u64> {
    nodes
        .iter()
        .filter_map(|n| local_leaders(client, n)?.get(&shard).copied().flatten())
        .next()
}
