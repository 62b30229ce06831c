#!/usr/bin/env bash
# Hands two NIC ports to DPDK (vfio-pci) for dyntun, or gives them back to the kernel.
# Usage: bind-ports.sh bind   OUTSIDE_PCI INSIDE_PCI      e.g. 0000:3b:00.0 0000:3b:00.1
#        bind-ports.sh unbind OUTSIDE_PCI INSIDE_PCI KERNEL_DRIVER   e.g. ... i40e
#        bind-ports.sh status
# dpdk-devbind.py comes with the Debian package dpdk. The ports must be down and carry no
# address the host still needs (never bind the management port).
set -euo pipefail
devbind="$(command -v dpdk-devbind.py || command -v dpdk-devbind || true)"
if [[ -z "$devbind" ]]; then
    echo "bind-ports.sh: dpdk-devbind.py not found (apt-get install dpdk)" >&2
    exit 1
fi

case "${1:-status}" in
bind)
    outside="${2:?outside PCI address}"
    inside="${3:?inside PCI address}"
    modprobe vfio-pci
    # Without an IOMMU (some VMs), vfio needs no-IOMMU mode; with one, leave this off.
    if [[ ! -d /sys/kernel/iommu_groups/0 ]]; then
        echo 1 > /sys/module/vfio/parameters/enable_unsafe_noiommu_mode
    fi
    for pci in "$outside" "$inside"; do
        netdev="$(ls "/sys/bus/pci/devices/$pci/net" 2>/dev/null || true)"
        if [[ -n "$netdev" ]]; then
            ip link set "$netdev" down
        fi
    done
    "$devbind" --bind=vfio-pci "$outside" "$inside"
    ;;
unbind)
    outside="${2:?outside PCI address}"
    inside="${3:?inside PCI address}"
    driver="${4:?kernel driver, e.g. i40e, ice, mlx5_core, ixgbe}"
    "$devbind" --bind="$driver" "$outside" "$inside"
    ;;
status) ;;
*)
    echo "usage: $0 bind|unbind|status ..." >&2
    exit 2
    ;;
esac
"$devbind" --status-dev net
