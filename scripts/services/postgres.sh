#!/usr/bin/env bash
# Local PostgreSQL 15 for the CDC source, polling source and SQL sink tests.
#
#   scripts/services/postgres.sh start    install (once) + fresh cluster + start + wait
#   scripts/services/postgres.sh stop     stop the server started by `start`
#   scripts/services/postgres.sh restart  stop and start the same cluster (data kept)
#   scripts/services/postgres.sh status   up/down and URL (exit 0 if up, 1 otherwise)
#
# The server is Debian's postgresql-15 (installed with apt-get the first time), run from
# a throwaway data directory with `wal_level=logical` so logical replication works.
# Every `start` creates a fresh cluster. TCP connections use password authentication
# (scram-sha-256; superuser postgres/postgres) so tests can check wrong credentials;
# `fsync=off` keeps it fast, but `synchronous_commit` stays on: logical decoding only
# reads flushed WAL.
#
# On success `start` prints exactly one line on stdout:
#     SLUICE_PG_URL=postgres://postgres:postgres@127.0.0.1:PORT/postgres
# (progress goes to stderr), so `export "$(scripts/services/postgres.sh start)"` works.
# The line is also written to $SLUICE_SERVICES_DIR/postgres.env, and the directory of
# the PostgreSQL binaries (psql, pg_ctl) to $SLUICE_SERVICES_DIR/postgres.bin.
#
# Env:
#   SLUICE_PG_PORT       port on 127.0.0.1 (default 15432)
#   SLUICE_SERVICES_DIR  run dir (default /tmp/sluice-services); the cluster is in pg/
#   PGBIN                PostgreSQL binaries (default /usr/lib/postgresql/15/bin)
#   SLUICE_PG_WAL_LEVEL  wal_level (default logical; tests use `replica` to check the
#                        error a misconfigured server gets)
set -euo pipefail

HOST=127.0.0.1
PORT=${SLUICE_PG_PORT:-15432}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
WAL_LEVEL=${SLUICE_PG_WAL_LEVEL:-logical}
RUN_DIR=${SLUICE_SERVICES_DIR:-/tmp/sluice-services}
DATA_ROOT="$RUN_DIR/pg"
DATA="$DATA_ROOT/data"
LOG_FILE="$DATA_ROOT/postgres.log"
ENV_FILE="$RUN_DIR/postgres.env"
BIN_FILE="$RUN_DIR/postgres.bin"
URL="postgres://postgres:postgres@$HOST:$PORT/postgres"

say() { echo "postgres.sh: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# Runs a PostgreSQL binary as the `postgres` OS user when we are root (the server
# refuses to run as root), as ourselves otherwise.
as_pg() {
    if [[ $(id -u) == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

install_pg() {
    [[ -x $PGBIN/postgres && -x $PGBIN/initdb ]] && return 0
    say "installing postgresql-15 with apt-get (first run only)"
    local sudo=()
    [[ $(id -u) == 0 ]] || sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq >&2 || die "apt-get update failed"
    "${sudo[@]}" apt-get install -y -qq -o DPkg::Lock::Timeout=300 postgresql-15 >&2 \
        || die "apt-get install postgresql-15 failed"
    [[ -x $PGBIN/postgres ]] || die "postgresql-15 installed but $PGBIN/postgres is missing; set PGBIN"
}

running() { [[ -f $DATA/postmaster.pid ]] && as_pg "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

print_url() {
    echo "SLUICE_PG_URL=$URL" >"$ENV_FILE"
    echo "$PGBIN" >"$BIN_FILE"
    echo "SLUICE_PG_URL=$URL"
}

cmd_start() {
    [[ $PORT =~ ^[0-9]+$ && $PORT != 0 ]] || die "SLUICE_PG_PORT must be a port number, got '$PORT'"
    mkdir -p "$RUN_DIR"
    if running; then
        say "already running (data $DATA)"
        print_url
        return 0
    fi
    if (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; then
        die "port $HOST:$PORT is already in use by another process; set SLUICE_PG_PORT to a free port"
    fi
    install_pg
    rm -rf "$DATA_ROOT"
    mkdir -p "$DATA_ROOT"
    [[ $(id -u) == 0 ]] && chown postgres:postgres "$DATA_ROOT"
    local pwfile="$DATA_ROOT/pwfile"
    echo postgres >"$pwfile"
    [[ $(id -u) == 0 ]] && chown postgres:postgres "$pwfile"
    as_pg "$PGBIN/initdb" -D "$DATA" -U postgres --pwfile="$pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-sync >"$DATA_ROOT/initdb.log" 2>&1 \
        || { tail -n 20 "$DATA_ROOT/initdb.log" >&2; die "initdb failed"; }
    rm -f "$pwfile"
    as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$LOG_FILE" -w -t 60 -o \
        "-c listen_addresses=$HOST -p $PORT -k $DATA_ROOT -c wal_level=$WAL_LEVEL -c max_replication_slots=40 -c max_wal_senders=40 -c max_connections=200 -c fsync=off -c full_page_writes=off -c wal_sender_timeout=60s" \
        start >&2 || { tail -n 20 "$LOG_FILE" >&2; die "pg_ctl start failed"; }
    say "PostgreSQL up at $HOST:$PORT (data $DATA, log $LOG_FILE)"
    print_url
}

cmd_stop() {
    if ! running; then
        rm -f "$ENV_FILE" "$BIN_FILE"
        say "not running"
        return 0
    fi
    as_pg "$PGBIN/pg_ctl" -D "$DATA" -m fast -w -t 30 stop >&2 || true
    rm -f "$ENV_FILE" "$BIN_FILE"
    say "stopped"
}

cmd_restart() {
    running || die "not running; use start"
    as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$LOG_FILE" -m fast -w -t 60 restart >&2 \
        || { tail -n 20 "$LOG_FILE" >&2; die "pg_ctl restart failed"; }
    say "restarted"
    print_url
}

cmd_status() {
    if running; then
        echo "postgres: up url=$URL data=$DATA"
        return 0
    fi
    echo "postgres: down"
    return 1
}

case ${1:-} in
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart) cmd_restart ;;
    status) cmd_status ;;
    *) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac
