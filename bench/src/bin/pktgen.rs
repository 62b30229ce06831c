//! pktgen-style gateway throughput, in process: IPv4 UDP frames are written into mbufs of a DPDK
//! mempool (EAL with `--no-huge`) and handed to a real `PicWorker` by bursts of 32, as its rx
//! loop would; what comes out is counted by disposition and a sample is checked against the
//! input (sealed frames are opened with the peer's keys, opened frames are compared with what
//! the peer sealed). Directions: encrypt (LAN → tunnel) and decrypt (ESP-in-UDP from a peer →
//! LAN). The worker's tables hold 1, 1,000 or 100,000 tunnels, each with its own SA pair, dynamic
//! rule and reverse route, installed through `TableUpdate`s; the flows spread over all tunnels.
//!
//! Every row sits next to references measured in the same run: the ESP engine alone on the same
//! inner packets (`OutboundSa`/`InboundSa` on heap buffers, no parsing, lookups or forwarding),
//! and `openssl speed -evp` for the suite's cipher at the same length.
//!
//! `cargo run --release -p dyntun-bench --bin pktgen [-- --quick]` prints a markdown table and
//! writes `bench/results/pktgen.json` and `bench/results/pktgen.png`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrayvec::ArrayVec;
use dataplane::buf::{HeapBuf, PacketBuf};
use dataplane::crypto::Backend;
use dataplane::esp::{InboundSa, OutboundSa, Verdict};
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
use dpdk::{Eal, MbufBurst, Mempool};
use dyntun_bench::{results_dir, write_json, LinePlot, Series, Table};
use serde_json::json;

const OUTSIDE: PortId = PortId(0);
const INSIDE: PortId = PortId(1);
const GW_MAC_OUT: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
const GW_MAC_IN: [u8; 6] = [2, 0, 0, 0, 0, 0x11];
const ISP_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];
const LAN_HOST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x0a];
const GW_OUTSIDE: Ipv4Addr = Ipv4Addr::new(10, 1, 1, 1);
const ISP_ROUTER: Ipv4Addr = Ipv4Addr::new(10, 1, 1, 254);
const LAN_HOST: Ipv4Addr = Ipv4Addr::new(172, 16, 1, 10);
const UNIT: UnitId = UnitId(1);
const BURST: usize = 32;
/// Inbound SPIs name worker 0, generation 1 and the tunnel's slot (see `tables::spi`).
const INBOUND_SPI_BASE: u32 = 1 << 20;
const OUTBOUND_SPI_BASE: u32 = 0x8000_0000;
/// Distinct pre-sealed ESP frames per size for the decrypt direction: the peer's frames are
/// authenticated, so they cannot be re-addressed per packet like clear LAN frames.
const DECRYPT_POOL: usize = 1024;
/// Spreads consecutive packets over tunnels pseudo-randomly (Knuth's multiplicative hash).
const SPREAD: u64 = 2_654_435_761;
/// Frame sizes include the 4-byte FCS, as pktgen and RFC 2544 count them; IMIX is 7:4:1 of
/// 64, 570 and 1518 bytes.
const IMIX: [usize; 12] = [64, 570, 64, 64, 570, 64, 1518, 64, 570, 64, 64, 570];
const FCS: usize = 4;

#[derive(Clone, Copy)]
struct Suite {
    name: &'static str,
    cipher: Cipher,
    integrity: Integrity,
    openssl: &'static str,
}

const SUITES: [Suite; 4] = [
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
enum Size {
    Frame(usize),
    Imix,
}

impl Size {
    fn label(self) -> String {
        match self {
            Size::Frame(n) => n.to_string(),
            Size::Imix => "IMIX".into(),
        }
    }
    fn frame_len(self, seq: u64) -> usize {
        match self {
            Size::Frame(n) => n,
            Size::Imix => IMIX[(seq % IMIX.len() as u64) as usize],
        }
    }
    fn distinct_frame_lens(self) -> Vec<usize> {
        match self {
            Size::Frame(n) => vec![n],
            Size::Imix => vec![64, 570, 1518],
        }
    }
    fn mean_frame_len(self) -> f64 {
        match self {
            Size::Frame(n) => n as f64,
            Size::Imix => IMIX.iter().sum::<usize>() as f64 / IMIX.len() as f64,
        }
    }
}

fn inner_ip_len(frame_len: usize) -> usize {
    frame_len - ethernet::HEADER_LEN - FCS
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Way {
    Encrypt,
    Decrypt,
}

impl Way {
    fn name(self) -> &'static str {
        match self {
            Way::Encrypt => "encrypt",
            Way::Decrypt => "decrypt",
        }
    }
}

struct Settings {
    sizes: Vec<Size>,
    tunnel_counts: Vec<usize>,
    row_time: Duration,
    rounds: usize,
}

fn settings(quick: bool) -> Settings {
    if quick {
        Settings {
            sizes: vec![Size::Frame(64), Size::Frame(1420), Size::Imix],
            tunnel_counts: vec![1, 1000],
            row_time: Duration::from_millis(70),
            rounds: 2,
        }
    } else {
        Settings {
            sizes: vec![
                Size::Frame(64),
                Size::Frame(128),
                Size::Frame(512),
                Size::Frame(1420),
                Size::Frame(1518),
                Size::Imix,
            ],
            tunnel_counts: vec![1, 1000, 100_000],
            row_time: Duration::from_millis(170),
            rounds: 3,
        }
    }
}

fn peer_address(tunnel: usize) -> Ipv4Addr {
    Ipv4Addr::from(0x1e00_0000 + tunnel as u32) // 30.0.0.0 + i
}

/// The peer's protected /24: 20.0.0.0 + i·256.
fn peer_network(tunnel: usize) -> Ipv4Addr {
    Ipv4Addr::from(0x1400_0000 + ((tunnel as u32) << 8))
}

fn peer_host(tunnel: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(peer_network(tunnel)) + 1)
}

fn prefix(address: Ipv4Addr, len: u8) -> Prefix {
    format!("{address}/{len}")
        .parse()
        .expect("well-formed prefix")
}

/// Deterministic key material per SPI, so either end of any tunnel can be rebuilt at will.
fn keys_for(suite: Suite, spi: u32) -> SaKeys {
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

fn sa_spec(
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

fn inbound_spi(tunnel: usize) -> u32 {
    INBOUND_SPI_BASE | tunnel as u32
}

fn outbound_spi(tunnel: usize) -> u32 {
    OUTBOUND_SPI_BASE | tunnel as u32
}

/// The peer's end of tunnel `i`: seals what the gateway's inbound SA opens.
fn peer_sealer(suite: Suite, tunnel: usize) -> OutboundSa {
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
fn peer_opener(suite: Suite, tunnel: usize) -> InboundSa {
    let spec = sa_spec(
        suite,
        outbound_spi(tunnel),
        Direction::Inbound,
        peer_address(tunnel),
        GW_OUTSIDE,
    );
    InboundSa::new(&spec, 0, Backend::Fastest).expect("peer inbound SA")
}

fn tunnel_updates(suite: Suite, tunnel: usize) -> Vec<TableUpdate<GatewaySas>> {
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

fn build_worker(suite: Suite, tunnels: usize) -> (PicWorker, Arc<PipelineCounters>) {
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
            route: direct(prefix(Ipv4Addr::new(10, 1, 1, 0), 24), OUTSIDE),
        },
        TableUpdate::AddRoute {
            vrf,
            route: direct(prefix(Ipv4Addr::new(172, 16, 1, 0), 24), INSIDE),
        },
        TableUpdate::AddRoute {
            vrf,
            route: Route::new(
                prefix(Ipv4Addr::UNSPECIFIED, 0),
                RouteOrigin::Static,
                NextHop::Neighbor {
                    port: OUTSIDE,
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
    let ports = Ports::new([
        PortSetup {
            port: OUTSIDE,
            mac: GW_MAC_OUT,
            vrf,
            addresses: [IpAddr::V4(GW_OUTSIDE)].into_iter().collect(),
        },
        PortSetup {
            port: INSIDE,
            mac: GW_MAC_IN,
            vrf,
            addresses: [IpAddr::V4(Ipv4Addr::new(172, 16, 1, 1))]
                .into_iter()
                .collect(),
        },
    ]);
    let neighbors = Arc::new(NeighborTable::new(64));
    neighbors
        .insert(OUTSIDE, IpAddr::V4(ISP_ROUTER), ISP_MAC)
        .expect("neighbor");
    neighbors
        .insert(INSIDE, IpAddr::V4(LAN_HOST), LAN_HOST_MAC)
        .expect("neighbor");
    let resolve = Arc::new(ResolveRequests::new(16));
    let counters = Arc::new(PipelineCounters::default());
    let (events, _events_rx) = event_queue(1 << 16);
    let worker = PicWorker::new(
        tables,
        ports,
        neighbors,
        resolve,
        events,
        counters.clone(),
        1,
    );
    (worker, counters)
}

fn udp_packet(src: Ipv4Addr, dst: Ipv4Addr, total: usize, stamp: u64) -> Vec<u8> {
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

fn frame(dst: [u8; 6], src: [u8; 6], ip_packet: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0u8; ethernet::HEADER_LEN];
    ethernet::write_header(&mut bytes, dst, src, ethernet::ETHERTYPE_IPV4);
    bytes.extend_from_slice(ip_packet);
    bytes
}

/// What the generator puts on the wire for one row: clear LAN frames re-addressed per packet
/// (encrypt), or pre-sealed peer frames (decrypt).
enum Traffic {
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
struct SealedFrame {
    tunnel: usize,
    frame: Vec<u8>,
    inner: Vec<u8>,
}

fn tunnel_of(seq: u64, tunnels: usize) -> usize {
    (seq.wrapping_mul(SPREAD) % tunnels as u64) as usize
}

impl Traffic {
    fn encrypt(size: Size, tunnels: usize) -> Self {
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

    fn decrypt(suite: Suite, size: Size, tunnels: usize) -> Self {
        let pool_len = tunnels.min(DECRYPT_POOL);
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

    fn rx_port(&self) -> PortId {
        match self {
            Traffic::Encrypt { .. } => INSIDE,
            Traffic::Decrypt { .. } => OUTSIDE,
        }
    }

    fn expected(&self) -> Disposition {
        match self {
            Traffic::Encrypt { .. } => Disposition::Transmit(OUTSIDE),
            Traffic::Decrypt { .. } => Disposition::Transmit(INSIDE),
        }
    }

    /// Writes packet `seq` of the stream into `buf` (an empty mbuf); returns its tunnel.
    fn fill(&self, size: Size, seq: u64, buf: &mut impl PacketBuf) -> usize {
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
    fn verify(&self, suite: Suite, size: Size, seq: u64, out: &[u8]) -> Result<(), String> {
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
}

struct Measured {
    packets: u64,
    wire_bytes: f64,
    seconds: f64,
    bad_disposition: u64,
    verified: u64,
    verify_errors: Vec<String>,
}

impl Measured {
    fn pps(&self) -> f64 {
        self.packets as f64 / self.seconds
    }
    fn gbps(&self) -> f64 {
        self.wire_bytes * 8.0 / self.seconds / 1e9
    }
}

/// Runs the stream through the worker for `rounds` windows of `row_time`; the fastest window
/// counts, since interference from other tenants only ever slows a window down. Only the time
/// inside `process_burst` is charged: filling mbufs stands in for the NIC's DMA.
#[allow(clippy::too_many_arguments)]
fn run_row(
    worker: &mut PicWorker,
    pool: &Mempool,
    traffic: &Traffic,
    suite: Suite,
    size: Size,
    row_time: Duration,
    rounds: usize,
    seq: &mut u64,
) -> Measured {
    let mut best: Option<Measured> = None;
    let mut burst = MbufBurst::new();
    let mut out = [Disposition::Drop; BURST];
    let expected = traffic.expected();
    let (mut bad_total, mut verified, mut errors) = (0u64, 0u64, Vec::new());
    for _ in 0..rounds {
        let (mut packets, mut wire, mut inside) = (0u64, 0f64, Duration::ZERO);
        let window = Instant::now();
        let mut bursts = 0u64;
        while window.elapsed() < row_time {
            burst.clear();
            if !pool.alloc_into(&mut burst, BURST) {
                panic!("mempool exhausted");
            }
            let first = *seq;
            let mut lens = [0usize; BURST];
            for (i, m) in burst.as_mut_slice().iter_mut().enumerate() {
                traffic.fill(size, *seq, m);
                lens[i] = size.frame_len(*seq);
                *seq += 1;
            }
            let start = Instant::now();
            worker.process_burst(traffic.rx_port(), burst.as_mut_slice(), &mut out, 1);
            inside += start.elapsed();
            for (i, d) in out.iter().enumerate() {
                if *d == expected {
                    packets += 1;
                    wire += lens[i] as f64;
                } else {
                    bad_total += 1;
                }
            }
            // A sample: the first packet of every 64th burst, checked end to end.
            if bursts & 63 == 0 && out[0] == expected {
                match traffic.verify(suite, size, first, burst.as_slice()[0].data()) {
                    Ok(()) => verified += 1,
                    Err(e) => errors.push(e),
                }
            }
            bursts += 1;
        }
        let m = Measured {
            packets,
            wire_bytes: wire,
            seconds: inside.as_secs_f64().max(1e-9),
            bad_disposition: 0,
            verified: 0,
            verify_errors: Vec::new(),
        };
        let faster = match &best {
            None => true,
            Some(b) => m.pps() > b.pps(),
        };
        if faster {
            best = Some(m);
        }
    }
    burst.clear();
    let mut best = best.expect("at least one round");
    best.bad_disposition = bad_total;
    best.verified = verified;
    best.verify_errors = errors;
    best
}

/// The ESP engine alone on the same inner packets: one SA, heap buffers, no parsing, lookups or
/// forwarding. Gbps counts the same LAN-side frame bytes as the gateway rows.
fn engine_ceiling(suite: Suite, size: Size, way: Way, row_time: Duration, rounds: usize) -> f64 {
    let inner_of = |seq: u64| {
        udp_packet(
            peer_host(0),
            LAN_HOST,
            inner_ip_len(size.frame_len(seq)),
            seq,
        )
    };
    let patterns: Vec<Vec<u8>> = (0..IMIX.len() as u64)
        .map(|seq| match way {
            Way::Encrypt => inner_of(seq),
            Way::Decrypt => {
                let mut b = HeapBuf::from_slice(&inner_of(seq));
                peer_sealer(suite, 0)
                    .encapsulate(&mut b, 1)
                    .0
                    .expect("seal");
                b.data().to_vec()
            }
        })
        .collect();
    let mut sealer = OutboundSa::new(
        &sa_spec(
            suite,
            outbound_spi(0),
            Direction::Outbound,
            GW_OUTSIDE,
            peer_address(0),
        ),
        0,
        Backend::Fastest,
    )
    .expect("SA");
    let mut opener = InboundSa::new(
        &sa_spec(
            suite,
            inbound_spi(0),
            Direction::Inbound,
            GW_OUTSIDE,
            peer_address(0),
        ),
        0,
        Backend::Fastest,
    )
    .expect("SA");
    let mut bufs: Vec<HeapBuf> = (0..BURST)
        .map(|_| HeapBuf::with_capacity(2048, 128))
        .collect();
    let mut verdicts: Vec<Verdict> = vec![Ok(()); BURST];
    let mut best = 0f64;
    for _ in 0..rounds {
        let (mut wire, mut inside) = (0f64, Duration::ZERO);
        let window = Instant::now();
        let mut seq = 0u64;
        while window.elapsed() < row_time {
            for b in bufs.iter_mut() {
                let p = &patterns[(seq % IMIX.len() as u64) as usize];
                b.reset(128);
                b.append(p.len()).expect("room").copy_from_slice(p);
                wire += size.frame_len(seq) as f64;
                seq += 1;
            }
            let start = Instant::now();
            match way {
                Way::Encrypt => {
                    sealer.encapsulate_burst(&mut bufs, &mut verdicts, 1);
                }
                Way::Decrypt => {
                    opener.decapsulate_burst(&mut bufs, &mut verdicts, 1);
                }
            }
            inside += start.elapsed();
            if verdicts.iter().any(|v| v.is_err()) {
                // The engine refused (e.g. a frame beyond the MTU): no ceiling for this size.
                return f64::NAN;
            }
        }
        best = best.max(wire * 8.0 / inside.as_secs_f64() / 1e9);
    }
    best
}

/// `openssl speed -evp CIPHER -bytes N` in bytes per second, or None if openssl refuses.
fn openssl_speed(cipher: &str, bytes: usize) -> Option<f64> {
    let out = Command::new("openssl")
        .args([
            "speed",
            "-mr",
            "-seconds",
            "1",
            "-bytes",
            &bytes.to_string(),
            "-evp",
            cipher,
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.starts_with("+F:"))
        .and_then(|l| l.rsplit(':').next())
        .and_then(|v| v.trim().parse().ok())
}

fn eal_args() -> Vec<String> {
    [
        "-l",
        "0",
        "--no-huge",
        "-m",
        "256",
        "--no-pci",
        "--no-telemetry",
        "--log-level=lib.eal:warning",
        // No --file-prefix: `Eal::init` then picks one per process and removes its runtime
        // directory at cleanup.
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let s = settings(quick);
    let started = Instant::now();
    let eal = Eal::init(eal_args()).unwrap_or_else(|e| {
        eprintln!("EAL: {e}");
        std::process::exit(2)
    });
    let pool = Mempool::create("pktgen", 4095, 64, Mempool::DEFAULT_DATA_ROOM).expect("mempool");

    // openssl first, one figure per suite and length, shared by both directions.
    let suites: Vec<Suite> = SUITES.to_vec();
    let mut openssl: HashMap<(&str, Size), Option<f64>> = HashMap::new();
    for suite in &suites {
        for size in &s.sizes {
            let bytes = inner_ip_len(size.mean_frame_len().round() as usize);
            // openssl's CBC ciphers want whole blocks.
            let bytes = bytes.div_ceil(16) * 16;
            openssl.insert((suite.openssl, *size), openssl_speed(suite.openssl, bytes));
        }
    }

    let mut table = Table::new([
        "suite",
        "direction",
        "tunnels",
        "frame B",
        "Mpps/core",
        "Gbps/core",
        "engine-only Gbps",
        "gateway/engine",
        "openssl Gbps",
        "verified",
        "not forwarded",
    ]);
    let mut rows = Vec::new();
    let mut plot_points: HashMap<(&str, Size), f64> = HashMap::new();
    // The plot shows the middle of the sweep: enough tunnels to leave the caches of one SA,
    // few enough that every SA is touched often.
    let plot_tunnels = if s.tunnel_counts.contains(&1000) {
        1000
    } else {
        *s.tunnel_counts.last().unwrap_or(&1)
    };
    let mut failures = 0usize;
    for suite in &suites {
        let ceilings: HashMap<(Size, &str), f64> = s
            .sizes
            .iter()
            .flat_map(|size| [Way::Encrypt, Way::Decrypt].map(|w| (*size, w)))
            .map(|(size, way)| {
                let rounds = s.rounds;
                (
                    (size, way.name()),
                    engine_ceiling(*suite, size, way, s.row_time / 2, rounds),
                )
            })
            .collect();
        for &tunnels in &s.tunnel_counts {
            let setup = Instant::now();
            let (mut worker, counters) = build_worker(*suite, tunnels);
            let setup_s = setup.elapsed().as_secs_f64();
            let mut seq = 0u64;
            for &size in &s.sizes {
                for way in [Way::Encrypt, Way::Decrypt] {
                    let traffic = match way {
                        Way::Encrypt => Traffic::encrypt(size, tunnels),
                        Way::Decrypt => Traffic::decrypt(*suite, size, tunnels),
                    };
                    let before = counters.snapshot();
                    let m = run_row(
                        &mut worker,
                        &pool,
                        &traffic,
                        *suite,
                        size,
                        s.row_time,
                        s.rounds,
                        &mut seq,
                    );
                    let after = counters.snapshot();
                    let ceiling = ceilings[&(size, way.name())];
                    let ossl = openssl[&(suite.openssl, size)];
                    let ossl_gbps = ossl.map(|b| b * 8.0 / 1e9);
                    if !m.verify_errors.is_empty() || m.verified == 0 && m.packets > 0 {
                        failures += 1;
                        for e in m.verify_errors.iter().take(3) {
                            eprintln!("{} {} {}: {e}", suite.name, way.name(), size.label());
                        }
                    }
                    let drops: Vec<(&str, u64)> = after
                        .fields()
                        .into_iter()
                        .zip(before.fields())
                        .filter(|((name, _), _)| name.starts_with("drop_"))
                        .map(|((name, a), (_, b))| (name, a - b))
                        .filter(|(_, n)| *n > 0)
                        .collect();
                    if way == Way::Encrypt && tunnels == plot_tunnels {
                        plot_points.insert((suite.name, size), m.gbps());
                    }
                    table.row([
                        suite.name.to_string(),
                        way.name().to_string(),
                        tunnels.to_string(),
                        size.label(),
                        format!("{:.3}", m.pps() / 1e6),
                        format!("{:.2}", m.gbps()),
                        format!("{ceiling:.2}"),
                        format!("{:.2}", m.gbps() / ceiling),
                        ossl_gbps.map_or("-".into(), |g| format!("{g:.2}")),
                        format!(
                            "{}/{}",
                            m.verified,
                            m.verified + m.verify_errors.len() as u64
                        ),
                        if m.bad_disposition == 0 {
                            "0".into()
                        } else {
                            format!(
                                "{} ({})",
                                m.bad_disposition,
                                drops
                                    .iter()
                                    .map(|(n, c)| format!("{n}={c}"))
                                    .collect::<Vec<_>>()
                                    .join(" ")
                            )
                        },
                    ]);
                    rows.push(json!({
                        "suite": suite.name,
                        "direction": way.name(),
                        "tunnels": tunnels,
                        "frame_bytes": size.label(),
                        "mean_frame_bytes": size.mean_frame_len(),
                        "packets_per_second_per_core": m.pps(),
                        "gbps_per_core": m.gbps(),
                        "packets_counted": m.packets,
                        "seconds_in_worker": m.seconds,
                        "engine_only_gbps": if ceiling.is_finite() { json!(ceiling) } else { json!(null) },
                        "openssl_speed_gbps": ossl_gbps,
                        "openssl_cipher": suite.openssl,
                        "sample_verified": m.verified,
                        "sample_mismatches": m.verify_errors.len(),
                        "not_forwarded": m.bad_disposition,
                        "drops": drops.iter().map(|(n, c)| (n.to_string(), json!(c))).collect::<serde_json::Map<_, _>>(),
                        "table_setup_seconds": setup_s,
                    }));
                }
            }
        }
    }
    println!("{}", table.markdown());
    let plot = LinePlot {
        title: format!("dyntun encrypt, one worker core, {plot_tunnels} tunnels"),
        x_label: "frame bytes".into(),
        y_label: "Gbps per core".into(),
        categories: s.sizes.iter().map(|z| z.label()).collect(),
        series: suites
            .iter()
            .map(|suite| Series {
                name: suite.name.into(),
                values: s
                    .sizes
                    .iter()
                    .map(|z| plot_points.get(&(suite.name, *z)).copied())
                    .collect(),
            })
            .collect(),
    };
    let png = results_dir().join("pktgen.png");
    if let Err(e) = plot.write_png(&png) {
        eprintln!("could not write {}: {e}", png.display());
    }
    let out = json!({
        "benchmark": "pktgen",
        "mode": if quick { "quick" } else { "full" },
        "worker": "dataplane::pipeline::PicWorker::process_burst on DPDK mbufs (--no-huge mempool), bursts of 32, one core",
        "frame_bytes_note": "frame sizes include the 4-byte FCS; Gbps counts LAN-side frame bytes (no preamble/IFG)",
        "decrypt_pool_per_size": DECRYPT_POOL,
        "anti_replay": "off (the decrypt pool is replayed)",
        "backend": "Backend::Fastest",
        "rows": rows,
        "wall_seconds": started.elapsed().as_secs_f64(),
    });
    match write_json("pktgen", &out) {
        Ok(path) => println!("wrote {} and {}", path.display(), png.display()),
        Err(e) => eprintln!("could not write results: {e}"),
    }
    let _ = eal.cleanup();
    if failures > 0 {
        eprintln!("{failures} rows failed verification");
        std::process::exit(1);
    }
}
