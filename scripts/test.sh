#!/usr/bin/env bash
# The test command: installs what is missing, checks formatting and lints, then runs
# every test (unit, RocksDB, actor and end-to-end process tests) with one build profile.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# End-to-end tests start the workspace's binaries (kelemetry, kelemetry-sim,
# kelemetry-demo) from the build directory; a package's binaries are built for its
# own integration tests only, so all of them are built first.
cargo build --workspace --bins --locked
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast "$@"
else
  cargo test --workspace --locked --no-fail-fast "$@"
fi
