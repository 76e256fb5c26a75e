#!/usr/bin/env bash
# End-to-end browser tests: Debian's Chromium driven by playwright-core against the whole system
# (`hospital up` on a free port with a fresh data directory). Screenshots go to e2e/screenshots/.
#
#   e2e/run.sh                      run every test
#   e2e/run.sh tests/live.test.js   run some files (paths relative to e2e/)
#   E2E_UPDATE_DOCS=1 e2e/run.sh    also copy the dashboard screenshot to docs/dashboard.png
#   HOSPITAL_BIN=target/debug/hospital e2e/run.sh   use an already built binary (no release build)
#
# Exits with the tests' status; the system is stopped and its data removed in every case.
set -euo pipefail

E2E_DIR="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$E2E_DIR/.." && pwd)"
cd "$ROOT"

log() { echo "==> e2e: $*"; }

# 1. The browser: Debian's chromium (playwright cannot download its own builds here).
CHROMIUM_BIN="${CHROMIUM_BIN:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM_BIN" ]; then
    log "installing chromium (apt)"
    if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
fi
export CHROMIUM_BIN
log "browser: $("$CHROMIUM_BIN" --version 2>/dev/null | tail -n 1)"

# 2. The test dependencies, exactly as locked.
log "npm ci"
(cd "$E2E_DIR" && npm ci --no-audit --no-fund --loglevel=error)

# 3. The system: nats-server >= 2.11 and the release binary.
# shellcheck source=../scripts/lib/nats-server.sh
source "$ROOT/scripts/lib/nats-server.sh"
ensure_nats_server
if [ -n "${HOSPITAL_BIN:-}" ]; then
    log "using the hospital binary $HOSPITAL_BIN"
else
    log "building the hospital binary (release)"
    cargo build --release --locked --bin hospital
    HOSPITAL_BIN="$ROOT/target/release/hospital"
fi

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
DATA_DIR="$(mktemp -d "${TMPDIR:-/tmp}/hospital-e2e.XXXXXX")"
SYSTEM_LOG="$DATA_DIR/hospital.log"
ADMIN_PASSWORD="e2e-admin-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
SYSTEM_PID=""

stop_system() {
    local status=$?
    if [ -n "$SYSTEM_PID" ] && kill -0 "$SYSTEM_PID" 2>/dev/null; then
        log "stopping the system (pid $SYSTEM_PID)"
        kill -INT "$SYSTEM_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$SYSTEM_PID" 2>/dev/null || break
            sleep 0.2
        done
        if kill -0 "$SYSTEM_PID" 2>/dev/null; then
            log "the system did not stop within 20 s; killing it"
            kill -KILL "$SYSTEM_PID" 2>/dev/null || true
        fi
        wait "$SYSTEM_PID" 2>/dev/null || true
    fi
    if [ "$status" -ne 0 ] && [ -f "$SYSTEM_LOG" ]; then
        log "last lines of the system's log:"
        grep -v '"http request"\|http request' "$SYSTEM_LOG" | tail -n 40 || true
    fi
    rm -rf "$DATA_DIR"
    exit "$status"
}
trap stop_system EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "starting the system on http://127.0.0.1:$PORT (data $DATA_DIR)"
HOSPITAL_ADMIN_PASSWORD="$ADMIN_PASSWORD" HOSPITAL_FRONTEND_DIR="$ROOT/frontend" \
    "$HOSPITAL_BIN" up --data-dir "$DATA_DIR" --http-addr "127.0.0.1:$PORT" \
    >"$SYSTEM_LOG" 2>&1 &
SYSTEM_PID=$!

for _ in $(seq 1 600); do
    if grep -q "is up" "$SYSTEM_LOG" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$SYSTEM_PID" 2>/dev/null; then
        log "the system exited before it was up"
        exit 1
    fi
    sleep 0.2
done
if ! grep -q "is up" "$SYSTEM_LOG"; then
    log "the system was not up within 120 s"
    exit 1
fi
grep "is up" "$SYSTEM_LOG"

# 4. The tests (one file at a time: they share the system, each with its own people and names).
rm -rf "$E2E_DIR/screenshots"
mkdir -p "$E2E_DIR/screenshots"
if [ "$#" -gt 0 ]; then TESTS=("$@"); else TESTS=(tests/); fi
status=0
(
    cd "$E2E_DIR"
    E2E_BASE_URL="http://127.0.0.1:$PORT" E2E_ADMIN_PASSWORD="$ADMIN_PASSWORD" \
        E2E_SCREENSHOT_DIR="$E2E_DIR/screenshots" \
        TZ="${E2E_TIME_ZONE:-Europe/Paris}" node --test --test-concurrency=1 "${TESTS[@]}"
) || status=$?

log "screenshots in e2e/screenshots/:"
ls "$E2E_DIR/screenshots" 2>/dev/null | sed 's/^/    /' || true
if [ "${E2E_UPDATE_DOCS:-}" = "1" ] && [ -f "$E2E_DIR/screenshots/dashboard.png" ]; then
    mkdir -p "$ROOT/docs"
    cp "$E2E_DIR/screenshots/dashboard.png" "$ROOT/docs/dashboard.png"
    log "copied the dashboard screenshot to docs/dashboard.png"
fi
exit "$status"
