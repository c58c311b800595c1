#!/usr/bin/env bash
# Local MongoDB-wire server for the `mongodb` source's and sink's integration tests.
#
#   scripts/services/mongo.sh start    install (once), start on a fresh, empty data
#                                      directory (the previous one is deleted), wait
#                                      until it answers `ping`, print the env line
#   scripts/services/mongo.sh stop     stop the server started by `start` and delete
#                                      its data directory
#   scripts/services/mongo.sh status   up/down, URL, RSS (exit 0 if up, 1 otherwise)
#   scripts/services/mongo.sh --help   this text
#
# The server is nx-27017 (PyPI `nx-27017`): an *emulation* of MongoDB that speaks the
# wire protocol over SQLite, with emulated change streams. No real `mongod` can be
# installed on these machines (every MongoDB package downloads binaries at run time).
# Known gaps (the tests mark where they matter): no replica set (connect with
# `directConnection=true`), a replace is reported as an update, no `updateDescription`,
# `documentKey._id` comes back as a string, `clusterTime` is not a BSON Timestamp, and
# deletes carry `fullDocument`.
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
SERVICE=mongo
SERVER=nx-27017
# shellcheck source=scripts/services/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NX_VERSION=0.8.1
PORT=${SLUICE_MONGO_PORT:-17017}
VENV="$TOOLS_ROOT/mongo-venv"
STAMP="$VENV/.installed-nx-27017-$NX_VERSION"
DATA_DIR="$RUN_DIR/mongo-data"
START_TIMEOUT=60   # seconds

installed() { [[ -f $STAMP && -x $VENV/bin/nx-27017 && -x $VENV/bin/python ]]; }

install_nx() {
    installed && return 0
    venv_install "$VENV" installed 3.9 "nx-27017==$NX_VERSION (it brings pymongo)" -- \
        "nx-27017==$NX_VERSION"
    installed && return 0
    [[ -x $VENV/bin/nx-27017 ]] || die "nx-27017 installed no 'nx-27017' command in $VENV/bin"
    "$VENV/bin/python" -c 'import pymongo' >&2 || die "pymongo does not import"
    venv_installed "$STAMP"
}

our_pid() { pid_of "$PID_FILE" nx-27017; }

# A real client round trip: `ping` through pymongo, bounded by a short selection timeout.
answers() {
    "$VENV/bin/python" - "$1" >/dev/null 2>&1 <<'PY'
import sys, pymongo
pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=1000).admin.command("ping")
PY
}

cmd_start() {
    require_port SLUICE_MONGO_PORT
    mkdir -p "$RUN_DIR"
    local url="mongodb://$HOST:$PORT/?directConnection=true" pid

    if pid=$(our_pid); then
        installed || die "pid $pid is running but the venv $VENV is incomplete; run '$0 stop'"
        answers "$url" || die "pid $pid is running but $url does not answer; see $LOG_FILE or run '$0 stop'"
        say "already running (pid $pid)"
        print_env "SLUICE_MONGO_URL=$url"
        return 0
    fi
    rm -f "${STATE_FILES[@]}"
    require_free_port SLUICE_MONGO_PORT
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
    wait_ready "$pid" "$START_TIMEOUT" 0.2 "answer ping on $url" -- answers "$url"
    say "nx-27017 $NX_VERSION up (pid $pid) at $url; log: $LOG_FILE; data: $DATA_DIR"
    print_env "SLUICE_MONGO_URL=$url"
}

after_stop() {
    rm -f "$RUN_DIR/mongo-server.pid"
    rm -rf "$DATA_DIR"
}

cmd_stop() { stop_server; }

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

run_command "$@"
