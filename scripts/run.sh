#!/usr/bin/env bash
# Runs Kelemetry on an embedded default: a three-node ring on this machine (data in a
# temporary directory, no external services) fed by a simulated Kubernetes cluster
# (audit webhook and Event watcher) that runs a scripted Deployment rollout. The first
# node serves the audit webhook and /redirect on :8080 and the Jaeger API on :16686,
# with the Jaeger UI when ../shared/jaeger-ui holds a build. Ctrl-C stops everything.
# Extra arguments go to kelemetry-demo (see `kelemetry-demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --release --locked -p kelemetry -p kelemetry-sim -p kelemetry-testkit --bins
ui=()
if [ -f ../shared/jaeger-ui/index.html ]; then
  ui=(--ui-dir ../shared/jaeger-ui)
fi
exec target/release/kelemetry-demo "${ui[@]}" "$@"
