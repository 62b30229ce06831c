#!/usr/bin/env python3
"""The decrypt direction on a hardware testbed: ESP that the tester can replay needs keys both
ends know, so this writes (1) a dyntun configuration with N hand-keyed tunnels (`then manual`,
AES-128-CBC + HMAC-SHA1-96, keys derived from the tunnel number, anti-replay off so that a
looped pcap is not dropped as replays) for the two-port testbed, and (2) a pcap of ESP frames
sealed with those keys, as peer i (30.0.0.0 + i) would send them to dyntun's outside address
10.1.1.1, carrying UDP 20.0.0.1 + i*256 -> 172.16.1.10 in the benchmark's frame sizes.

Replay the pcap into dyntun's outside port (Pktgen-DPDK: -s 1:esp.pcap) and count the clear
frames on the tester's LAN port. Needs scapy (Debian python3-scapy) on the machine that runs it.

usage: make-manual-testbed.py OUT_DIR [TUNNELS] [FRAME_BYTES|imix] [DYNTUN_OUTSIDE_MAC]
       writes OUT_DIR/dyntun-manual.conf and OUT_DIR/esp-decrypt.pcap
"""
import hashlib
import pathlib
import sys

IMIX = [64, 570, 64, 64, 570, 64, 1518, 64, 570, 64, 64, 570]
FCS = 4
SPREAD = 2654435761
# Junos manual SPIs run from 256 to 16639, so at most 16,384 hand-keyed tunnels.
SPI_BASE = 256
MAX_TUNNELS = 16639 - SPI_BASE + 1
TESTER_MAC = "02:00:00:00:00:fe"


def peer_address(i):
    n = 0x1E000000 + i
    return ".".join(str((n >> s) & 0xFF) for s in (24, 16, 8, 0))


def peer_network(i):
    n = 0x14000000 + (i << 8)
    return ".".join(str((n >> s) & 0xFF) for s in (24, 16, 8, 0))


def keys(i):
    """(encryption key 16 bytes, authentication key 20 bytes) of tunnel i: reproducible, so
    the pcap and the configuration always agree. Test keys, never for real traffic."""
    material = hashlib.sha256(f"dyntun testbed tunnel {i}".encode()).digest()
    return material[:16], hashlib.sha1(material).digest()


def term(i):
    enc, auth = keys(i)
    return f"""            term tunnel-{i} {{
                from {{
                    source-address 172.16.1.0/24;
                    destination-address {peer_network(i)}/24;
                }}
                then {{
                    remote-gateway {peer_address(i)};
                    manual {{
                        direction bidirectional {{
                            protocol esp;
                            spi {SPI_BASE + i};
                            authentication {{
                                algorithm hmac-sha1-96;
                                key hexadecimal 0x{auth.hex()};
                            }}
                            encryption {{
                                algorithm aes-128-cbc;
                                key hexadecimal 0x{enc.hex()};
                            }}
                        }}
                    }}
                }}
            }}
"""


def config(tunnels):
    terms = "".join(term(i) for i in range(tunnels))
    return f"""/*
 * dyntun on the two-port testbed with {tunnels} hand-keyed tunnels, written by
 * scripts/testbed/make-manual-testbed.py; the matching ESP frames are in esp-decrypt.pcap.
 * Replace the two PCI addresses. Test keys only.
 */
interfaces {{
    ge-0/0/0 {{ unit 0 {{ family inet {{ address 10.1.1.1/24; }} }} }}
    ge-0/0/1 {{ unit 0 {{ family inet {{ address 172.16.1.1/24; }} }} }}
    sp-1/2/0 {{
        unit 1 {{ family inet; service-domain inside; }}
        unit 2 {{ family inet; service-domain outside; }}
    }}
}}
services {{
    service-set manual-testbed {{
        next-hop-service {{
            inside-service-interface sp-1/2/0.1;
            outside-service-interface sp-1/2/0.2;
        }}
        ipsec-vpn-options {{
            local-gateway 10.1.1.1;
            /* The tester loops one pcap: repeated sequence numbers are expected. */
            no-anti-replay;
        }}
        ipsec-vpn-rules manual-tunnels;
    }}
    ipsec-vpn {{
        rule manual-tunnels {{
{terms}            match-direction input;
        }}
    }}
}}
routing-options {{
    static {{
        route 0.0.0.0/0 next-hop 10.1.1.254;
        route 20.0.0.0/8 next-hop sp-1/2/0.1;
    }}
}}
dataplane {{
    interface ge-0/0/0 {{ device "0000:3b:00.0"; }}   # placeholder: outside port's PCI address
    interface ge-0/0/1 {{ device "0000:3b:00.1"; }}   # placeholder: inside port's PCI address
    pic sp-1/2/0 {{ cores [ 2 3 ]; }}
    control-core 1;
    eal-options [ "--socket-mem" "2048" ];
    idle-backoff-us 0;
}}
"""


def frames(tunnels, size, outside_mac):
    from scapy.layers.inet import IP, UDP
    from scapy.layers.ipsec import ESP, SecurityAssociation
    from scapy.layers.l2 import Ether

    sizes = IMIX if size == "imix" else [int(size)]
    count = max(tunnels, len(sizes) * 100)
    count -= count % len(sizes)
    sas = {}
    for seq in range(count):
        i = (seq * SPREAD) % tunnels
        if i not in sas:
            enc, auth = keys(i)
            sas[i] = SecurityAssociation(
                ESP,
                spi=SPI_BASE + i,
                crypt_algo="AES-CBC",
                crypt_key=enc,
                auth_algo="HMAC-SHA1-96",
                auth_key=auth,
                tunnel_header=IP(src=peer_address(i), dst="10.1.1.1"),
            )
        # Frame sizes count the FCS, like the benchmark; the inner packet is what the LAN
        # frame of that size carries.
        inner_len = sizes[seq % len(sizes)] - FCS - 14
        payload = bytes((seq + k) & 0xFF for k in range(inner_len - 28))
        src = peer_network(i).rsplit(".", 1)[0] + ".1"
        inner = IP(src=src, dst="172.16.1.10", ttl=64) / UDP(sport=5678, dport=1234) / payload
        sealed = sas[i].encrypt(inner, seq_num=seq // tunnels + 1)
        yield Ether(src=TESTER_MAC, dst=outside_mac) / sealed


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    out = pathlib.Path(sys.argv[1])
    tunnels = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    size = sys.argv[3].lower() if len(sys.argv) > 3 else "imix"
    outside_mac = sys.argv[4] if len(sys.argv) > 4 else "02:00:00:00:00:10"
    if not 1 <= tunnels <= MAX_TUNNELS:
        sys.exit(f"TUNNELS must be 1..{MAX_TUNNELS} (the manual SPI range 256..16639)")
    out.mkdir(parents=True, exist_ok=True)
    (out / "dyntun-manual.conf").write_text(config(tunnels))
    from scapy.utils import wrpcap

    packets = list(frames(tunnels, size, outside_mac))
    wrpcap(str(out / "esp-decrypt.pcap"), packets)
    print(f"wrote {out / 'dyntun-manual.conf'} ({tunnels} tunnels) and "
          f"{out / 'esp-decrypt.pcap'} ({len(packets)} frames, {size})")


if __name__ == "__main__":
    main()
