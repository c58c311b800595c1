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
# wrote), which needs at least 50,000 lines. The pipeline runs on EVENTS'
# first 10,000 and first 50,000 lines; the difference divided by 40,000
# leaves out start-up (loading plugins, tables). Each run is made twice and
# the second counted: the first may compile plugins into the cache under
# valgrind's CPU model. Counts are user-space instructions: work the kernel
# does (page faults, system calls) does not show. Needs valgrind.
set -euo pipefail
shopt -s inherit_errexit

if [[ $# -lt 2 ]]; then
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
yaml=$1
events=$2
sluice=${3:-$(dirname "$0")/../target/release/sluice}
source "$(dirname "$0")/lib/event-samples.sh"
trap 'rm -rf "$work" "$copy"' EXIT
count() {
  local n=$1 refs="" log
  sample_of "$n"
  for _ in 1 2; do
    if ! log=$(valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
      "$sluice" run --reset "$copy" 2>&1 >/dev/null); then
      echo "the run on $n events failed:" >&2
      tail -n 20 <<<"$log" >&2
      exit 1
    fi
    refs=$(awk '/I *refs/ { gsub(",", "", $NF); print $NF }' <<<"$log")
  done
  [[ $refs =~ ^[0-9]+$ ]] || { echo "no instruction count in valgrind's output" >&2; exit 1; }
  echo "$refs"
}
small=$(count 10000)
large=$(count 50000)
echo "$yaml: $(((large - small) / 40000)) instructions per event ($small for 10,000 events, $large for 50,000)"
