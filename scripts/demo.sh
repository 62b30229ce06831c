#!/usr/bin/env bash
# The main command: the reference topology of "IPsec tunnels with dynamic endpoints", for real.
# SG1 is dyntun on DPDK (net_af_packet on two veths); SG2 and SG3 are strongSwan charons with
# addresses SG1 has never been told about. They initiate IKEv1 Main Mode, SG1 responds, and
# traffic flows between the LANs both ways. Everything is torn down at the end, also on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${CONFIG:-examples/sg1-policy-shared.conf}
export TOPO_TAG="demo$$"
WORK=$(mktemp -d /tmp/dyntun-demo.XXXXXX)
. scripts/lib/topology.sh
. scripts/lib/strongswan.sh

DYNTUN_PID=
cleanup() {
    set +e
    charon_stop "$WORK/sg2"
    charon_stop "$WORK/sg3"
    if [ -n "$DYNTUN_PID" ]; then
        kill -INT "$DYNTUN_PID" 2>/dev/null
        for _ in $(seq 1 50); do kill -0 "$DYNTUN_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$DYNTUN_PID" 2>/dev/null
    fi
    topology_down
    rm -rf "/var/run/dpdk/$TOPO_TAG"
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

step() { printf '\n=== %s\n' "$*"; }

[ -x target/release/dyntun ] || cargo build --release -p dyntun
BIN=target/release/dyntun
SOCK="$WORK/dyntun.sock"

step "checking $CONFIG"
"$BIN" check "$CONFIG"

step "building the topology (namespaces $TOPO_TAG-*)"
topology_up

step "starting SG1: dyntun on DPDK net_af_packet ports sg1-out (10.1.1.1) and sg1-in (172.16.1.1)"
ip netns exec "$(topo_ns sg1)" "$BIN" run "$CONFIG" --socket "$SOCK" --file-prefix "$TOPO_TAG" \
    >"$WORK/dyntun.log" 2>&1 &
DYNTUN_PID=$!
for _ in $(seq 1 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || { cat "$WORK/dyntun.log"; echo "demo: dyntun did not start" >&2; exit 1; }

step "starting SG2 (10.2.2.2, LAN 172.16.2.0/24) and SG3 (10.3.3.3, LAN 172.16.3.0/24): strongSwan, IKEv1 main mode, PSK"
charon_start "$(topo_ns sg2)" "$WORK/sg2" 10.2.2.2 10.1.1.1 172.16.2.0/24 172.16.1.0/24 "${PSK_GLOBAL:-dyntun-demo-global-key}"
charon_start "$(topo_ns sg3)" "$WORK/sg3" 10.3.3.3 10.1.1.1 172.16.3.0/24 172.16.1.0/24 "${PSK_GLOBAL:-dyntun-demo-global-key}"

step "SG2 and SG3 initiate; SG1 only responds"
charon_initiate "$(topo_ns sg2)" "$WORK/sg2" | tail -n 2
charon_initiate "$(topo_ns sg3)" "$WORK/sg3" | tail -n 2

step "the LAN host finds its gateway: dyntun answers ARP and ICMP for 172.16.1.1 itself"
ip netns exec "$(topo_ns lan)" ping -c 2 -i 0.2 -W 2 172.16.1.1

step "pings through the tunnels, both ways"
ip netns exec "$(topo_ns sg2)" ping -c 3 -i 0.2 -W 2 -I 172.16.2.1 172.16.1.10
ip netns exec "$(topo_ns sg3)" ping -c 3 -i 0.2 -W 2 -I 172.16.3.1 172.16.1.10
ip netns exec "$(topo_ns lan)" ping -c 3 -i 0.2 -W 2 172.16.2.1
ip netns exec "$(topo_ns lan)" ping -c 3 -i 0.2 -W 2 172.16.3.1

show() { step "dyntun show $*"; "$BIN" show --socket "$SOCK" "$@"; }
show services ipsec-vpn ipsec security-associations detail
show services ipsec-vpn ike security-associations
show route

step "done: two dynamic peers that SG1 never knew came up by IKE, got implicit dynamic rules and reverse routes, and carried traffic both ways"
