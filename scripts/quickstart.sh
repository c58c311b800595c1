#!/usr/bin/env bash
# Quickstart on a fresh machine with only Rust installed: adds the Wasm target,
# builds sluice and the built-in plugins, runs examples/quickstart/pipeline.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build-plugins.sh
bash scripts/toolchains/native-build.sh
cargo build --release -p sluice
./target/release/sluice validate examples/quickstart/pipeline.yaml
# A fresh quickstart each time: forget the previous run's checkpoint.
rm -rf target/quickstart
./target/release/sluice run examples/quickstart/pipeline.yaml
echo
echo "Output:       $(pwd)/target/quickstart/people.jsonl ($(wc -l < target/quickstart/people.jsonl) events)"
echo "First event:  $(head -n 1 target/quickstart/people.jsonl)"
echo "Run it again: target/release/sluice run examples/quickstart/pipeline.yaml"
