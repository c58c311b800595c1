#!/usr/bin/env bash
# Quickstart on a fresh machine with Rust and gcc (perl and make come with apt when
# missing): adds the Wasm target, builds sluice and the built-in plugins, runs
# examples/quickstart/pipeline.yaml. Honours CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build-plugins.sh
bash scripts/toolchains/native-build.sh
cargo build --release -p sluice
sluice=${CARGO_TARGET_DIR:-target}/release/sluice
"$sluice" validate examples/quickstart/pipeline.yaml
# A fresh quickstart each time: forget the previous run's checkpoint.
rm -rf target/quickstart
"$sluice" run examples/quickstart/pipeline.yaml
echo
echo "Output:       $(pwd)/target/quickstart/people.jsonl ($(wc -l < target/quickstart/people.jsonl) events)"
echo "First event:  $(head -n 1 target/quickstart/people.jsonl)"
echo "Run it again: $sluice run examples/quickstart/pipeline.yaml"
