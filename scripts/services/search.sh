#!/usr/bin/env bash
# Local Elasticsearch/OpenSearch-API server for the `_bulk` sink's integration tests.
#
#   scripts/services/search.sh start    install (once), start an empty in-memory
#                                       cluster, wait until it answers HTTP, print the
#                                       env line
#   scripts/services/search.sh stop     stop the server started by `start`; every index
#                                       is lost
#   scripts/services/search.sh status   up/down, URL, RSS (exit 0 if up, 1 otherwise)
#   scripts/services/search.sh --help   this text
#
# The server is osmem-server (PyPI `osmem-server`): a static Go binary shipped inside the
# wheel, an in-memory server speaking the OpenSearch 3.x REST API (_bulk, _search, _count,
# aliases, versioning, mappings). No JVM and no Docker; state lives in memory only, so
# every start is a fresh, empty cluster. It rejects the Elasticsearch 8 media type
# `compatible-with=8` (406): send plain application/json / application/x-ndjson.
#
# On success `start` prints exactly one line on stdout:
#     SLUICE_ES_URL=http://127.0.0.1:PORT
# (progress goes to stderr), so `export "$(scripts/services/search.sh start)"` works. The
# same line is written to $SLUICE_SERVICES_DIR/search.env.
#
# Env:
#   SLUICE_TOOLS         install root (default ~/.cache/sluice-tools); the venv goes
#                        to $SLUICE_TOOLS/services/osmem-venv and is reused when present
#   SLUICE_ES_PORT       port on 127.0.0.1 (default 19200; 0 = pick a free port)
#   SLUICE_SERVICES_DIR  run dir for search.pid / search.log / search.env
#                        (default /tmp/sluice-services)
#   PYTHON               interpreter used to create the venv (default python3)
#   SLUICE_ES_JAPANESE=1 keep Japanese analysis (kuromoji); default off (-no-ja, ~20 MB RSS)
set -euo pipefail
SERVICE=search
SERVER=osmem-server
# shellcheck source=scripts/services/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

OSMEM_VERSION=0.1.6
PORT=${SLUICE_ES_PORT:-19200}
VENV="$TOOLS_ROOT/osmem-venv"
STAMP="$VENV/.installed-osmem-server-$OSMEM_VERSION"
START_TIMEOUT=30   # seconds

# Path of the osmem-server binary inside the installed wheel (no Python import needed).
find_binary() {
    local b
    for b in "$VENV"/lib/python3*/site-packages/osmem_server/bin/osmem-server; do
        [[ -f $b ]] && { echo "$b"; return 0; }
    done
    return 1
}

installed() { local bin; [[ -f $STAMP ]] && bin=$(find_binary) && [[ -x $bin ]]; }

install_osmem() {
    installed && return 0
    venv_install "$VENV" installed 3.8 "osmem-server==$OSMEM_VERSION" -- "osmem-server==$OSMEM_VERSION"
    installed && return 0
    local bin
    bin=$(find_binary) || die "osmem-server binary not found in the wheel (unsupported platform $(uname -sm)?)"
    chmod +x "$bin"
    "$bin" -version >&2 || die "$bin does not run on this machine"
    venv_installed "$STAMP"
}

our_pid() { pid_of "$PID_FILE" osmem-server; }

# URL the running server reported on its first stdout line (JSON: {"url":...,"pid":...}).
reported_url() {
    [[ -f $LOG_FILE ]] || return 1
    sed -n 's/^{"url":"\(http:\/\/[^"]*\)".*/\1/p' "$LOG_FILE" | head -n1 | grep .
}

answers() { curl -sf -o /dev/null --max-time 2 "$1/"; }

# Ready once the server has reported its URL (the port may have been 0) and answers it.
reported_and_answers() {
    [[ -n $url ]] || url=$(reported_url || true)
    [[ -n $url ]] && answers "$url"
}

cmd_start() {
    command -v curl >/dev/null 2>&1 || die "curl is required"
    require_port SLUICE_ES_PORT zero-ok
    mkdir -p "$RUN_DIR"

    local pid url
    if pid=$(our_pid); then
        url=$(reported_url || echo "http://$HOST:$PORT")
        if [[ $PORT != 0 && $url != "http://$HOST:$PORT" ]]; then
            die "already running (pid $pid) at $url, not on port $PORT; run '$0 stop' first"
        fi
        answers "$url" || die "pid $pid is running but $url does not answer; see $LOG_FILE or run '$0 stop'"
        say "already running (pid $pid)"
        print_env "SLUICE_ES_URL=$url"
        return 0
    fi
    rm -f "${STATE_FILES[@]}"
    [[ $PORT == 0 ]] || require_free_port SLUICE_ES_PORT " (or 0)"

    install_osmem
    local bin; bin=$(find_binary) || die "osmem-server binary missing after install"

    local args=(-addr "$HOST:$PORT" -no-stdin-watch)
    [[ ${SLUICE_ES_JAPANESE:-0} == 1 ]] || args+=(-no-ja)

    # In-memory only: nothing on disk but the log. -no-stdin-watch because stdin is
    # /dev/null (the server would otherwise exit as soon as stdin closes).
    nohup "$bin" "${args[@]}" </dev/null >"$LOG_FILE" 2>&1 &
    pid=$!
    echo "$pid" >"$PID_FILE"
    url=""
    wait_ready "$pid" "$START_TIMEOUT" 0.1 "answer HTTP on http://$HOST:$PORT" -- reported_and_answers
    say "osmem-server $OSMEM_VERSION up (pid $pid) at $url; log: $LOG_FILE"
    print_env "SLUICE_ES_URL=$url"
}

cmd_stop() { stop_server; }

cmd_status() {
    local pid url rss
    if pid=$(our_pid); then
        url=$(reported_url || echo "http://$HOST:$PORT")
        rss=$(ps -o rss= -p "$pid" 2>/dev/null | tr -d ' ')
        if answers "$url"; then
            echo "search: up pid=$pid url=$url rss=${rss:-?}KB"
            return 0
        fi
        echo "search: NOT ANSWERING pid=$pid url=$url (see $LOG_FILE)"
        return 1
    fi
    echo "search: down"
    return 1
}

run_command "$@"
