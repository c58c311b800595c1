#!/usr/bin/env bash
# API fuzzing of `sluice serve`: schemathesis (PyPI) generates requests from the
# server's OpenAPI document (/v1/openapi.json) and checks every answer against it:
# no 5xx, status codes, content types, headers and bodies as documented, schema-
# violating requests refused, 405 for undocumented methods, auth enforced.
#
#   scripts/fuzz-api.sh                          100 cases per operation, per token
#   scripts/fuzz-api.sh --max-examples 10 --max-time 20    the quick CI run
#   scripts/fuzz-api.sh --seed 7 -- --phases fuzzing       more schemathesis options
#   scripts/fuzz-api.sh --help                   this text
#
# It starts its own server (release build: `cargo build --release -p sluice`) on a
# free port with a throwaway data dir, creates a tenant `fuzz` with the passthrough
# plugin and a running pipeline, and runs schemathesis twice: with the operator's
# token, then with the tenant's `admin`-scope token. The tenant's API rate is raised
# for the run so that requests reach the handlers (the 429 path is tested in
# host/tests/all/server.rs). Checks skipped per operation, and why:
# scripts/fuzz-api.toml. Exit status: 0 when both runs pass; the logs stay in
# $SLUICE_SERVICES_DIR/fuzz-api.* when one fails.
#
# Env:
#   CARGO_TARGET_DIR      where the sluice binary and plugins are (default target)
#   SLUICE_BIN            the sluice binary (default $CARGO_TARGET_DIR/release/sluice)
#   SLUICE_TOOLS          tool install root; schemathesis goes into its venv
#                         $SLUICE_TOOLS/schemathesis (default ~/.cache/sluice-tools)
#   SLUICE_SERVICES_DIR   run dir for the server's data and log (default /tmp/sluice-services)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

SCHEMATHESIS_VERSION=4.32.5
examples=100
max_time=()
seed=()
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --max-examples) examples="$2"; shift 2 ;;
        --max-time) max_time=(--max-time "$2"); shift 2 ;;
        --seed) seed=(--seed "$2"); shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        --) shift; extra=("$@"); break ;;
        *) echo "fuzz-api.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

say() { echo "fuzz-api.sh: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

target=${CARGO_TARGET_DIR:-$PWD/target}
sluice=${SLUICE_BIN:-$target/release/sluice}
[ -x "$sluice" ] || die "no $sluice; run cargo build --release -p sluice"
plugin=$target/wasm32-wasip2/release/sluice_plugin_passthrough.wasm
[ -f "$plugin" ] || plugin=$target/plugins/passthrough.wasm
[ -f "$plugin" ] || die "no passthrough plugin; run scripts/build-plugins.sh"

venv=${SLUICE_TOOLS:-$HOME/.cache/sluice-tools}/schemathesis
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    say "installing schemathesis $SCHEMATHESIS_VERSION into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi

run_root=${SLUICE_SERVICES_DIR:-/tmp/sluice-services}
mkdir -p "$run_root"
work=$(mktemp -d "$run_root/fuzz-api.XXXXXX")
pid=
cleanup() {
    if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$work/data" "$work/.schemathesis"
    # Logs are kept only when something failed.
    if [ "${status:-1}" = 0 ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

admin=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
cat >"$work/server.toml" <<TOML
listen = "127.0.0.1:0"
data_dir = "data"
# A live tap the fuzzer opens ends after 2 s instead of holding the run.
[tap]
max_seconds = 2
[tenants.fuzz]
api_requests_per_s = 100000
api_burst = 100000
TOML
SLUICE_ADMIN_TOKEN=$admin "$sluice" serve --config "$work/server.toml" >"$work/url" 2>"$work/server.log" &
pid=$!
for _ in $(seq 100); do
    grep -q SLUICE_SERVER_URL= "$work/url" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || die "the server exited; log: $work/server.log"
    sleep 0.1
done
url=$(sed -n 's/^SLUICE_SERVER_URL=//p' "$work/url")
[ -n "$url" ] || die "the server printed no URL; log: $work/server.log"
say "server at $url, data in $work"

api() { # api TOKEN METHOD PATH [curl args...]: the body, failing on an HTTP error
    local token=$1 method=$2 path=$3; shift 3
    curl -sS --fail-with-body -X "$method" -H "Authorization: Bearer $token" "$@" "$url$path"
}
api "$admin" POST /v1/tenants -d '{"name":"fuzz"}' >/dev/null
tenant=$(api "$admin" POST /v1/tenants/fuzz/tokens -d '{"scope":"admin"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
api "$tenant" POST '/v1/plugins?name=pass' --data-binary "@$plugin" >/dev/null
printf 'name: gen\nsources:\n  gen: {type: datagen, kind: people, rate: 10}\nstages:\n  copy: {plugin: pass, inputs: [gen]}\nsinks:\n  out: {type: file, path: gen.jsonl, inputs: [copy]}\n' |
    api "$tenant" POST /v1/pipelines --data-binary @- >/dev/null

status=0
for who in operator tenant; do
    token=$admin
    skip=()
    if [ "$who" = tenant ]; then
        token=$tenant
        # The tenant could revoke its own token and test nothing after; the
        # operator's run covers revoking.
        skip=(--exclude-operation-id revokeToken)
    fi
    say "schemathesis with the $who's token"
    # Throwaway tokens of a throwaway server: on the command line is fine.
    # Run from the work dir: schemathesis leaves its cache (.schemathesis/) there.
    (cd "$work" && "$venv/bin/schemathesis" --config-file "$repo/scripts/fuzz-api.toml" run \
        "$url/v1/openapi.json" -H "Authorization: Bearer $token" \
        --max-examples "$examples" "${max_time[@]}" "${seed[@]}" "${skip[@]}" --no-color \
        "${extra[@]}") 2>&1 | tee "$work/schemathesis-$who.log" | tail -n 25 || status=1
    # The summary above names a failure but not the request; print each one with
    # its curl reproduction so that a CI log alone is enough to fix it.
    sed -n '/^=* FAILURES =*$/,/^=* WARNINGS =*$/p' "$work/schemathesis-$who.log" | sed '$d' >&2
    grep -h "generated" "$work/schemathesis-$who.log" | sed "s/^/fuzz-api.sh: $who: /" >&2 || true
done
if grep -q "panicked\|request failed" "$work/server.log"; then
    say "the server log has errors:"; grep "panicked\|request failed" "$work/server.log" >&2; status=1
fi
[ $status = 0 ] && say "passed" || say "FAILED (logs in $work)"
exit $status
