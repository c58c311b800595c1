#!/usr/bin/env bash
# Local PostgreSQL 15 for the CDC source, polling source and SQL sink tests.
#
#   scripts/services/postgres.sh start    install (once), WIPE the cluster (initdb on a
#                                         fresh data directory), start it, wait, print
#                                         the env line. On a running server it only
#                                         prints the line again.
#   scripts/services/postgres.sh stop     stop the server started by `start` (the data
#                                         directory stays until the next start)
#   scripts/services/postgres.sh restart  stop and start the same cluster (data kept)
#   scripts/services/postgres.sh status   up/down and URL (exit 0 if up, 1 otherwise)
#   scripts/services/postgres.sh --help   this text
#
# The server is Debian's postgresql-15 (installed with apt-get the first time), run from
# a throwaway data directory with `wal_level=logical` so logical replication works.
# TCP connections use password authentication (scram-sha-256; superuser
# postgres/postgres) so tests can check wrong credentials; `fsync=off` keeps it fast,
# but `synchronous_commit` stays on: logical decoding only reads flushed WAL.
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
#   SLUICE_PG_TLS_DIR    opt-in TLS (default off): a directory for the certificates.
#                        `start` makes a throwaway CA (ca.crt) and a server certificate
#                        for DNS name `localhost` only (server.crt/server.key) there
#                        unless server.crt and server.key already exist, runs the server
#                        with ssl=on, and adds role `sluice_tls` (password
#                        `sluice-tls-secret`, SUPERUSER REPLICATION) whose pg_hba rules
#                        are `hostssl` only (`hostnossl ... reject`), and role
#                        `sluice_tls_cert` that logs in with a client certificate
#                        (`cert` auth: CN = role name, signed by ca.key). Every other
#                        role keeps plaintext, so the rest of the suite runs unchanged.
#                        expired.crt/expired.key there are a certificate for the same
#                        name and CA that expired in 2020: pg_tls.rs copies them over
#                        server.crt/server.key and reloads, then puts them back.
set -euo pipefail
SERVICE=postgres
SERVER=postgres
# shellcheck source=scripts/services/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT=${SLUICE_PG_PORT:-15432}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
WAL_LEVEL=${SLUICE_PG_WAL_LEVEL:-logical}
DATA_ROOT="$RUN_DIR/pg"
DATA="$DATA_ROOT/data"
LOG_FILE="$DATA_ROOT/postgres.log"
BIN_FILE="$RUN_DIR/postgres.bin"
STATE_FILES=("$ENV_FILE" "$BIN_FILE")
URL="postgres://postgres:postgres@$HOST:$PORT/postgres"
TLS_DIR=${SLUICE_PG_TLS_DIR:-}

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
    apt_install postgresql-15
    [[ -x $PGBIN/postgres ]] || die "postgresql-15 installed but $PGBIN/postgres is missing; set PGBIN"
}

# The `sluice_tls` role may only connect over TLS; rules match first to last.
tls_hba() {
    local hba="$DATA/pg_hba.conf"
    {
        echo "hostnossl all         sluice_tls_cert all reject"
        echo "hostnossl replication sluice_tls_cert all reject"
        echo "hostssl   all         sluice_tls_cert all cert"
        echo "hostssl   replication sluice_tls_cert all cert"
        echo "hostnossl all         sluice_tls all reject"
        echo "hostnossl replication sluice_tls all reject"
        echo "hostssl   all         sluice_tls all scram-sha-256"
        echo "hostssl   replication sluice_tls all scram-sha-256"
        cat "$hba"
    } >"$hba.new"
    mv "$hba.new" "$hba"
    [[ $(id -u) == 0 ]] && chown postgres:postgres "$hba"
    return 0
}

running() { [[ -f $DATA/postmaster.pid ]] && as_pg "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

print_url() {
    echo "$PGBIN" >"$BIN_FILE"
    print_env "SLUICE_PG_URL=$URL"
}

cmd_start() {
    require_port SLUICE_PG_PORT
    mkdir -p "$RUN_DIR"
    if running; then
        say "already running (data $DATA)"
        print_url
        return 0
    fi
    require_free_port SLUICE_PG_PORT
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
    local tls_opts=""
    if [[ -n $TLS_DIR ]]; then
        make_test_certs "$TLS_DIR" postgres
        tls_hba
        tls_opts="-c ssl=on -c ssl_cert_file=$TLS_DIR/server.crt -c ssl_key_file=$TLS_DIR/server.key -c ssl_ca_file=$TLS_DIR/ca.crt"
    fi
    as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$LOG_FILE" -w -t 60 -o \
        "-c listen_addresses=$HOST -p $PORT -k $DATA_ROOT -c wal_level=$WAL_LEVEL -c max_replication_slots=40 -c max_wal_senders=40 -c max_connections=200 -c fsync=off -c full_page_writes=off -c wal_sender_timeout=60s $tls_opts" \
        start >&2 || { tail -n 20 "$LOG_FILE" >&2; die "pg_ctl start failed"; }
    if [[ -n $TLS_DIR ]]; then
        as_pg "$PGBIN/psql" -h "$DATA_ROOT" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -q \
            -c "CREATE ROLE sluice_tls LOGIN SUPERUSER REPLICATION PASSWORD 'sluice-tls-secret'" \
            -c "CREATE ROLE sluice_tls_cert LOGIN SUPERUSER REPLICATION" >&2 \
            || die "creating roles sluice_tls and sluice_tls_cert failed"
        say "TLS on (certificates in $TLS_DIR; role sluice_tls is hostssl-only)"
    fi
    say "PostgreSQL up at $HOST:$PORT (data $DATA, log $LOG_FILE)"
    print_url
}

cmd_stop() {
    if ! running; then
        rm -f "${STATE_FILES[@]}"
        say "not running"
        return 0
    fi
    as_pg "$PGBIN/pg_ctl" -D "$DATA" -m fast -w -t 30 stop >&2 || true
    rm -f "${STATE_FILES[@]}"
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

run_command "$@"
