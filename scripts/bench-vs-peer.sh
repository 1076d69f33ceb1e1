#!/usr/bin/env bash
# Ingest throughput next to the peer, measured in one run on this machine, alternating:
#   peer     the original Kelemetry's per-event etcd protocol (span cache, diff cache,
#            links) against a real etcd 3.4 (../shared/tools/etcd-anchor)
#   1 node   kelemetry-bench against one in-process node (SHARDS shards)
#   3 nodes  kelemetry-bench against three node processes formed with --peers
#            (every shard replicated three times, leaders balanced)
# Prints each figure as it comes, then the medians and the ratios to the peer.
# Environment: ROUNDS (default 2), DURATION (default 20s), CLIENTS (8), BATCH (100),
# SHARDS (64).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-2}
duration=${DURATION:-20s}
clients=${CLIENTS:-8}
batch=${BATCH:-100}
shards=${SHARDS:-64}

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if ! command -v etcd >/dev/null; then
  echo "bench-vs-peer: installing etcd-server" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq etcd-server >/dev/null
fi
echo "bench-vs-peer: building (release)" >&2
cargo build --release -q -p kelemetry -p kelemetry-bench
CARGO_TARGET_DIR=target/etcd-anchor cargo build --release -q \
  --manifest-path ../shared/tools/etcd-anchor/Cargo.toml

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

etcd --data-dir "$work/etcd" --listen-client-urls http://127.0.0.1:23790 \
  --advertise-client-urls http://127.0.0.1:23790 --listen-peer-urls http://127.0.0.1:23800 \
  > "$work/etcd.log" 2>&1 &
pids+=($!)
sleep 2

peer() {
  target/etcd-anchor/release/etcd-anchor 127.0.0.1:23790 2000 10 24 \
    | sed -n 's/.*events_per_s=\([0-9.]*\).*/\1/p'
}

# Prints the bench's figure; its lines on owner links (delivered during the run, and
# still waiting at its end), on RocksDB's compaction debt at the run's start and end,
# and on CPU per event (the in-process node with its clients, or the three node
# processes) go to stderr beside the round's figure.
bench_figure() {
  tee "$work/bench.out" | sed -n 's/^ingest, durable ack.*: \([0-9]*\) events\/s.*/\1/p'
  grep -E '^(owner links|compaction debt|CPU per acknowledged event)' "$work/bench.out" >&2 || true
}

one_node() {
  target/release/kelemetry-bench --duration "$duration" --clients "$clients" --batch "$batch" \
    --shards "$shards" | bench_figure
}

three_nodes() {
  local dir="$work/ring" peers="" targets="" metrics="" node_pids=()
  rm -rf "$dir"
  for i in 0 1 2; do peers+="${peers:+,}$i=127.0.0.1:$((27170 + i))"; done
  for i in 0 1 2; do
    mkdir -p "$dir/n$i"
    RUST_LOG=warn target/release/kelemetry serve --data-dir "$dir/n$i" --node-id "$i" \
      --shards "$shards" --peers "$peers" --peer-addr "127.0.0.1:$((27170 + i))" \
      --http-addr "127.0.0.1:$((28080 + i))" --query-addr "127.0.0.1:$((26680 + i))" \
      --grpc-addr "127.0.0.1:$((27270 + i))" --metrics-addr "127.0.0.1:$((29090 + i))" \
      > "$dir/n$i.log" 2>&1 &
    node_pids+=($!)
    targets+="${targets:+,}http://127.0.0.1:$((28080 + i))"
    metrics+="${metrics:+,}http://127.0.0.1:$((29090 + i))"
  done
  for i in 0 1 2; do
    until curl -sf -o /dev/null "http://127.0.0.1:$((28080 + i))/readyz"; do sleep 0.5; done
  done
  # Wait until the leadership balancer has spread the shard leaders (each node leads
  # about a third) and nothing moves, so the run measures the steady ring.
  local stable=0
  for _ in $(seq 1 120); do
    if curl -s "http://127.0.0.1:28080/cluster/status" | python3 -c '
import json, sys
from collections import Counter
d = json.load(sys.stdin)
led = Counter(s["leader"] for s in d["shards"])
sys.exit(0 if d["shards_moving"] == 0 and len(led) == 3 and min(led.values()) >= len(d["shards"]) // 3 - 3 else 1)'; then
      stable=$((stable + 1))
      [ "$stable" -ge 3 ] && break
    else
      stable=0
    fi
    sleep 1
  done
  local pid_list
  pid_list=$(IFS=,; echo "${node_pids[*]}")
  target/release/kelemetry-bench --targets "$targets" --metrics "$metrics" --pids "$pid_list" \
    --duration "$duration" --clients "$clients" --batch "$batch" | bench_figure
  for p in "${node_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${node_pids[@]}"; do wait "$p" 2>/dev/null || true; done
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

: > "$work/peer"; : > "$work/one"; : > "$work/three"
for r in $(seq 1 "$rounds"); do
  p=$(peer); echo "round $r peer    $p events/s"; echo "$p" >> "$work/peer"
  o=$(one_node); echo "round $r 1 node  $o events/s"; echo "$o" >> "$work/one"
  t=$(three_nodes); echo "round $r 3 nodes $t events/s"; echo "$t" >> "$work/three"
done
P=$(median < "$work/peer"); O=$(median < "$work/one"); T=$(median < "$work/three")
echo "---"
echo "median over $rounds rounds ($clients clients x $batch events/request, $duration each):"
awk -v p="$P" -v o="$O" -v t="$T" 'BEGIN {
  printf "peer (etcd protocol)   %8.0f events/s\n", p
  printf "1 node                 %8.0f events/s  %5.1fx the peer\n", o, o / p
  printf "3 nodes (3 replicas)   %8.0f events/s  %5.1fx the peer\n", t, t / p
}'
