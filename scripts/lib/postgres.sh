# Sourced by scripts/test: makes sure a PostgreSQL server answers for the tests and exports
# HOSPITAL_TEST_POSTGRES_URL, the server on which kit::postgres_test makes a fresh database per
# test (the PostgreSQL schemas' tests, issue #9).
#
# A server that already answers at HOSPITAL_TEST_POSTGRES_URL (default
# postgres://postgres@127.0.0.1:5432/postgres) is used as it is. Otherwise Debian's `postgresql`
# package is installed when its binaries are missing, and a throwaway server is started for this
# run: initdb in a temporary directory, trust authentication, 127.0.0.1 only, on the URL's port
# when it is free, else on a free one. stop_postgres stops it and removes its directory.

HOSPITAL_TEST_POSTGRES_DEFAULT_URL="postgres://postgres@127.0.0.1:5432/postgres"

# The server this run started (empty when it uses one that was already there).
_hospital_postgres_dir=""
_hospital_postgres_bin=""

# The URL with its password hidden, for messages.
_postgres_masked() {
    printf '%s' "$1" | sed 's#://\([^:@/]*\):[^@/]*@#://\1:***@#'
}

# Whether a server answers at $1 and lets us in (pg_isready alone does not authenticate).
postgres_answers() {
    command -v pg_isready >/dev/null 2>&1 && command -v psql >/dev/null 2>&1 || return 1
    PGCONNECT_TIMEOUT=5 pg_isready -q -d "$1" >/dev/null 2>&1 || return 1
    PGCONNECT_TIMEOUT=5 psql -X -A -t -q -d "$1" -c 'SELECT 1' >/dev/null 2>&1
}

# The directory of the newest installed server binaries (initdb, pg_ctl), if any.
_postgres_bindir() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            echo "$dir"
            return 0
        fi
    done
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
        return 0
    fi
    return 1
}

# Runs a server binary as the postgres user when we are root (initdb and postgres refuse root).
_postgres_as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

_postgres_port_is_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

_postgres_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts a throwaway server on 127.0.0.1:$1 with the binaries in $2; its data lives in a
# temporary directory until stop_postgres.
_postgres_start() {
    local port=$1 bin=$2 dir
    dir=$(mktemp -d "${TMPDIR:-/tmp}/hospital-postgres.XXXXXX")
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres:postgres "$dir"
    fi
    if ! _postgres_as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 \
        --locale=C.UTF-8 >"$dir/initdb.log" 2>&1; then
        echo "error: initdb failed ($bin/initdb); its output:" >&2
        cat "$dir/initdb.log" >&2
        rm -rf "$dir"
        return 1
    fi
    # A test server: its data is thrown away after the run, so it need not survive a power cut.
    if ! _postgres_as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null 2>&1; then
        echo "error: PostgreSQL did not start on 127.0.0.1:$port; its log:" >&2
        cat "$dir/server.log" >&2
        rm -rf "$dir"
        return 1
    fi
    _hospital_postgres_dir=$dir
    _hospital_postgres_bin=$bin
}

# Checks that the server at $1 has what the tests need: btree_gist (the appointment schema's
# exclusion constraints) and a user that may create databases.
_postgres_check() {
    local url=$1 answer
    answer=$(PGCONNECT_TIMEOUT=5 psql -X -A -t -q -d "$url" -c \
        "SELECT (SELECT count(*) FROM pg_available_extensions WHERE name = 'btree_gist')
                || ' ' || (SELECT (rolsuper OR rolcreatedb)::text FROM pg_roles WHERE rolname = current_user)") || return 1
    case $answer in
        "0 "*)
            echo "error: the PostgreSQL at $(_postgres_masked "$url") has no btree_gist extension (Debian: postgresql-contrib; it comes with postgresql 10 and newer)" >&2
            return 1
            ;;
        *" true") ;;
        *)
            echo "error: the user of HOSPITAL_TEST_POSTGRES_URL ($(_postgres_masked "$url")) may not create databases (needs CREATEDB)" >&2
            return 1
            ;;
    esac
}

ensure_postgres() {
    local url=${HOSPITAL_TEST_POSTGRES_URL:-$HOSPITAL_TEST_POSTGRES_DEFAULT_URL}
    if postgres_answers "$url"; then
        _postgres_check "$url" || return 1
        export HOSPITAL_TEST_POSTGRES_URL=$url
        echo "==> PostgreSQL: the server at $(_postgres_masked "$url") ($(psql -X -A -t -q -d "$url" -c 'SHOW server_version'))"
        return 0
    fi

    # Nothing answers: start a server of our own, on this machine only.
    local authority host port bin
    authority=${url#*://}
    authority=${authority%%/*}
    authority=${authority%%\?*}
    authority=${authority##*@}
    case $authority in
        \[*\]:*) host=${authority%]:*}]; port=${authority##*]:} ;;
        \[*\]) host=$authority; port=5432 ;;
        *:*) host=${authority%:*}; port=${authority##*:} ;;
        *) host=$authority; port=5432 ;;
    esac
    case $host in
        "" | 127.0.0.1 | localhost | "[::1]") ;;
        *)
            echo "error: no PostgreSQL answers at HOSPITAL_TEST_POSTGRES_URL=$(_postgres_masked "$url"), and a server can only be started on this machine" >&2
            return 1
            ;;
    esac
    if ! bin=$(_postgres_bindir); then
        if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
            echo "error: no PostgreSQL answers at $(_postgres_masked "$url") and none is installed: install PostgreSQL (Debian: apt-get install postgresql) or set HOSPITAL_TEST_POSTGRES_URL" >&2
            return 1
        fi
        echo "==> installing PostgreSQL (Debian's postgresql)" >&2
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; } >/dev/null
        bin=$(_postgres_bindir) || {
            echo "error: Debian's postgresql is installed but no initdb was found under /usr/lib/postgresql" >&2
            return 1
        }
    fi
    if ! _postgres_port_is_free "$port"; then
        # Something else holds the port (a server that refused us, say): leave it alone.
        echo "==> PostgreSQL: port $port is taken by a server that did not let us in; using a free port" >&2
        port=$(_postgres_free_port)
    fi
    _postgres_start "$port" "$bin" || return 1
    url="postgres://postgres@127.0.0.1:$port/postgres"
    if ! postgres_answers "$url" || ! _postgres_check "$url"; then
        echo "error: the PostgreSQL started in $_hospital_postgres_dir does not answer at $url" >&2
        stop_postgres
        return 1
    fi
    export HOSPITAL_TEST_POSTGRES_URL=$url
    echo "==> PostgreSQL: started $("$bin/postgres" --version | sed 's/^postgres (PostgreSQL) //') for this run at $url (data in $_hospital_postgres_dir)"
}

# Stops the server ensure_postgres started, if any, and removes its data.
stop_postgres() {
    [ -n "$_hospital_postgres_dir" ] || return 0
    _postgres_as_owner "$_hospital_postgres_bin/pg_ctl" -D "$_hospital_postgres_dir/data" \
        -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$_hospital_postgres_dir"
    _hospital_postgres_dir=""
}

# Drops the databases the tests made (kit::postgres_test names them hospital_test_<uuid>) that
# are still there: a test that failed half way, or one whose process ended before its
# best-effort drop ran.
drop_test_databases() {
    local url=${HOSPITAL_TEST_POSTGRES_URL:-}
    [ -n "$url" ] && postgres_answers "$url" || return 0
    local name dropped=0
    for name in $(psql -X -A -t -q -d "$url" -c \
        "SELECT datname FROM pg_database WHERE datname LIKE 'hospital\_test\_%'"); do
        psql -X -q -d "$url" -c "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" >/dev/null 2>&1 &&
            dropped=$((dropped + 1))
    done
    [ "$dropped" -eq 0 ] || echo "==> PostgreSQL: dropped $dropped test databases left behind"
}
