#!/usr/bin/env bash
# Memory soak of the watch path: one node (64 shards) watching a simulated cluster of
# 100 nodes (leases renewed every 10 s) running ten Deployments of 100 replicas, one
# Deployment scaled every 30 s, for DURATION seconds (default 600). Prints the node's
# and the simulator's RSS every 30 s, then the node's ingest counters and data size.
# Needs the release binaries: cargo build --release -p kelemetry -p kelemetry-sim
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${DURATION:-600}
bin=target/release
dir=$(mktemp -d)
trap 'kill "$node" "$sim" 2>/dev/null || true; rm -rf "$dir"' EXIT
"$bin/kelemetry-sim" --addr 127.0.0.1:0 --nodes 100 --kubeconfig-out "$dir/kc" \
  --audit-webhook http://127.0.0.1:18080/audit/soak > "$dir/sim.log" 2>&1 &
sim=$!
while [ ! -f "$dir/kc" ]; do sleep 0.1; done
RUST_LOG=warn "$bin/kelemetry" serve --data-dir "$dir/node" --shards 64 --cluster "soak=$dir/kc" \
  --http-addr 127.0.0.1:18080 --query-addr 127.0.0.1:26686 --metrics-addr 127.0.0.1:19090 \
  --grpc-addr 127.0.0.1:27271 --peer-addr 127.0.0.1:17070 > "$dir/node.log" 2>&1 &
node=$!
until curl -sf -o /dev/null 127.0.0.1:18080/readyz; do sleep 0.5; done
export KUBECONFIG=$dir/kc
start=$(date +%s)
for d in $(seq 0 9); do kubectl create deployment "d$d" --image=nginx:1 --replicas=100 > /dev/null; done
echo "seconds node_rss_kib sim_rss_kib pods"
i=0
while [ $(( $(date +%s) - start )) -lt "$duration" ]; do
  sleep 30
  i=$((i + 1))
  replicas=$(( i % 2 == 0 ? 90 : 100 ))
  kubectl scale deployment "d$(( i % 10 ))" --replicas=$replicas > /dev/null
  pods=$(kubectl get pods -o name | wc -l)
  echo "$(( $(date +%s) - start )) $(ps -o rss= -p "$node") $(ps -o rss= -p "$sim") $pods"
done
curl -s 127.0.0.1:19090/metrics | grep -E '^kelemetry_ingest_events_total'
du -sh "$dir/node"
