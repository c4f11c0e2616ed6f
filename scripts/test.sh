#!/usr/bin/env bash
# The whole test suite: generated code is current, formatting and lints are
# clean, unit tests pass, and the conformance suite drives a real
# `berth server` with the real aws-cli and boto3, tasks run as Docker
# containers (single host and a three-agent cluster of containers).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "python test dependencies"
python3 -m pip install --quiet --disable-pip-version-check -r tests/conformance/requirements.txt

step "third-party tools the suite drives unchanged, from PyPI, one virtualenv each (tests/thirdparty): installed in the background while Rust builds"
mkdir -p target
scripts/thirdparty-venvs.sh > target/thirdparty-venvs.log 2>&1 &
venvs_pid=$!

step "Debian packages: a static busybox (test images are built from it; nothing can be pulled), docker-registry (a private registry for repositoryCredentials), PostgreSQL (the store's second backend)"
missing=()
if ! command -v busybox >/dev/null 2>&1 || ldd "$(command -v busybox)" >/dev/null 2>&1; then
    missing+=(busybox-static)
fi
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
if ((${#missing[@]})); then
    sudo=""
    if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
echo "static busybox: $(command -v busybox); registry: $(command -v docker-registry)"

step "generated wire code matches model/ (cargo run -p berth-codegen -- check)"
cargo run --quiet -p berth-codegen -- check

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -- -D warnings"
cargo clippy --quiet --workspace --all-targets -- -D warnings

step "cargo build"
cargo build --quiet --workspace --bins

step "a throwaway PostgreSQL server (scripts/postgres-test.sh), for the store suite and the conformance subset on it"
pg_dir=$(mktemp -d /tmp/berth-pg.XXXXXX)
trap 'scripts/postgres-test.sh stop "$pg_dir"' EXIT
BERTH_TEST_POSTGRES=$(scripts/postgres-test.sh start "$pg_dir")
# The store suite fails, rather than skips, if it cannot run on PostgreSQL.
export BERTH_TEST_POSTGRES BERTH_TEST_POSTGRES_REQUIRED=1
echo "PostgreSQL: $BERTH_TEST_POSTGRES"

step "unit and integration tests (cargo test; the store suite on SQLite and PostgreSQL)"
cargo test --quiet --workspace

step "third-party virtualenvs ready"
if ! wait "$venvs_pid"; then
    cat target/thirdparty-venvs.log >&2
    echo "installing the third-party tools failed" >&2
    exit 1
fi
cat target/thirdparty-venvs.log

step "test images (built once here, so parallel test workers find them current)"
if docker version >/dev/null 2>&1; then
    scripts/test-images.sh
    BERTH_BIN="$PWD/target/debug/berth" scripts/berth-image.sh
fi

# Most conformance tests wait on servers, agents and containers rather than
# compute, so files run on several workers at once (pytest-xdist; a file's
# tests stay on one worker, in order, with its module fixtures).
workers=${BERTH_TEST_WORKERS:-3}
step "conformance suite: real berth server, aws-cli and boto3 (pytest, $workers workers)"
BERTH_THIRDPARTY=required BERTH_BIN="$PWD/target/debug/berth" \
    python3 -m pytest tests/conformance -q -p no:cacheprovider -n "$workers" --dist loadfile

step "conformance subset on the PostgreSQL store: tasks and services (BERTH_TEST_STORE)"
BERTH_TEST_STORE="$BERTH_TEST_POSTGRES" BERTH_BIN="$PWD/target/debug/berth" python3 -m pytest \
    tests/conformance/test_tasks.py tests/conformance/test_services.py -q -p no:cacheprovider -n 2 --dist loadfile
