#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz / libFuzzer) of the code that reads
# untrusted bytes: guest output batches, the pgoutput decoder, Avro in the
# Confluent wire format, the JsonConverter envelope, the SDK's JSON view, the expression language,
# pipeline files, and the Schema Registry's HTTP handlers.
#
#   scripts/fuzz.sh                       every target for 60 s each
#   scripts/fuzz.sh --seconds 600 avro_wire pipeline_yaml
#   scripts/fuzz.sh --list                the target names
#   scripts/fuzz.sh --help                this text
#
# The checks are fuzz/src/lib.rs; CI replays them on the corpus plus seeded mutations
# in the normal test build (host/tests/all/fuzz_replay.rs), because this script's
# instrumented build is a second full build. Run this for minutes per target before a
# release. Each run starts from the seeds in fuzz/corpus/<target>
# plus what earlier runs on this machine found ($SLUICE_FUZZ_DIR/corpus, kept
# out of the repository). A crash, an allocation over 256 MiB, or an input
# taking over 10 s fails the run; the input that did it is saved under
# $SLUICE_FUZZ_DIR/artifacts/<target>/ and reproduced with
#   cargo fuzz run <target> <that file>   (from the repository root).
#
# Build: instrumented for coverage, optimised, with debug assertions (so an
# integer overflow is a crash), without a sanitizer (the code is safe Rust;
# a sanitizer would halve the executions per second). It needs nightly -Z
# flags: the nightly toolchain if rustup has one, else the stable one with
# RUSTC_BOOTSTRAP=1. cargo-fuzz is installed into $SLUICE_TOOLS when absent.
#
# Env:
#   CARGO_TARGET_DIR  builds go to $CARGO_TARGET_DIR/fuzz (default target/fuzz)
#   SLUICE_FUZZ_DIR   corpus and artifacts (default target/fuzz-work)
#   SLUICE_TOOLS      tool install root (default ~/.cache/sluice-tools)
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=(output_batch wire_output lookup_keys pgoutput avro_wire json_converter json_view expression pipeline_yaml registry_http)
seconds=60
picked=()
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds="$2"; shift 2 ;;
        --list) printf '%s\n' "${TARGETS[@]}"; exit 0 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) picked+=("$1"); shift ;;
    esac
done
[ ${#picked[@]} -gt 0 ] || picked=("${TARGETS[@]}")
for t in "${picked[@]}"; do
    [[ " ${TARGETS[*]} " == *" $t "* ]] || { echo "fuzz.sh: no target '$t'; targets: ${TARGETS[*]}" >&2; exit 2; }
done

target_root="${CARGO_TARGET_DIR:-$PWD/target}"
work="${SLUICE_FUZZ_DIR:-$target_root/fuzz-work}"
tools="${SLUICE_TOOLS:-$HOME/.cache/sluice-tools}"
export PATH="$tools/cargo-fuzz/bin:$PATH"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "== installing cargo-fuzz into $tools/cargo-fuzz (once)" >&2
    cargo install --locked --quiet cargo-fuzz@0.13.2 --root "$tools/cargo-fuzz"
fi
toolchain=()
if rustup run nightly rustc --version >/dev/null 2>&1; then
    toolchain=(+nightly)
else
    # The stable compiler accepts the -Z flags cargo-fuzz passes when told
    # it is bootstrapping itself.
    export RUSTC_BOOTSTRAP=1
fi

echo "== building fuzz targets ($(cargo "${toolchain[@]}" --version))" >&2
start=$(date +%s)
# One build of the fuzz crate makes every target.
cargo "${toolchain[@]}" fuzz build -O --debug-assertions --sanitizer none \
    --target-dir "$target_root/fuzz" >&2
echo "== built in $(( $(date +%s) - start )) s" >&2

failed=()
printf '%-16s %8s %12s %10s  %s\n' target seconds executions exec/s result
for t in "${picked[@]}"; do
    mkdir -p "$work/corpus/$t" "$work/artifacts/$t"
    log="$work/$t.log"
    set +e
    cargo "${toolchain[@]}" fuzz run -O --debug-assertions --sanitizer none \
        --target-dir "$target_root/fuzz" "$t" "$work/corpus/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$seconds" -malloc_limit_mb=256 -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$work/artifacts/$t/" >"$log" 2>&1
    rc=$?
    set -e
    # A crashed run prints no final stats.
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
    if [ "$rc" -eq 0 ]; then
        result=ok
    else
        result="FAILED (exit $rc) $(ls "$work/artifacts/$t" | head -1 || true)"
        failed+=("$t")
        grep -E 'panicked|ERROR: libFuzzer|==ERROR|out-of-memory|timeout' "$log" | head -5 >&2 || true
    fi
    printf '%-16s %8s %12s %10s  %s\n' "$t" "$seconds" "${execs:-?}" "${rate:-?}" "$result"
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: ${#failed[@]} target(s) failed: ${failed[*]}; inputs in $work/artifacts, logs in $work/<target>.log" >&2
    exit 1
fi
