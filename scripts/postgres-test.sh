#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests, from Debian's packages.
#
#   scripts/postgres-test.sh run CMD...   start a cluster, run CMD with
#                                         BERTH_TEST_POSTGRES set to its URL, stop it
#   scripts/postgres-test.sh start DIR    start one in DIR (created), print its URL
#   scripts/postgres-test.sh stop DIR     stop it and remove DIR
#
# The cluster listens on a unix socket in its own directory only (no port to
# collide with), trusts local connections, and syncs nothing to disk (it is
# thrown away) unless BERTH_PG_DURABLE=1 (for benchmarks beside SQLite,
# which syncs every commit). initdb refuses to run as root, so as root the cluster runs as
# `nobody`; the socket is reachable by every user.
set -euo pipefail

pg_bin() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
    if [[ -z "$dir" || ! -x "$dir/initdb" ]]; then
        echo "no PostgreSQL server found in /usr/lib/postgresql (apt-get install postgresql)" >&2
        return 1
    fi
    echo "$dir"
}

# Runs a command as the cluster's owner.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u nobody -- "$@"
    else
        "$@"
    fi
}

start() {
    local dir=$1 bin
    bin=$(pg_bin)
    mkdir -p "$dir"
    [[ $(id -u) -eq 0 ]] && chown nobody "$dir"
    chmod 0755 "$dir"
    as_owner "$bin/initdb" -D "$dir/data" -U berth --auth=trust --no-sync -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; return 1; }
    # Enough connections for several test pools at once; fsync off: throwaway.
    local opts="-c listen_addresses='' -c unix_socket_directories='$dir' -c max_connections=300"
    if [[ "${BERTH_PG_DURABLE:-}" != "1" ]]; then
        opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    fi
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start -o "$opts" \
        >/dev/null || { cat "$dir/server.log" >&2; return 1; }
    as_owner "$bin/createdb" -h "$dir" -U berth berth
    # A socket directory is the host, percent-encoded, in a URL.
    local host=${dir//\//%2F}
    echo "postgres://berth@$host/berth"
}

stop() {
    local dir=$1 bin
    bin=$(pg_bin)
    if [[ -f "$dir/data/postmaster.pid" ]]; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    fi
    rm -rf "$dir"
}

case "${1:-}" in
start) start "$(realpath -m "$2")" ;;
stop) stop "$(realpath -m "$2")" ;;
run)
    shift
    dir=$(mktemp -d /tmp/berth-pg.XXXXXX)
    trap 'stop "$dir"' EXIT
    BERTH_TEST_POSTGRES=$(start "$dir")
    export BERTH_TEST_POSTGRES
    echo "PostgreSQL for tests: $BERTH_TEST_POSTGRES" >&2
    "$@"
    ;;
*)
    sed -n '2,11p' "$0" >&2
    exit 2
    ;;
esac
