#!/usr/bin/env bash
# Headless Chromium for the web console's browser tests (host/tests/all/console.rs).
#
#   scripts/services/chromium.sh start    install (once) Debian's chromium and
#                                         chromium-driver and the npm package
#                                         playwright-core that drives it, check that
#                                         the browser runs, print the env line
#   scripts/services/chromium.sh stop     nothing to stop: each test launches and closes
#                                         its own browser
#   scripts/services/chromium.sh status   installed or not (exit 0 if usable, 1 otherwise)
#   scripts/services/chromium.sh --help   this text
#
# No browser is downloaded at test time (none could be, on a closed network): the
# browser is the Debian package, and playwright-core (pinned by the committed
# host/tests/console/package-lock.json) is installed with `npm ci` into
# host/tests/console/node_modules. Never `npx playwright install`. The tests launch
# it with --headless --no-sandbox --disable-gpu --disable-quic --no-first-run
# --disable-background-networking --disable-component-update --disable-sync and a
# fresh profile: without the background-networking flags Chromium waits on services
# it cannot reach.
#
# On success `start` prints exactly one line on stdout:
#     SLUICE_CHROMIUM=/usr/bin/chromium
# (progress goes to stderr), so `export "$(scripts/services/chromium.sh start)"` works.
# The same line is written to $SLUICE_SERVICES_DIR/chromium.env.
#
# Env:
#   SLUICE_CHROMIUM      the browser binary (default /usr/bin/chromium; installed with
#                        apt-get, as root or with sudo, when that is the default and missing)
#   SLUICE_SERVICES_DIR  run dir for chromium.env (default /tmp/sluice-services)
set -euo pipefail
SERVICE=chromium
SERVER=chromium
# shellcheck source=scripts/services/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BROWSER=${SLUICE_CHROMIUM:-/usr/bin/chromium}
PACKAGE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../host/tests/console" && pwd)

# The browser answers --version (the Debian wrapper script runs the real binary).
browser_runs() { "$BROWSER" --headless --no-sandbox --version >/dev/null 2>&1; }

# node_modules matches the lock file: npm ci records the lock it installed in
# node_modules/.package-lock.json.
driver_installed() {
    [[ -f $PACKAGE_DIR/node_modules/playwright-core/package.json ]] &&
        cmp -s <(sed -n '/"node_modules\/playwright-core"/,/}/p' "$PACKAGE_DIR/package-lock.json") \
               <(sed -n '/"node_modules\/playwright-core"/,/}/p' "$PACKAGE_DIR/node_modules/.package-lock.json")
}

install_browser() {
    browser_runs && return 0
    [[ $BROWSER == /usr/bin/chromium ]] || die "$BROWSER does not run; unset SLUICE_CHROMIUM to install Debian's"
    apt_install chromium
    apt_install chromium-driver
    browser_runs || die "$BROWSER still does not run after the install"
}

install_driver() {
    driver_installed && return 0
    command -v npm >/dev/null 2>&1 || die "npm is required (Node.js 18 or later)"
    mkdir -p "$TOOLS_ROOT"
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$TOOLS_ROOT/.$SERVICE-install.lock"
        flock -w 600 9 || die "timed out waiting for the install lock"
        if driver_installed; then exec 9>&-; return 0; fi
    fi
    say "installing playwright-core into $PACKAGE_DIR/node_modules (npm ci)"
    (cd "$PACKAGE_DIR" && npm ci --no-audit --no-fund --silent) >&2 || die "npm ci in $PACKAGE_DIR failed"
    { exec 9>&-; } 2>/dev/null || true
    driver_installed || die "playwright-core is not installed after npm ci"
}

cmd_start() {
    mkdir -p "$RUN_DIR"
    install_browser
    install_driver
    say "$("$BROWSER" --headless --no-sandbox --version 2>/dev/null | head -n1) with playwright-core in $PACKAGE_DIR"
    print_env "SLUICE_CHROMIUM=$BROWSER"
}

cmd_stop() { rm -f "$ENV_FILE"; say "nothing to stop"; }

cmd_status() {
    if browser_runs && driver_installed; then
        echo "chromium: installed browser=$BROWSER driver=$PACKAGE_DIR/node_modules/playwright-core"
        return 0
    fi
    echo "chromium: not installed (run $0 start)"
    return 1
}

run_command "$@"
