//! Decapsulation as a fuzz target, run deterministically in the suite: random bytes, random
//! bytes behind a plausible outer header and SPI, and random mutations of genuine packets must
//! never panic, and nothing but an unmodified (or only mutable-field-modified) packet may pass.
//! The wire parsers and the reassembler get the same random input.

mod esp_support;

use dataplane::buf::{HeapBuf, PacketBuf};
use dataplane::crypto::Backend;
use dataplane::esp::reassembly::Reassembler;
use dataplane::esp::{InboundSa, OutboundSa};
use dataplane::sa::{Cipher, Integrity, SaSpec};
use dataplane::wire::{
    ah::AhPacket, arp::ArpPacket, esp::EspPacket, ethernet::EthernetFrame, icmp::IcmpMessage, ipv4,
    ipv6, udp::UdpPacket,
};
use esp_support::*;

const ROUNDS: usize = 3000;

struct Shape {
    name: &'static str,
    out: OutboundSa,
    inb: InboundSa,
    spi: u32,
}

fn shapes() -> Vec<Shape> {
    let make = |name, spec: SaSpec| Shape {
        name,
        spi: spec.spi,
        out: OutboundSa::new(&spec, 0, Backend::Fastest).unwrap(),
        inb: InboundSa::new(&as_inbound(&spec), 0, Backend::Fastest).unwrap(),
    };
    let bundle = {
        let (e, a) = (
            esp_spec(Cipher::AesCbc256, Integrity::HmacSha256_128, true, false, 5),
            ah_spec(Integrity::HmacMd5_96, true, 6),
        );
        Shape {
            name: "bundle-v6",
            spi: a.spi,
            out: OutboundSa::new_bundle(&e, &a, 0, Backend::Fastest).unwrap(),
            inb: InboundSa::new_bundle(&as_inbound(&e), &as_inbound(&a), 0, Backend::Fastest)
                .unwrap(),
        }
    };
    vec![
        make(
            "gcm-v4",
            esp_spec(Cipher::AesGcm128, Integrity::None, false, false, 1),
        ),
        make(
            "cbc-v6-udp",
            esp_spec(Cipher::AesCbc128, Integrity::HmacSha1_96, true, true, 2),
        ),
        make(
            "3des-v4-udp",
            esp_spec(Cipher::TripleDesCbc, Integrity::HmacMd5_96, false, true, 3),
        ),
        make(
            "null-v4",
            esp_spec(Cipher::Null, Integrity::HmacSha1_96, false, false, 4),
        ),
        make("ah-v4", ah_spec(Integrity::HmacSha1_96, false, 7)),
        bundle,
    ]
}

/// A plausible outer header for `shape` in front of random bytes, so that input reaches the
/// SPI, replay and crypto checks rather than stopping at the IP header.
fn plausible(shape: &Shape, genuine: &[u8], rng: &mut TestRng) -> Vec<u8> {
    let hl = if genuine[0] >> 4 == 4 {
        ipv4::MIN_HEADER_LEN
    } else {
        ipv6::HEADER_LEN
    };
    let udp =
        (genuine[0] >> 4 == 4 && genuine[9] == 17) || (genuine[0] >> 4 == 6 && genuine[6] == 17);
    let keep = hl + if udp { 8 } else { 0 };
    let mut p = genuine[..keep].to_vec();
    p.extend_from_slice(&shape.spi.to_be_bytes());
    let n = rng.below(1500);
    p.extend_from_slice(&rng.bytes(n));
    fix_lengths(&mut p, hl, udp);
    p
}

fn fix_lengths(p: &mut [u8], hl: usize, udp: bool) {
    let len = p.len();
    if hl == 20 {
        p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        p[10..12].fill(0);
        let c = dataplane::wire::checksum::checksum(&p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
    } else {
        p[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
    }
    if udp && len >= hl + 8 {
        p[hl + 4..hl + 6].copy_from_slice(&((len - hl) as u16).to_be_bytes());
    }
}

fn mutate(genuine: &[u8], rng: &mut TestRng) -> Vec<u8> {
    let mut p = genuine.to_vec();
    match rng.below(4) {
        0 => {
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(p.len());
                p[i] ^= 1 << rng.below(8);
            }
        }
        1 => p.truncate(rng.below(p.len())),
        2 => {
            let n = 1 + rng.below(64);
            p.extend_from_slice(&rng.bytes(n));
        }
        _ => {
            let i = rng.below(p.len());
            p[i] = rng.next_u64() as u8;
            let hl = if p[0] >> 4 == 6 { 40 } else { 20 };
            if p.len() >= hl + 8 && rng.below(2) == 0 {
                p.truncate(p.len() - rng.below(24));
                let udp = p.len() > 9 && (p[9] == 17 || p[6] == 17);
                if p.len() >= hl + 8 {
                    fix_lengths(&mut p, hl, udp);
                }
            }
        }
    }
    p
}

#[test]
fn decapsulation_survives_random_and_mutated_input() {
    let mut rng = TestRng::new(0xf022);
    for mut shape in shapes() {
        let mut accepted_mutants = 0;
        for round in 0..ROUNDS {
            let (v6, len) = (rng.below(2) == 0, 48 + rng.below(1300));
            let inner = inner_packet(v6, len, 0, false, &mut rng);
            let mut sealed = HeapBuf::from_slice(&inner);
            assert_eq!(shape.out.encapsulate(&mut sealed, 0).0, Ok(()));
            let genuine = sealed.data().to_vec();
            let input = match round % 3 {
                0 => {
                    let n = rng.below(1600);
                    rng.bytes(n)
                }
                1 => plausible(&shape, &genuine, &mut rng),
                _ => mutate(&genuine, &mut rng),
            };
            let mut buf = HeapBuf::from_slice(&input);
            let (verdict, _) = shape.inb.decapsulate(&mut buf, 0);
            if verdict.is_ok() {
                // Only a mutation that touched nothing protected may pass, and then it yields the
                // genuine inner packet (outer TOS/TTL, trailing bytes beyond the IP length).
                assert_eq!(
                    buf.data(),
                    &inner[..],
                    "{} round {round}: forged packet accepted",
                    shape.name
                );
                accepted_mutants += 1;
            }
        }
        let c = shape.inb.counters().snapshot();
        assert_eq!(c.packets, accepted_mutants);
        assert!(
            c.auth_failures + c.bad_header + c.other_drops + c.replays > (ROUNDS as u64) / 2,
            "{}: {c:?}",
            shape.name
        );
    }
}

#[test]
fn wire_parsers_and_reassembly_survive_random_input() {
    let mut rng = TestRng::new(0xbeef);
    let mut reassembler = Reassembler::new(4, 5);
    for i in 0..50_000u64 {
        let n = rng.below(200);
        let mut b = rng.bytes(n);
        if !b.is_empty() && i % 2 == 0 {
            b[0] = if i % 4 == 0 { 0x45 } else { 0x60 };
        }
        if let Ok(p) = ipv4::Ipv4Packet::new_checked(&b[..]) {
            let _ = (p.payload().len(), p.verify_checksum(), p.fragment_offset());
        }
        if let Ok(p) = ipv6::Ipv6Packet::new_checked(&b[..]) {
            let _ = p.payload().len();
        }
        if let Ok(u) = UdpPacket::new_checked(&b[..]) {
            let _ = (u.payload().len(), u.classify_nat_t());
        }
        if let Ok(e) = EthernetFrame::new_checked(&b[..]) {
            let _ = (e.payload().len(), e.vlan_id());
        }
        if let Ok(a) = AhPacket::new_checked(&b[..]) {
            let _ = a.icv().len();
        }
        let _ = EspPacket::new_checked(&b[..]).map(|e| e.body().len());
        let _ = ArpPacket::new_checked(&b[..]).map(|a| a.sender_ip());
        let _ = IcmpMessage::new_checked(&b[..]).map(|m| m.body().len());
        let mut buf = HeapBuf::from_slice(&b);
        let _ = reassembler.push(&mut buf, i / 1000);
    }
}
