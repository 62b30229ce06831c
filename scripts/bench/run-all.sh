#!/usr/bin/env bash
# Every benchmark figure in bench/README.md, in one go: builds the release binaries (dyntun
# itself too, since ike_rate runs the real daemon), runs each benchmark binary in turn (each
# prints its table and writes bench/results/NAME.json), then prints the README's headline tables
# from those JSON files.
# Usage (root, after scripts/setup.sh): bash scripts/bench/run-all.sh [--quick]
#   --quick   every binary in its quick mode (a few minutes in all instead of ~15)
set -euo pipefail
cd "$(dirname "$0")/../.."

quick=()
if [[ "${1:-}" == "--quick" ]]; then
    quick=(--quick)
fi

cargo build --release -p dyntun -p dyntun-bench

run() {
    local name=$1
    shift
    echo
    echo "## $name $*"
    local started=$SECONDS
    "./target/release/$name" "$@"
    echo "($name: $((SECONDS - started)) s)"
}

# The DPDK ones first, while nothing else of ours runs; forward, esp and lookup have no quick mode.
run forward
run esp
run lookup
run pktgen "${quick[@]}"
run pktgen_ports "${quick[@]}"
run ike_dh
run ike_setup "${quick[@]}"
run ike_rate "${quick[@]}"

echo
python3 scripts/bench/headline.py
