#!/usr/bin/env bash
# Reserves 2 MiB hugepages for DPDK on a bare-metal testbed and mounts hugetlbfs.
# Usage: hugepages.sh [PAGES_PER_NODE]   (default 1024 = 2 GiB per NUMA node)
# Everything in bench/ also runs without hugepages (--no-huge); this is for real NICs.
set -euo pipefail
pages="${1:-1024}"

if [[ $EUID -ne 0 ]]; then
    echo "hugepages.sh: run as root" >&2
    exit 1
fi

nodes=(/sys/devices/system/node/node*)
if [[ -e "${nodes[0]}" ]]; then
    # One pool per NUMA node, so each port's workers allocate next to its NIC.
    for node in "${nodes[@]}"; do
        echo "$pages" > "$node/hugepages/hugepages-2048kB/nr_hugepages"
        echo "$(basename "$node"): $(cat "$node/hugepages/hugepages-2048kB/nr_hugepages") x 2 MiB"
    done
else
    echo "$pages" > /proc/sys/vm/nr_hugepages
fi

mkdir -p /dev/hugepages
if ! mountpoint -q /dev/hugepages; then
    mount -t hugetlbfs -o pagesize=2M nodev /dev/hugepages
fi
grep -E '^(HugePages_Total|HugePages_Free|Hugepagesize)' /proc/meminfo
