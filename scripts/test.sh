#!/usr/bin/env bash
# The whole test suite, on a fresh machine with only Rust installed:
# installs the Wasm target, builds the plugins and test guests, then runs
# unit, integration and doc tests (release profile: one build serves all).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
./scripts/build-plugins.sh --test-guests
cargo build --release -p sluice
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --release --workspace --no-fail-fast
else
  cargo test --release --workspace --no-fail-fast
fi
cargo test --release --workspace --doc
