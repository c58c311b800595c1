#!/usr/bin/env bash
# The whole test suite, on a fresh machine with only Rust installed:
# installs the Wasm target and the plugin toolchains of other languages
# (cached under $SLUICE_TOOLS), builds the plugins and test guests, then runs
# unit, integration and doc tests (release profile: one build serves all).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
export SLUICE_TOOLS=${SLUICE_TOOLS:-$HOME/.cache/sluice-tools}
for installer in scripts/toolchains/*.sh; do
  [[ -e $installer ]] || continue
  echo "== toolchain: $installer"
  bash "$installer"
done
for env in "$SLUICE_TOOLS"/*/env.sh; do
  [[ -e $env ]] || continue
  # shellcheck source=/dev/null
  source "$env"
done
echo "== language SDK and example unit tests (native toolchains)"
python3 -m unittest discover -s sdk/python/tests
PYTHONPATH=sdk/python python3 -m unittest discover -s examples/plugins/python
PYTHONPATH=sdk/python python3 -m unittest discover -s examples/connectors/webhook-sink-py
PYTHONPATH=sdk/python python3 -m unittest discover -s examples/udfs/mask-email-py
node --test sdk/js/test
(cd examples/plugins/js && npm test --silent)
(cd examples/plugins/ts && npm test --silent)
(cd examples/connectors/search-bulk-js && npm test --silent)
(cd sdk/go && go test ./...)
(cd examples/plugins/go && go test ./...)
make -s -C sdk/c test
make -s -C examples/plugins/c test
echo "== services for integration tests"
# The search server (OpenSearch API emulation, PyPI osmem-server); stopped on exit.
export "$(scripts/services/search.sh start)"
# The S3 server (S3 API emulation, PyPI moto[server]; its venv also has pyarrow
# for reading Parquet back with a reader nobody here wrote).
export "$(scripts/services/s3.sh start)"
# PostgreSQL 15 (Debian package, wal_level=logical, fresh throwaway cluster), with TLS
# on for role sluice_tls only (hostssl-only; every other role keeps plaintext).
export SLUICE_PG_TLS_DIR=${SLUICE_SERVICES_DIR:-/tmp/sluice-services}/pg-tls
export "$(scripts/services/postgres.sh start)"
# MariaDB 10.11 (Debian package, fresh throwaway datadir, user/database etl).
export "$(scripts/services/mariadb.sh start)"
# A second MariaDB with TLS and require_secure_transport=ON, for mysql_tls.rs.
MYSQL_TLS_RUN=${SLUICE_SERVICES_DIR:-/tmp/sluice-services}/mariadb-tls
SLUICE_MYSQL_TLS_URL=$(SLUICE_SERVICES_DIR=$MYSQL_TLS_RUN SLUICE_MYSQL_PORT=$((${SLUICE_MYSQL_PORT:-13306} + 1)) \
    SLUICE_MYSQL_TLS_DIR=$MYSQL_TLS_RUN/certs scripts/services/mariadb.sh start | sed 's/^SLUICE_MYSQL_URL=//')
export SLUICE_MYSQL_TLS_URL SLUICE_MYSQL_TLS_DIR=$MYSQL_TLS_RUN/certs
# The MongoDB-wire server (an emulation with change streams, PyPI nx-27017; no real
# mongod installs here), for the mongodb source and sink.
export "$(scripts/services/mongo.sh start)"
# FerretDB 1.24 (Go module, built once; an independent MongoDB-wire server over SQLite)
# with TLS and a SCRAM user, for mongo_tls.rs: nx-27017 has neither.
export "$(scripts/services/ferretdb.sh start)"
# Apache Kafka 4.4 (KRaft; jars from Maven Central once, run on the JDK; a venv with
# confluent-kafka with Avro for cross-checking the Schema Registry, the wire format and
# read_committed reads of exactly-once output). With SSL, SASL_SSL and SASL_PLAINTEXT
# listeners beside the plaintext one, for kafka_tls.rs.
export SLUICE_KAFKA_TLS_DIR=${SLUICE_SERVICES_DIR:-/tmp/sluice-services}/kafka-tls
export "$(scripts/services/kafka.sh start)"
# Debian's Chromium and playwright-core (npm ci, pinned by its lock file) for the web
# console's browser tests; nothing runs until a test launches it.
export "$(scripts/services/chromium.sh start)"
trap 'for s in search s3 postgres mariadb mongo ferretdb kafka chromium; do scripts/services/$s.sh stop >/dev/null 2>&1 || true; done
      SLUICE_SERVICES_DIR=$MYSQL_TLS_RUN scripts/services/mariadb.sh stop >/dev/null 2>&1 || true' EXIT
echo "== Rust"
./scripts/build-plugins.sh --test-guests
cargo build --release -p sluice -p sluice-bench
echo "== benchmark, quick: Sluice against hand-written Rust (prints figures, asserts no timing)"
# Fails only if Sluice and the native reference disagree on the records.
bench_dir=$(mktemp -d)
# Removed at the end; a failing scan exits first, and leaves it for a look.
"${CARGO_TARGET_DIR:-target}/release/sluice-bench" --quick --work-dir "$bench_dir"
echo "== benchmark, quick: the host's JSON scanner against serde_json (prints figures; fails only if a scan refuses a line)"
for shape in orders wide nested unicode; do
  "${CARGO_TARGET_DIR:-target}/release/sluice-bench" scan "$bench_dir/$shape.jsonl" --runs 1
done
rm -rf "$bench_dir"
echo "== benchmark, quick: hot-swap stall under load (prints figures; fails only if a swap fails)"
"${CARGO_TARGET_DIR:-target}/release/sluice-bench" --swap --swaps 3
echo "== API fuzzing, quick: schemathesis against sluice serve's OpenAPI document (< 1 min)"
# A fixed seed, so that a CI run fails only on a change, not on the draw; long runs
# with fresh seeds are for scripts/fuzz-api.sh by hand (docs/server.md).
scripts/fuzz-api.sh --max-examples 10 --max-time 20 --seed 20261203
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --release --workspace --no-fail-fast
else
  cargo test --release --workspace --no-fail-fast
fi
cargo test --release --workspace --doc
