#!/usr/bin/env bash
# Events/s into each sink from a file source (docs/performance.md): generates
# N orders into a JSON-lines file, then runs file -> sink for each sink type.
# Needs the servers: export "$(scripts/services/search.sh start)" and
# export "$(scripts/services/s3.sh start)" (a bucket `bench` is created).
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
if [[ -n ${SLUICE_S3_URL:-} ]]; then
  py=$(cat "${SLUICE_SERVICES_DIR:-/tmp/sluice-services}/s3.python")
  "$py" -c "import boto3; boto3.client('s3', endpoint_url='$SLUICE_S3_URL', aws_access_key_id='test', aws_secret_access_key='test', region_name='us-east-1').create_bucket(Bucket='bench')" 2>/dev/null || true
  for fmt in json avro parquet; do
    run "s3-$fmt" "{type: s3, endpoint: '$SLUICE_S3_URL', bucket: bench, prefix: $fmt-$$, access_key_id: test, secret_access_key: test, format: $fmt, flush_size: 50000, inputs: [orders]}"
  done
else
  echo "s3: skipped (no SLUICE_S3_URL; start scripts/services/s3.sh)"
fi
