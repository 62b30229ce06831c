#!/usr/bin/env bash
# The whole test suite: unit tests, DPDK tests on virtual devices, and the scenario tests with
# real strongSwan peers in network namespaces. Needs root (namespaces, DPDK) and scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
# One test binary at a time runs its tests one after another: scenario tests create namespaces
# and start daemons, and a 2-core machine gains nothing from running them side by side.
cargo test --workspace --all-targets -- --test-threads=1
