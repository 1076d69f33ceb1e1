#!/usr/bin/env bash
# Runs one Kelemetry node on an embedded default: data in ./kelemetry-data, no external
# services. Audit webhook and /readyz on :8080, Jaeger API on :16686, metrics on :9090.
# Extra arguments go to `kelemetry serve` (see `kelemetry serve --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec cargo run --release --locked -p kelemetry --bin kelemetry -- serve \
  --data-dir ./kelemetry-data --default-cluster local "$@"
