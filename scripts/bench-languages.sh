#!/usr/bin/env bash
# Per-language figures for docs/performance.md: builds every example of
# examples/plugins/<lang> with `sluice plugin build` and runs
# `sluice-bench --component` on the same workload (the sample events,
# repeated to 200,000). Toolchains must be installed (scripts/toolchains/).
set -euo pipefail
cd "$(dirname "$0")/.."
export SLUICE_TOOLS=${SLUICE_TOOLS:-$HOME/.cache/sluice-tools}
for env in "$SLUICE_TOOLS"/*/env.sh; do
  [[ -e $env ]] || continue
  # shellcheck source=/dev/null
  source "$env"
done
cargo build --release -p sluice -p sluice-bench >&2
SLUICE=target/release/sluice
BENCH=target/release/sluice-bench
for dir in examples/plugins/*/; do
  lang=$(basename "$dir")
  if ! wasm=$($SLUICE plugin build "$dir" 2>/dev/null | tail -n 1) || [[ -z $wasm ]]; then
    echo "$lang: build failed (is its toolchain installed? see $dir/README.md)"
    continue
  fi
  printf '%s: ' "$lang"
  $BENCH --component "$wasm" --input examples/plugins/events.jsonl --events 200000
done
