#!/usr/bin/env bash
# Installs everything dyntun's build, main command and tests need on Debian 12, as root.
# Idempotent: run it as often as you like. Prints what it did.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
    echo "setup: must run as root (it installs packages and configures hugepages)" >&2
    exit 1
fi

packages=(
    libdpdk-dev dpdk dpdk-dev pkg-config clang libclang-dev
    iproute2 iputils-ping tcpdump procps psmisc
    strongswan-charon strongswan-swanctl strongswan-pki
    libcharon-extra-plugins libstrongswan-standard-plugins libstrongswan-extra-plugins
    python3 python3-scapy openssl libssl-dev
)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    say "all ${#packages[@]} apt packages already installed"
fi

# Installing strongSwan must not leave a system charon running: the tests start their own.
if command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now strongswan-starter strongswan 2>/dev/null || true
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo not found: install a Rust toolchain (1.80 or newer) and run again" >&2
    exit 1
fi
say "rust: $(cargo --version)"

# Hugepages where the kernel gives them; everything also runs with --no-huge.
huge_file=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
if [ -w "$huge_file" ] && [ "$(cat "$huge_file")" -lt 512 ]; then
    echo 512 > "$huge_file" 2>/dev/null || true
fi
huge=$(awk '/HugePages_Total/ {print $2}' /proc/meminfo)
if [ "${huge:-0}" -gt 0 ]; then
    mkdir -p /dev/hugepages
    mountpoint -q /dev/hugepages || mount -t hugetlbfs nodev /dev/hugepages 2>/dev/null || true
    say "hugepages: $huge x 2 MiB reserved (benchmarks may use them; tests always run with --no-huge)"
else
    say "hugepages: none available here; dyntun and its tests run with --no-huge"
fi

say "building dyntun (release)"
cargo build --release -p dyntun >/dev/null
say "done: target/release/dyntun is built"
