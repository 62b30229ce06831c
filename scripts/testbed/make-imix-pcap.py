#!/usr/bin/env python3
"""Writes the IMIX stream of bench/src/bin/pktgen.rs as a pcap for Pktgen-DPDK (-s 0:imix.pcap):
7:4:1 frames of 64, 570 and 1518 bytes (with FCS), 172.16.1.10 -> 20.0.0.1 + i*256 over the
given number of tunnels, in the same 12-frame pattern and tunnel spread as the in-process
benchmark. Standard library only, so it runs on a bare tester.

usage: make-imix-pcap.py OUT.pcap [TUNNELS] [DST_MAC]
"""
import struct
import sys

PATTERN = [64, 570, 64, 64, 570, 64, 1518, 64, 570, 64, 64, 570]
FCS = 4
SPREAD = 2654435761
SRC_MAC = bytes.fromhex("02000000000a")
SRC_IP = bytes([172, 16, 1, 10])


def checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def frame(seq: int, tunnels: int, dst_mac: bytes) -> bytes:
    tunnel = (seq * SPREAD) % tunnels
    dst_ip = struct.pack("!I", 0x14000000 + (tunnel << 8) + 1)
    ip_len = PATTERN[seq % len(PATTERN)] - FCS - 14
    payload = bytes((seq + i) & 0xFF for i in range(ip_len - 28))
    udp = struct.pack("!HHHH", 1234, 5678, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, ip_len, 0, 0, 64, 17, 0, SRC_IP, dst_ip)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return dst_mac + SRC_MAC + b"\x08\x00" + ip + udp


def main() -> None:
    out = sys.argv[1]
    tunnels = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    dst_mac = bytes.fromhex((sys.argv[3] if len(sys.argv) > 3 else "02:00:00:00:00:11").replace(":", ""))
    # Enough frames that every tunnel is hit at least once, up to 120,000 frames.
    count = min(max(len(PATTERN) * 100, tunnels), 120_000)
    count -= count % len(PATTERN)
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for seq in range(count):
            data = frame(seq, tunnels, dst_mac)
            f.write(struct.pack("<IIII", 0, seq, len(data), len(data)))
            f.write(data)
    print(f"wrote {count} frames over {tunnels} tunnels to {out}")


if __name__ == "__main__":
    main()
