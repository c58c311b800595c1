#!/usr/bin/env bash
# Local Elasticsearch/OpenSearch-API server for the `_bulk` sink's integration tests.
#
#   scripts/services/search.sh start    install (once) + start + wait until it answers HTTP
#   scripts/services/search.sh stop     stop the server started by `start`
#   scripts/services/search.sh status   up/down, URL, RSS (exit 0 if up, 1 otherwise)
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

OSMEM_VERSION=0.1.6
HOST=127.0.0.1
PORT=${SLUICE_ES_PORT:-19200}
TOOLS_ROOT="${SLUICE_TOOLS:-$HOME/.cache/sluice-tools}/services"
VENV="$TOOLS_ROOT/osmem-venv"
STAMP="$VENV/.installed-osmem-server-$OSMEM_VERSION"
RUN_DIR=${SLUICE_SERVICES_DIR:-/tmp/sluice-services}
PID_FILE="$RUN_DIR/search.pid"
LOG_FILE="$RUN_DIR/search.log"
ENV_FILE="$RUN_DIR/search.env"
START_TIMEOUT=30   # seconds
STOP_TIMEOUT=10    # seconds, then SIGKILL

say() { echo "search.sh: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# --- install -------------------------------------------------------------------------

# Path of the osmem-server binary inside the installed wheel (no Python import needed).
find_binary() {
    local b
    for b in "$VENV"/lib/python3*/site-packages/osmem_server/bin/osmem-server; do
        [[ -f $b ]] && { echo "$b"; return 0; }
    done
    return 1
}

install_osmem() {
    local bin
    if [[ -f $STAMP ]] && bin=$(find_binary) && [[ -x $bin ]]; then
        return 0
    fi
    mkdir -p "$TOOLS_ROOT"
    # Serialise concurrent installs (parallel test jobs on one machine).
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$TOOLS_ROOT/.osmem-install.lock"
        flock -w 300 9 || die "timed out waiting for the install lock $TOOLS_ROOT/.osmem-install.lock"
        if [[ -f $STAMP ]] && bin=$(find_binary) && [[ -x $bin ]]; then
            exec 9>&-; return 0
        fi
    fi
    say "installing osmem-server==$OSMEM_VERSION into $VENV"
    local py=${PYTHON:-python3}
    command -v "$py" >/dev/null 2>&1 || die "$py not found (need Python >= 3.8 with pip)"
    if [[ ! -x $VENV/bin/python ]]; then
        rm -rf "$VENV"
        "$py" -m venv "$VENV" || die "'$py -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)"
    fi
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "osmem-server==$OSMEM_VERSION" || die "pip install osmem-server==$OSMEM_VERSION failed"
    bin=$(find_binary) || die "osmem-server binary not found in the wheel (unsupported platform $(uname -sm)?)"
    chmod +x "$bin"
    "$bin" -version >&2 || die "$bin does not run on this machine"
    rm -f "$VENV"/.installed-osmem-server-*
    touch "$STAMP"
    { exec 9>&-; } 2>/dev/null || true
}

# --- process helpers -----------------------------------------------------------------

# PID from the pid file, only if that process is alive and really is osmem-server.
our_pid() {
    [[ -f $PID_FILE ]] || return 1
    local pid; pid=$(<"$PID_FILE")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    if [[ -r /proc/$pid/cmdline ]]; then
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'osmem-server' || return 1
    fi
    echo "$pid"
}

# URL the running server reported on its first stdout line (JSON: {"url":...,"pid":...}).
reported_url() {
    [[ -f $LOG_FILE ]] || return 1
    sed -n 's/^{"url":"\(http:\/\/[^"]*\)".*/\1/p' "$LOG_FILE" | head -n1 | grep .
}

answers() { curl -sf -o /dev/null --max-time 2 "$1/"; }

print_url() {
    echo "SLUICE_ES_URL=$1" >"$ENV_FILE"
    echo "SLUICE_ES_URL=$1"
}

# --- commands ------------------------------------------------------------------------

cmd_start() {
    command -v curl >/dev/null 2>&1 || die "curl is required"
    [[ $PORT =~ ^[0-9]+$ ]] || die "SLUICE_ES_PORT must be a number, got '$PORT'"
    mkdir -p "$RUN_DIR"

    local pid url
    if pid=$(our_pid); then
        url=$(reported_url || echo "http://$HOST:$PORT")
        if [[ $PORT != 0 && $url != "http://$HOST:$PORT" ]]; then
            die "already running (pid $pid) at $url, not on port $PORT; run '$0 stop' first"
        fi
        answers "$url" || die "pid $pid is running but $url does not answer; see $LOG_FILE or run '$0 stop'"
        say "already running (pid $pid)"
        print_url "$url"
        return 0
    fi
    rm -f "$PID_FILE" "$ENV_FILE"

    if [[ $PORT != 0 ]] && (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; then
        die "port $HOST:$PORT is already in use by another process; set SLUICE_ES_PORT to a free port (or 0)"
    fi

    install_osmem
    local bin; bin=$(find_binary) || die "osmem-server binary missing after install"

    local args=(-addr "$HOST:$PORT" -no-stdin-watch)
    [[ ${SLUICE_ES_JAPANESE:-0} == 1 ]] || args+=(-no-ja)

    # In-memory only: nothing on disk but the log. -no-stdin-watch because stdin is
    # /dev/null (the server would otherwise exit as soon as stdin closes).
    nohup "$bin" "${args[@]}" </dev/null >"$LOG_FILE" 2>&1 &
    pid=$!
    echo "$pid" >"$PID_FILE"

    local deadline=$(( SECONDS + START_TIMEOUT ))
    url=""
    while :; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PID_FILE"
            say "osmem-server exited during start-up; last log lines ($LOG_FILE):"
            tail -n 20 "$LOG_FILE" >&2 || true
            exit 1
        fi
        [[ -n $url ]] || url=$(reported_url || true)
        if [[ -n $url ]] && answers "$url"; then
            break
        fi
        if (( SECONDS >= deadline )); then
            kill "$pid" 2>/dev/null || true
            rm -f "$PID_FILE"
            say "osmem-server did not answer HTTP on ${url:-http://$HOST:$PORT} within ${START_TIMEOUT}s; last log lines ($LOG_FILE):"
            tail -n 20 "$LOG_FILE" >&2 || true
            exit 1
        fi
        sleep 0.1
    done
    say "osmem-server $OSMEM_VERSION up (pid $pid) at $url; log: $LOG_FILE"
    print_url "$url"
}

cmd_stop() {
    local pid
    if ! pid=$(our_pid); then
        rm -f "$PID_FILE" "$ENV_FILE"
        say "not running"
        return 0
    fi
    kill "$pid" 2>/dev/null || true
    local deadline=$(( SECONDS + STOP_TIMEOUT ))
    while kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        say "pid $pid ignored SIGTERM for ${STOP_TIMEOUT}s; sending SIGKILL"
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$PID_FILE" "$ENV_FILE"
    say "stopped (pid $pid)"
}

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

case ${1:-} in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
