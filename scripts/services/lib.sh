# shellcheck shell=bash
# Shared code of the scripts/services/*.sh scripts; sourced, never run.
#
# A service script sets SERVICE (its short name, used in messages and as the prefix of
# its run files) and then sources this file, which sets up the common variables, the
# install helpers, the readiness wait, stop/status, and the command dispatch. The
# script keeps only what is specific to its service: how to install it, how to start
# it, how to tell it answers, and which line it prints.
#
# Contract kept by every script:
#   * `start` prints exactly one line on stdout, `SLUICE_..._URL=...` (or _BROKERS),
#     so `export "$(scripts/services/NAME.sh start)"` works; progress goes to stderr.
#     The same line is written to $RUN_DIR/NAME.env.
#   * `start` on a running server prints the same line again and changes nothing.
#   * `stop` only stops the process this script started (pid file + command line check).
#   * `status` prints one line and exits 0 if up, 1 otherwise.
#   * `--help` prints the script's header comment.

: "${SERVICE:?set SERVICE before sourcing lib.sh}"

HOST=127.0.0.1
RUN_DIR=${SLUICE_SERVICES_DIR:-/tmp/sluice-services}
TOOLS_ROOT="${SLUICE_TOOLS:-$HOME/.cache/sluice-tools}/services"
PID_FILE="$RUN_DIR/$SERVICE.pid"
LOG_FILE="$RUN_DIR/$SERVICE.log"
ENV_FILE="$RUN_DIR/$SERVICE.env"
# Files that describe a running server; `stop` (and a failed start) removes them.
STATE_FILES=("$PID_FILE" "$ENV_FILE")
STOP_TIMEOUT=10    # seconds, then SIGKILL

say() { echo "$SERVICE.sh: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# --- TLS for tests -----------------------------------------------------------------

# make_test_certs DIR OWNER: a throwaway CA (DIR/ca.crt) and a server certificate for the
# DNS name `localhost` only (not 127.0.0.1, so tests can check a wrong host name) in
# DIR/server.crt and DIR/server.key, readable by OS user OWNER when we are root. Also
# DIR/expired.crt and DIR/expired.key: the same name, signed by the same CA, but valid
# only in January 2020, for the tests of an expired certificate. Files that exist are
# kept, unless server.crt has expired (a test killed while it had copied expired.crt
# over it leaves that behind): then all are made again.
make_test_certs() {
    local dir=$1 owner=$2
    mkdir -p "$dir"
    if [[ -f $dir/server.crt ]] && ! openssl x509 -checkend 0 -noout -in "$dir/server.crt" >/dev/null 2>&1; then
        say "$dir/server.crt has expired; making new certificates"
        rm -f "$dir"/{ca,server,expired}.{crt,key}
    fi
    if [[ ! -f $dir/server.crt || ! -f $dir/server.key ]]; then
        command -v openssl >/dev/null || die "TLS needs the openssl command"
        (
            cd "$dir"
            openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=sluice test CA" \
                -keyout ca.key -out ca.crt
            openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
                -keyout server.key -out server.csr
            printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n' >server.ext
            openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
                -days 30 -extfile server.ext -out server.crt
        ) >"$dir/openssl.log" 2>&1 || { cat "$dir/openssl.log" >&2; die "making certificates failed"; }
    fi
    if [[ ! -f $dir/expired.crt || ! -f $dir/expired.key ]]; then
        make_expired_cert "$dir" >>"$dir/openssl.log" 2>&1 \
            || { cat "$dir/openssl.log" >&2; die "making the expired certificate failed"; }
    fi
    chmod 600 "$dir/server.key" "$dir/expired.key"
    [[ $(id -u) == 0 ]] && chown "$owner:$owner" "$dir/server.key" "$dir/server.crt" \
        "$dir/expired.key" "$dir/expired.crt"
    return 0
}

# make_expired_cert DIR: DIR/expired.crt (DNS:localhost, valid 2020-01-01 to 2020-02-01,
# signed by DIR/ca.key) and DIR/expired.key. `openssl x509 -days` cannot go negative,
# and OpenSSL 3.0 has no -not_after, so `openssl ca`, which takes -startdate/-enddate.
make_expired_cert() {
    local dir=$1 work
    work=$(mktemp -d)
    (
        cd "$work" || exit 1
        cat >ca.cnf <<'EOT'
[ca]
default_ca = expired
[expired]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any
x509_extensions = ext
[any]
commonName = supplied
[ext]
subjectAltName = DNS:localhost
basicConstraints = CA:FALSE
EOT
        # Chained: errexit does not apply inside `make_expired_cert || die`.
        : >index.txt && echo 01 >serial &&
        openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$dir/expired.key" -out expired.csr &&
        openssl ca -config ca.cnf -batch -notext -in expired.csr -cert "$dir/ca.crt" \
            -keyfile "$dir/ca.key" -startdate 20200101000000Z -enddate 20200201000000Z \
            -out "$dir/expired.crt"
    )
    local rc=$?
    rm -rf "$work"
    return $rc
}

# --- checks ------------------------------------------------------------------------

# require_port VAR [zero-ok]: $PORT must be a port number (0 too with a second argument).
require_port() {
    if [[ -n ${2:-} ]]; then
        [[ $PORT =~ ^[0-9]+$ ]] || die "$1 must be a number, got '$PORT'"
    else
        [[ $PORT =~ ^[0-9]+$ && $PORT != 0 ]] || die "$1 must be a port number, got '$PORT'"
    fi
}

# True when something accepts TCP connections on $HOST:$1.
port_accepts() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# require_free_port VAR [hint]: dies when another process holds $PORT.
require_free_port() {
    if port_accepts "$PORT"; then
        die "port $HOST:$PORT is already in use by another process; set $1 to a free port${2:-}"
    fi
}

# pid_of PID_FILE PATTERN: the pid in the file, only if that process is alive and its
# command line contains PATTERN (a recycled pid is not ours).
pid_of() {
    [[ -f $1 ]] || return 1
    local pid; pid=$(<"$1")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    if [[ -r /proc/$pid/cmdline ]]; then
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$2" || return 1
    fi
    echo "$pid"
}

# print_env LINE: the one stdout line of `start`, also kept in $ENV_FILE.
print_env() {
    echo "$1" >"$ENV_FILE"
    echo "$1"
}

# --- install -----------------------------------------------------------------------

# venv_install VENV INSTALLED_FN MIN_PYTHON DESCRIPTION -- PIP_SPEC...
# Creates (or reuses) a venv and pip-installs the specs into it. Concurrent installs
# (parallel test jobs on one machine) are serialised with a lock file; when another job
# finished the install while this one waited (INSTALLED_FN says so), nothing is done.
# The caller then asks INSTALLED_FN again: if still false, it checks the result and
# calls venv_installed STAMP.
venv_install() {
    local venv=$1 installed_fn=$2 min_py=$3 what=$4
    shift 5
    mkdir -p "$TOOLS_ROOT"
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$TOOLS_ROOT/.$SERVICE-install.lock"
        flock -w 600 9 || die "timed out waiting for the install lock $TOOLS_ROOT/.$SERVICE-install.lock"
        if "$installed_fn"; then exec 9>&-; return 0; fi
    fi
    say "installing $what into $venv"
    local py=${PYTHON:-python3}
    command -v "$py" >/dev/null 2>&1 || die "$py not found (need Python >= $min_py with pip)"
    if [[ ! -x $venv/bin/python ]]; then
        rm -rf "$venv"
        "$py" -m venv "$venv" || die "'$py -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)"
    fi
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@" \
        || die "pip install $* failed"
}

# venv_installed STAMP: marks the install complete (after the caller's checks passed)
# and releases the install lock.
venv_installed() {
    rm -f "$(dirname "$1")"/.installed-*
    touch "$1"
    { exec 9>&-; } 2>/dev/null || true
}

# apt_install PACKAGE: installs a Debian package (first run only), with sudo unless root.
apt_install() {
    say "installing $1 with apt-get (first run only)"
    local sudo=()
    [[ $(id -u) == 0 ]] || sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq >&2 || die "apt-get update failed"
    "${sudo[@]}" apt-get install -y -qq -o DPkg::Lock::Timeout=300 "$1" >&2 \
        || die "apt-get install $1 failed"
}

# --- start / stop / status ----------------------------------------------------------

# wait_ready PID TIMEOUT INTERVAL WHAT -- CHECK...: polls CHECK until it succeeds.
# Dies with the log's tail when the process exits or TIMEOUT seconds pass (then the
# process is killed); either way the state files are removed.
wait_ready() {
    local pid=$1 timeout=$2 interval=$3 what=$4
    shift 5
    local deadline=$(( SECONDS + timeout ))
    until "$@"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "${STATE_FILES[@]}"
            say "$SERVER exited during start-up; last log lines ($LOG_FILE):"
            tail -n 20 "$LOG_FILE" >&2 || true
            exit 1
        fi
        if (( SECONDS >= deadline )); then
            kill "$pid" 2>/dev/null || true
            rm -f "${STATE_FILES[@]}"
            say "$SERVER did not $what within ${timeout}s; last log lines ($LOG_FILE):"
            tail -n 20 "$LOG_FILE" >&2 || true
            exit 1
        fi
        sleep "$interval"
    done
}

# terminate PID: SIGTERM, then SIGKILL after $STOP_TIMEOUT seconds.
terminate() {
    local pid=$1
    kill "$pid" 2>/dev/null || true
    local deadline=$(( SECONDS + STOP_TIMEOUT ))
    while kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        say "pid $pid ignored SIGTERM for ${STOP_TIMEOUT}s; sending SIGKILL"
        kill -9 "$pid" 2>/dev/null || true
    fi
}

# The default `stop` for a server this script launched itself: the script defines
# our_pid, and may define after_stop for extra cleanup (data directories).
stop_server() {
    local pid
    if ! pid=$(our_pid); then
        rm -f "${STATE_FILES[@]}"
        say "not running"
        return 0
    fi
    terminate "$pid"
    rm -f "${STATE_FILES[@]}"
    if declare -F after_stop >/dev/null; then after_stop; fi
    say "stopped (pid $pid)"
}

# The script's header comment (everything after the shebang up to the first
# non-comment line), which documents its commands and environment.
show_help() {
    awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"
}

# run_command "$@": dispatches to cmd_start, cmd_stop, cmd_status and, when the script
# defines it, cmd_restart.
run_command() {
    local commands="start|stop|status"
    declare -F cmd_restart >/dev/null && commands="start|stop|restart|status"
    case ${1:-} in
        start) cmd_start ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        restart)
            declare -F cmd_restart >/dev/null || { echo "usage: $0 $commands|--help" >&2; exit 2; }
            cmd_restart ;;
        -h|--help|help) show_help ;;
        *) echo "usage: $0 $commands|--help" >&2; exit 2 ;;
    esac
}
