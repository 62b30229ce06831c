//! Shared rig of the pipeline tests: a PIC worker on heap buffers in the reference topology
//! (outside port towards the ISP router, inside port towards the LAN), with one tunnel to the
//! peer 10.2.2.2 protecting 172.16.1.0/24 <-> 172.16.2.0/24.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use arrayvec::ArrayVec;
use dataplane::buf::{HeapBuf, PacketBuf};
use dataplane::crypto::Backend;
use dataplane::esp::{InboundSa, OutboundSa};
use dataplane::pipeline::{
    GatewaySas, NeighborTable, PicWorker, PipelineCounters, PortSetup, Ports, ResolveRequests,
    TunnelInbound, TunnelOutbound,
};
use dataplane::prefix::Prefix;
use dataplane::sa::*;
use dataplane::tables::*;
use dataplane::wire::{ethernet, ipv4};

pub const OUTSIDE: PortId = PortId(0);
pub const INSIDE: PortId = PortId(1);
pub const GW_MAC_OUT: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
pub const GW_MAC_IN: [u8; 6] = [2, 0, 0, 0, 0, 0x11];
pub const ISP_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];
pub const LAN_HOST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x0a];
pub const UNIT: UnitId = UnitId(1);
pub const TUNNEL: TunnelId = TunnelId(7);

pub fn p(s: &str) -> Prefix {
    s.parse().unwrap()
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn spec(direction: Direction, spi: u32, local: &str, remote: &str) -> SaSpec {
    spec_with_mtu(direction, spi, local, remote, None)
}

pub fn spec_with_mtu(
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

pub fn install(
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
    ];
    let reference = Tunnel {
        id: TUNNEL,
        peer: "10.2.2.2",
        local_proxy: "172.16.1.0/24",
        remote_proxy: "172.16.2.0/24",
        inbound_spi,
        outbound_spi,
        tunnel_mtu,
    };
    for update in updates.into_iter().chain(tunnel_updates(&reference)) {
        queue_tables.apply(update).unwrap();
    }
}

/// A tunnel of the rig's gateway (10.1.1.1) to `peer`, on worker 0 and unit [`UNIT`].
pub struct Tunnel<'a> {
    pub id: TunnelId,
    pub peer: &'a str,
    pub local_proxy: &'a str,
    pub remote_proxy: &'a str,
    pub inbound_spi: u32,
    pub outbound_spi: u32,
    pub tunnel_mtu: Option<u16>,
}

/// What the tunnel manager would push for `tunnel`: its SA pair, its dynamic rule and its
/// reverse route.
pub fn tunnel_updates(tunnel: &Tunnel<'_>) -> Vec<TableUpdate<GatewaySas>> {
    let vrf = VrfId(0);
    let mut bundle = ArrayVec::new();
    bundle.push(TunnelOutbound {
        sa: OutboundSa::new(
            &spec_with_mtu(
                Direction::Outbound,
                tunnel.outbound_spi,
                "10.1.1.1",
                tunnel.peer,
                tunnel.tunnel_mtu,
            ),
            0,
            Backend::PureRust,
        )
        .unwrap(),
        outer_vrf: vrf,
    });
    vec![
        TableUpdate::AddSaPair {
            tunnel: tunnel.id,
            inbound: vec![(
                tunnel.inbound_spi,
                TunnelInbound {
                    sa: InboundSa::new(
                        &spec(
                            Direction::Inbound,
                            tunnel.inbound_spi,
                            "10.1.1.1",
                            tunnel.peer,
                        ),
                        0,
                        Backend::PureRust,
                    )
                    .unwrap(),
                    inside_vrf: vrf,
                    proxy: ProxyPair {
                        local: p(tunnel.local_proxy),
                        remote: p(tunnel.remote_proxy),
                        protocol: 0,
                        local_port: 0,
                        remote_port: 0,
                    },
                },
            )],
            outbound: bundle,
        },
        TableUpdate::AddRule(DynamicRule {
            id: DynamicRuleId(tunnel.id.0),
            inside_unit: UNIT,
            source: p(tunnel.local_proxy),
            destination: p(tunnel.remote_proxy),
            target: RuleTarget {
                tunnel: tunnel.id,
                owner: WorkerId(0),
            },
        }),
        TableUpdate::AddRoute {
            vrf,
            route: Route::new(
                p(tunnel.remote_proxy),
                RouteOrigin::ReverseRoute,
                NextHop::ServicesUnit(UNIT),
            ),
        },
    ]
}

pub fn ipv4_udp(src: &str, dst: &str, payload: &[u8]) -> Vec<u8> {
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

pub fn frame(dst_mac: [u8; 6], src_mac: [u8; 6], ip_packet: &[u8]) -> HeapBuf {
    let mut bytes = vec![0u8; 14];
    ethernet::write_header(&mut bytes, dst_mac, src_mac, ethernet::ETHERTYPE_IPV4);
    bytes.extend_from_slice(ip_packet);
    HeapBuf::from_slice(&bytes)
}

pub struct Rig {
    pub worker: PicWorker,
    pub counters: Arc<PipelineCounters>,
    pub resolve: Arc<ResolveRequests>,
    pub neighbors: Arc<NeighborTable>,
}

pub fn rig() -> Rig {
    rig_with_mtu(None)
}

pub fn rig_with_mtu(tunnel_mtu: Option<u16>) -> Rig {
    rig_with_mtus(tunnel_mtu, None)
}

/// The rig with `tunnel-mtu` and, when given, the outside port's MTU.
pub fn rig_with_mtus(tunnel_mtu: Option<u16>, outside_mtu: Option<u16>) -> Rig {
    let mut ports = Ports::new([
        PortSetup {
            port: OUTSIDE,
            mac: GW_MAC_OUT,
            vrf: VrfId(0),
            addresses: [ip("10.1.1.1"), ip("2001:db8:1::1")].into_iter().collect(),
        },
        PortSetup {
            port: INSIDE,
            mac: GW_MAC_IN,
            vrf: VrfId(0),
            addresses: [ip("172.16.1.1")].into_iter().collect(),
        },
    ]);
    if let Some(mtu) = outside_mtu {
        ports.set_mtu(OUTSIDE, mtu);
    }
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

/// A peer at `peer` sealing towards the gateway (10.1.1.1) under the gateway's inbound `spi`.
pub fn peer_seals(spi: u32, peer: &str) -> OutboundSa {
    OutboundSa::new(
        &spec(Direction::Outbound, spi, peer, "10.1.1.1"),
        0,
        Backend::PureRust,
    )
    .unwrap()
}

/// `inner` sealed by `peer` at time `now`, as the frame the gateway's outside port receives
/// from the ISP router.
pub fn sealed_by(peer: &mut OutboundSa, inner: &[u8], now: u64) -> HeapBuf {
    let mut esp = HeapBuf::from_slice(inner);
    peer.encapsulate(&mut esp, now).0.unwrap();
    frame(GW_MAC_OUT, ISP_MAC, esp.data())
}

/// A peer at `peer` opening what the gateway sealed under its outbound `spi`.
pub fn peer_opens(spi: u32, peer: &str) -> InboundSa {
    InboundSa::new(
        &spec(Direction::Inbound, spi, peer, "10.1.1.1"),
        0,
        Backend::PureRust,
    )
    .unwrap()
}

/// The reference tunnel's peer (10.2.2.2) sealing towards the gateway under the rig's inbound
/// SPI 0x100.
pub fn reference_peer() -> OutboundSa {
    peer_seals(0x100, "10.2.2.2")
}

/// The same peer opening what the gateway sealed under its outbound SPI 0x200.
pub fn reference_peer_opens() -> InboundSa {
    peer_opens(0x200, "10.2.2.2")
}
