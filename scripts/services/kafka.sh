#!/usr/bin/env bash
# Local Apache Kafka broker for the `kafka` source/sink integration tests.
#
#   scripts/services/kafka.sh start     install (once), format a fresh data dir, start a
#                                       broker with no topics, wait until it serves,
#                                       print the env line
#   scripts/services/kafka.sh stop      stop the broker started by `start` and delete its
#                                       data dir (every topic and offset)
#   scripts/services/kafka.sh restart   stop and start again on the same ports with the
#                                       SAME data dir: topics, records, committed offsets
#                                       and transactions survive (restart tests use it)
#   scripts/services/kafka.sh status    up/down, address, RSS (exit 0 if up, 1 otherwise)
#   scripts/services/kafka.sh --help    this text
#
# The broker is Apache Kafka 4.4.0 in KRaft mode (one JVM that is both broker and
# controller; no ZooKeeper), loopback only. Its jars come from Maven Central: `mvn
# dependency:copy-dependencies` on scripts/services/kafka/pom.xml, run once, keeps them
# under $SLUICE_TOOLS/services/kafka-4.4.0/libs (43 MB); later starts download nothing.
# It runs on the machine's JDK (17 or newer; `java` on PATH or $JAVA_HOME) with a small
# heap (-Xmx512m; RSS ~350 MB), because test machines have 2 cores. Group joins are not
# delayed (group.initial.rebalance.delay.ms=0), nothing expires (log.retention.ms=-1:
# test records carry old timestamps), internal topics have one replica, and transactions
# work (exactly-once tests use them).
#
# Measured on a 2-core test machine (2026-12-03, JDK 17): install 10 s on a quiet machine,
# 30 s with the load average at 12 (a cold Maven download of the jars and of the Maven
# plugins into a private repository, deleted afterwards), 0 s afterwards. Start (format,
# then the JVM until "Kafka Server started"): 5-6 s on a quiet machine, 13-18 s at load
# average 12-14; restart (data kept) about the same. Tansu, the emulation used before,
# started in under 1 s but forgot everything on restart and had no transactions.
#
# The same run dir holds a Python venv with `confluent-kafka` and its Avro extras
# (fastavro, requests, attrs...), so tests check Sluice against a client nobody here
# wrote (Avro with Schema Registry, read_committed reads of transactional output).
#
# On success `start` prints exactly one line on stdout:
#     SLUICE_KAFKA_BROKERS=127.0.0.1:PORT
# (progress goes to stderr), so `export "$(scripts/services/kafka.sh start)"` works. The
# same line is written to $SLUICE_SERVICES_DIR/kafka.env, and the venv's Python
# interpreter path to $SLUICE_SERVICES_DIR/kafka.python.
#
# Env:
#   SLUICE_TOOLS                  install root (default ~/.cache/sluice-tools); jars go to
#                                 $SLUICE_TOOLS/services/kafka-4.4.0, the venv to
#                                 $SLUICE_TOOLS/services/kafka-venv; both reused
#   SLUICE_KAFKA_PORT             client port on 127.0.0.1 (default 19092)
#   SLUICE_KAFKA_CONTROLLER_PORT  KRaft controller port (default SLUICE_KAFKA_PORT + 1)
#   SLUICE_SERVICES_DIR           run dir for kafka.pid / kafka.log / kafka.env /
#                                 kafka.python / kafka-data / kafka.properties
#                                 (default /tmp/sluice-services)
#   PYTHON                        interpreter used to create the venv (default python3)
#   JAVA                          java binary (default $JAVA_HOME/bin/java, else `java`)
#   MVN                           Maven binary for the one-time install (default `mvn`)
#   SLUICE_KAFKA_TLS_DIR          opt-in secured listeners (default off): a directory for
#                                 the certificates. `start` makes a throwaway CA (ca.crt,
#                                 ca.key) and a broker certificate for DNS name `localhost`
#                                 only (server.crt, server.key; kept if they exist) with the
#                                 openssl command, and adds, beside the PLAINTEXT listener
#                                 (which stays as it is, so the rest of the suite runs
#                                 unchanged):
#                                   SSL            localhost:SLUICE_KAFKA_SSL_PORT (PORT + 2)
#                                   SASL_SSL       localhost:SLUICE_KAFKA_SASL_SSL_PORT (+ 3)
#                                   SASL_PLAINTEXT 127.0.0.1:SLUICE_KAFKA_SASL_PORT (+ 4)
#                                   MTLS (SSL)     localhost:SLUICE_KAFKA_MTLS_PORT (+ 5),
#                                                  which requires a client certificate
#                                                  signed by the CA (client.crt and
#                                                  client.key, CN=sluice, made too)
#                                   EXPIRED (SSL)  localhost:SLUICE_KAFKA_EXPIRED_PORT
#                                                  (+ 6), which presents expired.crt: the
#                                                  same name and CA, valid only in
#                                                  January 2020 (Kafka starts with it)
#                                 The TLS listeners advertise `localhost`, the name in the
#                                 certificate (a client that bootstraps by 127.0.0.1 gets a
#                                 name mismatch, which tests check). The SASL listeners take
#                                 PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 for user `sluice`,
#                                 password `sluice-kafka-secret` (the SCRAM credentials are
#                                 written when the data dir is formatted, `--add-scram`).
#                                 The addresses go to DIR/listeners.env:
#                                   SSL=localhost:P  SASL_SSL=localhost:P  SASL_PLAINTEXT=127.0.0.1:P
#                                   MTLS=localhost:P  EXPIRED=localhost:P
#                                 Keystore and truststore are PEM files (Kafka 2.7+), so
#                                 no keytool. `restart` keeps the data dir and its users.
#   SLUICE_KAFKA_PROXIED_PORT     opt-in (default off): one more plaintext listener, PROXIED,
#   SLUICE_KAFKA_PROXIED_ADDRESS  bound on 127.0.0.1:SLUICE_KAFKA_PROXIED_PORT but advertised
#                                 as SLUICE_KAFKA_PROXIED_ADDRESS (host:port), where a test's
#                                 TCP proxy listens. A client that bootstraps through the proxy
#                                 is then told to reconnect through it too, so cutting the
#                                 proxy cuts that client off; a broker advertising its own
#                                 address would let clients bypass any proxy. The broker's
#                                 own traffic stays on PLAINTEXT. Network-fault tests use it
#                                 on a private broker.
set -euo pipefail
SERVICE=kafka
SERVER="kafka broker"
# shellcheck source=scripts/services/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KAFKA_VERSION=4.4.0
CONFLUENT_VERSION=2.12.2
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PORT=${SLUICE_KAFKA_PORT:-19092}
CONTROLLER_PORT=${SLUICE_KAFKA_CONTROLLER_PORT:-$(( ${PORT//[^0-9]/} + 1 ))}
VENV="$TOOLS_ROOT/kafka-venv"
STAMP="$VENV/.installed-confluent-$CONFLUENT_VERSION"
JARS="$TOOLS_ROOT/kafka-$KAFKA_VERSION"
JARS_STAMP="$JARS/.installed"
PY_FILE="$RUN_DIR/kafka.python"
DATA_DIR="$RUN_DIR/kafka-data"
PROPS="$RUN_DIR/kafka.properties"
STATE_FILES+=("$PY_FILE")
TLS_DIR=${SLUICE_KAFKA_TLS_DIR:-}
BASE_PORT=${PORT//[^0-9]/}
SSL_PORT=${SLUICE_KAFKA_SSL_PORT:-$(( ${BASE_PORT:-0} + 2 ))}
SASL_SSL_PORT=${SLUICE_KAFKA_SASL_SSL_PORT:-$(( ${BASE_PORT:-0} + 3 ))}
SASL_PORT=${SLUICE_KAFKA_SASL_PORT:-$(( ${BASE_PORT:-0} + 4 ))}
MTLS_PORT=${SLUICE_KAFKA_MTLS_PORT:-$(( ${BASE_PORT:-0} + 5 ))}
EXPIRED_PORT=${SLUICE_KAFKA_EXPIRED_PORT:-$(( ${BASE_PORT:-0} + 6 ))}
PROXIED_PORT=${SLUICE_KAFKA_PROXIED_PORT:-}
PROXIED_ADDRESS=${SLUICE_KAFKA_PROXIED_ADDRESS:-}
SASL_USER=sluice
SASL_PASSWORD=sluice-kafka-secret
START_TIMEOUT=90   # seconds; a cold JVM on a busy 2-core machine
STOP_TIMEOUT=30    # a clean shutdown (then SIGKILL); Kafka takes >10 s on a busy machine

if [[ -n ${JAVA:-} ]]; then :
elif [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then JAVA="$JAVA_HOME/bin/java"
else JAVA=java; fi

venv_ready() { [[ -f $STAMP && -x $VENV/bin/python ]]; }
jars_ready() { [[ -f $JARS_STAMP ]]; }

install_python() {
    venv_ready && return 0
    venv_install "$VENV" venv_ready 3.9 "confluent-kafka[avro]==$CONFLUENT_VERSION" -- \
        "confluent-kafka[avro,schemaregistry]==$CONFLUENT_VERSION"
    venv_ready && return 0
    "$VENV/bin/python" -c 'import confluent_kafka.schema_registry.avro, fastavro' >&2 \
        || die "confluent_kafka's Avro serializer does not import"
    venv_installed "$STAMP"
}

# The broker's jars, resolved from Maven Central once (serialised between parallel
# jobs with a lock; a job that waited finds them installed).
install_jars() {
    jars_ready && return 0
    command -v "$JAVA" >/dev/null 2>&1 || die "java not found (need a JDK/JRE 17 or newer; set JAVA or JAVA_HOME)"
    local mvn=${MVN:-mvn}
    command -v "$mvn" >/dev/null 2>&1 || die "$mvn not found (Maven resolves the Kafka jars from Maven Central once)"
    mkdir -p "$TOOLS_ROOT"
    exec 8>"$TOOLS_ROOT/.kafka-jars.lock"
    flock -w 600 8 || die "timed out waiting for the install lock $TOOLS_ROOT/.kafka-jars.lock"
    if jars_ready; then exec 8>&-; return 0; fi
    say "installing Apache Kafka $KAFKA_VERSION jars from Maven Central into $JARS"
    local t0=$SECONDS
    rm -rf "$JARS"
    mkdir -p "$JARS"
    # A private local repository: the user's ~/.m2 stays untouched, and it is
    # deleted afterwards (only the copied jars are needed to run).
    "$mvn" -q -B -Dstyle.color=never -f "$HERE/kafka/pom.xml" -Dmaven.repo.local="$JARS/m2" \
        -Dkafka.version="$KAFKA_VERSION" -DincludeScope=runtime \
        -DoutputDirectory="$JARS/libs" dependency:copy-dependencies >"$JARS/mvn.log" 2>&1 \
        || { tail -n 20 "$JARS/mvn.log" >&2
             die "mvn could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION (is Maven Central reachable?)"; }
    rm -rf "$JARS/m2"
    [[ -f $JARS/libs/kafka_2.13-$KAFKA_VERSION.jar ]] || die "no kafka_2.13-$KAFKA_VERSION.jar after mvn"
    touch "$JARS_STAMP"
    exec 8>&-
    say "jars installed in $(( SECONDS - t0 ))s"
}

our_pid() { pid_of "$PID_FILE" "kafka.Kafka $PROPS"; }
accepts() { port_accepts "$PORT"; }
# The broker logs this once its listeners serve requests (not merely bound).
serving() { accepts && grep -q "Kafka Server started" "$LOG_FILE" 2>/dev/null; }

# A cluster id as Kafka writes them (16 random bytes, URL-safe base64, no padding),
# made here rather than by a JVM (`StorageTool random-uuid`) to save a JVM start. Not
# starting with '-', which the tool's argument parser would take for an option.
cluster_id() {
    local id
    while :; do
        id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
        [[ $id == -* ]] || break
    done
    echo "$id"
}

# The listeners, or with SLUICE_KAFKA_TLS_DIR also the secured ones and their settings.
listener_properties() {
    local listeners="PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT"
    local advertised="PLAINTEXT://$HOST:$PORT"
    local map="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    if [[ -n $TLS_DIR ]]; then
        listeners+=",SSL://$HOST:$SSL_PORT,SASL_SSL://$HOST:$SASL_SSL_PORT,SASL_PLAINTEXT://$HOST:$SASL_PORT,MTLS://$HOST:$MTLS_PORT,EXPIRED://$HOST:$EXPIRED_PORT"
        advertised+=",SSL://localhost:$SSL_PORT,SASL_SSL://localhost:$SASL_SSL_PORT,SASL_PLAINTEXT://$HOST:$SASL_PORT,MTLS://localhost:$MTLS_PORT,EXPIRED://localhost:$EXPIRED_PORT"
        map+=",SSL:SSL,SASL_SSL:SASL_SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,MTLS:SSL,EXPIRED:SSL"
    fi
    if [[ -n $PROXIED_PORT ]]; then
        listeners+=",PROXIED://$HOST:$PROXIED_PORT"
        advertised+=",PROXIED://$PROXIED_ADDRESS"
        map+=",PROXIED:PLAINTEXT"
    fi
    echo "listeners=$listeners"
    echo "advertised.listeners=$advertised"
    echo "listener.security.protocol.map=$map"
}

secured_properties() {
    [[ -n $TLS_DIR ]] || return 0
    local plain="org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_USER=\"$SASL_PASSWORD\";"
    local scram="org.apache.kafka.common.security.scram.ScramLoginModule required;"
    cat <<EOT
# Secured listeners (SLUICE_KAFKA_TLS_DIR): PEM keystore; only MTLS asks for a client
# certificate, which the PEM truststore (the CA) checks.
ssl.keystore.type=PEM
ssl.keystore.location=$TLS_DIR/server-keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$TLS_DIR/ca.crt
listener.name.mtls.ssl.client.auth=required
# The EXPIRED listener presents a certificate that expired in 2020.
listener.name.expired.ssl.keystore.type=PEM
listener.name.expired.ssl.keystore.location=$TLS_DIR/expired-keystore.pem
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
EOT
    local l m
    for l in sasl_ssl sasl_plaintext; do
        echo "listener.name.$l.plain.sasl.jaas.config=$plain"
        for m in scram-sha-256 scram-sha-512; do
            echo "listener.name.$l.$m.sasl.jaas.config=$scram"
        done
    done
}

# The CA and broker certificate, and the broker's PEM keystore (key, then chain).
make_broker_certs() {
    local p
    for p in SSL_PORT SASL_SSL_PORT SASL_PORT MTLS_PORT EXPIRED_PORT; do
        [[ ${!p} =~ ^[0-9]+$ && ${!p} != 0 ]] || die "SLUICE_KAFKA_$p must be a port number, got '${!p}'"
        port_accepts "${!p}" && die "port $HOST:${!p} ($p) is in use; set SLUICE_KAFKA_$p to a free port"
    done
    make_test_certs "$TLS_DIR" "$(id -un)"
    if [[ ! -f $TLS_DIR/client.crt || ! -f $TLS_DIR/client.key ]]; then
        (
            cd "$TLS_DIR"
            openssl req -newkey rsa:2048 -nodes -subj "/CN=$SASL_USER" -keyout client.key -out client.csr
            # Extensions make it X.509 v3, which rustls (validation) requires.
            printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n' >client.ext
            openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
                -extfile client.ext -out client.crt
        ) >>"$TLS_DIR/openssl.log" 2>&1 || { cat "$TLS_DIR/openssl.log" >&2; die "making the client certificate failed"; }
        chmod 600 "$TLS_DIR/client.key"
    fi
    cat "$TLS_DIR/server.key" "$TLS_DIR/server.crt" >"$TLS_DIR/server-keystore.pem"
    cat "$TLS_DIR/expired.key" "$TLS_DIR/expired.crt" >"$TLS_DIR/expired-keystore.pem"
    chmod 600 "$TLS_DIR/server-keystore.pem" "$TLS_DIR/expired-keystore.pem"
    printf 'SSL=localhost:%s\nSASL_SSL=localhost:%s\nSASL_PLAINTEXT=%s:%s\nMTLS=localhost:%s\nEXPIRED=localhost:%s\n' \
        "$SSL_PORT" "$SASL_SSL_PORT" "$HOST" "$SASL_PORT" "$MTLS_PORT" "$EXPIRED_PORT" >"$TLS_DIR/listeners.env"
}

# `kafka-storage format` arguments that create the SCRAM users, in array SCRAM_ARGS.
SCRAM_ARGS=()
scram_users() {
    [[ -n $TLS_DIR ]] || return 0
    local m
    for m in SCRAM-SHA-256 SCRAM-SHA-512; do
        SCRAM_ARGS+=(--add-scram "$m=[name=$SASL_USER,password=$SASL_PASSWORD]")
    done
}

write_properties() {
    cat >"$PROPS" <<EOF
# Written by scripts/services/kafka.sh; one node that is broker and controller.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CONTROLLER_PORT
$(listener_properties)
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$DATA_DIR
num.partitions=1
auto.create.topics.enable=true
# One broker: internal topics cannot have more replicas.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
$(secured_properties)
# Keep every record: tests write records stamped in 2023, which the default 7-day
# retention would delete within minutes (readers from offset 0 then find nothing).
log.retention.ms=-1
# Tests join groups all the time: no 3 s wait for more members.
group.initial.rebalance.delay.ms=0
# Fewer threads on a 2-core machine.
num.network.threads=2
num.io.threads=2
background.threads=2
num.recovery.threads.per.data.dir=1
EOF
}

print_addr() {
    echo "$VENV/bin/python" >"$PY_FILE"
    print_env "SLUICE_KAFKA_BROKERS=$HOST:$PORT"
}

# start_broker fresh|keep: `fresh` wipes and formats the data dir; `keep` reuses it.
start_broker() {
    require_port SLUICE_KAFKA_PORT
    [[ $CONTROLLER_PORT =~ ^[0-9]+$ && $CONTROLLER_PORT != 0 ]] \
        || die "SLUICE_KAFKA_CONTROLLER_PORT must be a port number, got '$CONTROLLER_PORT'"
    mkdir -p "$RUN_DIR"
    local pid
    if pid=$(our_pid); then
        serving || die "pid $pid is running but $HOST:$PORT does not serve; see $LOG_FILE or run '$0 stop'"
        say "already running (pid $pid)"
        print_addr
        return 0
    fi
    rm -f "${STATE_FILES[@]}"
    require_free_port SLUICE_KAFKA_PORT
    if [[ -n $PROXIED_PORT ]]; then
        [[ $PROXIED_PORT =~ ^[0-9]+$ && $PROXIED_PORT != 0 ]] \
            || die "SLUICE_KAFKA_PROXIED_PORT must be a port number, got '$PROXIED_PORT'"
        [[ $PROXIED_ADDRESS =~ ^[^:]+:[0-9]+$ ]] \
            || die "SLUICE_KAFKA_PROXIED_ADDRESS must be host:port (where the proxy listens), got '$PROXIED_ADDRESS'"
        if port_accepts "$PROXIED_PORT"; then
            die "port $HOST:$PROXIED_PORT (SLUICE_KAFKA_PROXIED_PORT) is in use"
        fi
    fi
    if port_accepts "$CONTROLLER_PORT"; then
        die "controller port $HOST:$CONTROLLER_PORT is in use; set SLUICE_KAFKA_CONTROLLER_PORT to a free port"
    fi
    install_jars
    install_python
    [[ -z $TLS_DIR ]] || make_broker_certs
    write_properties
    local cp="$JARS/libs/*"
    local t0=$SECONDS
    if [[ $1 == fresh || ! -f $DATA_DIR/meta.properties ]]; then
        rm -rf "$DATA_DIR"
        scram_users
        # A short-lived JVM: C1 only and serial GC start fastest.
        "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -cp "$cp" \
            -Dlog4j2.configurationFile="$HERE/kafka/log4j2.properties" \
            kafka.tools.StorageTool format --cluster-id "$(cluster_id)" --config "$PROPS" \
            ${SCRAM_ARGS[@]+"${SCRAM_ARGS[@]}"} \
            >"$LOG_FILE" 2>&1 || { tail -n 20 "$LOG_FILE" >&2; die "formatting $DATA_DIR failed"; }
    else
        : >"$LOG_FILE"
    fi
    # Serial GC and a small heap: a test broker on a shared 2-core machine.
    nohup "$JAVA" -Xms128m -Xmx512m -XX:+UseSerialGC -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$HERE/kafka/log4j2.properties" \
        -cp "$cp" kafka.Kafka "$PROPS" </dev/null >>"$LOG_FILE" 2>&1 &
    pid=$!
    echo "$pid" >"$PID_FILE"
    wait_ready "$pid" "$START_TIMEOUT" 0.2 "serve on $HOST:$PORT" -- serving
    say "Apache Kafka $KAFKA_VERSION up in $(( SECONDS - t0 ))s (pid $pid) at $HOST:$PORT; data: $DATA_DIR; log: $LOG_FILE; python with confluent-kafka: $VENV/bin/python"
    [[ -z $TLS_DIR ]] || say "secured listeners: $(tr '\n' ' ' <"$TLS_DIR/listeners.env")(CA $TLS_DIR/ca.crt; SASL user $SASL_USER)"
    print_addr
}

after_stop() { [[ ${KEEP_DATA:-} == 1 ]] || rm -rf "$DATA_DIR" "$PROPS"; }

cmd_start() { start_broker fresh; }
cmd_stop() { stop_server; }
cmd_restart() { KEEP_DATA=1 stop_server; start_broker keep; }

cmd_status() {
    local pid rss
    if pid=$(our_pid); then
        rss=$(ps -o rss= -p "$pid" 2>/dev/null | tr -d ' ')
        if serving; then
            echo "kafka: up pid=$pid brokers=$HOST:$PORT rss=${rss:-?}KB data=$DATA_DIR python=$VENV/bin/python"
            return 0
        fi
        echo "kafka: NOT SERVING pid=$pid brokers=$HOST:$PORT (see $LOG_FILE)"
        return 1
    fi
    echo "kafka: down"
    return 1
}

run_command "$@"
