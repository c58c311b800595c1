#!/usr/bin/env bash
# Local MariaDB (Debian's mariadb-server, 10.11 on bookworm) for the `mysql` sink tests.
#
#   scripts/services/mariadb.sh start    install (once), create a fresh data directory
#                                        (the previous one is deleted), start, wait,
#                                        create user/database etl, print the env line
#   scripts/services/mariadb.sh stop     stop the server started by `start` (its data
#                                        directory stays until the next start)
#   scripts/services/mariadb.sh status   up/down and URL (exit 0 if up, 1 otherwise)
#   scripts/services/mariadb.sh --help   this text
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
#   SLUICE_MYSQL_TLS_DIR opt-in TLS (default off): a directory for the certificates.
#                        `start` makes a throwaway CA (ca.crt) and a server certificate
#                        for DNS name `localhost` only there (unless server.crt/server.key
#                        exist) and runs the server with them and
#                        `require_secure_transport=ON`: every TCP client, user etl
#                        included, must then use TLS. So run it as a second instance
#                        (its own SLUICE_SERVICES_DIR and port) for the TLS tests, which
#                        read SLUICE_MYSQL_TLS_URL and SLUICE_MYSQL_TLS_DIR. It also
#                        adds user `etl_x509` (no password, all rights on database etl),
#                        which must present a client certificate with subject
#                        /CN=etl_x509 (REQUIRE SUBJECT; sign one with DIR/ca.key).
#                        DIR/expired.crt and expired.key: the same name and CA, expired
#                        in 2020 (mysql_tls.rs copies them over server.* and runs FLUSH
#                        SSL, then puts them back).
set -euo pipefail
SERVICE=mariadb
SERVER=mariadbd
# shellcheck source=scripts/services/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT=${SLUICE_MYSQL_PORT:-13306}
ROOT="$RUN_DIR/mariadb"
DATA="$ROOT/data"
SOCK="$ROOT/mysqld.sock"
# mariadbd writes its own pid file; the data directory is kept after `stop`.
PID_FILE="$ROOT/mysqld.pid"
LOG_FILE="$ROOT/err.log"
STATE_FILES=("$ENV_FILE")
URL="mysql://etl:etl@$HOST:$PORT/etl"
TLS_DIR=${SLUICE_MYSQL_TLS_DIR:-}
START_TIMEOUT=60   # seconds
STOP_TIMEOUT=30    # seconds, then SIGKILL

mariadbd_bin() { command -v mariadbd 2>/dev/null || echo /usr/sbin/mariadbd; }

install_mariadb() {
    if [[ -x $(mariadbd_bin) ]] && command -v mariadb-install-db >/dev/null 2>&1; then
        return 0
    fi
    apt_install mariadb-server
    command -v mariadb-install-db >/dev/null 2>&1 || die "mariadb-server installed but mariadb-install-db is missing"
}

our_pid() { pid_of "$PID_FILE" mariadbd; }

answers() { mariadb-admin --no-defaults -uroot --socket="$SOCK" ping >/dev/null 2>&1; }

cmd_start() {
    require_port SLUICE_MYSQL_PORT
    mkdir -p "$RUN_DIR"
    local pid
    if pid=$(our_pid) && answers; then
        say "already running (pid $pid, data $DATA)"
        print_env "SLUICE_MYSQL_URL=$URL"
        return 0
    fi
    require_free_port SLUICE_MYSQL_PORT
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
    local tls_args=()
    if [[ -n $TLS_DIR ]]; then
        make_test_certs "$TLS_DIR" mysql
        tls_args=(--ssl-ca="$TLS_DIR/ca.crt" --ssl-cert="$TLS_DIR/server.crt"
            --ssl-key="$TLS_DIR/server.key" --require-secure-transport=ON)
    fi
    nohup "$(mariadbd_bin)" --no-defaults "${user_args[@]}" --datadir="$DATA" \
        --bind-address=$HOST --port="$PORT" --socket="$SOCK" --pid-file="$PID_FILE" \
        --log-error="$LOG_FILE" --skip-name-resolve \
        --innodb-buffer-pool-size=64M --innodb-flush-log-at-trx-commit=0 \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
        "${tls_args[@]}" </dev/null >/dev/null 2>&1 &
    local bgpid=$!
    wait_ready "$bgpid" "$START_TIMEOUT" 0.2 "answer" -- answers
    mariadb --no-defaults -uroot --socket="$SOCK" -e \
        "CREATE DATABASE IF NOT EXISTS etl; CREATE USER IF NOT EXISTS 'etl'@'127.0.0.1' IDENTIFIED BY 'etl'; CREATE USER IF NOT EXISTS 'etl'@'localhost' IDENTIFIED BY 'etl'; GRANT ALL ON *.* TO 'etl'@'127.0.0.1'; GRANT ALL ON *.* TO 'etl'@'localhost'; FLUSH PRIVILEGES;" \
        || die "creating user etl and database etl failed"
    if [[ -n $TLS_DIR ]]; then
        mariadb --no-defaults -uroot --socket="$SOCK" -e \
            "CREATE USER IF NOT EXISTS 'etl_x509'@'127.0.0.1' REQUIRE SUBJECT '/CN=etl_x509'; GRANT ALL ON etl.* TO 'etl_x509'@'127.0.0.1'; FLUSH PRIVILEGES;" \
            || die "creating user etl_x509 failed"
    fi
    say "MariaDB up (pid $(cat "$PID_FILE" 2>/dev/null || echo "$bgpid")) at $HOST:$PORT (data $DATA, log $LOG_FILE)"
    print_env "SLUICE_MYSQL_URL=$URL"
}

cmd_stop() { stop_server; }

cmd_status() {
    local pid
    if pid=$(our_pid) && answers; then
        echo "mariadb: up pid=$pid url=$URL data=$DATA"
        return 0
    fi
    echo "mariadb: down"
    return 1
}

run_command "$@"
