#!/usr/bin/env bash
# Local MariaDB (Debian's mariadb-server, 10.11 on bookworm) for the `mysql` sink tests.
#
#   scripts/services/mariadb.sh start    install (once) + fresh datadir + start + wait
#   scripts/services/mariadb.sh stop     stop the server started by `start`
#   scripts/services/mariadb.sh status   up/down and URL (exit 0 if up, 1 otherwise)
#
# The server runs from a throwaway data directory (`mariadb-install-db` on every start),
# bound to 127.0.0.1 only, with user `etl` (password `etl`) owning database `etl`.
# Packaged services do not auto-start here, and this script never touches the system
# instance. `innodb_flush_log_at_trx_commit=0` keeps it fast; nothing here is precious.
#
# On success `start` prints exactly one line on stdout:
#     SLUICE_MYSQL_URL=mysql://etl:etl@127.0.0.1:PORT/etl
# (progress goes to stderr), so `export "$(scripts/services/mariadb.sh start)"` works.
# The line is also written to $SLUICE_SERVICES_DIR/mariadb.env.
#
# Env:
#   SLUICE_MYSQL_PORT    port on 127.0.0.1 (default 13306)
#   SLUICE_SERVICES_DIR  run dir (default /tmp/sluice-services); the server is in mariadb/
set -euo pipefail

HOST=127.0.0.1
PORT=${SLUICE_MYSQL_PORT:-13306}
RUN_DIR=${SLUICE_SERVICES_DIR:-/tmp/sluice-services}
ROOT="$RUN_DIR/mariadb"
DATA="$ROOT/data"
SOCK="$ROOT/mysqld.sock"
PID_FILE="$ROOT/mysqld.pid"
LOG_FILE="$ROOT/err.log"
ENV_FILE="$RUN_DIR/mariadb.env"
URL="mysql://etl:etl@$HOST:$PORT/etl"
START_TIMEOUT=60   # seconds
STOP_TIMEOUT=30    # seconds, then SIGKILL

say() { echo "mariadb.sh: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

mariadbd_bin() { command -v mariadbd 2>/dev/null || echo /usr/sbin/mariadbd; }

install_mariadb() {
    if [[ -x $(mariadbd_bin) ]] && command -v mariadb-install-db >/dev/null 2>&1; then
        return 0
    fi
    say "installing mariadb-server with apt-get (first run only)"
    local sudo=()
    [[ $(id -u) == 0 ]] || sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq >&2 || die "apt-get update failed"
    "${sudo[@]}" apt-get install -y -qq -o DPkg::Lock::Timeout=300 mariadb-server >&2 \
        || die "apt-get install mariadb-server failed"
    command -v mariadb-install-db >/dev/null 2>&1 || die "mariadb-server installed but mariadb-install-db is missing"
}

# PID from the pid file, only if that process is alive and really is mariadbd.
our_pid() {
    [[ -f $PID_FILE ]] || return 1
    local pid; pid=$(<"$PID_FILE")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    if [[ -r /proc/$pid/cmdline ]]; then
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'mariadbd' || return 1
    fi
    echo "$pid"
}

answers() { mariadb-admin --no-defaults -uroot --socket="$SOCK" ping >/dev/null 2>&1; }

print_url() {
    echo "SLUICE_MYSQL_URL=$URL" >"$ENV_FILE"
    echo "SLUICE_MYSQL_URL=$URL"
}

cmd_start() {
    [[ $PORT =~ ^[0-9]+$ && $PORT != 0 ]] || die "SLUICE_MYSQL_PORT must be a port number, got '$PORT'"
    mkdir -p "$RUN_DIR"
    local pid
    if pid=$(our_pid) && answers; then
        say "already running (pid $pid, data $DATA)"
        print_url
        return 0
    fi
    if (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; then
        die "port $HOST:$PORT is already in use by another process; set SLUICE_MYSQL_PORT to a free port"
    fi
    install_mariadb
    rm -rf "$ROOT"
    mkdir -p "$ROOT"
    local user_args=()
    if [[ $(id -u) == 0 ]]; then
        chown mysql:mysql "$ROOT"
        user_args=(--user=mysql)
    fi
    mariadb-install-db --no-defaults "${user_args[@]}" --datadir="$DATA" --skip-test-db \
        --auth-root-authentication-method=normal >"$ROOT/install.log" 2>&1 \
        || { tail -n 20 "$ROOT/install.log" >&2; die "mariadb-install-db failed"; }
    nohup "$(mariadbd_bin)" --no-defaults "${user_args[@]}" --datadir="$DATA" \
        --bind-address=$HOST --port="$PORT" --socket="$SOCK" --pid-file="$PID_FILE" \
        --log-error="$LOG_FILE" --skip-name-resolve \
        --innodb-buffer-pool-size=64M --innodb-flush-log-at-trx-commit=0 \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
        </dev/null >/dev/null 2>&1 &
    local bgpid=$!
    local deadline=$(( SECONDS + START_TIMEOUT ))
    until answers; do
        if ! kill -0 "$bgpid" 2>/dev/null; then
            say "mariadbd exited during start-up; last log lines ($LOG_FILE):"
            tail -n 20 "$LOG_FILE" >&2 || true
            exit 1
        fi
        if (( SECONDS >= deadline )); then
            kill "$bgpid" 2>/dev/null || true
            say "mariadbd did not answer within ${START_TIMEOUT}s; last log lines ($LOG_FILE):"
            tail -n 20 "$LOG_FILE" >&2 || true
            exit 1
        fi
        sleep 0.2
    done
    mariadb --no-defaults -uroot --socket="$SOCK" -e \
        "CREATE DATABASE IF NOT EXISTS etl; CREATE USER IF NOT EXISTS 'etl'@'127.0.0.1' IDENTIFIED BY 'etl'; CREATE USER IF NOT EXISTS 'etl'@'localhost' IDENTIFIED BY 'etl'; GRANT ALL ON *.* TO 'etl'@'127.0.0.1'; GRANT ALL ON *.* TO 'etl'@'localhost'; FLUSH PRIVILEGES;" \
        || die "creating user etl and database etl failed"
    say "MariaDB up (pid $(cat "$PID_FILE" 2>/dev/null || echo "$bgpid")) at $HOST:$PORT (data $DATA, log $LOG_FILE)"
    print_url
}

cmd_stop() {
    local pid
    if ! pid=$(our_pid); then
        rm -f "$ENV_FILE"
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
    rm -f "$ENV_FILE"
    say "stopped (pid $pid)"
}

cmd_status() {
    local pid
    if pid=$(our_pid) && answers; then
        echo "mariadb: up pid=$pid url=$URL data=$DATA"
        return 0
    fi
    echo "mariadb: down"
    return 1
}

case ${1:-} in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
