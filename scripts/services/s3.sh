#!/usr/bin/env bash
# Local S3-compatible server for the `s3` sink's integration tests.
#
#   scripts/services/s3.sh start    install (once), start an empty in-memory store,
#                                   wait until it answers HTTP, print the env line
#   scripts/services/s3.sh stop     stop the server started by `start`; every bucket
#                                   and object is lost
#   scripts/services/s3.sh status   up/down, URL, RSS (exit 0 if up, 1 otherwise)
#   scripts/services/s3.sh --help   this text
#
# The server is moto's standalone server (PyPI `moto[server]`), an in-memory emulation
# of the S3 REST API (buckets, PUT/GET/LIST, multipart uploads) that accepts any
# credentials and answers path-style requests. No Docker; state lives in memory only,
# so every start is a fresh, empty store. The same venv also holds pyarrow (and boto3,
# which moto brings), so tests can read objects back with readers nobody here wrote.
# The first install downloads ~100 MB of wheels (the venv is ~490 MB) and takes ~1 min.
#
# On success `start` prints exactly one line on stdout:
#     SLUICE_S3_URL=http://127.0.0.1:PORT
# (progress goes to stderr), so `export "$(scripts/services/s3.sh start)"` works. The
# same line is written to $SLUICE_SERVICES_DIR/s3.env, and the venv's Python
# interpreter path (for pyarrow) to $SLUICE_SERVICES_DIR/s3.python.
#
# Env:
#   SLUICE_TOOLS         install root (default ~/.cache/sluice-tools); the venv goes
#                        to $SLUICE_TOOLS/services/moto-venv and is reused when present
#   SLUICE_S3_PORT       port on 127.0.0.1 (default 15000)
#   SLUICE_SERVICES_DIR  run dir for s3.pid / s3.log / s3.env / s3.python
#                        (default /tmp/sluice-services)
#   PYTHON               interpreter used to create the venv (default python3)
set -euo pipefail
SERVICE=s3
SERVER=moto_server
# shellcheck source=scripts/services/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MOTO_VERSION=5.2.5
PYARROW_VERSION=26.0.1
PORT=${SLUICE_S3_PORT:-15000}
VENV="$TOOLS_ROOT/moto-venv"
STAMP="$VENV/.installed-moto-$MOTO_VERSION-pyarrow-$PYARROW_VERSION"
PY_FILE="$RUN_DIR/s3.python"
STATE_FILES+=("$PY_FILE")
START_TIMEOUT=60   # seconds (moto imports a lot on first start)

installed() { [[ -f $STAMP && -x $VENV/bin/moto_server && -x $VENV/bin/python ]]; }

install_moto() {
    installed && return 0
    venv_install "$VENV" installed 3.9 "moto[server]==$MOTO_VERSION and pyarrow==$PYARROW_VERSION" -- \
        "moto[server]==$MOTO_VERSION" "pyarrow==$PYARROW_VERSION"
    installed && return 0
    "$VENV/bin/python" -c 'import pyarrow.parquet, moto, boto3' >&2 \
        || die "the installed packages do not import"
    venv_installed "$STAMP"
}

our_pid() { pid_of "$PID_FILE" moto_server; }

# moto answers GET / (ListBuckets) with 200 whatever the credentials.
answers() { curl -sf -o /dev/null --max-time 2 "$1/"; }

print_url() {
    echo "$VENV/bin/python" >"$PY_FILE"
    print_env "SLUICE_S3_URL=$1"
}

cmd_start() {
    command -v curl >/dev/null 2>&1 || die "curl is required"
    require_port SLUICE_S3_PORT
    mkdir -p "$RUN_DIR"
    local url="http://$HOST:$PORT" pid

    if pid=$(our_pid); then
        answers "$url" || die "pid $pid is running but $url does not answer; see $LOG_FILE or run '$0 stop'"
        say "already running (pid $pid)"
        print_url "$url"
        return 0
    fi
    rm -f "${STATE_FILES[@]}"
    require_free_port SLUICE_S3_PORT
    install_moto

    # In-memory only: nothing on disk but the log.
    nohup "$VENV/bin/moto_server" -H "$HOST" -p "$PORT" </dev/null >"$LOG_FILE" 2>&1 &
    pid=$!
    echo "$pid" >"$PID_FILE"
    wait_ready "$pid" "$START_TIMEOUT" 0.2 "answer HTTP on $url" -- answers "$url"
    say "moto_server $MOTO_VERSION up (pid $pid) at $url; log: $LOG_FILE; python with pyarrow: $VENV/bin/python"
    print_url "$url"
}

cmd_stop() { stop_server; }

cmd_status() {
    local pid url rss
    url=$(sed -n "s/^SLUICE_S3_URL=//p" "$ENV_FILE" 2>/dev/null | head -n1 || true)
    url=${url:-http://$HOST:$PORT}
    if pid=$(our_pid); then
        rss=$(ps -o rss= -p "$pid" 2>/dev/null | tr -d ' ')
        if answers "$url"; then
            echo "s3: up pid=$pid url=$url rss=${rss:-?}KB python=$VENV/bin/python"
            return 0
        fi
        echo "s3: NOT ANSWERING pid=$pid url=$url (see $LOG_FILE)"
        return 1
    fi
    echo "s3: down"
    return 1
}

run_command "$@"
