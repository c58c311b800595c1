#!/usr/bin/env bash
# Events/s into each sink from a file source (docs/performance.md): generates
# N orders into a JSON-lines file, then runs file -> sink for each sink type.
# Needs the search server: export "$(scripts/services/search.sh start)".
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200000}
cargo build --release -p sluice >&2
SLUICE=target/release/sluice
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/gen.yaml" <<YAML
sources: {gen: {type: datagen, kind: orders, count: $N}}
sinks: {out: {type: file, path: orders.jsonl, inputs: [gen]}}
YAML
$SLUICE -q run --no-progress "$work/gen.yaml"
run() { # name, sink yaml
  cat > "$work/$1.yaml" <<YAML
name: $1
sources: {orders: {type: file, path: orders.jsonl}}
sinks: {out: $2}
YAML
  local line
  line=$($SLUICE run --no-progress "$work/$1.yaml" 2>&1 | grep '^done:')
  echo "$1: ${line#done: }"
}
run file "{type: file, path: out.jsonl, inputs: [orders]}"
if [[ -n ${SLUICE_ES_URL:-} ]]; then
  run elasticsearch "{type: elasticsearch, url: '$SLUICE_ES_URL', index: bench-$$, id: field, id_field: order_id, inputs: [orders]}"
else
  echo "elasticsearch: skipped (no SLUICE_ES_URL; start scripts/services/search.sh)"
fi
