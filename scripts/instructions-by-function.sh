#!/usr/bin/env bash
# Where a pipeline's instructions per input event go, function by function,
# guest (Wasm) functions included: callgrind on EVENTS' first 10,000 and
# first 50,000 lines, the difference divided by 40,000 (start-up left out),
# as scripts/instructions-per-event.sh counts the total.
#
#   scripts/instructions-by-function.sh PIPELINE.yaml EVENTS.jsonl [ROWS] [SLUICE]
#
# Prints the total (callgrind's count, within about 1 % of
# instructions-per-event.sh's), the guests' share, then the ROWS (default 40)
# largest functions. Guest functions are named from the perf map Wasmtime writes
# under SLUICE_WASM_PERFMAP: `wasm[0]::function[N]` alone unless the plugin
# keeps its name section. To keep it, build the plugins the way
# scripts/build-plugins.sh does but with CARGO_PROFILE_RELEASE_STRIP=false,
# into a target dir of their own (so the shared one keeps its stripped
# build), and point PIPELINE.yaml at those .wasm files. Costs are exclusive
# (each function's own instructions). KEEP_WORK=1 keeps callgrind's outputs
# (for callgrind_annotate) and says where. Needs valgrind and python3.
set -euo pipefail
shopt -s inherit_errexit

if [[ $# -lt 2 ]]; then
  sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
yaml=$1
events=$2
rows=${3:-40}
sluice=${4:-$(dirname "$0")/../target/release/sluice}
source "$(dirname "$0")/lib/event-samples.sh"
trap 'rm -rf "$copy"; [[ -n ${KEEP_WORK:-} ]] || rm -rf "$work"' EXIT
# A cache of its own: the guests are compiled by a first, unmeasured run,
# and loaded from it (and named in the perf map) by the measured one.
export SLUICE_CACHE_DIR=$work/cache
profile() {
  local n=$1 log pid
  sample_of "$n"
  # The cache key holds the CPU's features, which valgrind's CPU lacks some
  # of, and the engine's configuration, the perf map included: the warm-up
  # runs under valgrind (without instrumenting) and writes a map too.
  SLUICE_WASM_PERFMAP=1 valgrind --tool=none "$sluice" run --reset "$copy" >/dev/null 2>&1 &
  pid=$!
  wait "$pid" || true
  rm -f "/tmp/perf-$pid.map"
  SLUICE_WASM_PERFMAP=1 valgrind --tool=callgrind --callgrind-out-file="$work/cg-$n.out" \
    "$sluice" run --reset "$copy" >/dev/null 2>"$work/log-$n" &
  pid=$!
  if ! wait "$pid"; then
    echo "the run on $n events failed:" >&2
    tail -n 20 "$work/log-$n" >&2
    exit 1
  fi
  # Wasmtime names the map after the process, which under valgrind is this one.
  mv "/tmp/perf-$pid.map" "$work/map-$n" 2>/dev/null || : >"$work/map-$n"
  callgrind_annotate --threshold=100 --auto=no "$work/cg-$n.out" >"$work/fn-$n.txt"
}
profile 10000
profile 50000

python3 - "$work" "$rows" "$yaml" <<'PY'
import bisect, collections, re, sys

work, rows, yaml = sys.argv[1], int(sys.argv[2]), sys.argv[3]

def functions(n):
    spans = []
    for line in open(f"{work}/map-{n}"):
        parts = line.split(" ", 2)
        if len(parts) == 3:
            spans.append((int(parts[0], 16), int(parts[1], 16), parts[2].strip()))
    spans.sort()
    starts = [s[0] for s in spans]
    costs, total = collections.Counter(), 0
    for line in open(f"{work}/fn-{n}.txt"):
        m = re.match(r"^ *([0-9,]+) \([^)]*\) +(.*)$", line)
        if not m:
            continue
        cost, name = int(m.group(1).replace(",", "")), m.group(2)
        if "PROGRAM TOTALS" in name:
            total = cost
            continue
        name = re.sub(r" \[.*\]$", "", name)
        address = re.match(r"\?\?\?:(0x[0-9a-f]+)", name)
        if address:
            a = int(address.group(1), 16)
            i = bisect.bisect_right(starts, a) - 1
            if i >= 0 and spans[i][0] <= a < spans[i][0] + spans[i][1]:
                name = "guest " + spans[i][2]
        else:
            name = name.split(":", 1)[-1]  # drop the source file
        costs[re.sub(r"17h[0-9a-f]{16}E$", "", name)] += cost
    return costs, total

(small, small_total), (large, large_total) = functions(10000), functions(50000)
per_event = sorted(
    ((large[k] - small[k]) / 40000, k) for k in set(small) | set(large)
)[::-1]
guest = sum(v for v, k in per_event if k.startswith("guest ") or k.startswith("???"))
print(f"{yaml}: {(large_total - small_total) / 40000:.0f} instructions per event, "
      f"{guest:.0f} of them in guest code")
for v, k in per_event[:rows]:
    print(f"{v:8.0f}  {k[:160]}")
PY
if [[ -n ${KEEP_WORK:-} ]]; then
  echo "callgrind outputs kept in $work" >&2
fi
