//! Packet sizes through the tunnel: inner packets that the sender already fragmented, inner
//! fragments too big for the tunnel (fragmented again, offsets kept relative to the original),
//! and the outgoing port's MTU standing in for `tunnel-mtu` when none is configured.

mod pipeline_support;

use dataplane::buf::{HeapBuf, PacketBuf};
use dataplane::crypto::Backend;
use dataplane::esp::fragment::fragment_ipv4;
use dataplane::esp::InboundSa;
use dataplane::pipeline::{fragment_frame, Disposition};
use dataplane::sa::Direction;
use dataplane::wire::ipv4::{self, Ipv4Packet};
use pipeline_support::*;

/// What the LAN host's kernel sends for a datagram bigger than its 1500-byte link: fragments,
/// DF clear, one identification.
fn fragmented_by_the_sender(packet: &[u8], link_mtu: usize) -> Vec<Vec<u8>> {
    let mut pieces: Vec<HeapBuf> = (0..8).map(|_| HeapBuf::with_capacity(2048, 0)).collect();
    let used = fragment_ipv4(packet, link_mtu, &mut pieces).unwrap();
    pieces[..used].iter().map(|p| p.data().to_vec()).collect()
}

fn big_datagram(payload_len: usize, id: u16) -> Vec<u8> {
    let payload: Vec<u8> = (0..payload_len).map(|i| (i * 7) as u8).collect();
    let mut packet = ipv4_udp("172.16.1.10", "172.16.2.1", &payload);
    let mut ip = Ipv4Packet::new_unchecked(&mut packet[..]);
    ip.set_identification(id);
    ip.fill_checksum();
    packet
}

fn rig_with_neighbors(tunnel_mtu: Option<u16>) -> Rig {
    rig_with_neighbors_and_port_mtu(tunnel_mtu, None)
}

fn rig_with_neighbors_and_port_mtu(tunnel_mtu: Option<u16>, outside_mtu: Option<u16>) -> Rig {
    let rig = rig_with_mtus(tunnel_mtu, outside_mtu);
    rig.neighbors
        .insert(OUTSIDE, "10.1.1.254".parse().unwrap(), ISP_MAC)
        .unwrap();
    rig.neighbors
        .insert(INSIDE, "172.16.1.10".parse().unwrap(), LAN_HOST_MAC)
        .unwrap();
    rig
}

/// Runs LAN frames through the worker the way the DPDK loop does: frames it asks to fragment
/// are split with `fragment_frame` and submitted again. Returns the frames sent to the outside.
fn send_from_lan(rig: &mut Rig, packets: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut bufs: Vec<HeapBuf> = packets
        .iter()
        .map(|p| frame(GW_MAC_IN, LAN_HOST_MAC, p))
        .collect();
    let mut sent = Vec::new();
    let mut round = 0;
    while !bufs.is_empty() {
        round += 1;
        assert!(round <= 2, "a split frame must fit the tunnel");
        let mut out = vec![Disposition::Punt; bufs.len()];
        rig.worker.process_burst(INSIDE, &mut bufs, &mut out, 1);
        let mut again = Vec::new();
        for (buf, disposition) in bufs.iter().zip(&out) {
            match *disposition {
                Disposition::Transmit(port) => {
                    assert_eq!(port, OUTSIDE);
                    sent.push(buf.data().to_vec());
                }
                Disposition::Fragment { mtu } => {
                    let mut pieces: Vec<HeapBuf> =
                        (0..8).map(|_| HeapBuf::with_capacity(2048, 128)).collect();
                    let used = fragment_frame(buf, mtu, &mut pieces).unwrap();
                    again.extend(pieces.into_iter().take(used));
                }
                other => panic!("{other:?} {:?}", rig.counters.snapshot()),
            }
        }
        bufs = again;
    }
    sent
}

/// A LAN datagram of exactly `total` bytes, with or without DF.
fn lan_packet(total: usize, dont_fragment: bool) -> Vec<u8> {
    let mut packet = big_datagram(total - 28, 0x1500);
    if dont_fragment {
        packet[6] = 0x40;
        Ipv4Packet::new_unchecked(&mut packet[..]).fill_checksum();
    }
    packet
}

/// The inner MTU of the rig's tunnel (AES-CBC-128 + HMAC-SHA1-96 in UDP over IPv4) on a
/// link of `link_mtu`: outer IPv4 + UDP + ESP header + IV take 52 bytes, the ICV 12, and the
/// padded payload plus its 2-byte trailer is a multiple of the 16-byte block.
fn inner_mtu(link_mtu: usize) -> usize {
    (link_mtu - 52 - 12) / 16 * 16 - 2
}

/// Opens every frame with the peer's keys; returns the inner packets.
fn opened_by_the_peer(frames: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut peer = InboundSa::new(
        &spec(Direction::Inbound, 0x200, "10.2.2.2", "10.1.1.1"),
        0,
        Backend::PureRust,
    )
    .unwrap();
    frames
        .iter()
        .map(|f| {
            let mut esp = HeapBuf::from_slice(&f[14..]);
            peer.decapsulate(&mut esp, 1).0.unwrap();
            esp.data().to_vec()
        })
        .collect()
}

/// Puts inner fragments back together by offset, checking each piece's header on the way:
/// same identification, MF on all but the piece that ends the datagram.
fn reassembled(fragments: &[Vec<u8>], id: u16) -> Vec<u8> {
    let mut pieces: Vec<(usize, bool, Vec<u8>)> = fragments
        .iter()
        .map(|f| {
            let ip = Ipv4Packet::new_checked(&f[..]).unwrap();
            assert!(ip.verify_checksum());
            assert_eq!(ip.identification(), id);
            assert!(!ip.dont_fragment());
            (
                ip.fragment_offset(),
                ip.more_fragments(),
                ip.payload().to_vec(),
            )
        })
        .collect();
    pieces.sort_by_key(|p| p.0);
    let mut payload = Vec::new();
    for (i, (offset, more, data)) in pieces.iter().enumerate() {
        assert_eq!(*offset, payload.len(), "pieces cover the datagram once");
        assert_eq!(*more, i + 1 < pieces.len(), "MF on all but the last piece");
        payload.extend_from_slice(data);
    }
    payload
}

#[test]
fn fragments_from_the_sender_are_encrypted_and_a_too_big_one_is_split_again() {
    let mut rig = rig_with_neighbors(Some(1400));
    let original = big_datagram(2000, 0x4242);
    let from_lan = fragmented_by_the_sender(&original, 1500);
    assert_eq!(from_lan.len(), 2);
    assert_eq!(from_lan[0].len(), 1500);

    let sent = send_from_lan(&mut rig, &from_lan);
    for f in &sent {
        assert!(
            f.len() - 14 <= 1400,
            "outer packet of {} bytes",
            f.len() - 14
        );
    }
    // The 1500-byte first fragment became two; the second fitted as it was.
    assert_eq!(sent.len(), 3, "{:?}", rig.counters.snapshot());
    let inner = opened_by_the_peer(&sent);
    assert_eq!(reassembled(&inner, 0x4242), original[20..]);
    let s = rig.counters.snapshot();
    assert_eq!((s.encrypted, s.drop_bad_l3), (3, 0));
    assert_eq!(s.sent_for_fragmentation, 1);
}

#[test]
fn a_lone_middle_fragment_is_matched_on_addresses_and_keeps_its_offset() {
    let mut rig = rig_with_neighbors(Some(1400));
    let original = big_datagram(4000, 0x77);
    let from_lan = fragmented_by_the_sender(&original, 1500);
    assert_eq!(from_lan.len(), 3);
    let middle = &from_lan[1];
    let sent = send_from_lan(&mut rig, std::slice::from_ref(middle));
    assert_eq!(sent.len(), 2);
    let inner = opened_by_the_peer(&sent);
    let first = Ipv4Packet::new_checked(&inner[0][..]).unwrap();
    let second = Ipv4Packet::new_checked(&inner[1][..]).unwrap();
    let sender = Ipv4Packet::new_checked(&middle[..]).unwrap();
    assert_eq!(first.fragment_offset(), sender.fragment_offset());
    assert_eq!(
        second.fragment_offset(),
        sender.fragment_offset() + first.payload().len()
    );
    assert!(first.more_fragments() && second.more_fragments());
    let mut payload = first.payload().to_vec();
    payload.extend_from_slice(second.payload());
    assert_eq!(payload, sender.payload());
    assert_eq!(
        first.ttl(),
        ipv4::Ipv4Packet::new_checked(&middle[..]).unwrap().ttl() - 1
    );
}

#[test]
fn without_tunnel_mtu_the_outside_port_mtu_bounds_the_sealed_packet() {
    let mut rig = rig_with_neighbors_and_port_mtu(None, Some(1500));
    let largest = inner_mtu(1500);
    assert_eq!(largest, 1422);

    // The largest inner packet that fits leaves whole, at most 1500 bytes on the wire.
    let sent = send_from_lan(&mut rig, &[lan_packet(largest, true)]);
    assert_eq!(sent.len(), 1);
    assert!(sent[0].len() - 14 <= 1500);
    assert_eq!(opened_by_the_peer(&sent)[0].len(), largest);

    // One byte more with DF: fragmentation needed, naming the inner MTU that fits.
    let too_big = lan_packet(largest + 1, true);
    let mut bufs = [frame(GW_MAC_IN, LAN_HOST_MAC, &too_big)];
    let mut out = [Disposition::Drop];
    rig.worker.process_burst(INSIDE, &mut bufs, &mut out, 1);
    assert_eq!(out[0], Disposition::Transmit(INSIDE));
    let reply = bufs[0].data();
    let ip = Ipv4Packet::new_checked(&reply[14..]).unwrap();
    assert_eq!(
        (ip.protocol(), ip.dst()),
        (1, "172.16.1.10".parse().unwrap())
    );
    let icmp = ip.payload();
    assert_eq!((icmp[0], icmp[1]), (3, 4));
    assert_eq!(usize::from(u16::from_be_bytes([icmp[6], icmp[7]])), largest);

    // A full-size LAN packet without DF is split before sealing; every piece fits the link.
    let full = lan_packet(1500, false);
    let sent = send_from_lan(&mut rig, std::slice::from_ref(&full));
    assert_eq!(sent.len(), 2);
    for f in &sent {
        assert!(
            f.len() - 14 <= 1500,
            "outer packet of {} bytes",
            f.len() - 14
        );
    }
    assert_eq!(reassembled(&opened_by_the_peer(&sent), 0x1500), full[20..]);
    let s = rig.counters.snapshot();
    assert_eq!(
        (s.encrypted, s.icmp_too_big, s.sent_for_fragmentation),
        (3, 1, 1)
    );
}

#[test]
fn the_smaller_of_tunnel_mtu_and_port_mtu_wins() {
    // The port is smaller than the tunnel MTU: the port decides.
    let mut rig = rig_with_neighbors_and_port_mtu(Some(1400), Some(1280));
    let sent = send_from_lan(&mut rig, &[lan_packet(inner_mtu(1280), true)]);
    assert!(sent[0].len() - 14 <= 1280);
    let mut bufs = [frame(
        GW_MAC_IN,
        LAN_HOST_MAC,
        &lan_packet(inner_mtu(1280) + 1, true),
    )];
    let mut out = [Disposition::Drop];
    rig.worker.process_burst(INSIDE, &mut bufs, &mut out, 1);
    let icmp = &bufs[0].data()[14 + 20..];
    assert_eq!(
        usize::from(u16::from_be_bytes([icmp[6], icmp[7]])),
        inner_mtu(1280)
    );

    // The tunnel MTU is smaller than the port: the tunnel decides.
    let mut rig = rig_with_neighbors_and_port_mtu(Some(1400), Some(9000));
    let mut bufs = [frame(GW_MAC_IN, LAN_HOST_MAC, &lan_packet(1500, false))];
    rig.worker.process_burst(INSIDE, &mut bufs, &mut out, 1);
    assert_eq!(
        out[0],
        Disposition::Fragment {
            mtu: inner_mtu(1400) as u16
        }
    );
}

#[test]
fn a_datagram_cut_short_by_the_port_is_counted_as_truncated() {
    // What net_af_packet delivers when the kernel's reassembly of a 2028-byte datagram meets
    // its 2048-byte ring frame: the header claims more than the frame holds.
    let mut rig = rig_with_neighbors(Some(1400));
    let whole = big_datagram(2000, 9);
    let mut bufs = [frame(GW_MAC_IN, LAN_HOST_MAC, &whole[..1982 - 14])];
    let mut out = [Disposition::Punt];
    rig.worker.process_burst(INSIDE, &mut bufs, &mut out, 1);
    assert_eq!(out[0], Disposition::Drop);
    let s = rig.counters.snapshot();
    assert_eq!((s.drop_truncated, s.drop_bad_l3, s.encrypted), (1, 0, 0));
}
