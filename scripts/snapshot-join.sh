#!/usr/bin/env bash
# A shard grown past 2 GiB on one node, then a second node joins and receives it by
# snapshot (a file streamed in chunks); prints both nodes' RSS every second and their
# largest values, the snapshot's bytes built and installed, and the time to install.
# Environment: PRELOAD (default 120s of ingest), BATCH (10 events per request: small
# proposals make many log entries, so the log is purged and the new replica needs a
# snapshot rather than the log), LEAVE_FREE_MIB (unset: off; else a ballast file
# leaves only this much free when node B joins, so the snapshot does not fit: node A
# must log that it waits for space, and the ballast is removed once it has).
set -euo pipefail
cd "$(dirname "$0")/.."
preload=${PRELOAD:-120s}
batch=${BATCH:-10}
echo "snapshot-join: building (release)" >&2
cargo build --release -q -p kelemetry -p kelemetry-bench
bin=target/release
work=$(mktemp -d)
pids=()
cleanup() {
  rm -f "${ballast:-}"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# serve ID PORT-PREFIX [FLAGS...]: one node of a one-shard ring with two replicas.
serve() {
  local id=$1 p=$2
  shift 2
  RUST_LOG=info "$bin/kelemetry" serve --data-dir "$work/n$id" --node-id "$id" --shards 1 \
    --replicas 2 --peer-addr "127.0.0.1:${p}70" --http-addr "127.0.0.1:${p}80" \
    --query-addr "127.0.0.1:${p}86" --metrics-addr "127.0.0.1:${p}90" \
    --grpc-addr "127.0.0.1:${p}71" "$@" > "$work/n$id.log" 2>&1 &
  pids+=($!)
}
rss() { awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$1/status" 2>/dev/null || echo 0; }
plain() { sed 's/\x1b\[[0-9;]*m//g' "$1"; }

serve 0 281
a=${pids[0]}
until curl -sf -o /dev/null http://127.0.0.1:28180/readyz; do sleep 0.5; done
echo "preloading node A for $preload ($batch events per request)"
"$bin/kelemetry-bench" --targets http://127.0.0.1:28180 --duration "$preload" --clients 8 \
  --batch "$batch" | grep -E "^ingest"
du -sh "$work/n0/db"
ballast="$(dirname "$work")/snapshot-join-ballast.$$"
if [ -n "${LEAVE_FREE_MIB:-}" ]; then
  free_mib=$(($(df --output=avail -k "$work" | tail -1) / 1024))
  fallocate -l "$(((free_mib - LEAVE_FREE_MIB) << 20))" "$ballast"
  echo "ballast: ${LEAVE_FREE_MIB} MiB left free of ${free_mib} MiB"
fi
echo "node B joins"
serve 1 282 --join 127.0.0.1:28170
b=${pids[1]}
start=$(date +%s)
max_a=0 max_b=0
while :; do
  ra=$(rss "$a") rb=$(rss "$b")
  [ "$ra" -gt "$max_a" ] && max_a=$ra
  [ "$rb" -gt "$max_b" ] && max_b=$rb
  t=$(($(date +%s) - start))
  echo "t=${t}s rss A=${ra} MiB B=${rb} MiB"
  plain "$work/n1.log" | grep -q "snapshot installed" && break
  if [ -f "$ballast" ] && plain "$work/n0.log" | grep -q "no room on the disk for a replica's snapshot"; then
    plain "$work/n0.log" | grep "no room on the disk" | tail -1
    rm -f "$ballast"
    echo "t=${t}s ballast removed"
  fi
  if [ "$t" -gt 900 ]; then
    echo "snapshot-join: no snapshot installed within 900 s" >&2
    exit 1
  fi
  sleep 1
done
echo "installed after $(($(date +%s) - start)) s; max RSS: sender A ${max_a} MiB, receiver B ${max_b} MiB"
plain "$work/n0.log" | grep -E "snapshot built|building the snapshot again" | tail -3
plain "$work/n1.log" | grep -E "snapshot installed" | tail -1
curl -s http://127.0.0.1:28190/metrics | grep -E "^kelemetry_snapshot_bytes_total"
curl -s http://127.0.0.1:28290/metrics | grep -E "^kelemetry_snapshot_bytes_total"
