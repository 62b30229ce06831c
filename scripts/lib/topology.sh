# The reference topology of the dynamic-endpoint example, built from network namespaces and veths.
# Sourced by scripts/demo.sh and by the end-to-end tests' shell side; every name carries $TOPO_TAG
# so that several runs never collide, and `topology_down` removes exactly what `topology_up` made.
#
#   lan (172.16.1.10) --- sg1-in [SG1: dyntun on DPDK af_packet] sg1-out --- isp router --- sg2 (10.2.2.2, LAN 172.16.2.0/24)
#                                 inside 172.16.1.1   outside 10.1.1.1        10.1.1.254  \-- sg3 (10.3.3.3, LAN 172.16.3.0/24)
#
# The veth ends named sg1-in / sg1-out stay without addresses inside the SG1 namespace: DPDK's
# net_af_packet owns them and dyntun answers ARP for 10.1.1.1 and 172.16.1.1 itself.

: "${TOPO_TAG:=dt$$}"

topo_ns() { printf '%s-%s' "$TOPO_TAG" "$1"; }

topology_up() {
    local lan sg1 isp sg2 sg3
    lan=$(topo_ns lan); sg1=$(topo_ns sg1); isp=$(topo_ns isp); sg2=$(topo_ns sg2); sg3=$(topo_ns sg3)
    for ns in "$lan" "$sg1" "$isp" "$sg2" "$sg3"; do
        ip netns add "$ns"
        ip -n "$ns" link set lo up
    done

    # LAN host behind SG1
    ip link add lan0 netns "$lan" type veth peer name sg1-in netns "$sg1"
    ip -n "$lan" addr add 172.16.1.10/24 dev lan0
    ip -n "$lan" link set lan0 up
    ip -n "$lan" route add default via 172.16.1.1

    # SG1's outside towards the ISP router
    ip link add sg1-out netns "$sg1" type veth peer name isp-sg1 netns "$isp"
    ip -n "$isp" addr add 10.1.1.254/24 dev isp-sg1
    ip -n "$isp" link set isp-sg1 up
    for dev in sg1-in sg1-out; do
        ip -n "$sg1" link set "$dev" up promisc on
        # af_packet sees every frame; keep the kernel from answering on these ports itself.
        ip netns exec "$sg1" sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=1"
    done

    # the dynamic peers, each with its protected network on lo
    local peer
    for peer in 2 3; do
        local ns
        ns=$(topo_ns "sg$peer")
        ip link add "isp-sg$peer" netns "$isp" type veth peer name wan0 netns "$ns"
        ip -n "$isp" addr add "10.$peer.$peer.254/24" dev "isp-sg$peer"
        ip -n "$isp" link set "isp-sg$peer" up
        ip -n "$ns" addr add "10.$peer.$peer.$peer/24" dev wan0
        ip -n "$ns" link set wan0 up
        ip -n "$ns" route add default via "10.$peer.$peer.254"
        ip -n "$ns" addr add "172.16.$peer.1/32" dev lo
    done
    ip netns exec "$isp" sysctl -qw net.ipv4.ip_forward=1
}

topology_down() {
    local role
    for role in lan sg1 isp sg2 sg3; do
        ip netns del "$(topo_ns "$role")" 2>/dev/null || true
    done
}

# The same roles with an IPv6 outside network (documentation prefixes, only inside these
# namespaces); the LAN is dual-stack, and each peer protects an IPv4 and an IPv6 address on lo.
#
#   lan (172.16.1.10, fd00:1::10) --- [SG1] sg1-out --- isp 2001:db8:1::fe --- sg2 (2001:db8:2::2, 172.16.2.1, fd00:2::1)
#                                 outside 2001:db8:1::1     2001:db8:2/3::fe \-- sg3 (2001:db8:3::3, 172.16.3.1, fd00:3::1)
topology_up_v6() {
    local lan sg1 isp
    lan=$(topo_ns lan); sg1=$(topo_ns sg1); isp=$(topo_ns isp)
    local ns
    for ns in "$lan" "$sg1" "$isp" "$(topo_ns sg2)" "$(topo_ns sg3)"; do
        ip netns add "$ns"
        ip -n "$ns" link set lo up
    done

    ip link add lan0 netns "$lan" type veth peer name sg1-in netns "$sg1"
    ip -n "$lan" addr add 172.16.1.10/24 dev lan0
    ip -n "$lan" -6 addr add fd00:1::10/64 dev lan0 nodad
    ip -n "$lan" link set lan0 up
    ip -n "$lan" route add default via 172.16.1.1
    ip -n "$lan" -6 route add default via fd00:1::1

    ip link add sg1-out netns "$sg1" type veth peer name isp-sg1 netns "$isp"
    ip -n "$isp" -6 addr add 2001:db8:1::fe/64 dev isp-sg1 nodad
    ip -n "$isp" link set isp-sg1 up
    local dev
    for dev in sg1-in sg1-out; do
        ip -n "$sg1" link set "$dev" up promisc on
        ip netns exec "$sg1" sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=1"
    done

    local peer
    for peer in 2 3; do
        ns=$(topo_ns "sg$peer")
        ip link add "isp-sg$peer" netns "$isp" type veth peer name wan0 netns "$ns"
        ip -n "$isp" -6 addr add "2001:db8:$peer::fe/64" dev "isp-sg$peer" nodad
        ip -n "$isp" link set "isp-sg$peer" up
        ip -n "$ns" -6 addr add "2001:db8:$peer::$peer/64" dev wan0 nodad
        ip -n "$ns" link set wan0 up
        ip -n "$ns" -6 route add default via "2001:db8:$peer::fe"
        ip -n "$ns" addr add "172.16.$peer.1/32" dev lo
        ip -n "$ns" -6 addr add "fd00:$peer::1/128" dev lo
    done
    ip netns exec "$isp" sysctl -qw net.ipv6.conf.all.forwarding=1
}
