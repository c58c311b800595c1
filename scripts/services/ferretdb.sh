#!/usr/bin/env bash
# Local FerretDB with TLS and SCRAM, for the MongoDB connectors' TLS and authentication
# tests (host/tests/all/mongo_tls.rs).
#
#   scripts/services/ferretdb.sh start    install (once), start on a fresh, empty data
#                                         directory (the previous one is deleted), wait
#                                         until its listeners accept, print the env line
#   scripts/services/ferretdb.sh stop     stop the server started by `start` and delete
#                                         its data directory
#   scripts/services/ferretdb.sh status   up/down and URL (exit 0 if up, 1 otherwise)
#   scripts/services/ferretdb.sh --help   this text
#
# FerretDB is an independent implementation of the MongoDB wire protocol (Apache 2.0,
# written in Go), not MongoDB: no real `mongod` can be installed on these machines.
# nx-27017 (scripts/services/mongo.sh) speaks neither TLS nor SCRAM; FerretDB 1.24.2
# does both, so it is the server for those tests. Here it stores into SQLite
# (`--handler=sqlite`), listens on
#     127.0.0.1:SLUICE_FERRETDB_PORT       plaintext (every command needs a login)
#     127.0.0.1:SLUICE_FERRETDB_PORT + 1   TLS, with a server certificate for the DNS name
#                                          `localhost` only (a client that connects by
#                                          127.0.0.1 gets a name mismatch)
# and has one user, `sluice` / `sluice-ferret-secret`, created in database `sluice_app`
# at start (`--setup-*`), which logs in with SCRAM-SHA-256 (`--test-enable-new-auth`,
# FerretDB's user store; SCRAM-SHA-1 too) only with `authSource=sluice_app`.
# No change streams and no replica set: the `mongodb` source cannot run against it,
# only the sink.
#
# Install: the Go module proxy serves github.com/FerretDB/FerretDB@v1.24.2. Its module
# zip lacks the generated build/version/version.txt (the binary panics without it), so
# the script copies the module source, writes that file, and `go build`s
# ./cmd/ferretdb into $SLUICE_TOOLS/services/ferretdb-1.24.2-p1/ferretdb.
#
# One patch (the `-p1`), to internal/handler/msg_saslcontinue.go: FerretDB 1.24 ignores
# the `skipEmptyExchange: true` that drivers send with saslStart and answers the SCRAM
# client-final message with `done: false`, expecting one more empty round trip (as
# MongoDB before 4.4 did). MongoDB 4.4 and later answer `done: true` there, and the
# Rust driver (mongodb 3.x, which Sluice uses) relies on it: it fails with "expected
# SCRAM authentication to have completed". The patch makes FerretDB answer `done` with
# the conversation's state after that step, as MongoDB 4.4+ does; the proof checks, the
# user store and the rest of the exchange are FerretDB's own. Needs `go` (1.22
# or newer: on PATH, /usr/local/go/bin/go, or scripts/toolchains/go.sh's), and no C
# compiler (the SQLite driver is pure Go). Measured on a 2-core machine
# (2026-12-04): about 2 minutes with a cold module cache, 8 s with a warm one; start
# under 1 s.
#
# On success `start` prints exactly one line on stdout:
#     SLUICE_FERRETDB_URL=mongodb://sluice:sluice-ferret-secret@localhost:TLSPORT/?tls=true&tlsCAFile=DIR/ca.crt&authSource=sluice_app
# (progress goes to stderr), so `export "$(scripts/services/ferretdb.sh start)"` works;
# the same line goes to $SLUICE_SERVICES_DIR/ferretdb.env.
#
# Env:
#   SLUICE_TOOLS            install root (default ~/.cache/sluice-tools)
#   SLUICE_FERRETDB_PORT    plaintext port on 127.0.0.1 (default SLUICE_MONGO_PORT + 10,
#                           that is 17027); TLS on the next port
#   SLUICE_FERRETDB_TLS_DIR the certificates (default $SLUICE_SERVICES_DIR/ferretdb-tls):
#                           ca.crt, ca.key, server.crt, server.key, expired.crt; kept
#                           if they exist
#   SLUICE_SERVICES_DIR     run dir for ferretdb.pid / .log / .env and the data dir
#                           ferretdb-data/ (default /tmp/sluice-services)
#   GO                      the go command (default: see above)
set -euo pipefail
SERVICE=ferretdb
SERVER=ferretdb
# shellcheck source=scripts/services/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FERRETDB_VERSION=1.24.2
MONGO_PORT=${SLUICE_MONGO_PORT:-17017}
PORT=${SLUICE_FERRETDB_PORT:-$(( ${MONGO_PORT//[^0-9]/} + 10 ))}
TLS_PORT=$(( ${PORT//[^0-9]/} + 1 ))
TLS_DIR=${SLUICE_FERRETDB_TLS_DIR:-$RUN_DIR/ferretdb-tls}
BIN_DIR="$TOOLS_ROOT/ferretdb-$FERRETDB_VERSION-p1"
BIN="$BIN_DIR/ferretdb"
DATA_DIR="$RUN_DIR/ferretdb-data"
STATE_DIR="$RUN_DIR/ferretdb-state"
DATABASE=sluice_app
USERNAME=sluice
PASSWORD=sluice-ferret-secret
START_TIMEOUT=30   # seconds

go_cmd() {
    if [[ -n ${GO:-} ]]; then echo "$GO"; return; fi
    if command -v go >/dev/null 2>&1; then command -v go; return; fi
    if [[ -x /usr/local/go/bin/go ]]; then echo /usr/local/go/bin/go; return; fi
    local env="${SLUICE_TOOLS:-$HOME/.cache/sluice-tools}/go/env.sh"
    # shellcheck source=/dev/null
    [[ -f $env ]] && (source "$env" && command -v go) && return
    die "no go command (install Go 1.22+, or run scripts/toolchains/go.sh)"
}

install_ferretdb() {
    [[ -x $BIN ]] && return 0
    local go src
    go=$(go_cmd)
    say "building FerretDB $FERRETDB_VERSION with $go (once)"
    mkdir -p "$BIN_DIR"
    src=$(GOFLAGS=-mod=mod GOTOOLCHAIN=local "$go" mod download -json \
        "github.com/FerretDB/FerretDB@v$FERRETDB_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [[ -n $src && -d $src ]] || die "go mod download found no source for FerretDB v$FERRETDB_VERSION"
    rm -rf "$BIN_DIR/src"
    cp -r "$src" "$BIN_DIR/src"
    chmod -R u+w "$BIN_DIR/src"
    echo "v$FERRETDB_VERSION" >"$BIN_DIR/src/build/version/version.txt"
    # skipEmptyExchange, as MongoDB 4.4+ (see above): `done` after the step.
    local sasl="$BIN_DIR/src/internal/handler/msg_saslcontinue.go"
    grep -q '"done", valid, // for compatibility' "$sasl" || die "FerretDB's $sasl changed: the patch does not apply"
    sed -i 's|"done", valid, // for compatibility.*|"done", conv.Valid(), // patched by scripts/services/ferretdb.sh: skipEmptyExchange|' "$sasl"
    (cd "$BIN_DIR/src" && GOFLAGS=-mod=mod GOTOOLCHAIN=local "$go" build -o "$BIN.tmp" ./cmd/ferretdb) \
        >"$BIN_DIR/build.log" 2>&1 || { tail -n 20 "$BIN_DIR/build.log" >&2; die "go build of FerretDB failed"; }
    rm -rf "$BIN_DIR/src"
    mv "$BIN.tmp" "$BIN"
}

url() {
    echo "mongodb://$USERNAME:$PASSWORD@localhost:$TLS_PORT/?tls=true&tlsCAFile=$TLS_DIR/ca.crt&authSource=$DATABASE"
}

our_pid() { pid_of "$PID_FILE" "$BIN"; }
accepting() { port_accepts "$PORT" && port_accepts "$TLS_PORT"; }

cmd_start() {
    require_port SLUICE_FERRETDB_PORT
    mkdir -p "$RUN_DIR"
    local pid
    if pid=$(our_pid) && accepting; then
        say "already running (pid $pid)"
        print_env "SLUICE_FERRETDB_URL=$(url)"
        return 0
    fi
    rm -f "${STATE_FILES[@]}"
    require_free_port SLUICE_FERRETDB_PORT
    port_accepts "$TLS_PORT" && die "port $HOST:$TLS_PORT (TLS) is in use; set SLUICE_FERRETDB_PORT"
    install_ferretdb
    make_test_certs "$TLS_DIR" "$(id -un)"
    rm -rf "$DATA_DIR" "$STATE_DIR"
    mkdir -p "$DATA_DIR" "$STATE_DIR"
    nohup "$BIN" --handler=sqlite --sqlite-url="file:$DATA_DIR/" --state-dir="$STATE_DIR" \
        --listen-addr="$HOST:$PORT" --listen-tls="$HOST:$TLS_PORT" \
        --listen-tls-cert-file="$TLS_DIR/server.crt" --listen-tls-key-file="$TLS_DIR/server.key" \
        --test-enable-new-auth --setup-database="$DATABASE" --setup-username="$USERNAME" \
        --setup-password="$PASSWORD" --debug-addr=- --telemetry=disable \
        </dev/null >"$LOG_FILE" 2>&1 &
    pid=$!
    echo "$pid" >"$PID_FILE"
    wait_ready "$pid" "$START_TIMEOUT" 0.1 "accept on ports $PORT and $TLS_PORT" -- accepting
    say "FerretDB $FERRETDB_VERSION up (pid $pid): plaintext $HOST:$PORT, TLS localhost:$TLS_PORT (CA $TLS_DIR/ca.crt), user $USERNAME in $DATABASE; log: $LOG_FILE"
    print_env "SLUICE_FERRETDB_URL=$(url)"
}

after_stop() { rm -rf "$DATA_DIR" "$STATE_DIR"; }

cmd_stop() { stop_server; }

cmd_status() {
    local pid
    if pid=$(our_pid) && accepting; then
        echo "ferretdb: up pid=$pid plaintext=$HOST:$PORT tls=localhost:$TLS_PORT"
        return 0
    fi
    echo "ferretdb: down"
    return 1
}

run_command "$@"
