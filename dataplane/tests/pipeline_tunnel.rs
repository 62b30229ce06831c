//! A PIC worker on heap buffers, in the reference topology: a LAN frame for a remote proxy is
//! routed by the reverse route into the service set, matched by the dynamic rule, sealed and
//! sent to the peer's next hop; the peer's ESP-in-UDP comes back, is opened, checked against
//! the proxy pair and routed to the LAN host. Every refusal on the way is a counted drop.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use arrayvec::ArrayVec;
use dataplane::buf::{HeapBuf, PacketBuf};
use dataplane::crypto::Backend;
use dataplane::esp::{InboundSa, OutboundSa};
use dataplane::pipeline::{
    fragment_frame, Disposition, GatewaySas, NeighborTable, PicWorker, PipelineCounters, PortSetup,
    Ports, ResolveRequests, TunnelInbound, TunnelOutbound,
};
use dataplane::prefix::Prefix;
use dataplane::sa::*;
use dataplane::tables::*;
use dataplane::wire::{ethernet, ipv4};

const OUTSIDE: PortId = PortId(0);
const INSIDE: PortId = PortId(1);
const GW_MAC_OUT: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
const GW_MAC_IN: [u8; 6] = [2, 0, 0, 0, 0, 0x11];
const ISP_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];
const LAN_HOST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x0a];
const UNIT: UnitId = UnitId(1);
const TUNNEL: TunnelId = TunnelId(7);

fn p(s: &str) -> Prefix {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn spec(direction: Direction, spi: u32, local: &str, remote: &str) -> SaSpec {
    spec_with_mtu(direction, spi, local, remote, None)
}

fn spec_with_mtu(
    direction: Direction,
    spi: u32,
    local: &str,
    remote: &str,
    tunnel_mtu: Option<u16>,
) -> SaSpec {
    SaSpec {
        spi,
        direction,
        protocol: IpsecProtocol::Esp,
        cipher: Cipher::AesCbc128,
        integrity: Integrity::HmacSha1_96,
        keys: SaKeys {
            encryption: (0..16).map(|i| i as u8 ^ spi as u8).collect(),
            integrity: (0..20).map(|i| i as u8 ^ 0x5a ^ spi as u8).collect(),
        },
        local: ip(local),
        remote: ip(remote),
        encapsulation: Encapsulation::Udp {
            local_port: 4500,
            remote_port: 4500,
        },
        replay_window: 64,
        extended_sequence_numbers: false,
        lifetime: Lifetime::default(),
        df_mode: DfMode::Copy,
        tunnel_mtu,
    }
}

fn install(
    queue_tables: &mut WorkerTables<GatewaySas>,
    inbound_spi: u32,
    outbound_spi: u32,
    tunnel_mtu: Option<u16>,
) {
    let vrf = VrfId(0);
    let direct = |prefix: &str, port| {
        Route::new(
            p(prefix),
            RouteOrigin::Direct,
            NextHop::Neighbor {
                port,
                gateway: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            },
        )
    };
    let updates: Vec<TableUpdate<GatewaySas>> = vec![
        TableUpdate::AddRoute {
            vrf,
            route: direct("10.1.1.0/24", OUTSIDE),
        },
        TableUpdate::AddRoute {
            vrf,
            route: direct("172.16.1.0/24", INSIDE),
        },
        TableUpdate::AddRoute {
            vrf,
            route: Route::new(
                p("0.0.0.0/0"),
                RouteOrigin::Static,
                NextHop::Neighbor {
                    port: OUTSIDE,
                    gateway: ip("10.1.1.254"),
                },
            ),
        },
        TableUpdate::AddRoute {
            vrf,
            route: Route::new(p("172.16.1.1/32"), RouteOrigin::Local, NextHop::Local),
        },
        TableUpdate::BindUnit {
            unit: UNIT,
            service_set: ServiceSetId(0),
        },
        TableUpdate::AddSaPair {
            tunnel: TUNNEL,
            inbound: vec![(
                inbound_spi,
                TunnelInbound {
                    sa: InboundSa::new(
                        &spec(Direction::Inbound, inbound_spi, "10.1.1.1", "10.2.2.2"),
                        0,
                        Backend::PureRust,
                    )
                    .unwrap(),
                    inside_vrf: vrf,
                    proxy: ProxyPair {
                        local: p("172.16.1.0/24"),
                        remote: p("172.16.2.0/24"),
                        protocol: 0,
                        local_port: 0,
                        remote_port: 0,
                    },
                },
            )],
            outbound: {
                let mut bundle = ArrayVec::new();
                bundle.push(TunnelOutbound {
                    sa: OutboundSa::new(
                        &spec_with_mtu(
                            Direction::Outbound,
                            outbound_spi,
                            "10.1.1.1",
                            "10.2.2.2",
                            tunnel_mtu,
                        ),
                        0,
                        Backend::PureRust,
                    )
                    .unwrap(),
                    outer_vrf: vrf,
                });
                bundle
            },
        },
        TableUpdate::AddRule(DynamicRule {
            id: DynamicRuleId(1),
            inside_unit: UNIT,
            source: p("172.16.1.0/24"),
            destination: p("172.16.2.0/24"),
            target: RuleTarget {
                tunnel: TUNNEL,
                owner: WorkerId(0),
            },
        }),
        TableUpdate::AddRoute {
            vrf,
            route: Route::new(
                p("172.16.2.0/24"),
                RouteOrigin::ReverseRoute,
                NextHop::ServicesUnit(UNIT),
            ),
        },
    ];
    for update in updates {
        queue_tables.apply(update).unwrap();
    }
}

fn ipv4_udp(src: &str, dst: &str, payload: &[u8]) -> Vec<u8> {
    let total = 20 + 8 + payload.len();
    let mut packet = vec![0u8; total];
    packet[0] = 0x45;
    packet[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    packet[8] = 64;
    packet[9] = 17;
    let s: Ipv4Addr = src.parse().unwrap();
    let d: Ipv4Addr = dst.parse().unwrap();
    packet[12..16].copy_from_slice(&s.octets());
    packet[16..20].copy_from_slice(&d.octets());
    packet[20..22].copy_from_slice(&1234u16.to_be_bytes());
    packet[22..24].copy_from_slice(&5678u16.to_be_bytes());
    packet[24..26].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    packet[28..].copy_from_slice(payload);
    ipv4::Ipv4Packet::new_unchecked(&mut packet[..]).fill_checksum();
    packet
}

fn frame(dst_mac: [u8; 6], src_mac: [u8; 6], ip_packet: &[u8]) -> HeapBuf {
    let mut bytes = vec![0u8; 14];
    ethernet::write_header(&mut bytes, dst_mac, src_mac, ethernet::ETHERTYPE_IPV4);
    bytes.extend_from_slice(ip_packet);
    HeapBuf::from_slice(&bytes)
}

struct Rig {
    worker: PicWorker,
    counters: Arc<PipelineCounters>,
    resolve: Arc<ResolveRequests>,
    neighbors: Arc<NeighborTable>,
}

fn rig() -> Rig {
    rig_with_mtu(None)
}

fn rig_with_mtu(tunnel_mtu: Option<u16>) -> Rig {
    let ports = Ports::new([
        PortSetup {
            port: OUTSIDE,
            mac: GW_MAC_OUT,
            vrf: VrfId(0),
            addresses: [ip("10.1.1.1")].into_iter().collect(),
        },
        PortSetup {
            port: INSIDE,
            mac: GW_MAC_IN,
            vrf: VrfId(0),
            addresses: [ip("172.16.1.1")].into_iter().collect(),
        },
    ]);
    let neighbors = Arc::new(NeighborTable::new(64));
    let resolve = Arc::new(ResolveRequests::new(16));
    let counters = Arc::new(PipelineCounters::default());
    let (events, _events_rx) = event_queue(64);
    let mut tables = WorkerTables::new(WorkerId(0));
    install(&mut tables, 0x100, 0x200, tunnel_mtu);
    Rig {
        worker: PicWorker::new(
            tables,
            ports,
            neighbors.clone(),
            resolve.clone(),
            events,
            counters.clone(),
            1,
        ),
        counters,
        resolve,
        neighbors,
    }
}

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
    let mut peer = OutboundSa::new(
        &spec(Direction::Outbound, 0x100, "10.2.2.2", "10.1.1.1"),
        0,
        Backend::PureRust,
    )
    .unwrap();
    let reply = ipv4_udp("172.16.2.1", "172.16.1.10", b"reply from the peer LAN");
    let mut esp = HeapBuf::from_slice(&reply);
    peer.encapsulate(&mut esp, 1).0.unwrap();
    let mut bufs = [frame(GW_MAC_OUT, ISP_MAC, esp.data())];
    rig.worker.process_burst(OUTSIDE, &mut bufs, &mut out, 1);
    assert_eq!(out[0], Disposition::Transmit(INSIDE));
    let opened = bufs[0].data();
    assert_eq!(&opened[0..6], &LAN_HOST_MAC);
    assert_eq!(&opened[14..14 + reply.len()][20..], &reply[20..]);
    let snapshot = rig.counters.snapshot();
    assert_eq!((snapshot.encrypted, snapshot.decrypted), (1, 1));

    // The same ESP packet again is a replay: counted, not forwarded.
    let mut bufs = [frame(GW_MAC_OUT, ISP_MAC, esp.data())];
    rig.worker.process_burst(OUTSIDE, &mut bufs, &mut out, 1);
    assert_eq!(out[0], Disposition::Drop);
    assert_eq!(rig.counters.snapshot().drop_sa_processing, 1);
}

#[test]
fn refusals_are_counted_drops_or_punts() {
    let mut rig = rig();
    let mut out = [Disposition::Drop];

    // Unresolved next hop: dropped, and the control thread is asked to resolve it.
    let inner = ipv4_udp("172.16.1.10", "172.16.2.1", b"x");
    let mut bufs = [frame(GW_MAC_IN, LAN_HOST_MAC, &inner)];
    rig.worker.process_burst(INSIDE, &mut bufs, &mut out, 1);
    assert_eq!(out[0], Disposition::Drop);
    assert_eq!(rig.counters.snapshot().drop_no_neighbor, 1);
    assert_eq!(
        rig.resolve.pop(),
        Some((OUTSIDE, "10.1.1.254".parse().unwrap()))
    );

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
    // The quote is the original header (TTL already decremented by the forwarder) and the
    // first 8 bytes after it.
    assert_eq!(&icmp[8..8 + 8], &inner[..8]);
    assert_eq!(icmp[8 + 8], inner[8] - 1);
    assert_eq!(&icmp[8 + 12..8 + 28], &inner[12..28]);
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
    let mut pieces: Vec<HeapBuf> = (0..4).map(|_| HeapBuf::with_capacity(2048, 128)).collect();
    let used = fragment_frame(&bufs[0], mtu, &mut pieces).unwrap();
    assert!(used >= 2);
    pieces.truncate(used);
    let mut outs = vec![Disposition::Drop; used];
    rig.worker.process_burst(INSIDE, &mut pieces, &mut outs, 1);
    assert!(
        outs.iter().all(|d| *d == Disposition::Transmit(OUTSIDE)),
        "{outs:?} {:?}",
        rig.counters.snapshot()
    );
    // The peer opens every fragment; together they carry the original payload once.
    let mut peer = InboundSa::new(
        &spec(Direction::Inbound, 0x200, "10.2.2.2", "10.1.1.1"),
        0,
        Backend::PureRust,
    )
    .unwrap();
    let mut payload = Vec::new();
    for piece in &pieces {
        let mut esp = HeapBuf::from_slice(&piece.data()[14..]);
        peer.decapsulate(&mut esp, 1).0.unwrap();
        let ip = ipv4::Ipv4Packet::new_checked(esp.data()).unwrap();
        assert_eq!(ip.ttl(), 63, "TTL decremented exactly once");
        assert!(ip.total_len() <= usize::from(mtu));
        payload.extend_from_slice(ip.payload());
    }
    assert_eq!(payload, big[20..]);
    assert_eq!(rig.counters.snapshot().sent_for_fragmentation, 1);
}

#[test]
fn outer_fragments_from_the_peer_are_reassembled_before_the_spi_lookup() {
    let mut rig = rig();
    rig.neighbors
        .insert(INSIDE, "172.16.1.10".parse().unwrap(), LAN_HOST_MAC)
        .unwrap();
    let mut peer = OutboundSa::new(
        &spec(Direction::Outbound, 0x100, "10.2.2.2", "10.1.1.1"),
        0,
        Backend::PureRust,
    )
    .unwrap();
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

#[test]
fn a_packet_for_the_gateway_out_of_a_tunnel_is_counted_not_punted_with_no_way_back() {
    let mut rig = rig();
    let mut peer = OutboundSa::new(
        &spec(Direction::Outbound, 0x100, "10.2.2.2", "10.1.1.1"),
        0,
        Backend::PureRust,
    )
    .unwrap();
    let to_gateway = ipv4_udp("172.16.2.1", "172.16.1.1", b"hello gateway");
    let mut esp = HeapBuf::from_slice(&to_gateway);
    peer.encapsulate(&mut esp, 1).0.unwrap();
    let mut bufs = [frame(GW_MAC_OUT, ISP_MAC, esp.data())];
    let mut out = [Disposition::Punt];
    rig.worker.process_burst(OUTSIDE, &mut bufs, &mut out, 1);
    assert_eq!(out[0], Disposition::Drop);
    let s = rig.counters.snapshot();
    assert_eq!((s.decrypted, s.drop_local_via_tunnel), (1, 1));
}
