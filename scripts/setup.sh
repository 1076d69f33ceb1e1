#!/usr/bin/env bash
# Installs what building Kelemetry needs on a Debian machine with Rust:
# RocksDB (linked from Debian's librocksdb-dev), libclang for its bindgen, and protoc
# for the gRPC code generated from proto/, and openssl (tests make peer TLS certificates).
# Safe to run repeatedly: it installs only what is missing.
set -euo pipefail

packages=(librocksdb-dev libclang1-14 libclang-common-14-dev protobuf-compiler openssl)
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

command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust (https://rustup.rs)" >&2; exit 1; }
