#!/usr/bin/env bash
# The test command: installs what is missing, checks formatting and lints, then runs
# every test (unit, RocksDB, actor and end-to-end process tests) with one build profile.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast "$@"
else
  cargo test --workspace --locked --no-fail-fast "$@"
fi
