//! The whole PIC worker as a fuzz target, run deterministically in the suite: bursts of
//! mutated frames (LAN traffic, the peer's ESP, IKE, ARP, IPv6, outer fragments) and of
//! genuine ESP carrying mutated inner packets (so the decrypted path — proxy check, routing,
//! pings to the gateway, hub and spoke, neighbour holds — sees hostile input past the ICV).
//! Nothing may panic, every frame gets a disposition, and whatever leaves is a sound frame
//! for a real port.

mod pipeline_support;

use dataplane::buf::{HeapBuf, PacketBuf};
use dataplane::crypto::Backend;
use dataplane::esp::OutboundSa;
use dataplane::pipeline::{Disposition, HeldFrames};
use dataplane::sa::Direction;
use dataplane::tables::TunnelId;
use dataplane::wire::{checksum, ethernet, ipv4};
use pipeline_support::*;

const BURSTS: usize = 1500;

struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// Flips, overwrites, cuts or extends a few bytes of `bytes`.
    fn mutate(&mut self, bytes: &mut Vec<u8>) {
        for _ in 0..1 + self.below(4) {
            match self.below(5) {
                0 if !bytes.is_empty() => {
                    let at = self.below(bytes.len());
                    bytes[at] ^= 1 << self.below(8);
                }
                1 if !bytes.is_empty() => {
                    let at = self.below(bytes.len());
                    bytes[at] = self.next() as u8;
                }
                2 => bytes.truncate(self.below(bytes.len() + 1)),
                3 => {
                    for _ in 0..self.below(64) {
                        bytes.push(self.next() as u8);
                    }
                }
                _ => {}
            }
        }
    }
}

fn echo_request(src: &str, dst: &str) -> Vec<u8> {
    let mut packet = ipv4_udp(src, dst, b"ping");
    packet[9] = 1;
    packet[20..28].copy_from_slice(&[8, 0, 0, 0, 0, 1, 0, 1]);
    let sum = checksum::checksum(&packet[20..]);
    packet[22..24].copy_from_slice(&sum.to_be_bytes());
    ipv4::Ipv4Packet::new_unchecked(&mut packet[..]).fill_checksum();
    packet
}

#[test]
fn hostile_bursts_never_panic_and_what_leaves_is_a_sound_frame() {
    let mut rig = rig();
    rig.neighbors
        .insert(OUTSIDE, ip("10.1.1.254"), ISP_MAC)
        .unwrap();
    let spoke = Tunnel {
        id: TunnelId(8),
        peer: "10.3.3.3",
        local_proxy: "0.0.0.0/0",
        remote_proxy: "172.16.3.0/24",
        inbound_spi: 0x300,
        outbound_spi: 0x301,
        tunnel_mtu: None,
    };
    for update in tunnel_updates(&spoke) {
        rig.worker.tables.apply(update).unwrap();
    }
    let mut peer = reference_peer();
    let mut spoke_peer = OutboundSa::new(
        &spec(Direction::Outbound, 0x300, "10.3.3.3", "10.1.1.1"),
        0,
        Backend::PureRust,
    )
    .unwrap();
    let from_sg2 = [
        ipv4_udp("172.16.2.1", "172.16.1.10", b"to the LAN"),
        ipv4_udp("172.16.2.1", "172.16.1.99", b"to nobody yet"),
        echo_request("172.16.2.1", "172.16.1.1"),
    ];
    // The spoke's proxy is 0.0.0.0/0 on our side: its traffic may be routed into a tunnel.
    let from_spoke = [
        ipv4_udp("172.16.3.5", "172.16.3.9", b"back into a tunnel"),
        echo_request("172.16.3.5", "172.16.1.1"),
    ];
    let lan = frame(
        GW_MAC_IN,
        LAN_HOST_MAC,
        &ipv4_udp("172.16.1.10", "172.16.2.1", b"lan traffic"),
    )
    .data()
    .to_vec();
    let mut ike = ipv4_udp("10.2.2.2", "10.1.1.1", &[0u8; 40]);
    ike[22..24].copy_from_slice(&500u16.to_be_bytes());
    let ike = frame(GW_MAC_OUT, ISP_MAC, &ike).data().to_vec();
    let mut arp = vec![0u8; 42];
    ethernet::write_header(&mut arp, [0xff; 6], ISP_MAC, ethernet::ETHERTYPE_ARP);
    let mut v6 = vec![0u8; 14 + 40 + 8];
    ethernet::write_header(&mut v6, GW_MAC_OUT, ISP_MAC, ethernet::ETHERTYPE_IPV6);
    v6[14] = 0x60;
    v6[19] = 8;
    v6[20] = 44; // a Fragment header follows
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let mut held = HeldFrames::<HeapBuf>::default();
    let mut frames_in = 0u64;
    for round in 0..BURSTS {
        let count = 1 + random.below(32);
        let mut bufs: Vec<HeapBuf> = (0..count)
            .map(|_| {
                let choice = random.below(7);
                let mut bytes = match choice {
                    0 => lan.clone(),
                    1 => ike.clone(),
                    2 => arp.clone(),
                    3 => v6.clone(),
                    _ => {
                        // Genuine ESP (from SG2, or from the spoke) around a mutated inner packet.
                        let (seeds, sealer) = if choice == 6 {
                            (&from_spoke[..], &mut spoke_peer)
                        } else {
                            (&from_sg2[..], &mut peer)
                        };
                        let mut inner = seeds[random.below(seeds.len())].clone();
                        if random.below(2) == 0 {
                            random.mutate(&mut inner);
                        }
                        let mut esp = HeapBuf::from_slice(&inner);
                        let _ = sealer.encapsulate(&mut esp, round as u64);
                        frame(GW_MAC_OUT, ISP_MAC, esp.data()).data().to_vec()
                    }
                };
                if choice < 4 || random.below(4) == 0 {
                    random.mutate(&mut bytes);
                }
                HeapBuf::from_slice(&bytes)
            })
            .collect();
        let mut out = vec![Disposition::Punt; count];
        let rx = if random.below(2) == 0 {
            OUTSIDE
        } else {
            INSIDE
        };
        rig.worker
            .process_burst(rx, &mut bufs, &mut out, round as u64 / 100);
        frames_in += count as u64;
        for (buf, disposition) in bufs.into_iter().zip(&out) {
            match *disposition {
                Disposition::Transmit(port) => {
                    let data = buf.data();
                    assert!(port == OUTSIDE || port == INSIDE, "round {round}: {port:?}");
                    assert!(data.len() >= ethernet::HEADER_LEN, "round {round}");
                    let own = if port == OUTSIDE {
                        GW_MAC_OUT
                    } else {
                        GW_MAC_IN
                    };
                    assert_eq!(&data[6..12], &own, "round {round}: source MAC");
                }
                Disposition::AwaitNeighbor(wait) => {
                    assert!(wait.port == OUTSIDE || wait.port == INSIDE);
                    let _ = held.hold(buf, wait, round as u64 / 100);
                }
                _ => {}
            }
        }
        for (port, sealed) in held.take_ready(&mut rig.worker, round as u64 / 100) {
            let own = if port == OUTSIDE {
                GW_MAC_OUT
            } else {
                GW_MAC_IN
            };
            assert_eq!(
                &sealed.data()[6..12],
                &own,
                "round {round}: held frame's source MAC"
            );
        }
        if round == BURSTS / 2 {
            // The silent host answers at last: what it was sent leaves now.
            rig.neighbors
                .insert(INSIDE, ip("172.16.1.99"), LAN_HOST_MAC)
                .unwrap();
            rig.neighbors
                .insert(INSIDE, ip("172.16.1.10"), LAN_HOST_MAC)
                .unwrap();
        }
    }
    let s = rig.counters.snapshot();
    assert_eq!(s.rx_packets, frames_in);
    // The genuine seeds got through: every path was exercised, not just the refusals.
    assert!(
        s.decrypted > 0 && s.encrypted > 0 && s.echo_via_tunnel > 0,
        "{s:?}"
    );
    assert!(
        s.tunnel_to_tunnel > 0 && s.held_for_neighbor > 0 && s.punted > 0,
        "{s:?}"
    );
}
