#!/usr/bin/env bash
# Local S3-compatible server for the `s3` sink's integration tests.
#
#   scripts/services/s3.sh start    install (once) + start + wait until it answers HTTP
#   scripts/services/s3.sh stop     stop the server started by `start`
#   scripts/services/s3.sh status   up/down, URL, RSS (exit 0 if up, 1 otherwise)
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

MOTO_VERSION=5.2.5
PYARROW_VERSION=26.0.1
HOST=127.0.0.1
PORT=${SLUICE_S3_PORT:-15000}
TOOLS_ROOT="${SLUICE_TOOLS:-$HOME/.cache/sluice-tools}/services"
VENV="$TOOLS_ROOT/moto-venv"
STAMP="$VENV/.installed-moto-$MOTO_VERSION-pyarrow-$PYARROW_VERSION"
RUN_DIR=${SLUICE_SERVICES_DIR:-/tmp/sluice-services}
PID_FILE="$RUN_DIR/s3.pid"
LOG_FILE="$RUN_DIR/s3.log"
ENV_FILE="$RUN_DIR/s3.env"
PY_FILE="$RUN_DIR/s3.python"
START_TIMEOUT=60   # seconds (moto imports a lot on first start)
STOP_TIMEOUT=10    # seconds, then SIGKILL

say() { echo "s3.sh: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# --- install -------------------------------------------------------------------------

installed() { [[ -f $STAMP && -x $VENV/bin/moto_server && -x $VENV/bin/python ]]; }

install_moto() {
    installed && return 0
    mkdir -p "$TOOLS_ROOT"
    # Serialise concurrent installs (parallel test jobs on one machine).
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$TOOLS_ROOT/.moto-install.lock"
        flock -w 600 9 || die "timed out waiting for the install lock $TOOLS_ROOT/.moto-install.lock"
        if installed; then exec 9>&-; return 0; fi
    fi
    say "installing moto[server]==$MOTO_VERSION and pyarrow==$PYARROW_VERSION into $VENV"
    local py=${PYTHON:-python3}
    command -v "$py" >/dev/null 2>&1 || die "$py not found (need Python >= 3.9 with pip)"
    if [[ ! -x $VENV/bin/python ]]; then
        rm -rf "$VENV"
        "$py" -m venv "$VENV" || die "'$py -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)"
    fi
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "moto[server]==$MOTO_VERSION" "pyarrow==$PYARROW_VERSION" \
        || die "pip install moto[server]==$MOTO_VERSION pyarrow==$PYARROW_VERSION failed"
    "$VENV/bin/python" -c 'import pyarrow.parquet, moto, boto3' >&2 \
        || die "the installed packages do not import"
    rm -f "$VENV"/.installed-moto-*
    touch "$STAMP"
    { exec 9>&-; } 2>/dev/null || true
}

# --- process helpers -----------------------------------------------------------------

# PID from the pid file, only if that process is alive and really is moto_server.
our_pid() {
    [[ -f $PID_FILE ]] || return 1
    local pid; pid=$(<"$PID_FILE")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    if [[ -r /proc/$pid/cmdline ]]; then
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'moto_server' || return 1
    fi
    echo "$pid"
}

# moto answers GET / (ListBuckets) with 200 whatever the credentials.
answers() { curl -sf -o /dev/null --max-time 2 "$1/"; }

print_url() {
    echo "SLUICE_S3_URL=$1" >"$ENV_FILE"
    echo "$VENV/bin/python" >"$PY_FILE"
    echo "SLUICE_S3_URL=$1"
}

# --- commands ------------------------------------------------------------------------

cmd_start() {
    command -v curl >/dev/null 2>&1 || die "curl is required"
    [[ $PORT =~ ^[0-9]+$ && $PORT != 0 ]] || die "SLUICE_S3_PORT must be a port number, got '$PORT'"
    mkdir -p "$RUN_DIR"
    local url="http://$HOST:$PORT" pid

    if pid=$(our_pid); then
        answers "$url" || die "pid $pid is running but $url does not answer; see $LOG_FILE or run '$0 stop'"
        say "already running (pid $pid)"
        print_url "$url"
        return 0
    fi
    rm -f "$PID_FILE" "$ENV_FILE" "$PY_FILE"

    if (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; then
        die "port $HOST:$PORT is already in use by another process; set SLUICE_S3_PORT to a free port"
    fi

    install_moto

    # In-memory only: nothing on disk but the log.
    nohup "$VENV/bin/moto_server" -H "$HOST" -p "$PORT" </dev/null >"$LOG_FILE" 2>&1 &
    pid=$!
    echo "$pid" >"$PID_FILE"

    local deadline=$(( SECONDS + START_TIMEOUT ))
    until answers "$url"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PID_FILE"
            say "moto_server exited during start-up; last log lines ($LOG_FILE):"
            tail -n 20 "$LOG_FILE" >&2 || true
            exit 1
        fi
        if (( SECONDS >= deadline )); then
            kill "$pid" 2>/dev/null || true
            rm -f "$PID_FILE"
            say "moto_server did not answer HTTP on $url within ${START_TIMEOUT}s; last log lines ($LOG_FILE):"
            tail -n 20 "$LOG_FILE" >&2 || true
            exit 1
        fi
        sleep 0.2
    done
    say "moto_server $MOTO_VERSION up (pid $pid) at $url; log: $LOG_FILE; python with pyarrow: $VENV/bin/python"
    print_url "$url"
}

cmd_stop() {
    local pid
    if ! pid=$(our_pid); then
        rm -f "$PID_FILE" "$ENV_FILE" "$PY_FILE"
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
    rm -f "$PID_FILE" "$ENV_FILE" "$PY_FILE"
    say "stopped (pid $pid)"
}

cmd_status() {
    local pid url rss
    url=$(sed -n "s/^SLUICE_S3_URL=//p" "$ENV_FILE" 2>/dev/null | head -n1)
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

case ${1:-} in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
