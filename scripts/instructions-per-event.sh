#!/usr/bin/env bash
# Instructions a pipeline executes per input event, counted by valgrind's
# cachegrind: deterministic to a fraction of a percent, where CPU seconds on
# a shared 2-core machine move 10-40 % from run to run. For A/B-testing a
# change too small for `sluice-bench` to resolve; the figures that count
# (CPU time against the native reference) still come from `sluice-bench`.
#
#   scripts/instructions-per-event.sh PIPELINE.yaml EVENTS.jsonl [SLUICE]
#
# PIPELINE.yaml must read EVENTS.jsonl (e.g. one `sluice-bench --work-dir`
# wrote). The pipeline runs on EVENTS' first 10,000 and first 50,000 lines;
# the difference divided by 40,000 leaves out start-up (loading plugins,
# tables). Each run is made twice and the second counted: the first may
# compile plugins into the cache under valgrind's CPU model.
# Needs valgrind (`apt-get install valgrind`); a 50,000-event run takes
# about half a minute.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
yaml=$1
events=$2
sluice=${3:-$(dirname "$0")/../target/release/sluice}
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
grep -qF "$events" "$yaml" || { echo "$yaml does not read $events" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
count() {
  local n=$1
  head -n "$n" "$events" > "$work/events-$n.jsonl"
  sed "s#$events#$work/events-$n.jsonl#g" "$yaml" > "$work/pipeline-$n.yaml"
  local refs=0
  for _ in 1 2; do
    refs=$(valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
      "$sluice" run --reset "$work/pipeline-$n.yaml" 2>&1 >/dev/null |
      awk '/I *refs/ { gsub(",", "", $NF); print $NF }')
  done
  echo "$refs"
}
small=$(count 10000)
large=$(count 50000)
echo "$yaml: $(( (large - small) / 40000 )) instructions per event ($small for 10,000 events, $large for 50,000)"
