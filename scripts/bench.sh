#!/usr/bin/env bash
# Builds berth and the benchmark harness in release mode, then runs the
# harness (it starts berth and moto on 127.0.0.1, prints a table and stops
# them). Arguments go to berth-bench: see `scripts/bench.sh --help`.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p berth -p berth-bench
exec target/release/berth-bench "$@"
