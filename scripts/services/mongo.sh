#!/usr/bin/env bash
# Local MongoDB-wire server for the `mongodb` source's and sink's integration tests.
#
#   scripts/services/mongo.sh start    install (once) + start + wait until it answers `ping`
#   scripts/services/mongo.sh stop     stop the server started by `start`
#   scripts/services/mongo.sh status   up/down, URL, RSS (exit 0 if up, 1 otherwise)
#
# The server is nx-27017 (PyPI `nx-27017`): an *emulation* of MongoDB that speaks the
# wire protocol over SQLite, with emulated change streams. No real `mongod` can be
# installed on these machines (every MongoDB package downloads binaries at run time).
# Known gaps (the tests mark where they matter): no replica set (connect with
# `directConnection=true`), a replace is reported as an update, no `updateDescription`,
# `documentKey._id` comes back as a string, `clusterTime` is not a BSON Timestamp, and
# deletes carry `fullDocument`. Every start uses a fresh, empty data directory.
# It depends on pymongo, which the readiness check uses as an independent client.
#
# On success `start` prints exactly one line on stdout:
#     SLUICE_MONGO_URL=mongodb://127.0.0.1:PORT/?directConnection=true
# (progress goes to stderr), so `export "$(scripts/services/mongo.sh start)"` works. The
# same line is written to $SLUICE_SERVICES_DIR/mongo.env.
#
# Env:
#   SLUICE_TOOLS         install root (default ~/.cache/sluice-tools); the venv goes
#                        to $SLUICE_TOOLS/services/mongo-venv and is reused when present
#   SLUICE_MONGO_PORT    port on 127.0.0.1 (default 17017)
#   SLUICE_SERVICES_DIR  run dir for mongo.pid / mongo.log / mongo.env, the server's own
#                        mongo-server.{pid,log} and the data dir mongo-data/
#                        (default /tmp/sluice-services)
#   PYTHON               interpreter used to create the venv (default python3)
set -euo pipefail

NX_VERSION=0.8.1
HOST=127.0.0.1
PORT=${SLUICE_MONGO_PORT:-17017}
TOOLS_ROOT="${SLUICE_TOOLS:-$HOME/.cache/sluice-tools}/services"
VENV="$TOOLS_ROOT/mongo-venv"
STAMP="$VENV/.installed-nx-27017-$NX_VERSION"
RUN_DIR=${SLUICE_SERVICES_DIR:-/tmp/sluice-services}
PID_FILE="$RUN_DIR/mongo.pid"
LOG_FILE="$RUN_DIR/mongo.log"
ENV_FILE="$RUN_DIR/mongo.env"
DATA_DIR="$RUN_DIR/mongo-data"
START_TIMEOUT=60   # seconds
STOP_TIMEOUT=10    # seconds, then SIGKILL

say() { echo "mongo.sh: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# --- install -------------------------------------------------------------------------

installed() { [[ -f $STAMP && -x $VENV/bin/nx-27017 && -x $VENV/bin/python ]]; }

install_nx() {
    installed && return 0
    mkdir -p "$TOOLS_ROOT"
    # Serialise concurrent installs (parallel test jobs on one machine).
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$TOOLS_ROOT/.mongo-install.lock"
        flock -w 600 9 || die "timed out waiting for the install lock $TOOLS_ROOT/.mongo-install.lock"
        if installed; then exec 9>&-; return 0; fi
    fi
    say "installing nx-27017==$NX_VERSION (it brings pymongo) into $VENV"
    local py=${PYTHON:-python3}
    command -v "$py" >/dev/null 2>&1 || die "$py not found (need Python >= 3.9 with pip)"
    if [[ ! -x $VENV/bin/python ]]; then
        rm -rf "$VENV"
        "$py" -m venv "$VENV" || die "'$py -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)"
    fi
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "nx-27017==$NX_VERSION" \
        || die "pip install nx-27017==$NX_VERSION failed"
    [[ -x $VENV/bin/nx-27017 ]] || die "nx-27017 installed no 'nx-27017' command in $VENV/bin"
    "$VENV/bin/python" -c 'import pymongo' >&2 || die "pymongo does not import"
    rm -f "$VENV"/.installed-nx-27017-*
    touch "$STAMP"
    { exec 9>&-; } 2>/dev/null || true
}

# --- process helpers -----------------------------------------------------------------

# PID from the pid file, only if that process is alive and really is nx-27017.
our_pid() {
    [[ -f $PID_FILE ]] || return 1
    local pid; pid=$(<"$PID_FILE")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    if [[ -r /proc/$pid/cmdline ]]; then
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'nx-27017' || return 1
    fi
    echo "$pid"
}

# A real client round trip: `ping` through pymongo, bounded by a short selection timeout.
answers() {
    "$VENV/bin/python" - "$1" >/dev/null 2>&1 <<'PY'
import sys, pymongo
pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=1000).admin.command("ping")
PY
}

print_url() {
    echo "SLUICE_MONGO_URL=$1" >"$ENV_FILE"
    echo "SLUICE_MONGO_URL=$1"
}

# --- commands ------------------------------------------------------------------------

cmd_start() {
    [[ $PORT =~ ^[0-9]+$ && $PORT != 0 ]] || die "SLUICE_MONGO_PORT must be a port number, got '$PORT'"
    mkdir -p "$RUN_DIR"
    local url="mongodb://$HOST:$PORT/?directConnection=true" pid

    if pid=$(our_pid); then
        installed || die "pid $pid is running but the venv $VENV is incomplete; run '$0 stop'"
        answers "$url" || die "pid $pid is running but $url does not answer; see $LOG_FILE or run '$0 stop'"
        say "already running (pid $pid)"
        print_url "$url"
        return 0
    fi
    rm -f "$PID_FILE" "$ENV_FILE"

    if (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; then
        die "port $HOST:$PORT is already in use by another process; set SLUICE_MONGO_PORT to a free port"
    fi

    install_nx

    # Throwaway data: every start is a fresh, empty server.
    rm -rf "$DATA_DIR"
    mkdir -p "$DATA_DIR"
    # Its own pid and log files: nx-27017 refuses to start while the pid file at its
    # default path (/tmp/nx_27017.pid) names a live process, e.g. another checkout's.
    rm -f "$RUN_DIR/mongo-server.pid"
    nohup "$VENV/bin/nx-27017" --host "$HOST" -p "$PORT" --data-dir "$DATA_DIR" \
        --pid-file "$RUN_DIR/mongo-server.pid" --log-file "$RUN_DIR/mongo-server.log" \
        </dev/null >"$LOG_FILE" 2>&1 &
    pid=$!
    echo "$pid" >"$PID_FILE"

    local deadline=$(( SECONDS + START_TIMEOUT ))
    until answers "$url"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PID_FILE"
            say "nx-27017 exited during start-up; last log lines ($LOG_FILE):"
            tail -n 20 "$LOG_FILE" >&2 || true
            exit 1
        fi
        if (( SECONDS >= deadline )); then
            kill "$pid" 2>/dev/null || true
            rm -f "$PID_FILE"
            say "nx-27017 did not answer ping on $url within ${START_TIMEOUT}s; last log lines ($LOG_FILE):"
            tail -n 20 "$LOG_FILE" >&2 || true
            exit 1
        fi
        sleep 0.2
    done
    say "nx-27017 $NX_VERSION up (pid $pid) at $url; log: $LOG_FILE; data: $DATA_DIR"
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
    rm -f "$PID_FILE" "$ENV_FILE" "$RUN_DIR/mongo-server.pid"
    rm -rf "$DATA_DIR"
    say "stopped (pid $pid)"
}

cmd_status() {
    local pid url rss
    url=$(sed -n "s/^SLUICE_MONGO_URL=//p" "$ENV_FILE" 2>/dev/null | head -n1 || true)
    url=${url:-mongodb://$HOST:$PORT/?directConnection=true}
    if pid=$(our_pid); then
        rss=$(ps -o rss= -p "$pid" 2>/dev/null | tr -d ' ')
        if answers "$url"; then
            echo "mongo: up pid=$pid url=$url rss=${rss:-?}KB python=$VENV/bin/python"
            return 0
        fi
        echo "mongo: NOT ANSWERING pid=$pid url=$url (see $LOG_FILE)"
        return 1
    fi
    echo "mongo: down"
    return 1
}

case ${1:-} in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
