#!/usr/bin/python3
"""Independent ESP/AH oracle for dyntun's tests, built on scapy's SecurityAssociation.

Reads a JSON list of cases from argv[1]; for each case it decrypts the packets dyntun
encrypted (reporting whether each yields exactly the expected inner packet) and encrypts the
inner packets itself for dyntun to decrypt. Writes the results as JSON to argv[2].
"""
import json
import sys

from scapy.all import IP, IPv6, UDP, bind_layers, raw, split_layers
from scapy.layers.ipsec import AH, ESP, SecurityAssociation

CRYPT = {
    "null": "NULL",
    "des-cbc": "DES",
    "3des-cbc": "3DES",
    "aes-128-cbc": "AES-CBC",
    "aes-192-cbc": "AES-CBC",
    "aes-256-cbc": "AES-CBC",
    "aes-128-gcm": "AES-GCM",
    "aes-256-gcm": "AES-GCM",
}
AUTH = {
    "none": "NULL",
    "hmac-md5-96": "HMAC-MD5-96",
    "hmac-sha1-96": "HMAC-SHA1-96",
    "hmac-sha-256-128": "SHA2-256-128",
}


def outer_class(case):
    return IPv6 if ":" in case["local"] else IP


def tunnel_header(case, src, dst):
    return outer_class(case)(src=src, dst=dst)


def esp_sa(case, src, dst, with_tunnel=True):
    nat_t = None
    if case["udp"]:
        sport, dport = (case["local_port"], case["remote_port"]) if src == case["local"] else (case["remote_port"], case["local_port"])
        nat_t = UDP(sport=sport, dport=dport)
    return SecurityAssociation(
        ESP,
        spi=case["spi"],
        crypt_algo=CRYPT[case["cipher"]],
        crypt_key=bytes.fromhex(case["enc_key"]) or None,
        auth_algo=AUTH[case["integrity"]],
        auth_key=bytes.fromhex(case["auth_key"]) or None,
        tunnel_header=tunnel_header(case, src, dst) if with_tunnel else None,
        nat_t_header=nat_t,
        esn_en=case["esn"],
        esn=case.get("esn_high", 0),
    )


def ah_sa(case, src, dst, with_tunnel):
    return SecurityAssociation(
        AH,
        spi=case["ah_spi"],
        auth_algo=AUTH[case["ah_integrity"]],
        auth_key=bytes.fromhex(case["ah_key"]),
        tunnel_header=tunnel_header(case, src, dst) if with_tunnel else None,
        esn_en=case["esn"],
        esn=case.get("esn_high", 0),
    )


def fix_udp_length(data, case):
    """scapy 2.5 leaves the NAT-T UDP length at 8; set it from the IP length."""
    b = bytearray(data)
    ip_len = 40 if ":" in case["local"] else (b[0] & 0x0F) * 4
    udp_len = len(b) - ip_len
    b[ip_len + 4 : ip_len + 6] = udp_len.to_bytes(2, "big")
    return bytes(b)


def decrypt_dyntun(case, wire):
    """Returns the inner packet scapy recovers from one dyntun packet (peer's point of view)."""
    cls = outer_class(case)
    pkt = cls(wire)
    # The peer receives: its SA's tunnel endpoints are the reverse of ours.
    if case["mode"] == "esp":
        return raw(esp_sa(case, case["local"], case["remote"]).decrypt(pkt))
    if case["mode"] == "ah":
        return raw(ah_sa(case, case["local"], case["remote"], True).decrypt(pkt))
    # Bundle: verify AH over the outer packet, then decrypt the ESP it protects.
    esp_part = ah_sa(case, case["local"], case["remote"], True).decrypt(pkt)
    rebuilt = cls(raw(cls(src=case["local"], dst=case["remote"]) / ESP(raw(esp_part))))
    return raw(esp_sa(case, case["local"], case["remote"]).decrypt(rebuilt))


def encrypt_for_dyntun(case, inner, seq):
    cls = outer_class(case)
    pkt = (IPv6 if inner[0] >> 4 == 6 else IP)(inner)
    if case["mode"] == "esp":
        out = raw(esp_sa(case, case["remote"], case["local"]).encrypt(pkt, seq_num=seq))
        return fix_udp_length(out, case) if case["udp"] else out
    if case["mode"] == "ah":
        return raw(ah_sa(case, case["remote"], case["local"], True).encrypt(pkt, seq_num=seq))
    esp_pkt = raw(esp_sa(case, case["remote"], case["local"]).encrypt(pkt, seq_num=seq))
    # scapy's AH signer treats any packet holding an ESP layer as ESP and re-parses its input,
    # so ESP is unbound from IP while AH is computed over the ESP bytes.
    field = {"proto": 50} if cls is IP else {"nh": 50}
    split_layers(cls, ESP, **field)
    try:
        signed = ah_sa(case, case["remote"], case["local"], False).encrypt(cls(esp_pkt), seq_num=seq)
        return raw(signed)
    finally:
        bind_layers(cls, ESP, **field)


def run(cases):
    results = []
    for case in cases:
        verdicts = []
        for wire_hex, inner_hex in zip(case["dyntun_packets"], case["inner_packets"]):
            try:
                got = decrypt_dyntun(case, bytes.fromhex(wire_hex))
                verdicts.append("ok" if got == bytes.fromhex(inner_hex) else "mismatch:" + got.hex())
            except Exception as e:  # reported back to the Rust test, which fails on it
                verdicts.append("error:%r" % (e,))
        seq0 = case.get("first_seq", 1)
        encrypted = [
            encrypt_for_dyntun(case, bytes.fromhex(inner_hex), seq0 + i).hex()
            for i, inner_hex in enumerate(case["inner_packets"])
        ]
        results.append({"name": case["name"], "decrypted": verdicts, "scapy_packets": encrypted})
    return results


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    with open(sys.argv[2], "w") as f:
        json.dump(run(cases), f)
