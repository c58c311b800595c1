#!/usr/bin/env bash
# Installs real Debezium (the PostgreSQL connector in the Debezium Engine, no Kafka) as
# the oracle for the postgres-cdc source, under
# ${SLUICE_TOOLS:-$HOME/.cache/sluice-tools}/debezium-oracle/:
#
#   libs/     the jars of tests/debezium-oracle/pom.xml, resolved from Maven Central with
#             `mvn dependency:copy-dependencies` into a private local repository that is
#             deleted afterwards (the user's ~/.m2 stays untouched)
#   classes/  tests/debezium-oracle/src/DebeziumOracle.java compiled with javac
#
# Run it: java -cp "$ROOT/classes:$ROOT/libs/*" DebeziumOracle CONFIG OUT [COUNT] [TIMEOUT_S]
# (host/tests/all/debezium_oracle.rs does). Needs a JDK 17+ (java, javac) and mvn.
#
# Idempotent: the stamp names the Debezium version and a hash of the pom and the source,
# so a second run exits at once and a changed source is rebuilt. Parallel runs wait on a
# lock. The last line on stdout is the install directory; messages go to stderr. A
# failure (Maven Central unreachable, say) exits non-zero: the test then fails, never
# skips.
set -euo pipefail

DEBEZIUM_VERSION=3.6.1.Final
HERE="$(cd "$(dirname "$0")/../.." && pwd)/tests/debezium-oracle"
ROOT="${SLUICE_TOOLS:-$HOME/.cache/sluice-tools}/debezium-oracle"
HASH=$(cat "$HERE/pom.xml" "$HERE/src/DebeziumOracle.java" | sha256sum | cut -c1-12)
STAMP="$ROOT/.installed-$DEBEZIUM_VERSION-$HASH"

say() { echo "debezium-oracle: $*" >&2; }
die() { say "$*"; exit 1; }

if [[ -f "$STAMP" ]]; then
    say "already installed in $ROOT"
    echo "$ROOT"
    exit 0
fi
for tool in java javac "${MVN:-mvn}"; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (need a JDK 17+ and Maven)"
done
mkdir -p "$ROOT"
exec 8>"$ROOT/.lock"
flock -w 600 8 || die "timed out waiting for the install lock $ROOT/.lock"
if [[ -f "$STAMP" ]]; then
    echo "$ROOT"
    exit 0
fi
t0=$SECONDS
say "installing Debezium $DEBEZIUM_VERSION from Maven Central into $ROOT"
rm -rf "$ROOT/libs" "$ROOT/classes" "$ROOT/m2" "$ROOT"/.installed-*
"${MVN:-mvn}" -q -B -Dstyle.color=never -f "$HERE/pom.xml" -Dmaven.repo.local="$ROOT/m2" \
    -Ddebezium.version="$DEBEZIUM_VERSION" -DincludeScope=runtime \
    -DoutputDirectory="$ROOT/libs" dependency:copy-dependencies >"$ROOT/mvn.log" 2>&1 \
    || { tail -n 20 "$ROOT/mvn.log" >&2
         die "mvn could not resolve io.debezium:debezium-embedded:$DEBEZIUM_VERSION (is Maven Central reachable?)"; }
rm -rf "$ROOT/m2"
[[ -f $ROOT/libs/debezium-connector-postgres-$DEBEZIUM_VERSION.jar ]] \
    || die "no debezium-connector-postgres-$DEBEZIUM_VERSION.jar after mvn"
mkdir -p "$ROOT/classes"
javac -nowarn -d "$ROOT/classes" -cp "$ROOT/libs/*" "$HERE/src/DebeziumOracle.java" \
    || die "javac failed on $HERE/src/DebeziumOracle.java"
touch "$STAMP"
say "installed in $(( SECONDS - t0 ))s"
echo "$ROOT"
