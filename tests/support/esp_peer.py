"""A hand-keyed ESP peer for the manual-SA scenario, run by /usr/bin/python3 in SG2's namespace.

scapy plays SG2: it seals an ICMP echo request from 172.16.2.1 to the LAN host with the manual
SA (SPI 16000, raw ESP, IP protocol 50), sends it to dyntun, and waits for dyntun's ESP answer,
which it opens with the same keys. Optionally it also waits for ESP on a second SPI (the
"shadow" term) carrying a packet to a given inner destination.

Prints one line per finding and exits 0 only when everything expected was seen.
"""

import sys

from scapy.all import AsyncSniffer, IP, ICMP, ESP, Raw, conf, send
from scapy.layers.ipsec import SecurityAssociation

conf.verb = 0
ENC_KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
AUTH_KEY = b"dyntun-sg2-auth-key!"


def sa(spi):
    return SecurityAssociation(
        ESP,
        spi=spi,
        crypt_algo="AES-CBC",
        crypt_key=ENC_KEY,
        auth_algo="HMAC-SHA1-96",
        auth_key=AUTH_KEY,
        tunnel_header=IP(src="10.2.2.2", dst="10.1.1.1"),
    )


def opened(packet, spi):
    try:
        inner = sa(spi).decrypt(IP(bytes(packet[IP])))
    except Exception as error:  # a tampered or foreign packet: report, keep looking
        print(f"undecryptable ESP spi={spi}: {error}")
        return None
    return inner


def main():
    shadow_destination = sys.argv[1] if len(sys.argv) > 1 else None
    sniffer = AsyncSniffer(iface="wan0", filter="ip proto 50 and src 10.1.1.1", store=True)
    sniffer.start()
    import time

    time.sleep(0.5)
    ok = True
    request = IP(src="172.16.2.1", dst="172.16.1.10") / ICMP(type=8, id=0x4242, seq=7) / Raw(b"manual-sa-check")
    outbound = sa(16000)
    for seq in range(3):
        send(outbound.encrypt(request))
        time.sleep(0.3)
    if shadow_destination:
        print(f"waiting for the shadow term's ESP to {shadow_destination}")
    time.sleep(2.5)
    sniffer.stop()
    got_reply = False
    got_shadow = False
    for packet in sniffer.results or []:
        spi = packet[ESP].spi
        inner = opened(packet, spi)
        if inner is None:
            continue
        if spi == 16000 and inner.haslayer(ICMP) and inner[ICMP].type == 0 and inner[ICMP].id == 0x4242:
            if inner[IP].src == "172.16.1.10" and inner[IP].dst == "172.16.2.1" and bytes(inner[Raw].load) == b"manual-sa-check":
                got_reply = True
        if spi == 16001 and shadow_destination and inner[IP].dst == shadow_destination:
            got_shadow = True
    print(f"echo reply through the manual SA: {got_reply}")
    ok &= got_reply
    if shadow_destination:
        print(f"shadow term traffic to {shadow_destination}: {got_shadow}")
        ok &= got_shadow
    sys.exit(0 if ok else 1)


main()
