#!/usr/bin/env bash
# The per-call cost of a user-defined function: one `project` stage over N
# events computing a field with the Rust example UDF (haversine_km), with a
# built-in expression of the same inputs, and with a constant. Prints each
# run's wall time and the median per mode; (udf - builtin) / N is the cost of
# a call. Needs `cargo build --release -p sluice` and
# `scripts/build-plugins.sh --test-guests`. Usage: scripts/bench-udf.sh [N] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
T=$(realpath "${CARGO_TARGET_DIR:-target}")
N=${1:-200000}
RUNS=${2:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$work/trips.jsonl" "$N" <<'PY'
import random, sys
random.seed(1)
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        f.write('{"id":%d,"from_lat":%.4f,"from_lon":%.4f,"to_lat":%.4f,"to_lon":%.4f}\n' % (
            i, random.uniform(-80, 80), random.uniform(-170, 170),
            random.uniform(-80, 80), random.uniform(-170, 170)))
PY
declare -A set=(
  [udf]='km: "haversine_km(from_lat, from_lon, to_lat, to_lon)"'
  [builtin]='km: "round(from_lat - to_lat + from_lon - to_lon, 1)"'
  [constant]='km: 0'
)
for mode in udf builtin constant; do
  cat > "$work/$mode.yaml" <<YAML
name: bench-udf-$mode
data_dir: $work/state
udfs:
  haversine_km: {plugin: $T/test-guests/haversine.wasm}
sources:
  in: {type: file, path: $work/trips.jsonl}
stages:
  d:
    plugin: $T/plugins/project.wasm
    inputs: [in]
    params:
      select: [id]
      set: {${set[$mode]}}
sinks:
  out: {type: file, path: $work/out-$mode.jsonl, inputs: [d]}
YAML
done
for mode in udf builtin constant; do
  times=()
  for _ in $(seq "$RUNS"); do
    rm -rf "$work/state" "$work"/out-*.jsonl
    t=$("$T/release/sluice" run "$work/$mode.yaml" 2>&1 | sed -n 's/^done: .* in \([0-9.]*\)s .*/\1/p')
    times+=("$t")
  done
  median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")
  echo "$mode: ${times[*]} s; median $median s over $N events"
done
