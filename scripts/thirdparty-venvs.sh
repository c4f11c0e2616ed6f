#!/usr/bin/env bash
# Virtualenvs for the third-party tools the conformance suite drives
# unchanged (tests/thirdparty/requirements-*.txt), one per tool so their
# dependencies never meet the suite's own. Reused while the requirements
# file is unchanged. Prints nothing on success but the venvs' paths.
set -euo pipefail
cd "$(dirname "$0")/.."
root="${BERTH_THIRDPARTY_DIR:-$PWD/target/thirdparty}"
mkdir -p "$root"
for req in tests/thirdparty/requirements-*.txt; do
    tool="$(basename "$req" .txt)"
    tool="${tool#requirements-}"
    venv="$root/$tool"
    stamp="$venv/.requirements"
    if [[ -x "$venv/bin/python" ]] && cmp -s "$req" "$stamp"; then
        echo "$tool: $venv (up to date)"
        continue
    fi
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
    cp "$req" "$stamp"
    echo "$tool: $venv"
done
