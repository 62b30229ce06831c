//! A PIC worker on heap buffers, in the reference topology: a LAN frame for a remote proxy is
//! routed by the reverse route into the service set, matched by the dynamic rule, sealed and
//! sent to the peer's next hop; the peer's ESP-in-UDP comes back, is opened, checked against
//! the proxy pair and routed to the LAN host. Every refusal on the way is a counted drop.

mod pipeline_support;

use std::net::Ipv4Addr;

use arrayvec::ArrayVec;
use dataplane::buf::{HeapBuf, PacketBuf};
use dataplane::crypto::Backend;
use dataplane::esp::{InboundSa, OutboundSa};
use dataplane::pipeline::held::{HOLD_CAPACITY, HOLD_SECONDS};
use dataplane::pipeline::{fragment_frame, Disposition, HeldFrames, TunnelInbound, TunnelOutbound};
use dataplane::sa::*;
use dataplane::tables::*;
use dataplane::wire::{ethernet, ipv4};
use pipeline_support::*;

#[test]
fn lan_traffic_is_sealed_to_the_peer_and_the_peer_traffic_is_opened_to_the_lan() {
    let mut rig = rig();
    rig.neighbors
        .insert(OUTSIDE, "10.1.1.254".parse().unwrap(), ISP_MAC)
        .unwrap();
    rig.neighbors
        .insert(INSIDE, "172.16.1.10".parse().unwrap(), LAN_HOST_MAC)
        .unwrap();

    // LAN → peer: encrypted, outer UDP 4500 to 10.2.2.2, via the ISP router's MAC.
    let inner = ipv4_udp("172.16.1.10", "172.16.2.1", b"hello through the tunnel");
    let mut bufs = [frame(GW_MAC_IN, LAN_HOST_MAC, &inner)];
    let mut out = [Disposition::Drop];
    rig.worker.process_burst(INSIDE, &mut bufs, &mut out, 1);
    assert_eq!(out[0], Disposition::Transmit(OUTSIDE));
    let sealed = bufs[0].data().to_vec();
    assert_eq!(&sealed[0..6], &ISP_MAC);
    assert_eq!(&sealed[6..12], &GW_MAC_OUT);
    let outer = ipv4::Ipv4Packet::new_checked(&sealed[14..]).unwrap();
    assert_eq!(outer.dst(), Ipv4Addr::new(10, 2, 2, 2));
    assert_eq!(outer.src(), Ipv4Addr::new(10, 1, 1, 1));
    assert_eq!(outer.protocol(), 17);
    assert_eq!(&sealed[14 + 20 + 8..14 + 20 + 12], &0x200u32.to_be_bytes());
    assert!(
        !sealed.windows(5).any(|w| w == b"hello"),
        "payload must be encrypted"
    );

    // Peer → LAN: the peer seals with the keys of our inbound SA.
    let mut peer = reference_peer();
    let reply = ipv4_udp("172.16.2.1", "172.16.1.10", b"reply from the peer LAN");
    let sealed = sealed_by(&mut peer, &reply, 1);
    let mut bufs = [HeapBuf::from_slice(sealed.data())];
    rig.worker.process_burst(OUTSIDE, &mut bufs, &mut out, 1);
    assert_eq!(out[0], Disposition::Transmit(INSIDE));
    let opened = bufs[0].data();
    assert_eq!(&opened[0..6], &LAN_HOST_MAC);
    assert_eq!(&opened[14..14 + reply.len()][20..], &reply[20..]);
    let snapshot = rig.counters.snapshot();
    assert_eq!((snapshot.encrypted, snapshot.decrypted), (1, 1));

    // The same ESP packet again is a replay: counted, not forwarded.
    let mut bufs = [sealed];
    rig.worker.process_burst(OUTSIDE, &mut bufs, &mut out, 1);
    assert_eq!(out[0], Disposition::Drop);
    assert_eq!(rig.counters.snapshot().drop_sa_processing, 1);
}

#[test]
fn frames_for_a_next_hop_that_resolves_mid_turn_keep_their_order() {
    let mut rig = rig();
    let mut held = HeldFrames::<HeapBuf>::default();
    let mut out = [Disposition::Drop; 2];
    let flow = |n: u8| {
        frame(
            GW_MAC_IN,
            LAN_HOST_MAC,
            &ipv4_udp("172.16.1.10", "172.16.2.1", &[n]),
        )
    };

    // The first frame waits for the ISP router's MAC; the answer arrives while the worker is
    // still in its turn, before the second frame: that one queues behind, it does not overtake.
    let mut first = [flow(1)];
    rig.worker
        .process_burst(INSIDE, &mut first, &mut out[..1], 10);
    let Disposition::AwaitNeighbor(wait) = out[0] else {
        panic!("not held: {:?}", out[0]);
    };
    let [first] = first;
    assert!(held.hold(first, wait, 10).is_ok());
    rig.neighbors
        .insert(OUTSIDE, ip("10.1.1.254"), ISP_MAC)
        .unwrap();
    let mut second = [flow(2)];
    rig.worker
        .process_burst(INSIDE, &mut second, &mut out[..1], 10);
    let Disposition::AwaitNeighbor(wait) = out[0] else {
        panic!("overtook the held frame: {:?}", out[0]);
    };
    let [second] = second;
    assert!(held.hold(second, wait, 10).is_ok());
    assert_eq!(rig.resolve.pop(), Some((OUTSIDE, ip("10.1.1.254"))));
    assert_eq!(
        rig.resolve.pop(),
        None,
        "asked once, not again for the queued frame"
    );

    // The next turn releases both, in order; after that frames go straight out.
    let ready = held.take_ready(&mut rig.worker, 10);
    let mut peer_opens = reference_peer_opens();
    let payloads: Vec<u8> = ready
        .iter()
        .map(|(_, sealed)| {
            let mut esp = HeapBuf::from_slice(&sealed.data()[14..]);
            peer_opens.decapsulate(&mut esp, 10).0.unwrap();
            *esp.data().last().unwrap()
        })
        .collect();
    assert_eq!(payloads, [1, 2]);
    let mut third = [flow(3)];
    rig.worker
        .process_burst(INSIDE, &mut third, &mut out[..1], 10);
    assert_eq!(out[0], Disposition::Transmit(OUTSIDE));
}

#[test]
fn a_frame_for_an_unresolved_next_hop_waits_for_its_answer_or_is_dropped_after_the_hold_time() {
    let mut rig = rig();
    let mut held = HeldFrames::<HeapBuf>::default();
    let mut out = [Disposition::Drop];

    // LAN → peer while the ISP router's MAC is unknown: sealed, then held; ARP is asked for.
    let inner = ipv4_udp("172.16.1.10", "172.16.2.1", b"first packet of a flow");
    let mut bufs = [frame(GW_MAC_IN, LAN_HOST_MAC, &inner)];
    rig.worker.process_burst(INSIDE, &mut bufs, &mut out, 10);
    let Disposition::AwaitNeighbor(wait) = out[0] else {
        panic!("not held: {:?} {:?}", out[0], rig.counters.snapshot());
    };
    assert_eq!((wait.port, wait.neighbor), (OUTSIDE, ip("10.1.1.254")));
    assert_eq!(rig.resolve.pop(), Some((OUTSIDE, ip("10.1.1.254"))));
    let [buf] = bufs;
    assert!(held.hold(buf, wait, 10).is_ok());
    assert!(
        held.take_ready(&mut rig.worker, 11).is_empty(),
        "no answer yet"
    );
    assert_eq!(
        rig.resolve.pop(),
        Some((OUTSIDE, ip("10.1.1.254"))),
        "asked for again a second later"
    );
    rig.neighbors
        .insert(OUTSIDE, ip("10.1.1.254"), ISP_MAC)
        .unwrap();
    let ready = held.take_ready(&mut rig.worker, 12);
    assert_eq!(ready.len(), 1);
    let (port, sealed) = &ready[0];
    assert_eq!(*port, OUTSIDE);
    assert_eq!(&sealed.data()[0..12], &[ISP_MAC, GW_MAC_OUT].concat()[..]);
    let outer = ipv4::Ipv4Packet::new_checked(&sealed.data()[14..]).unwrap();
    assert_eq!(outer.dst(), Ipv4Addr::new(10, 2, 2, 2));
    assert!(held.is_empty());
    let s = rig.counters.snapshot();
    assert_eq!(
        (
            s.held_for_neighbor,
            s.encrypted,
            s.tx_packets,
            s.drop_no_neighbor
        ),
        (1, 1, 1, 0)
    );

    // Peer → a LAN host that never answers: held as a bare packet, dropped after 3 s.
    let mut peer = reference_peer();
    let mut bufs = [sealed_by(
        &mut peer,
        &ipv4_udp("172.16.2.1", "172.16.1.99", b"anyone?"),
        20,
    )];
    rig.worker.process_burst(OUTSIDE, &mut bufs, &mut out, 20);
    let Disposition::AwaitNeighbor(wait) = out[0] else {
        panic!("not held: {:?}", out[0]);
    };
    assert_eq!(
        (wait.port, wait.neighbor, wait.has_l2),
        (INSIDE, ip("172.16.1.99"), false)
    );
    let [buf] = bufs;
    assert!(held.hold(buf, wait, 20).is_ok());
    assert!(held.take_ready(&mut rig.worker, 22).is_empty());
    assert_eq!(held.len(), 1, "still within the hold time");
    assert!(held.take_ready(&mut rig.worker, 23).is_empty());
    assert!(held.is_empty(), "given up after {HOLD_SECONDS} s");
    assert_eq!(rig.counters.snapshot().drop_no_neighbor, 1);

    // The hold is bounded: the frame after the last slot is given back to be dropped.
    for _ in 0..HOLD_CAPACITY {
        assert!(held.hold(HeapBuf::from_slice(&inner), wait, 30).is_ok());
    }
    assert!(held.hold(HeapBuf::from_slice(&inner), wait, 30).is_err());
}

#[test]
fn refusals_are_counted_drops_or_punts() {
    let mut rig = rig();
    let mut out = [Disposition::Drop];

    let inner = ipv4_udp("172.16.1.10", "172.16.2.1", b"x");

    // IKE to the local gateway is punted; so is a NAT-T datagram with the zero marker.
    let ike = ipv4_udp("10.2.2.2", "10.1.1.1", &[0u8; 40]);
    let mut ike = ike.clone();
    ike[22..24].copy_from_slice(&500u16.to_be_bytes());
    ipv4::Ipv4Packet::new_unchecked(&mut ike[..]).fill_checksum();
    let mut bufs = [frame(GW_MAC_OUT, ISP_MAC, &ike)];
    rig.worker.process_burst(OUTSIDE, &mut bufs, &mut out, 1);
    assert_eq!(out[0], Disposition::Punt);

    // Unknown SPI in NAT-T: counted as no SA.
    let mut natt = ipv4_udp(
        "10.2.2.2",
        "10.1.1.1",
        &[0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1, 9, 9, 9, 9],
    );
    natt[22..24].copy_from_slice(&4500u16.to_be_bytes());
    ipv4::Ipv4Packet::new_unchecked(&mut natt[..]).fill_checksum();
    let mut bufs = [frame(GW_MAC_OUT, ISP_MAC, &natt)];
    rig.worker.process_burst(OUTSIDE, &mut bufs, &mut out, 1);
    assert_eq!(out[0], Disposition::Drop);
    assert_eq!(rig.counters.snapshot().drop_no_sa, 1);

    // Someone else's MAC, garbage, and a bad IP checksum.
    let mut bufs = [
        frame([2, 9, 9, 9, 9, 9], ISP_MAC, &inner),
        HeapBuf::from_slice(&[1, 2, 3]),
        {
            let mut bad = inner.clone();
            bad[10] ^= 0xff;
            frame(GW_MAC_IN, LAN_HOST_MAC, &bad)
        },
    ];
    let mut out3 = [Disposition::Punt; 3];
    rig.worker.process_burst(INSIDE, &mut bufs, &mut out3, 1);
    assert_eq!(out3, [Disposition::Drop; 3]);
    let s = rig.counters.snapshot();
    assert_eq!((s.drop_not_for_us, s.drop_bad_l2, s.drop_bad_l3), (1, 1, 1));
}

#[test]
fn a_packet_too_big_for_the_tunnel_gets_fragmentation_needed_with_df_and_is_split_without() {
    let mut rig = rig_with_mtu(Some(400));
    rig.neighbors
        .insert(INSIDE, "172.16.1.10".parse().unwrap(), LAN_HOST_MAC)
        .unwrap();
    rig.neighbors
        .insert(OUTSIDE, "10.1.1.254".parse().unwrap(), ISP_MAC)
        .unwrap();
    let mut inner = ipv4_udp("172.16.1.10", "172.16.2.1", &[0x5a; 600]);
    inner[6] = 0x40; // DF
    ipv4::Ipv4Packet::new_unchecked(&mut inner[..]).fill_checksum();
    let mut bufs = [frame(GW_MAC_IN, LAN_HOST_MAC, &inner)];
    let mut out = [Disposition::Drop];
    rig.worker.process_burst(INSIDE, &mut bufs, &mut out, 1);
    assert_eq!(
        out[0],
        Disposition::Transmit(INSIDE),
        "{:?}",
        rig.counters.snapshot()
    );
    let reply = bufs[0].data();
    assert_eq!(&reply[0..6], &LAN_HOST_MAC);
    let ip = ipv4::Ipv4Packet::new_checked(&reply[14..]).unwrap();
    assert!(ip.verify_checksum());
    assert_eq!(ip.src(), Ipv4Addr::new(172, 16, 1, 1));
    assert_eq!(ip.dst(), Ipv4Addr::new(172, 16, 1, 10));
    assert_eq!(ip.protocol(), 1);
    let icmp = &reply[14 + 20..];
    assert_eq!(
        (icmp[0], icmp[1]),
        (3, 4),
        "destination unreachable, fragmentation needed"
    );
    let mtu = u16::from_be_bytes([icmp[6], icmp[7]]);
    assert!(
        mtu > 0 && mtu < 400,
        "next-hop MTU {mtu} leaves room for the ESP overhead"
    );
    // The quote is the original header as it arrived (TTL and checksum too, as Linux quotes)
    // and the first 8 bytes after it.
    assert_eq!(&icmp[8..8 + 28], &inner[..28]);
    assert_eq!(rig.counters.snapshot().icmp_too_big, 1);

    // Without DF the frame goes back to the caller to be split; each fragment then fits.
    let big = ipv4_udp(
        "172.16.1.10",
        "172.16.2.1",
        &(0..600u32).map(|i| i as u8).collect::<Vec<_>>(),
    );
    let mut bufs = [frame(GW_MAC_IN, LAN_HOST_MAC, &big)];
    rig.worker.process_burst(INSIDE, &mut bufs, &mut out, 1);
    let Disposition::Fragment { mtu } = out[0] else {
        panic!("expected a fragmentation request, got {:?}", out[0]);
    };
    assert_eq!(
        bufs[0].data()[14..],
        big[..],
        "the frame comes back as received"
    );
    let pieces = split_and_send_from_inside(&mut rig, &bufs[0], mtu);
    // The peer opens every fragment; together they carry the original payload once.
    let payload = opened_fragments(0x200, "10.2.2.2", &pieces, mtu);
    assert_eq!(payload, big[20..]);
    assert_eq!(rig.counters.snapshot().sent_for_fragmentation, 1);
}

/// Splits `frame` for `mtu` as the dispatcher would and sends the pieces in from the inside
/// port; every piece must leave sealed on the outside port.
fn split_and_send_from_inside(rig: &mut Rig, frame: &HeapBuf, mtu: u16) -> Vec<HeapBuf> {
    let mut pieces: Vec<HeapBuf> = (0..4).map(|_| HeapBuf::with_capacity(2048, 128)).collect();
    let used = fragment_frame(frame, mtu, &mut pieces).unwrap();
    assert!(used >= 2);
    pieces.truncate(used);
    let mut outs = vec![Disposition::Drop; used];
    rig.worker.process_burst(INSIDE, &mut pieces, &mut outs, 1);
    assert!(
        outs.iter().all(|d| *d == Disposition::Transmit(OUTSIDE)),
        "{outs:?} {:?}",
        rig.counters.snapshot()
    );
    pieces
}

/// The payload the peer at `peer` (gateway's outbound SPI `spi`) opens from sealed fragments,
/// each with the TTL decremented exactly once and within `mtu`.
fn opened_fragments(spi: u32, peer: &str, pieces: &[HeapBuf], mtu: u16) -> Vec<u8> {
    let mut opens = peer_opens(spi, peer);
    let mut payload = Vec::new();
    for piece in pieces {
        let mut esp = HeapBuf::from_slice(&piece.data()[14..]);
        opens.decapsulate(&mut esp, 1).0.unwrap();
        let ip = ipv4::Ipv4Packet::new_checked(esp.data()).unwrap();
        assert_eq!(ip.ttl(), 63, "TTL decremented exactly once");
        assert!(ip.total_len() <= usize::from(mtu));
        payload.extend_from_slice(ip.payload());
    }
    payload
}

#[test]
fn outer_fragments_from_the_peer_are_reassembled_before_the_spi_lookup() {
    let mut rig = rig();
    rig.neighbors
        .insert(INSIDE, "172.16.1.10".parse().unwrap(), LAN_HOST_MAC)
        .unwrap();
    let mut peer = reference_peer();
    let inner = ipv4_udp("172.16.2.1", "172.16.1.10", &[0x33; 1200]);
    let mut esp = HeapBuf::from_slice(&inner);
    peer.encapsulate(&mut esp, 1).0.unwrap();
    // A router on the way splits the outer packet.
    let mut pieces: Vec<HeapBuf> = (0..3).map(|_| HeapBuf::with_capacity(2048, 128)).collect();
    let used = dataplane::esp::fragment::fragment_ipv4(esp.data(), 600, &mut pieces).unwrap();
    assert!(used >= 2);
    let mut out = [Disposition::Punt];
    for (i, piece) in pieces.iter().take(used).enumerate() {
        let mut bufs = [frame(GW_MAC_OUT, ISP_MAC, piece.data())];
        rig.worker.process_burst(OUTSIDE, &mut bufs, &mut out, 1);
        if i + 1 < used {
            assert_eq!(out[0], Disposition::Drop, "fragment {i} is held");
        } else {
            assert_eq!(
                out[0],
                Disposition::Transmit(INSIDE),
                "{:?}",
                rig.counters.snapshot()
            );
            assert_eq!(&bufs[0].data()[14 + 20..], &inner[20..]);
        }
    }
    let s = rig.counters.snapshot();
    assert_eq!(
        (s.fragments_held, s.reassembled, s.decrypted),
        (used as u64 - 1, 1, 1)
    );

    // A lone middle fragment never completes: held, then it simply never comes out.
    let mut bufs = [frame(GW_MAC_OUT, ISP_MAC, pieces[1].data())];
    rig.worker.process_burst(OUTSIDE, &mut bufs, &mut out, 2);
    assert_eq!(out[0], Disposition::Drop);
}

/// An ICMP echo request (IPv4, id 0x77, sequence 1) with a correct checksum.
fn echo_request(src: &str, dst: &str) -> Vec<u8> {
    echo_request_carrying(src, dst, b"ping through the tunnel", false)
}

/// The same with `data` after the ICMP header, and DF set when `dont_fragment`.
fn echo_request_carrying(src: &str, dst: &str, data: &[u8], dont_fragment: bool) -> Vec<u8> {
    let mut packet = ipv4_udp(src, dst, data);
    packet[9] = 1; // ICMP
    if dont_fragment {
        packet[6] = 0x40;
    }
    let icmp = &mut packet[20..];
    icmp[..8].copy_from_slice(&[8, 0, 0, 0, 0, 0x77, 0, 1]);
    let sum = icmp
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum::<u32>();
    let folded = (sum & 0xffff) + (sum >> 16);
    let check = !(((folded & 0xffff) + (folded >> 16)) as u16);
    icmp[2..4].copy_from_slice(&check.to_be_bytes());
    let mut ip = ipv4::Ipv4Packet::new_unchecked(&mut packet[..]);
    ip.fill_checksum();
    packet
}

#[test]
fn a_large_ping_to_the_gateway_gets_its_reply_split_for_a_small_tunnel() {
    let mut rig = rig_with_mtu(Some(400));
    rig.neighbors
        .insert(OUTSIDE, "10.1.1.254".parse().unwrap(), ISP_MAC)
        .unwrap();
    let mut peer = reference_peer();
    // `ping -M do -s 600` from behind the peer: the request came in whole (the peer's side has
    // room), the reply does not fit the gateway's tunnel-mtu.
    let data: Vec<u8> = (0..600u32).map(|i| i as u8).collect();
    let request = echo_request_carrying("172.16.2.1", "172.16.1.1", &data, true);
    let mut bufs = [sealed_by(&mut peer, &request, 1)];
    let mut out = [Disposition::Drop];
    rig.worker.process_burst(OUTSIDE, &mut bufs, &mut out, 1);
    let Disposition::Fragment { mtu } = out[0] else {
        panic!("expected the reply sent back to be split, got {:?}", out[0]);
    };
    let pieces = split_and_send_from_inside(&mut rig, &bufs[0], mtu);
    let reply = opened_fragments(0x200, "10.2.2.2", &pieces, mtu);
    assert_eq!(reply[0], 0, "an echo reply");
    assert_eq!(&reply[8..], &data[..], "the whole payload, in pieces");
}

#[test]
fn a_ping_to_the_gateway_out_of_a_tunnel_is_answered_back_into_it_and_other_traffic_counted() {
    let mut rig = rig();
    rig.neighbors
        .insert(OUTSIDE, "10.1.1.254".parse().unwrap(), ISP_MAC)
        .unwrap();
    let mut peer = reference_peer();
    let mut peer_opens = reference_peer_opens();
    let mut out = [Disposition::Punt];

    let request = echo_request("172.16.2.1", "172.16.1.1");
    let mut bufs = [sealed_by(&mut peer, &request, 1)];
    rig.worker.process_burst(OUTSIDE, &mut bufs, &mut out, 1);
    assert_eq!(
        out[0],
        Disposition::Transmit(OUTSIDE),
        "{:?}",
        rig.counters.snapshot()
    );
    let sealed = bufs[0].data();
    assert_eq!(&sealed[0..6], &ISP_MAC);
    let mut reply = HeapBuf::from_slice(&sealed[14..]);
    peer_opens.decapsulate(&mut reply, 1).0.unwrap();
    let ip = ipv4::Ipv4Packet::new_checked(reply.data()).unwrap();
    assert_eq!(
        (ip.src(), ip.dst(), ip.protocol()),
        (
            Ipv4Addr::new(172, 16, 1, 1),
            Ipv4Addr::new(172, 16, 2, 1),
            1
        )
    );
    assert_eq!(ip.payload()[0], 0, "an echo reply");
    assert_eq!(
        &ip.payload()[4..8],
        &[0, 0x77, 0, 1],
        "identifier and sequence kept"
    );
    assert_eq!(&ip.payload()[8..], &request[28..], "payload echoed");

    // Anything else for the gateway out of a tunnel is counted, not answered.
    let to_gateway = ipv4_udp("172.16.2.1", "172.16.1.1", b"hello gateway");
    let mut bufs = [sealed_by(&mut peer, &to_gateway, 1)];
    rig.worker.process_burst(OUTSIDE, &mut bufs, &mut out, 1);
    assert_eq!(out[0], Disposition::Drop);
    let s = rig.counters.snapshot();
    assert_eq!(
        (
            s.decrypted,
            s.echo_via_tunnel,
            s.encrypted,
            s.drop_local_via_tunnel
        ),
        (2, 1, 1, 1)
    );
}

/// Adds tunnel `id` to peer `peer` protecting `remote` from anywhere (a hub's spoke: local
/// proxy 0.0.0.0/0), with its SPIs, rule and reverse route.
fn add_spoke(
    rig: &mut Rig,
    id: u32,
    peer: &str,
    remote: &str,
    inbound_spi: u32,
    outbound_spi: u32,
) {
    let proxies = ("0.0.0.0/0", remote);
    add_spoke_with(rig, id, peer, proxies, (inbound_spi, outbound_spi), None);
}

/// As [`add_spoke`], with the local proxy and `tunnel-mtu` given.
fn add_spoke_with(
    rig: &mut Rig,
    id: u32,
    peer: &str,
    (local_proxy, remote): (&str, &str),
    (inbound_spi, outbound_spi): (u32, u32),
    tunnel_mtu: Option<u16>,
) {
    let spoke = Tunnel {
        id: TunnelId(id),
        peer,
        local_proxy,
        remote_proxy: remote,
        inbound_spi,
        outbound_spi,
        tunnel_mtu,
    };
    for update in tunnel_updates(&spoke) {
        rig.worker.tables.apply(update).unwrap();
    }
}

#[test]
fn traffic_between_two_spokes_is_opened_and_sealed_again_into_the_other_tunnel() {
    let mut rig = rig();
    rig.neighbors
        .insert(OUTSIDE, "10.1.1.254".parse().unwrap(), ISP_MAC)
        .unwrap();
    add_spoke(&mut rig, 8, "10.3.3.3", "172.16.3.0/24", 0x300, 0x301);
    add_spoke(&mut rig, 9, "10.4.4.4", "172.16.4.0/24", 0x400, 0x401);
    let mut spoke3 = peer_seals(0x300, "10.3.3.3");
    let mut spoke4_opens = peer_opens(0x401, "10.4.4.4");
    let packet = ipv4_udp("172.16.3.5", "172.16.4.5", b"spoke to spoke");
    let mut bufs = [sealed_by(&mut spoke3, &packet, 1)];
    let mut out = [Disposition::Drop];
    rig.worker.process_burst(OUTSIDE, &mut bufs, &mut out, 1);
    assert_eq!(
        out[0],
        Disposition::Transmit(OUTSIDE),
        "{:?}",
        rig.counters.snapshot()
    );
    let sealed = bufs[0].data();
    let outer = ipv4::Ipv4Packet::new_checked(&sealed[14..]).unwrap();
    assert_eq!(outer.dst(), Ipv4Addr::new(10, 4, 4, 4));
    let mut opened = HeapBuf::from_slice(&sealed[14..]);
    spoke4_opens.decapsulate(&mut opened, 1).0.unwrap();
    assert_eq!(&opened.data()[20..], &packet[20..]);
    assert_eq!(opened.data()[8], packet[8] - 1, "the hub is one hop");

    // With one hop left the packet goes no further.
    let mut last_hop = ipv4_udp("172.16.3.5", "172.16.4.5", b"ttl 1");
    last_hop[8] = 1;
    ipv4::Ipv4Packet::new_unchecked(&mut last_hop[..]).fill_checksum();
    let mut bufs = [sealed_by(&mut spoke3, &last_hop, 1)];
    rig.worker.process_burst(OUTSIDE, &mut bufs, &mut out, 1);
    assert_eq!(out[0], Disposition::Drop);
    let s = rig.counters.snapshot();
    assert_eq!(
        (
            s.decrypted,
            s.tunnel_to_tunnel,
            s.encrypted,
            s.drop_ttl_expired
        ),
        (2, 1, 1, 1)
    );
}

#[test]
fn a_spoke_packet_too_big_for_the_other_tunnel_is_answered_through_its_own() {
    let mut rig = rig();
    rig.neighbors
        .insert(OUTSIDE, "10.1.1.254".parse().unwrap(), ISP_MAC)
        .unwrap();
    // The answering tunnel's local proxy covers the gateway's inside address, not its
    // outside one: the answer must come from the former to pass the peer's policy.
    let proxies = ("172.16.0.0/16", "172.16.3.0/24");
    add_spoke_with(&mut rig, 8, "10.3.3.3", proxies, (0x300, 0x301), None);
    let proxies = ("0.0.0.0/0", "172.16.4.0/24");
    add_spoke_with(&mut rig, 9, "10.4.4.4", proxies, (0x400, 0x401), Some(400));
    let mut spoke3 = peer_seals(0x300, "10.3.3.3");
    let mut spoke3_opens = peer_opens(0x301, "10.3.3.3");
    let send = |rig: &mut Rig, spoke3: &mut OutboundSa, packet: &[u8], seq| {
        let mut bufs = [sealed_by(spoke3, packet, seq)];
        let mut out = [Disposition::Drop];
        rig.worker.process_burst(OUTSIDE, &mut bufs, &mut out, 1);
        (out[0], bufs[0].data().to_vec())
    };
    let mut big = ipv4_udp("172.16.3.5", "172.16.4.5", &[0x5a; 600]);
    big[6] = 0x40; // DF
    ipv4::Ipv4Packet::new_unchecked(&mut big[..]).fill_checksum();

    let (disposition, sealed) = send(&mut rig, &mut spoke3, &big, 1);
    assert_eq!(
        disposition,
        Disposition::Transmit(OUTSIDE),
        "{:?}",
        rig.counters.snapshot()
    );
    let outer = ipv4::Ipv4Packet::new_checked(&sealed[14..]).unwrap();
    assert_eq!(
        outer.dst(),
        Ipv4Addr::new(10, 3, 3, 3),
        "back to the sender's peer"
    );
    let mut opened = HeapBuf::from_slice(&sealed[14..]);
    spoke3_opens.decapsulate(&mut opened, 1).0.unwrap();
    let icmp = ipv4::Ipv4Packet::new_checked(opened.data()).unwrap();
    assert_eq!(
        (icmp.src(), icmp.dst(), icmp.protocol()),
        (
            Ipv4Addr::new(172, 16, 1, 1),
            Ipv4Addr::new(172, 16, 3, 5),
            1
        )
    );
    let message = icmp.payload();
    assert_eq!((message[0], message[1]), (3, 4), "fragmentation needed");
    let mtu = u16::from_be_bytes([message[6], message[7]]);
    assert!(
        mtu < 400 && mtu > 300,
        "the next tunnel's room for inner packets: {mtu}"
    );
    assert_eq!(&message[8..28], &big[..20], "quotes the refused header");

    // Without DF it comes back to be split, framed as if from the inside port with its TTL
    // as it arrived; the pieces go through the pipeline from there into spoke 4's tunnel.
    let mut no_df = big.clone();
    no_df[6] = 0;
    ipv4::Ipv4Packet::new_unchecked(&mut no_df[..]).fill_checksum();
    let (disposition, returned) = send(&mut rig, &mut spoke3, &no_df, 2);
    let Disposition::Fragment { mtu } = disposition else {
        panic!("expected a fragmentation request, got {disposition:?}");
    };
    assert_eq!(&returned[..12], &[GW_MAC_IN, GW_MAC_IN].concat());
    assert_eq!(&returned[14..], &no_df[..]);
    let pieces = split_and_send_from_inside(&mut rig, &HeapBuf::from_slice(&returned), mtu);
    let used = pieces.len();
    let payload = opened_fragments(0x401, "10.4.4.4", &pieces, mtu);
    assert_eq!(payload, no_df[20..]);

    // An ICMP error is never answered with another: a counted drop.
    let mut error = ipv4_udp("172.16.3.5", "172.16.4.5", &[0; 600]);
    error[6] = 0x40;
    error[9] = 1;
    error[20] = 3; // an ICMP destination unreachable, too big for the other tunnel
    ipv4::Ipv4Packet::new_unchecked(&mut error[..]).fill_checksum();
    assert_eq!(send(&mut rig, &mut spoke3, &error, 3).0, Disposition::Drop);
    let s = rig.counters.snapshot();
    assert_eq!(
        (
            s.decrypted,
            s.icmp_too_big,
            s.sent_for_fragmentation,
            s.encrypted,
            s.drop_fragmentation_failed
        ),
        (3, 1, 1, 1 + used as u64, 1)
    );
}

#[test]
fn a_spoke_packet_for_a_tunnel_of_another_worker_is_handed_over_as_lan_traffic() {
    let setup = |rig: &mut Rig, owner_of_spoke4: WorkerId| {
        rig.neighbors
            .insert(OUTSIDE, "10.1.1.254".parse().unwrap(), ISP_MAC)
            .unwrap();
        let proxies = ("172.16.0.0/16", "172.16.3.0/24");
        add_spoke_with(rig, 8, "10.3.3.3", proxies, (0x300, 0x301), None);
        let spoke4 = Tunnel {
            id: TunnelId(9),
            peer: "10.4.4.4",
            local_proxy: "0.0.0.0/0",
            remote_proxy: "172.16.4.0/24",
            inbound_spi: 0x400,
            outbound_spi: 0x401,
            tunnel_mtu: Some(400),
        };
        for mut update in tunnel_updates(&spoke4) {
            match &mut update {
                // The other worker holds spoke 4's SAs; this one only its rule.
                TableUpdate::AddSaPair { .. } if owner_of_spoke4 != WorkerId(0) => continue,
                TableUpdate::AddRule(rule) => rule.target.owner = owner_of_spoke4,
                _ => {}
            }
            rig.worker.tables.apply(update).unwrap();
        }
    };
    let mut hub = rig();
    setup(&mut hub, WorkerId(1));
    let mut spoke3 = peer_seals(0x300, "10.3.3.3");
    let packet = ipv4_udp("172.16.3.5", "172.16.4.5", b"to another worker's spoke");
    let mut bufs = [sealed_by(&mut spoke3, &packet, 1)];
    let mut out = [Disposition::Drop];
    hub.worker.process_burst(OUTSIDE, &mut bufs, &mut out, 1);
    assert_eq!(
        out[0],
        Disposition::HandOff(WorkerId(1)),
        "{:?}",
        hub.counters.snapshot()
    );
    let handed = bufs[0].data().to_vec();
    assert_eq!(
        &handed[..12],
        &[GW_MAC_IN, GW_MAC_IN].concat(),
        "as if from the inside port"
    );
    assert_eq!(&handed[14..], &packet[..], "untouched, TTL included");
    let s = hub.counters.snapshot();
    assert_eq!((s.decrypted, s.tunnel_to_tunnel, s.handed_off), (1, 1, 1));

    // The owner takes it as a frame from the inside port and seals it into spoke 4's tunnel.
    let mut owner = rig();
    setup(&mut owner, WorkerId(0));
    let mut spoke4_opens = peer_opens(0x401, "10.4.4.4");
    let mut bufs = [HeapBuf::from_slice(&handed)];
    owner.worker.process_burst(INSIDE, &mut bufs, &mut out, 1);
    assert_eq!(out[0], Disposition::Transmit(OUTSIDE));
    let mut opened = HeapBuf::from_slice(&bufs[0].data()[14..]);
    spoke4_opens.decapsulate(&mut opened, 1).0.unwrap();
    assert_eq!(&opened.data()[20..], &packet[20..]);
    assert_eq!(opened.data()[8], packet[8] - 1, "one hop for the whole hub");

    // Handed over too big for spoke 4 (DF set): the owner's answer goes into spoke 3's tunnel.
    let mut big = ipv4_udp("172.16.3.5", "172.16.4.5", &[0x5a; 600]);
    big[6] = 0x40;
    ipv4::Ipv4Packet::new_unchecked(&mut big[..]).fill_checksum();
    let mut bufs = [frame(GW_MAC_IN, GW_MAC_IN, &big)];
    owner.worker.process_burst(INSIDE, &mut bufs, &mut out, 1);
    assert_eq!(out[0], Disposition::Transmit(OUTSIDE));
    let sealed = bufs[0].data();
    let outer = ipv4::Ipv4Packet::new_checked(&sealed[14..]).unwrap();
    assert_eq!(
        outer.dst(),
        Ipv4Addr::new(10, 3, 3, 3),
        "into the sender's tunnel"
    );
    let mut spoke3_opens = peer_opens(0x301, "10.3.3.3");
    let mut answer = HeapBuf::from_slice(&sealed[14..]);
    spoke3_opens.decapsulate(&mut answer, 1).0.unwrap();
    let icmp = ipv4::Ipv4Packet::new_checked(answer.data()).unwrap();
    assert_eq!(
        (icmp.src(), icmp.dst(), icmp.payload()[0], icmp.payload()[1]),
        (
            Ipv4Addr::new(172, 16, 1, 1),
            Ipv4Addr::new(172, 16, 3, 5),
            3,
            4
        )
    );
}

/// An ESP (AES-CBC + HMAC-SHA1) and AH (HMAC-SHA1) pair without NAT-T, as a bundle negotiates.
fn bundle_specs(direction: Direction, esp_spi: u32, local: &str, remote: &str) -> (SaSpec, SaSpec) {
    let mut esp = spec(direction, esp_spi, local, remote);
    esp.encapsulation = Encapsulation::None;
    let mut ah = esp.clone();
    ah.spi = esp_spi + 1;
    ah.protocol = IpsecProtocol::Ah;
    ah.cipher = Cipher::Null;
    ah.keys.encryption = Vec::new();
    ah.keys.integrity = (0..20).map(|i| i as u8 ^ 0xa7).collect();
    (esp, ah)
}

#[test]
fn an_ah_esp_bundle_is_sealed_once_and_opened_by_one_lookup_of_its_ah_spi() {
    let mut rig = rig();
    rig.neighbors
        .insert(OUTSIDE, "10.1.1.254".parse().unwrap(), ISP_MAC)
        .unwrap();
    rig.neighbors
        .insert(INSIDE, "172.16.1.10".parse().unwrap(), LAN_HOST_MAC)
        .unwrap();
    // Rekey the tunnel onto a bundle: inbound ESP 0x300 / AH 0x301, outbound 0x400 / 0x401.
    let (in_esp, in_ah) = bundle_specs(Direction::Inbound, 0x300, "10.1.1.1", "10.2.2.2");
    let (out_esp, out_ah) = bundle_specs(Direction::Outbound, 0x400, "10.1.1.1", "10.2.2.2");
    let mut outbound = ArrayVec::new();
    outbound.push(TunnelOutbound {
        sa: OutboundSa::new_bundle(&out_esp, &out_ah, 0, Backend::Fastest).unwrap(),
        outer_vrf: VrfId(0),
    });
    let inbound = TunnelInbound {
        sa: InboundSa::new_bundle(&in_esp, &in_ah, 0, Backend::Fastest).unwrap(),
        inside_vrf: VrfId(0),
        proxy: ProxyPair {
            local: p("172.16.1.0/24"),
            remote: p("172.16.2.0/24"),
            protocol: 0,
            local_port: 0,
            remote_port: 0,
        },
    };
    rig.worker
        .tables
        .apply(TableUpdate::AddSaPair {
            tunnel: TUNNEL,
            inbound: vec![(in_ah.spi, inbound)],
            outbound,
        })
        .unwrap();

    // LAN → peer, a burst of three: each leaves once, AH outside ESP, and the peer's bundle
    // (our outbound keys, reversed) verifies and opens it.
    let inners: Vec<Vec<u8>> = (0..3u8)
        .map(|i| ipv4_udp("172.16.1.10", "172.16.2.1", &[b'a' + i; 100]))
        .collect();
    let mut bufs: Vec<HeapBuf> = inners
        .iter()
        .map(|inner| frame(GW_MAC_IN, LAN_HOST_MAC, inner))
        .collect();
    let mut out = [Disposition::Drop; 3];
    rig.worker.process_burst(INSIDE, &mut bufs, &mut out, 1);
    let (peer_in_esp, peer_in_ah) = bundle_specs(Direction::Inbound, 0x400, "10.2.2.2", "10.1.1.1");
    let mut peer_in =
        InboundSa::new_bundle(&peer_in_esp, &peer_in_ah, 0, Backend::PureRust).unwrap();
    for (i, (buf, inner)) in bufs.iter().zip(&inners).enumerate() {
        assert_eq!(out[i], Disposition::Transmit(OUTSIDE));
        let outer = ipv4::Ipv4Packet::new_checked(&buf.data()[14..]).unwrap();
        assert_eq!(outer.protocol(), 51, "AH outermost");
        assert_eq!(
            &buf.data()[14 + 20 + 4..14 + 20 + 8],
            &0x401u32.to_be_bytes()
        );
        let mut packet = HeapBuf::from_slice(&buf.data()[14..]);
        peer_in.decapsulate(&mut packet, 1).0.unwrap();
        // Forwarded: one hop less, the rest as sent.
        assert_eq!(packet.data()[8], inner[8] - 1);
        assert_eq!(&packet.data()[12..], &inner[12..]);
    }
    assert_eq!(rig.counters.snapshot().encrypted, 3);

    // Peer → LAN: sealed with the peer's bundle (our inbound keys, reversed).
    let (peer_out_esp, peer_out_ah) =
        bundle_specs(Direction::Outbound, 0x300, "10.2.2.2", "10.1.1.1");
    let mut peer_out =
        OutboundSa::new_bundle(&peer_out_esp, &peer_out_ah, 0, Backend::PureRust).unwrap();
    let reply = ipv4_udp("172.16.2.1", "172.16.1.10", b"reply through AH and ESP");
    let mut sealed = HeapBuf::from_slice(&reply);
    peer_out.encapsulate(&mut sealed, 1).0.unwrap();
    let mut tampered = sealed.data().to_vec();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let mut bufs = [
        frame(GW_MAC_OUT, ISP_MAC, sealed.data()),
        frame(GW_MAC_OUT, ISP_MAC, &tampered),
    ];
    let mut out = [Disposition::Drop; 2];
    rig.worker.process_burst(OUTSIDE, &mut bufs, &mut out, 1);
    assert_eq!(out[0], Disposition::Transmit(INSIDE));
    assert_eq!(&bufs[0].data()[14..14 + reply.len()][20..], &reply[20..]);
    assert_eq!(
        out[1],
        Disposition::Drop,
        "a tampered bundle packet is refused"
    );
    let snapshot = rig.counters.snapshot();
    assert_eq!((snapshot.decrypted, snapshot.drop_sa_processing), (1, 1));
}

/// Splits an IPv6 packet into fragments of `chunk` payload bytes (a multiple of 8) behind a
/// Fragment header, as a router on an IPv6 path would (RFC 8200 §4.5).
fn ipv6_fragments(packet: &[u8], chunk: usize, id: u32) -> Vec<Vec<u8>> {
    let payload = &packet[40..];
    payload
        .chunks(chunk)
        .enumerate()
        .map(|(i, part)| {
            let offset = i * chunk;
            let more = offset + part.len() < payload.len();
            let mut fragment = packet[..40].to_vec();
            fragment[6] = 44;
            fragment[4..6].copy_from_slice(&((8 + part.len()) as u16).to_be_bytes());
            fragment.extend_from_slice(&[packet[6], 0]);
            fragment.extend_from_slice(&((offset as u16) | u16::from(more)).to_be_bytes());
            fragment.extend_from_slice(&id.to_be_bytes());
            fragment.extend_from_slice(part);
            fragment
        })
        .collect()
}

fn frame_v6(ip_packet: &[u8]) -> HeapBuf {
    let mut bytes = vec![0u8; 14];
    ethernet::write_header(&mut bytes, GW_MAC_OUT, ISP_MAC, ethernet::ETHERTYPE_IPV6);
    bytes.extend_from_slice(ip_packet);
    HeapBuf::from_slice(&bytes)
}

#[test]
fn outer_ipv6_fragments_from_the_peer_are_reassembled_and_bad_ones_counted() {
    let mut rig = rig();
    rig.neighbors
        .insert(INSIDE, "172.16.1.10".parse().unwrap(), LAN_HOST_MAC)
        .unwrap();
    // A second tunnel to a peer reached over IPv6, plain ESP (no NAT-T over IPv6).
    let v6_spec = |direction, spi, local: &str, remote: &str| {
        let mut s = spec(direction, spi, local, remote);
        s.encapsulation = Encapsulation::None;
        s
    };
    let inbound = TunnelInbound {
        sa: InboundSa::new(
            &v6_spec(Direction::Inbound, 0x500, "2001:db8:1::1", "2001:db8:2::2"),
            0,
            Backend::Fastest,
        )
        .unwrap(),
        inside_vrf: VrfId(0),
        proxy: ProxyPair {
            local: p("172.16.1.0/24"),
            remote: p("172.16.2.0/24"),
            protocol: 0,
            local_port: 0,
            remote_port: 0,
        },
    };
    let mut outbound = ArrayVec::new();
    outbound.push(TunnelOutbound {
        sa: OutboundSa::new(
            &v6_spec(Direction::Outbound, 0x600, "2001:db8:1::1", "2001:db8:2::2"),
            0,
            Backend::Fastest,
        )
        .unwrap(),
        outer_vrf: VrfId(0),
    });
    rig.worker
        .tables
        .apply(TableUpdate::AddSaPair {
            tunnel: TunnelId(8),
            inbound: vec![(0x500, inbound)],
            outbound,
        })
        .unwrap();
    let mut peer = OutboundSa::new(
        &v6_spec(Direction::Outbound, 0x500, "2001:db8:2::2", "2001:db8:1::1"),
        0,
        Backend::PureRust,
    )
    .unwrap();
    let seal = |peer: &mut OutboundSa, fill: u8| {
        let inner = ipv4_udp("172.16.2.1", "172.16.1.10", &[fill; 1300]);
        let mut esp = HeapBuf::from_slice(&inner);
        peer.encapsulate(&mut esp, 1).0.unwrap();
        (inner, esp.data().to_vec())
    };
    let mut out = [Disposition::Punt; 3];

    // In order or not, a whole datagram comes out opened, once.
    let (inner, sealed) = seal(&mut peer, 0x44);
    let pieces = ipv6_fragments(&sealed, 512, 1);
    assert_eq!(pieces.len(), 3);
    let mut bufs = [
        frame_v6(&pieces[2]),
        frame_v6(&pieces[0]),
        frame_v6(&pieces[1]),
    ];
    rig.worker.process_burst(OUTSIDE, &mut bufs, &mut out, 1);
    assert_eq!(out[..2], [Disposition::Drop, Disposition::Drop], "held");
    assert_eq!(out[2], Disposition::Transmit(INSIDE));
    assert_eq!(&bufs[2].data()[14 + 20..14 + inner.len()], &inner[20..]);
    let s = rig.counters.snapshot();
    assert_eq!((s.fragments_held, s.reassembled, s.decrypted), (2, 1, 1));

    // Overlapping: a forged piece that overlaps the first drops the datagram, and the
    // genuine rest then never completes it.
    let (_, sealed) = seal(&mut peer, 0x55);
    let pieces = ipv6_fragments(&sealed, 512, 2);
    let mut forged = pieces[1].clone();
    forged[42..44].copy_from_slice(&(504u16 | 1).to_be_bytes());
    let mut bufs = [
        frame_v6(&pieces[0]),
        frame_v6(&forged),
        frame_v6(&pieces[1]),
    ];
    rig.worker.process_burst(OUTSIDE, &mut bufs, &mut out, 1);
    assert_eq!(out, [Disposition::Drop; 3]);
    let mut bufs = [frame_v6(&pieces[2])];
    rig.worker
        .process_burst(OUTSIDE, &mut bufs, &mut out[..1], 1);
    assert_eq!(out[0], Disposition::Drop);

    // Tampered: a non-final piece whose length is not a multiple of 8.
    let (_, sealed) = seal(&mut peer, 0x66);
    let mut odd = ipv6_fragments(&sealed, 512, 3)[0].clone();
    odd.pop();
    let odd_len = (odd.len() - 40) as u16;
    odd[4..6].copy_from_slice(&odd_len.to_be_bytes());
    let mut bufs = [frame_v6(&odd)];
    rig.worker
        .process_burst(OUTSIDE, &mut bufs, &mut out[..1], 1);
    assert_eq!(out[0], Disposition::Drop);
    let s = rig.counters.snapshot();
    assert_eq!((s.drop_reassembly, s.reassembled, s.decrypted), (2, 1, 1));

    // Timeout: a datagram whose last piece comes after the timeout is not completed.
    let (_, sealed) = seal(&mut peer, 0x77);
    let pieces = ipv6_fragments(&sealed, 512, 4);
    let mut bufs = [frame_v6(&pieces[0]), frame_v6(&pieces[1])];
    rig.worker
        .process_burst(OUTSIDE, &mut bufs, &mut out[..2], 10);
    let mut bufs = [frame_v6(&pieces[2])];
    rig.worker
        .process_burst(OUTSIDE, &mut bufs, &mut out[..1], 100);
    assert_eq!(out[0], Disposition::Drop);
    assert_eq!(rig.counters.snapshot().reassembled, 1);
}
