//! The gateway and the traffic of the pktgen-style benchmarks: a `PicWorker` with the reference
//! topology's tables and N tunnels (each its own SA pair, dynamic rule and reverse route), and
//! the streams a traffic generator plays into it — clear LAN frames to encrypt, or frames the
//! peers sealed to decrypt — with a check that what comes out is what went in.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use arrayvec::ArrayVec;
use dataplane::buf::{HeapBuf, PacketBuf};
use dataplane::crypto::Backend;
use dataplane::esp::{InboundSa, OutboundSa};
use dataplane::pipeline::{
    Disposition, GatewaySas, NeighborTable, PicWorker, PipelineCounters, PortSetup, Ports,
    ResolveRequests, TunnelInbound, TunnelOutbound,
};
use dataplane::prefix::Prefix;
use dataplane::sa::{
    Cipher, DfMode, Direction, Encapsulation, Integrity, IpsecProtocol, Lifetime, ProxyPair,
    SaKeys, SaSpec,
};
use dataplane::tables::{
    event_queue, DynamicRule, DynamicRuleId, NextHop, PortId, Route, RouteOrigin, RuleTarget,
    ServiceSetId, TableUpdate, TunnelId, UnitId, VrfId, WorkerId, WorkerTables,
};
use dataplane::wire::{ethernet, ipv4};

/// The DPDK port ids of the gateway's outside and inside ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GatewayPorts {
    pub outside: PortId,
    pub inside: PortId,
}

/// Port ids when bursts are handed to the worker directly, without ports.
pub const IN_MEMORY_PORTS: GatewayPorts = GatewayPorts {
    outside: PortId(0),
    inside: PortId(1),
};
pub const GW_MAC_OUT: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
pub const GW_MAC_IN: [u8; 6] = [2, 0, 0, 0, 0, 0x11];
pub const ISP_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];
pub const LAN_HOST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x0a];
pub const GW_OUTSIDE: Ipv4Addr = Ipv4Addr::new(10, 1, 1, 1);
pub const ISP_ROUTER: Ipv4Addr = Ipv4Addr::new(10, 1, 1, 254);
pub const LAN_HOST: Ipv4Addr = Ipv4Addr::new(172, 16, 1, 10);
pub const UNIT: UnitId = UnitId(1);
pub const BURST: usize = 32;
/// Inbound SPIs name worker 0, generation 1 and the tunnel's slot (see `tables::spi`).
pub const INBOUND_SPI_BASE: u32 = 1 << 20;
pub const OUTBOUND_SPI_BASE: u32 = 0x8000_0000;
/// Spreads consecutive packets over tunnels pseudo-randomly (Knuth's multiplicative hash).
pub const SPREAD: u64 = 2_654_435_761;
/// Frame sizes include the 4-byte FCS, as pktgen and RFC 2544 count them; IMIX is 7:4:1 of
/// 64, 570 and 1518 bytes.
pub const IMIX: [usize; 12] = [64, 570, 64, 64, 570, 64, 1518, 64, 570, 64, 64, 570];
pub const FCS: usize = 4;

#[derive(Clone, Copy)]
pub struct Suite {
    pub name: &'static str,
    pub cipher: Cipher,
    pub integrity: Integrity,
    pub openssl: &'static str,
}

pub const SUITES: [Suite; 4] = [
    Suite {
        name: "AES-128-GCM",
        cipher: Cipher::AesGcm128,
        integrity: Integrity::None,
        openssl: "aes-128-gcm",
    },
    Suite {
        name: "AES-256-GCM",
        cipher: Cipher::AesGcm256,
        integrity: Integrity::None,
        openssl: "aes-256-gcm",
    },
    Suite {
        name: "AES-128-CBC+HMAC-SHA1-96",
        cipher: Cipher::AesCbc128,
        integrity: Integrity::HmacSha1_96,
        openssl: "aes-128-cbc-hmac-sha1",
    },
    Suite {
        name: "3DES+HMAC-MD5-96",
        cipher: Cipher::TripleDesCbc,
        integrity: Integrity::HmacMd5_96,
        openssl: "des-ede3-cbc",
    },
];

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Size {
    Frame(usize),
    Imix,
}

impl Size {
    pub fn label(self) -> String {
        match self {
            Size::Frame(n) => n.to_string(),
            Size::Imix => "IMIX".into(),
        }
    }
    pub fn frame_len(self, seq: u64) -> usize {
        match self {
            Size::Frame(n) => n,
            Size::Imix => IMIX[(seq % IMIX.len() as u64) as usize],
        }
    }
    pub fn distinct_frame_lens(self) -> Vec<usize> {
        match self {
            Size::Frame(n) => vec![n],
            Size::Imix => vec![64, 570, 1518],
        }
    }
    pub fn mean_frame_len(self) -> f64 {
        match self {
            Size::Frame(n) => n as f64,
            Size::Imix => IMIX.iter().sum::<usize>() as f64 / IMIX.len() as f64,
        }
    }
}

pub fn inner_ip_len(frame_len: usize) -> usize {
    frame_len - ethernet::HEADER_LEN - FCS
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Way {
    Encrypt,
    Decrypt,
}

impl Way {
    pub fn name(self) -> &'static str {
        match self {
            Way::Encrypt => "encrypt",
            Way::Decrypt => "decrypt",
        }
    }
}

pub fn peer_address(tunnel: usize) -> Ipv4Addr {
    Ipv4Addr::from(0x1e00_0000 + tunnel as u32) // 30.0.0.0 + i
}

/// The peer's protected /24: 20.0.0.0 + i·256.
pub fn peer_network(tunnel: usize) -> Ipv4Addr {
    Ipv4Addr::from(0x1400_0000 + ((tunnel as u32) << 8))
}

pub fn peer_host(tunnel: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(peer_network(tunnel)) + 1)
}

pub fn prefix(address: Ipv4Addr, len: u8) -> Prefix {
    format!("{address}/{len}")
        .parse()
        .expect("well-formed prefix")
}

/// Deterministic key material per SPI, so either end of any tunnel can be rebuilt at will.
pub fn keys_for(suite: Suite, spi: u32) -> SaKeys {
    let mut state = u64::from(spi) ^ 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 56) as u8
    };
    SaKeys {
        encryption: (0..suite.cipher.key_len()).map(|_| next()).collect(),
        integrity: (0..suite.integrity.key_len()).map(|_| next()).collect(),
    }
}

pub fn sa_spec(
    suite: Suite,
    spi: u32,
    direction: Direction,
    local: Ipv4Addr,
    remote: Ipv4Addr,
) -> SaSpec {
    SaSpec {
        spi,
        direction,
        protocol: IpsecProtocol::Esp,
        cipher: suite.cipher,
        integrity: suite.integrity,
        keys: keys_for(suite, spi),
        local: IpAddr::V4(local),
        remote: IpAddr::V4(remote),
        encapsulation: Encapsulation::Udp {
            local_port: 4500,
            remote_port: 4500,
        },
        // The decrypt pool is replayed over and over, so anti-replay must be off.
        replay_window: 0,
        extended_sequence_numbers: false,
        lifetime: Lifetime::default(),
        df_mode: DfMode::Copy,
        tunnel_mtu: None,
    }
}

pub fn inbound_spi(tunnel: usize) -> u32 {
    INBOUND_SPI_BASE | tunnel as u32
}

pub fn outbound_spi(tunnel: usize) -> u32 {
    OUTBOUND_SPI_BASE | tunnel as u32
}

/// The peer's end of tunnel `i`: seals what the gateway's inbound SA opens.
pub fn peer_sealer(suite: Suite, tunnel: usize) -> OutboundSa {
    let spec = sa_spec(
        suite,
        inbound_spi(tunnel),
        Direction::Outbound,
        peer_address(tunnel),
        GW_OUTSIDE,
    );
    OutboundSa::new(&spec, 0, Backend::Fastest).expect("peer outbound SA")
}

/// The peer's end of tunnel `i`: opens what the gateway's outbound SA sealed.
pub fn peer_opener(suite: Suite, tunnel: usize) -> InboundSa {
    let spec = sa_spec(
        suite,
        outbound_spi(tunnel),
        Direction::Inbound,
        peer_address(tunnel),
        GW_OUTSIDE,
    );
    InboundSa::new(&spec, 0, Backend::Fastest).expect("peer inbound SA")
}

pub fn tunnel_updates(suite: Suite, tunnel: usize) -> Vec<TableUpdate<GatewaySas>> {
    let vrf = VrfId(0);
    let id = TunnelId(tunnel as u32);
    let remote_net = prefix(peer_network(tunnel), 24);
    let inbound = InboundSa::new(
        &sa_spec(
            suite,
            inbound_spi(tunnel),
            Direction::Inbound,
            GW_OUTSIDE,
            peer_address(tunnel),
        ),
        0,
        Backend::Fastest,
    )
    .expect("gateway inbound SA");
    let outbound = OutboundSa::new(
        &sa_spec(
            suite,
            outbound_spi(tunnel),
            Direction::Outbound,
            GW_OUTSIDE,
            peer_address(tunnel),
        ),
        0,
        Backend::Fastest,
    )
    .expect("gateway outbound SA");
    let mut bundle = ArrayVec::new();
    bundle.push(TunnelOutbound {
        sa: outbound,
        outer_vrf: vrf,
    });
    vec![
        TableUpdate::AddSaPair {
            tunnel: id,
            inbound: vec![(
                inbound_spi(tunnel),
                TunnelInbound {
                    sa: inbound,
                    inside_vrf: vrf,
                    proxy: ProxyPair {
                        local: prefix(Ipv4Addr::new(172, 16, 1, 0), 24),
                        remote: remote_net,
                        protocol: 0,
                        local_port: 0,
                        remote_port: 0,
                    },
                },
            )],
            outbound: bundle,
        },
        TableUpdate::AddRule(DynamicRule {
            id: DynamicRuleId(tunnel as u32 + 1),
            inside_unit: UNIT,
            source: prefix(Ipv4Addr::new(172, 16, 1, 0), 24),
            destination: remote_net,
            target: RuleTarget {
                tunnel: id,
                owner: WorkerId(0),
            },
        }),
        TableUpdate::AddRoute {
            vrf,
            route: Route::new(
                remote_net,
                RouteOrigin::ReverseRoute,
                NextHop::ServicesUnit(UNIT),
            ),
        },
    ]
}

pub fn build_worker(
    suite: Suite,
    tunnels: usize,
    ports: GatewayPorts,
) -> (PicWorker, Arc<PipelineCounters>) {
    let vrf = VrfId(0);
    let direct = |p: Prefix, port| {
        Route::new(
            p,
            RouteOrigin::Direct,
            NextHop::Neighbor {
                port,
                gateway: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            },
        )
    };
    let mut tables = WorkerTables::new(WorkerId(0));
    let base = [
        TableUpdate::AddRoute {
            vrf,
            route: direct(prefix(Ipv4Addr::new(10, 1, 1, 0), 24), ports.outside),
        },
        TableUpdate::AddRoute {
            vrf,
            route: direct(prefix(Ipv4Addr::new(172, 16, 1, 0), 24), ports.inside),
        },
        TableUpdate::AddRoute {
            vrf,
            route: Route::new(
                prefix(Ipv4Addr::UNSPECIFIED, 0),
                RouteOrigin::Static,
                NextHop::Neighbor {
                    port: ports.outside,
                    gateway: IpAddr::V4(ISP_ROUTER),
                },
            ),
        },
        TableUpdate::BindUnit {
            unit: UNIT,
            service_set: ServiceSetId(0),
        },
    ];
    for update in base
        .into_iter()
        .chain((0..tunnels).flat_map(|t| tunnel_updates(suite, t)))
    {
        tables.apply(update).expect("table update applies");
    }
    let port_setups = Ports::new([
        PortSetup {
            port: ports.outside,
            mac: GW_MAC_OUT,
            vrf,
            addresses: [IpAddr::V4(GW_OUTSIDE)].into_iter().collect(),
        },
        PortSetup {
            port: ports.inside,
            mac: GW_MAC_IN,
            vrf,
            addresses: [IpAddr::V4(Ipv4Addr::new(172, 16, 1, 1))]
                .into_iter()
                .collect(),
        },
    ]);
    let neighbors = Arc::new(NeighborTable::new(64));
    neighbors
        .insert(ports.outside, IpAddr::V4(ISP_ROUTER), ISP_MAC)
        .expect("neighbor");
    neighbors
        .insert(ports.inside, IpAddr::V4(LAN_HOST), LAN_HOST_MAC)
        .expect("neighbor");
    let resolve = Arc::new(ResolveRequests::new(16));
    let counters = Arc::new(PipelineCounters::default());
    let (events, _events_rx) = event_queue(1 << 16);
    let worker = PicWorker::new(
        tables,
        port_setups,
        neighbors,
        resolve,
        events,
        counters.clone(),
        1,
    );
    (worker, counters)
}

pub fn udp_packet(src: Ipv4Addr, dst: Ipv4Addr, total: usize, stamp: u64) -> Vec<u8> {
    let mut packet = vec![0u8; total];
    packet[0] = 0x45;
    packet[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    packet[8] = 64;
    packet[9] = 17;
    packet[12..16].copy_from_slice(&src.octets());
    packet[16..20].copy_from_slice(&dst.octets());
    packet[20..22].copy_from_slice(&1234u16.to_be_bytes());
    packet[22..24].copy_from_slice(&5678u16.to_be_bytes());
    packet[24..26].copy_from_slice(&((total - 20) as u16).to_be_bytes());
    for (i, b) in packet[28..].iter_mut().enumerate() {
        *b = (stamp as u8).wrapping_add(i as u8);
    }
    ipv4::Ipv4Packet::new_unchecked(&mut packet[..]).fill_checksum();
    packet
}

pub fn frame(dst: [u8; 6], src: [u8; 6], ip_packet: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0u8; ethernet::HEADER_LEN];
    ethernet::write_header(&mut bytes, dst, src, ethernet::ETHERTYPE_IPV4);
    bytes.extend_from_slice(ip_packet);
    bytes
}

/// What the generator puts on the wire for one row: clear LAN frames re-addressed per packet
/// (encrypt), or pre-sealed peer frames (decrypt).
pub enum Traffic {
    Encrypt {
        /// One LAN frame per distinct frame length, to 20.0.0.1; the destination is patched.
        templates: HashMap<usize, Vec<u8>>,
        tunnels: usize,
    },
    Decrypt {
        /// Per frame length, the frames of the pool.
        pools: HashMap<usize, Vec<SealedFrame>>,
    },
}

/// A frame a peer sealed: its tunnel, the frame on the wire, and the packet inside.
pub struct SealedFrame {
    pub tunnel: usize,
    pub frame: Vec<u8>,
    pub inner: Vec<u8>,
}

pub fn tunnel_of(seq: u64, tunnels: usize) -> usize {
    (seq.wrapping_mul(SPREAD) % tunnels as u64) as usize
}

impl Traffic {
    pub fn encrypt(size: Size, tunnels: usize) -> Self {
        let templates = size
            .distinct_frame_lens()
            .into_iter()
            .map(|len| {
                let ip = udp_packet(LAN_HOST, peer_host(0), inner_ip_len(len), len as u64);
                (len, frame(GW_MAC_IN, LAN_HOST_MAC, &ip))
            })
            .collect();
        Traffic::Encrypt { templates, tunnels }
    }

    /// The peer's frames are authenticated, so they cannot be re-addressed per packet like
    /// clear LAN frames: one frame per tunnel and frame length is sealed beforehand, so that
    /// the stream reaches every tunnel's SA, as cold as the encrypt side's.
    pub fn decrypt(suite: Suite, size: Size, tunnels: usize) -> Self {
        let pool_len = tunnels;
        let mut sealers: HashMap<usize, OutboundSa> = HashMap::new();
        let mut pools = HashMap::new();
        for len in size.distinct_frame_lens() {
            let mut pool = Vec::with_capacity(pool_len);
            for j in 0..pool_len {
                let tunnel = tunnel_of(j as u64, tunnels);
                let inner = udp_packet(peer_host(tunnel), LAN_HOST, inner_ip_len(len), j as u64);
                let sealer = sealers
                    .entry(tunnel)
                    .or_insert_with(|| peer_sealer(suite, tunnel));
                let mut buf = HeapBuf::from_slice(&inner);
                sealer.encapsulate(&mut buf, 1).0.expect("peer seals");
                pool.push(SealedFrame {
                    tunnel,
                    frame: frame(GW_MAC_OUT, ISP_MAC, buf.data()),
                    inner,
                });
            }
            pools.insert(len, pool);
        }
        Traffic::Decrypt { pools }
    }

    pub fn rx_port(&self, ports: GatewayPorts) -> PortId {
        match self {
            Traffic::Encrypt { .. } => ports.inside,
            Traffic::Decrypt { .. } => ports.outside,
        }
    }

    pub fn expected(&self, ports: GatewayPorts) -> Disposition {
        match self {
            Traffic::Encrypt { .. } => Disposition::Transmit(ports.outside),
            Traffic::Decrypt { .. } => Disposition::Transmit(ports.inside),
        }
    }

    /// Writes packet `seq` of the stream into `buf` (an empty mbuf); returns its tunnel.
    pub fn fill(&self, size: Size, seq: u64, buf: &mut impl PacketBuf) -> usize {
        let len = size.frame_len(seq);
        match self {
            Traffic::Encrypt { templates, tunnels } => {
                let tunnel = tunnel_of(seq, *tunnels);
                let template = &templates[&len];
                let data = buf.append(template.len()).expect("mbuf room");
                data.copy_from_slice(template);
                let ip = &mut data[ethernet::HEADER_LEN..];
                ip[16..20].copy_from_slice(&peer_host(tunnel).octets());
                ipv4::Ipv4Packet::new_unchecked(ip).fill_checksum();
                tunnel
            }
            Traffic::Decrypt { pools } => {
                let pool = &pools[&len];
                let SealedFrame {
                    tunnel,
                    frame: sealed,
                    ..
                } = &pool[(seq % pool.len() as u64) as usize];
                buf.append(sealed.len())
                    .expect("mbuf room")
                    .copy_from_slice(sealed);
                *tunnel
            }
        }
    }

    /// Checks one output frame against what went in: the sealed frame opens, with the peer's
    /// keys, to the LAN packet; the opened frame carries the packet the peer sealed.
    pub fn verify(&self, suite: Suite, size: Size, seq: u64, out: &[u8]) -> Result<(), String> {
        let len = size.frame_len(seq);
        match self {
            Traffic::Encrypt { templates, tunnels } => {
                let tunnel = tunnel_of(seq, *tunnels);
                if out.get(..6) != Some(&ISP_MAC[..]) {
                    return Err("sealed frame not sent to the ISP router".into());
                }
                let mut sealed = HeapBuf::from_slice(&out[ethernet::HEADER_LEN..]);
                let mut opener = peer_opener(suite, tunnel);
                opener
                    .decapsulate(&mut sealed, 1)
                    .0
                    .map_err(|e| format!("peer cannot open tunnel {tunnel}'s frame: {e:?}"))?;
                let sent = &templates[&len][ethernet::HEADER_LEN..];
                let opened = sealed.data();
                let same = opened.len() == sent.len()
                    && opened[12..16] == sent[12..16]
                    && opened[16..20] == peer_host(tunnel).octets()
                    && opened[20..] == sent[20..];
                if same {
                    Ok(())
                } else {
                    Err(format!(
                        "tunnel {tunnel}: opened packet differs from the input"
                    ))
                }
            }
            Traffic::Decrypt { pools } => {
                let pool = &pools[&len];
                let SealedFrame { tunnel, inner, .. } = &pool[(seq % pool.len() as u64) as usize];
                let ip = out.get(ethernet::HEADER_LEN..).unwrap_or_default();
                let same = out.get(..6) == Some(&LAN_HOST_MAC[..])
                    && ip.len() >= inner.len()
                    && ip[12..20] == inner[12..20]
                    && ip[20..inner.len()] == inner[20..];
                if same {
                    Ok(())
                } else {
                    Err(format!(
                        "tunnel {tunnel}: forwarded packet differs from what the peer sealed"
                    ))
                }
            }
        }
    }

    /// Checks one output frame by its content alone, for when outputs cannot be matched to
    /// inputs by position (they crossed ports and rings): the tunnel is read from the outer
    /// destination (encrypt) or the inner source (decrypt), then the frame is opened with that
    /// peer's keys and compared with the LAN packet of its length, or compared with the packets
    /// that peer sealed.
    pub fn verify_by_content(&self, suite: Suite, out: &[u8]) -> Result<(), String> {
        let ip = out.get(ethernet::HEADER_LEN..).unwrap_or_default();
        if ip.len() < 20 {
            return Err(format!("{}-byte frame", out.len()));
        }
        let address = |at: usize| u32::from_be_bytes([ip[at], ip[at + 1], ip[at + 2], ip[at + 3]]);
        match self {
            Traffic::Encrypt { tunnels, .. } => {
                let tunnel = address(16).wrapping_sub(u32::from(peer_address(0))) as usize;
                if tunnel >= *tunnels {
                    return Err(format!(
                        "sealed frame to {}, no such peer",
                        ip_text(&ip[16..20])
                    ));
                }
                let mut sealed = HeapBuf::from_slice(ip);
                peer_opener(suite, tunnel)
                    .decapsulate(&mut sealed, 1)
                    .0
                    .map_err(|e| format!("peer cannot open tunnel {tunnel}'s frame: {e:?}"))?;
                let opened = sealed.data();
                let frame_len = opened.len() + ethernet::HEADER_LEN + FCS;
                let expected = self.expected_packet(frame_len, tunnel);
                // The gateway forwards the inner packet: TTL and checksum change, nothing else.
                let same = expected.is_some_and(|e| {
                    e.len() == opened.len()
                        && e[..8] == opened[..8]
                        && e[9] == opened[9]
                        && e[12..] == opened[12..]
                });
                if out.get(..6) == Some(&ISP_MAC[..]) && same {
                    Ok(())
                } else {
                    Err(format!(
                        "tunnel {tunnel}: opened packet differs from the input"
                    ))
                }
            }
            Traffic::Decrypt { pools } => {
                let tunnel = (address(12).wrapping_sub(u32::from(peer_host(0))) >> 8) as usize;
                let matches = pools.values().flatten().any(|sealed| {
                    sealed.tunnel == tunnel
                        && ip.len() >= sealed.inner.len()
                        && ip[..8] == sealed.inner[..8]
                        && ip[9] == sealed.inner[9]
                        && ip[12..sealed.inner.len()] == sealed.inner[12..]
                });
                if out.get(..6) == Some(&LAN_HOST_MAC[..]) && matches {
                    Ok(())
                } else {
                    Err(format!(
                        "tunnel {tunnel}: forwarded packet differs from what the peer sealed"
                    ))
                }
            }
        }
    }

    /// The clear LAN packet of `frame_len` that the encrypt stream sends into `tunnel`.
    fn expected_packet(&self, frame_len: usize, tunnel: usize) -> Option<Vec<u8>> {
        let Traffic::Encrypt { templates, .. } = self else {
            return None;
        };
        let mut ip = templates.get(&frame_len)?[ethernet::HEADER_LEN..].to_vec();
        ip[16..20].copy_from_slice(&peer_host(tunnel).octets());
        Some(ip)
    }
}

fn ip_text(octets: &[u8]) -> String {
    octets
        .iter()
        .map(u8::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs one burst of the stream through a real worker on heap buffers and returns the
    /// outputs with their dispositions.
    fn through_worker(way: Way, tunnels: usize) -> (Traffic, Vec<(Disposition, Vec<u8>)>) {
        let suite = SUITES[0];
        let size = Size::Frame(128);
        let traffic = match way {
            Way::Encrypt => Traffic::encrypt(size, tunnels),
            Way::Decrypt => Traffic::decrypt(suite, size, tunnels),
        };
        let (mut worker, _) = build_worker(suite, tunnels, IN_MEMORY_PORTS);
        let mut bufs: Vec<HeapBuf> = (0..8u64)
            .map(|seq| {
                let mut b = HeapBuf::with_capacity(2048, 128);
                traffic.fill(size, seq, &mut b);
                b
            })
            .collect();
        let mut out = vec![Disposition::Drop; bufs.len()];
        worker.process_burst(traffic.rx_port(IN_MEMORY_PORTS), &mut bufs, &mut out, 1);
        let outputs = out
            .into_iter()
            .zip(bufs.iter().map(|b| b.data().to_vec()))
            .collect();
        (traffic, outputs)
    }

    #[test]
    fn sealed_frames_are_verified_by_content_and_a_flipped_byte_is_caught() {
        let (traffic, outputs) = through_worker(Way::Encrypt, 5);
        for (disposition, frame) in &outputs {
            assert_eq!(*disposition, traffic.expected(IN_MEMORY_PORTS));
            traffic
                .verify_by_content(SUITES[0], frame)
                .expect("the peer opens what the gateway sealed");
        }
        let mut tampered = outputs[0].1.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(traffic.verify_by_content(SUITES[0], &tampered).is_err());
        assert!(traffic.verify_by_content(SUITES[0], &[0u8; 10]).is_err());
    }

    #[test]
    fn opened_frames_are_verified_by_content_and_a_changed_payload_is_caught() {
        let (traffic, outputs) = through_worker(Way::Decrypt, 5);
        for (disposition, frame) in &outputs {
            assert_eq!(*disposition, traffic.expected(IN_MEMORY_PORTS));
            traffic
                .verify_by_content(SUITES[0], frame)
                .expect("the gateway forwards what the peer sealed");
        }
        let mut changed = outputs[0].1.clone();
        changed[ethernet::HEADER_LEN + 40] ^= 0xff;
        assert!(traffic.verify_by_content(SUITES[0], &changed).is_err());
    }
}
