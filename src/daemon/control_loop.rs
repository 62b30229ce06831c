//! The control thread: punted frames in (ARP, ICMP echo, IKE), IKE replies and ARP requests
//! out on its own tx queue, IKE events turned into tunnels by the tunnel manager, worker events
//! back into the manager, and the operational socket. It never blocks on a worker.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use control::ike::{self, IkeEvent, Responder};
use control::tunnels::{self, TunnelManager};
use dataplane::pipeline::{GatewaySas, NeighborTable, PipelineCounters, Ports, ResolveRequests};
use dataplane::sa::{
    Cipher, DfMode, Encapsulation, Integrity, IpsecProtocol, Lifetime, PeerEndpoint, SaSpec,
};
use dataplane::tables::{
    EventReceiver, NextHop, PortId, Route, RouteOrigin, TunnelId, WorkerCounters, WorkerEvent,
    WorkerId,
};
use dataplane::wire::{arp, ethernet, ip_proto, ipv4, ipv6, udp};

use super::builder::{GatewayBuilder, SaCounterRegistry};
use super::control_frames::{FrameSink, PuntedFrames};
use super::events::{EventObserver, EventTracker};
use super::neighbor_aging::NeighborAging;
use super::plan::{Plan, PlannedRouteKind};
use super::socket::{ControlSocket, Request};
use super::{frames, frames_v6};

/// Neighbors unconfirmed this long are probed (Linux's default base reachable time is 30 s;
/// a gateway can afford to be lazier), and forgotten when the probes stay unanswered.
const NEIGHBOR_REACHABLE: Duration = Duration::from_secs(60);
const NEIGHBOR_PROBE_GRACE: Duration = Duration::from_secs(10);

pub type Manager = TunnelManager<GatewaySas, GatewayBuilder>;

/// One IKE responder per access profile, with the outer-header options of its service set.
pub struct ResponderSlot {
    pub access_profile: String,
    pub df_mode: DfMode,
    pub tunnel_mtu: Option<u16>,
    pub local_gateway: IpAddr,
    pub responder: Responder,
}

/// A child SA the manager installed, so that its end can be reported back by SPI, and what
/// `show` says about it (never its keys).
pub struct InstalledChild {
    pub tunnel: TunnelId,
    pub inbound_spis: Vec<u32>,
    pub protocols: Vec<IpsecProtocol>,
    pub cipher: Cipher,
    pub integrity: Integrity,
    pub lifetime: Lifetime,
    pub replay_window: u32,
    pub nat_t: bool,
    pub installed_at: Instant,
}

/// A configured interface and the port that backs it (for `show`, which names interfaces).
pub struct InterfacePort {
    pub id: PortId,
    /// `ge-0/0/0`
    pub interface: String,
}

/// A `show …` question from another thread of the same process (the C API), answered on the
/// control thread like one from the operational socket.
pub struct OperationalRequest {
    pub request: Request,
    pub reply: crossbeam::channel::Sender<String>,
}

pub struct WorkerInfo {
    pub pic: String,
    pub worker: WorkerId,
    pub core: u32,
    pub counters: Arc<PipelineCounters>,
}

pub struct ControlLoop {
    pub(super) manager: Arc<Mutex<Manager>>,
    pub(super) sa_counters: SaCounterRegistry,
    pub(super) responders: Vec<ResponderSlot>,
    pub(super) ports: Vec<InterfacePort>,
    pub(super) port_table: Ports,
    pub(super) neighbors: Arc<NeighborTable>,
    resolve: Arc<ResolveRequests>,
    punted_frames: Box<dyn PuntedFrames>,
    frames: Box<dyn FrameSink>,
    event_receivers: Vec<EventReceiver>,
    pub(super) workers: Vec<WorkerInfo>,
    pub(super) table_counters: BTreeMap<u16, WorkerCounters>,
    socket: Option<ControlSocket>,
    requests: Option<crossbeam::channel::Receiver<OperationalRequest>>,
    observer: Option<(EventObserver, EventTracker)>,
    /// Where each peer's IKE arrived from: replies leave the same port to the same MAC.
    ike_paths: HashMap<IpAddr, (PortId, [u8; 6])>,
    pub(super) children: HashMap<(usize, ike::ChildId), InstalledChild>,
    pub(super) static_tunnels: Vec<StaticTunnel>,
    arp_sent: HashMap<(PortId, IpAddr), Instant>,
    static_next_hops: Vec<(PortId, IpAddr)>,
    aging: NeighborAging,
    pub(super) started: Instant,
    pub(super) punted: u64,
    pub(super) ike_in: u64,
    pub(super) ike_out: u64,
    pub(super) refused_tunnels: u64,
}

/// Hands the manager the routes the configuration asks for: interface subnets, the gateway's
/// own addresses, and static routes (to a neighbor or into a services unit).
pub fn install_configured_routes(
    manager: &mut Manager,
    plan: &Plan,
    port_ids: &[PortId],
) -> Result<(), String> {
    for planned in &plan.routes {
        let next_hop = match &planned.kind {
            PlannedRouteKind::Direct { port_index } => NextHop::Neighbor {
                port: port_ids[*port_index],
                gateway: unspecified(planned.prefix.addr()),
            },
            PlannedRouteKind::Local => NextHop::Local,
            PlannedRouteKind::Gateway {
                port_index,
                gateway,
            } => NextHop::Neighbor {
                port: port_ids[*port_index],
                gateway: *gateway,
            },
            PlannedRouteKind::Unit(unit) => {
                NextHop::ServicesUnit(manager.unit_id(unit).ok_or_else(|| {
                    format!(
                        "static route {}: unit {unit} is not a services unit of any service set",
                        planned.prefix
                    )
                })?)
            }
        };
        let origin = match planned.kind {
            PlannedRouteKind::Direct { .. } => RouteOrigin::Direct,
            PlannedRouteKind::Local => RouteOrigin::Local,
            _ => RouteOrigin::Static,
        };
        manager
            .add_route(
                planned.vrf.as_deref(),
                Route::new(planned.prefix, origin, next_hop),
            )
            .map_err(|e| format!("route {}: {e}", planned.prefix))?;
    }
    Ok(())
}

/// A configured (manual) tunnel, for `show`.
pub struct StaticTunnel {
    pub service_set: String,
    pub rule: String,
    pub term: String,
    pub tunnel: TunnelId,
    pub local_gateway: IpAddr,
    pub remote_gateway: IpAddr,
    pub sources: Vec<dataplane::prefix::Prefix>,
    pub destinations: Vec<dataplane::prefix::Prefix>,
    pub summary: InstalledChild,
    pub outbound_spis: Vec<u32>,
}

/// Installs the static rules of every service set, in configured order, with the manual SA
/// pairs their terms protect traffic with. Static rules are always matched before dynamic ones.
pub fn install_static_rules(
    manager: &mut Manager,
    plan: &Plan,
) -> Result<Vec<StaticTunnel>, String> {
    use dataplane::tables::{StaticRule, StaticTerm, TermAction};
    let mut rules_by_set: Vec<(String, Vec<StaticRule>)> = Vec::new();
    let mut tunnels = Vec::new();
    for term in &plan.static_terms {
        let Some((inbound, outbound)) = &term.manual else {
            continue;
        };
        let any = |family_of: Option<&dataplane::prefix::Prefix>| match family_of {
            Some(p) if !p.is_ipv4() => dataplane::prefix::Prefix::any_v6(),
            _ => dataplane::prefix::Prefix::any_v4(),
        };
        // Decrypted packets must come from the term's destinations and go to its sources.
        let proxy = dataplane::sa::ProxyPair {
            local: term
                .sources
                .first()
                .copied()
                .unwrap_or_else(|| any(term.destinations.first())),
            remote: term
                .destinations
                .first()
                .copied()
                .unwrap_or_else(|| any(term.sources.first())),
            protocol: 0,
            local_port: 0,
            remote_port: 0,
        };
        let target = manager
            .install_static_tunnel(&term.service_set, proxy, inbound, outbound)
            .map_err(|e| {
                format!(
                    "service set {}: rule {} term {}: {e}",
                    term.service_set, term.rule, term.term
                )
            })?;
        let inside_unit = match &term.inside_unit {
            Some(unit) => Some(manager.unit_id(unit).ok_or_else(|| {
                format!(
                    "rule {} term {}: {unit} is not a unit of a service set",
                    term.rule, term.term
                )
            })?),
            None => None,
        };
        let static_term = StaticTerm {
            name: term.term.clone(),
            inside_unit,
            sources: term.sources.clone(),
            destinations: term.destinations.clone(),
            action: TermAction::Protect(target),
        };
        let rules = match rules_by_set
            .iter_mut()
            .find(|(s, _)| *s == term.service_set)
        {
            Some((_, rules)) => rules,
            None => {
                rules_by_set.push((term.service_set.clone(), Vec::new()));
                &mut rules_by_set.last_mut().expect("just pushed").1
            }
        };
        match rules.iter_mut().find(|r| r.name == term.rule) {
            Some(rule) => rule.terms.push(static_term),
            None => rules.push(StaticRule {
                name: term.rule.clone(),
                terms: vec![static_term],
            }),
        }
        if let (Some(summary), Some(remote)) = (summarise(inbound), term.remote_gateway) {
            tunnels.push(StaticTunnel {
                service_set: term.service_set.clone(),
                rule: term.rule.clone(),
                term: term.term.clone(),
                tunnel: target.tunnel,
                local_gateway: inbound.first().map(|s| s.local).unwrap_or(remote),
                remote_gateway: remote,
                sources: term.sources.clone(),
                destinations: term.destinations.clone(),
                summary,
                outbound_spis: outbound.iter().map(|s| s.spi).collect(),
            });
        }
    }
    for (set, rules) in rules_by_set {
        manager.set_static_rules(&set, rules);
    }
    Ok(tunnels)
}

fn unspecified(like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
    }
}

/// Inbound SPIs come from the manager, which places the peer on a PIC worker first, so that
/// the SPI names the worker that will own the SA.
struct ManagerSpis {
    manager: Arc<Mutex<Manager>>,
    access_profile: String,
}

impl ike::SpiAllocator for ManagerSpis {
    fn allocate(&mut self, peer: &PeerEndpoint, _protocol: IpsecProtocol) -> Option<u32> {
        let mut manager = self.manager.lock().ok()?;
        match manager.allocate_inbound_spi(&self.access_profile, peer.remote.ip()) {
            Ok(spi) => Some(spi),
            Err(refusal) => {
                tracing::warn!(peer = %peer.remote, profile = %self.access_profile,
                    reason = %refusal, "no inbound SPI for the peer");
                None
            }
        }
    }

    fn release(&mut self, spi: u32) {
        if let Ok(mut manager) = self.manager.lock() {
            manager.release_inbound_spi(spi);
        }
    }
}

/// What `show` keeps of a negotiated child SA: the ESP spec's algorithms (AH's for AH alone).
fn summarise(inbound: &[SaSpec]) -> Option<InstalledChild> {
    let main = inbound
        .iter()
        .find(|s| s.protocol == IpsecProtocol::Esp)
        .or_else(|| inbound.first())?;
    Some(InstalledChild {
        tunnel: TunnelId(0),
        inbound_spis: inbound.iter().map(|s| s.spi).collect(),
        protocols: inbound.iter().map(|s| s.protocol).collect(),
        cipher: main.cipher,
        integrity: inbound
            .iter()
            .map(|s| s.integrity)
            .find(|i| *i != Integrity::None)
            .unwrap_or(Integrity::None),
        lifetime: main.lifetime,
        replay_window: main.replay_window,
        nat_t: matches!(main.encapsulation, Encapsulation::Udp { .. }),
        installed_at: Instant::now(),
    })
}

/// The workers' coarse clock (seconds of TSC), which SA lifetimes are measured on.
pub fn coarse_now() -> u64 {
    dpdk::lcore::tsc() / dpdk::lcore::tsc_hz().max(1)
}

impl ControlLoop {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        plan: &Plan,
        manager: Manager,
        sa_counters: SaCounterRegistry,
        static_tunnels: Vec<StaticTunnel>,
        ports: Vec<InterfacePort>,
        port_table: Ports,
        neighbors: Arc<NeighborTable>,
        resolve: Arc<ResolveRequests>,
        punted_frames: Box<dyn PuntedFrames>,
        frames: Box<dyn FrameSink>,
        event_receivers: Vec<EventReceiver>,
        workers: Vec<(String, WorkerId, u32, Arc<PipelineCounters>)>,
        socket_path: Option<&Path>,
    ) -> Result<ControlLoop, String> {
        let manager = Arc::new(Mutex::new(manager));
        let mut responders = Vec::new();
        for planned in &plan.responders {
            let spis = ManagerSpis {
                manager: manager.clone(),
                access_profile: planned.access_profile.clone(),
            };
            responders.push(ResponderSlot {
                access_profile: planned.access_profile.clone(),
                df_mode: planned.df_mode,
                tunnel_mtu: planned.tunnel_mtu,
                local_gateway: planned.local_gateway,
                responder: Responder::with_spi_allocator(planned.policy.clone(), Box::new(spis)),
            });
        }
        let static_next_hops = plan
            .routes
            .iter()
            .filter_map(|r| match r.kind {
                PlannedRouteKind::Gateway {
                    port_index,
                    gateway,
                } => ports.get(port_index).map(|p| (p.id, gateway)),
                _ => None,
            })
            .collect();
        let socket = match socket_path {
            Some(path) => Some(
                ControlSocket::bind(path)
                    .map_err(|e| format!("control socket {}: {e}", path.display()))?,
            ),
            None => None,
        };
        Ok(ControlLoop {
            manager,
            sa_counters,
            responders,
            ports,
            port_table,
            neighbors,
            resolve,
            punted_frames,
            frames,
            event_receivers,
            workers: workers
                .into_iter()
                .map(|(pic, worker, core, counters)| WorkerInfo {
                    pic,
                    worker,
                    core,
                    counters,
                })
                .collect(),
            table_counters: BTreeMap::new(),
            socket,
            requests: None,
            observer: None,
            ike_paths: HashMap::new(),
            children: HashMap::new(),
            static_tunnels,
            arp_sent: HashMap::new(),
            static_next_hops,
            aging: NeighborAging::new(NEIGHBOR_REACHABLE, NEIGHBOR_PROBE_GRACE),
            started: Instant::now(),
            punted: 0,
            ike_in: 0,
            ike_out: 0,
            refused_tunnels: 0,
        })
    }

    /// Answers `show` requests from this channel too (another thread of the process).
    pub fn serve_requests(&mut self, requests: crossbeam::channel::Receiver<OperationalRequest>) {
        self.requests = Some(requests);
    }

    /// Tells `observer`, on this thread, about every tunnel and reverse route that comes or
    /// goes from now on.
    pub fn observe(&mut self, observer: EventObserver) {
        self.observer = Some((observer, EventTracker::default()));
        self.report_events();
    }

    /// Answers one operational question directly (the control loop is not running).
    pub fn answer(&mut self, request: &Request) -> String {
        let answer = super::show::answer(self, request);
        self.report_events();
        answer
    }

    /// Runs until `should_stop` says so.
    pub fn run(&mut self, should_stop: impl Fn() -> bool) -> Result<(), String> {
        self.resolve_static_next_hops();
        let mut last_refresh = Instant::now();
        while !should_stop() {
            let mut busy = self.drain_punted();
            busy |= self.drain_resolve_requests();
            // Only IKE events, worker events (lifetimes) and `clear` change tunnels.
            let mut tunnels_may_change = self.run_responders();
            tunnels_may_change |= self.drain_worker_events();
            if let Ok(mut manager) = self.manager.lock() {
                manager.flush();
            }
            tunnels_may_change |= self.serve_socket();
            if tunnels_may_change {
                self.report_events();
            }
            busy |= tunnels_may_change;
            if last_refresh.elapsed() > Duration::from_secs(5) {
                last_refresh = Instant::now();
                self.resolve_static_next_hops();
                self.age_neighbors();
            }
            if !busy {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        Ok(())
    }

    fn drain_punted(&mut self) -> bool {
        // The frame source steps out of `self` while its frames are handled (which transmits).
        let mut source = std::mem::replace(&mut self.punted_frames, Box::new(NoPuntedFrames));
        let handled = source.receive(256, &mut |port, frame| self.handle_punted(port, frame));
        self.punted_frames = source;
        self.punted += handled as u64;
        handled > 0
    }

    fn handle_punted(&mut self, port: PortId, frame: &[u8]) {
        let Ok(eth) = ethernet::EthernetFrame::new_checked(frame) else {
            return;
        };
        let l2 = eth.header_len();
        let peer_mac = eth.src();
        match eth.ethertype() {
            ethernet::ETHERTYPE_ARP => self.handle_arp(port, &frame[l2..]),
            ethernet::ETHERTYPE_IPV6 => self.handle_ipv6(port, peer_mac, &frame[l2..]),
            ethernet::ETHERTYPE_IPV4 => {
                let Ok(ip) = ipv4::Ipv4Packet::new_checked(&frame[l2..]) else {
                    return;
                };
                let header_len = ip.header_len();
                let (src, dst) = (ip.src(), ip.dst());
                match ip.protocol() {
                    ip_proto::ICMP => {
                        let Some(our_mac) = self.port_mac(port) else {
                            return;
                        };
                        if let Some(reply) = frames::icmp_echo_reply(frame, our_mac) {
                            self.transmit(port, &reply);
                        }
                    }
                    ip_proto::UDP => self.handle_udp(
                        port,
                        peer_mac,
                        IpAddr::V4(src),
                        IpAddr::V4(dst),
                        &frame[l2 + header_len..],
                    ),
                    _ => {}
                }
            }
            _ => {}
        }
    }

    /// IKE on 500, and on 4500 behind the zero non-ESP marker (RFC 3948); keepalives ignored.
    fn handle_udp(
        &mut self,
        port: PortId,
        peer_mac: [u8; 6],
        src: IpAddr,
        dst: IpAddr,
        datagram: &[u8],
    ) {
        let Ok(datagram) = udp::UdpPacket::new_checked(datagram) else {
            return;
        };
        let local = SocketAddr::new(dst, datagram.dst_port());
        let remote = SocketAddr::new(src, datagram.src_port());
        let mut payload = datagram.payload();
        if local.port() == udp::NAT_T_PORT {
            if payload.len() < 5 || payload[..4] != [0, 0, 0, 0] {
                return;
            }
            payload = &payload[4..];
        }
        self.ike_paths.insert(remote.ip(), (port, peer_mac));
        self.ike_in += 1;
        let now = Instant::now();
        if let Some(slot) = self
            .responders
            .iter_mut()
            .find(|s| s.local_gateway == local.ip())
        {
            slot.responder.handle_datagram(now, local, remote, payload);
        }
    }

    fn handle_ipv6(&mut self, port: PortId, peer_mac: [u8; 6], packet: &[u8]) {
        let Ok(ip) = ipv6::Ipv6Packet::new_checked(packet) else {
            return;
        };
        let (src, dst, hop_limit) = (ip.src(), ip.dst(), ip.hop_limit());
        let Some(setup) = self.port_table.get(port) else {
            return;
        };
        let our_mac = setup.mac;
        let to_us = setup.addresses.contains(&IpAddr::V6(dst));
        match ip.next_header() {
            ip_proto::UDP if to_us => {
                self.handle_udp(
                    port,
                    peer_mac,
                    IpAddr::V6(src),
                    IpAddr::V6(dst),
                    ip.payload(),
                );
            }
            ip_proto::ICMPV6 => {
                let icmp = ip.payload();
                if let Some(message) = frames_v6::parse_neighbor_message(icmp, hop_limit) {
                    let ours = setup.addresses.contains(&IpAddr::V6(message.target));
                    let learned = match message.kind {
                        frames_v6::NEIGHBOR_SOLICITATION if ours && !src.is_unspecified() => {
                            Some((src, message.link_layer.unwrap_or(peer_mac)))
                        }
                        frames_v6::NEIGHBOR_ADVERTISEMENT => {
                            Some((message.target, message.link_layer.unwrap_or(peer_mac)))
                        }
                        _ => None,
                    };
                    if let Some((address, mac)) = learned {
                        self.aging
                            .confirmed(port, IpAddr::V6(address), Instant::now());
                        if let Err(e) = self.neighbors.insert(port, IpAddr::V6(address), mac) {
                            tracing::warn!(port = port.0, neighbor = %address, error = %e, "neighbor not learned");
                        }
                    }
                    if message.kind == frames_v6::NEIGHBOR_SOLICITATION && ours {
                        let reply = frames_v6::neighbor_advertisement(
                            our_mac,
                            message.target,
                            peer_mac,
                            src,
                        );
                        self.transmit(port, &reply);
                    }
                } else if to_us {
                    if let Some(reply) = frames_v6::echo_reply(our_mac, dst, peer_mac, src, icmp) {
                        self.transmit(port, &reply);
                    }
                }
            }
            _ => {}
        }
    }

    fn handle_arp(&mut self, port: PortId, packet: &[u8]) {
        let Ok(arp) = arp::ArpPacket::new_checked(packet) else {
            return;
        };
        let (sender_ip, sender_mac, target_ip) =
            (arp.sender_ip(), arp.sender_mac(), arp.target_ip());
        let Some(setup) = self.port_table.get(port) else {
            return;
        };
        let ours = setup.addresses.contains(&IpAddr::V4(target_ip));
        let our_mac = setup.mac;
        // Learn from replies and from requests aimed at us (RFC 826's merge rule, restricted
        // to what concerns the gateway).
        if (arp.operation() == arp::OP_REPLY || ours) && !sender_ip.is_unspecified() {
            self.aging
                .confirmed(port, IpAddr::V4(sender_ip), Instant::now());
            if let Err(e) = self
                .neighbors
                .insert(port, IpAddr::V4(sender_ip), sender_mac)
            {
                tracing::warn!(port = port.0, neighbor = %sender_ip, error = %e, "neighbor not learned");
            }
        }
        if arp.operation() == arp::OP_REQUEST && ours {
            let reply = frames::arp_reply(our_mac, target_ip, sender_mac, sender_ip);
            self.transmit(port, &reply);
        }
    }

    fn drain_resolve_requests(&mut self) -> bool {
        let mut any = false;
        while let Some((port, addr)) = self.resolve.pop() {
            any = true;
            self.send_arp_request(port, addr);
        }
        any
    }

    /// ARP request or IPv6 neighbor solicitation, at most one per neighbor per half second.
    fn send_arp_request(&mut self, port: PortId, addr: IpAddr) {
        let now = Instant::now();
        if let Some(last) = self.arp_sent.get(&(port, addr)) {
            if now.duration_since(*last) < Duration::from_millis(500) {
                return;
            }
        }
        let Some(setup) = self.port_table.get(port) else {
            return;
        };
        let request = match addr {
            IpAddr::V4(target) => match setup.first_ipv4() {
                Some(ours) => frames::arp_request(setup.mac, ours, target),
                None => return,
            },
            IpAddr::V6(target) => match setup.first_ipv6() {
                Some(ours) => frames_v6::neighbor_solicitation(setup.mac, ours, target),
                None => return,
            },
        };
        self.arp_sent.insert((port, addr), now);
        self.transmit(port, &request);
    }

    fn age_neighbors(&mut self) {
        let work = self.aging.due(Instant::now());
        for (port, address) in work.probe {
            self.send_arp_request(port, address);
        }
        for (port, address) in work.forget {
            self.neighbors.remove(port, address);
            tracing::info!(port = port.0, neighbor = %address, "neighbor did not answer: forgotten");
        }
    }

    /// Static next hops are resolved before traffic needs them, and refreshed now and then.
    fn resolve_static_next_hops(&mut self) {
        for (port, gateway) in self.static_next_hops.clone() {
            self.send_arp_request(port, gateway);
        }
    }

    fn run_responders(&mut self) -> bool {
        let now = Instant::now();
        let mut busy = false;
        for index in 0..self.responders.len() {
            let slot = &mut self.responders[index];
            if slot.responder.poll_timeout().is_some_and(|t| t <= now) {
                slot.responder.handle_timeout(now);
            }
            while let Some(transmit) = self.responders[index].responder.poll_transmit() {
                busy = true;
                self.send_ike(&transmit);
            }
            while let Some(event) = self.responders[index].responder.poll_event() {
                busy = true;
                self.on_ike_event(index, event);
            }
        }
        busy
    }

    fn send_ike(&mut self, transmit: &ike::Transmit) {
        let Some(&(port, peer_mac)) = self.ike_paths.get(&transmit.remote.ip()) else {
            tracing::warn!(peer = %transmit.remote, "no path back to the peer for an IKE reply");
            return;
        };
        let Some(our_mac) = self.port_mac(port) else {
            return;
        };
        let frame = match (transmit.local, transmit.remote) {
            (SocketAddr::V4(local), SocketAddr::V4(remote)) => {
                frames::udp_frame(our_mac, peer_mac, local, remote, &transmit.bytes)
            }
            (SocketAddr::V6(local), SocketAddr::V6(remote)) => {
                frames_v6::udp_frame(our_mac, peer_mac, local, remote, &transmit.bytes)
            }
            _ => return,
        };
        self.ike_out += 1;
        self.transmit(port, &frame);
    }

    fn on_ike_event(&mut self, index: usize, event: IkeEvent) {
        let profile = self.responders[index].access_profile.clone();
        match event {
            IkeEvent::IkeSaUp { peer, .. } => {
                tracing::info!(peer = %peer.remote, profile = %profile, "IKE SA established (main mode)");
            }
            IkeEvent::IkeSaDown { peer, reason, .. } => {
                tracing::info!(peer = %peer.remote, ?reason, "IKE SA down");
            }
            IkeEvent::PeerReplaced { replaced, .. } => {
                tracing::info!(profile = %profile, replaced = replaced.len(), "peer came back (INITIAL-CONTACT): older SAs removed");
            }
            IkeEvent::Failure(failure) => {
                tracing::debug!(peer = %failure.peer, exchange = ?failure.exchange, reason = ?failure.reason, "IKE failure");
            }
            IkeEvent::ChildSaUp {
                child,
                peer,
                proxy,
                inbound,
                mut outbound,
                rekey_of,
                ..
            } => {
                let slot = &self.responders[index];
                // IKE negotiates keys; the outer header follows the service set's options.
                for spec in &mut outbound {
                    spec.df_mode = slot.df_mode;
                    spec.tunnel_mtu = slot.tunnel_mtu;
                }
                let summary = summarise(&inbound);
                let up = tunnels::ChildSaUp {
                    access_profile: profile.clone(),
                    peer,
                    proxy,
                    inbound,
                    outbound,
                };
                let result = self.manager.lock().expect("manager lock").child_sa_up(up);
                match result {
                    Ok(tunnel) => {
                        tracing::info!(peer = %peer.remote, local = %proxy.local, remote = %proxy.remote,
                            tunnel = tunnel.0, rekey = rekey_of.is_some(), "tunnel up: dynamic rule and reverse route installed");
                        if let Some(summary) = summary {
                            self.children
                                .insert((index, child), InstalledChild { tunnel, ..summary });
                        }
                    }
                    Err(refusal) => {
                        self.refused_tunnels += 1;
                        tracing::warn!(peer = %peer.remote, local = %proxy.local, remote = %proxy.remote,
                            reason = %refusal, "quick mode: tunnel refused, nothing installed; deleting the child SA at the peer");
                        // The peer already has its SAs (QM3 was sent); a DELETE withdraws them.
                        self.responders[index].responder.delete_child(child);
                    }
                }
            }
            IkeEvent::ChildSaDown { child, reason } => {
                if let Some(installed) = self.children.remove(&(index, child)) {
                    let mut manager = self.manager.lock().expect("manager lock");
                    for spi in &installed.inbound_spis {
                        manager.child_sa_down(*spi);
                    }
                    tracing::info!(
                        tunnel = installed.tunnel.0,
                        ?reason,
                        "child SA down: state withdrawn"
                    );
                }
            }
        }
    }

    fn drain_worker_events(&mut self) -> bool {
        let mut any = false;
        for receiver in 0..self.event_receivers.len() {
            while let Some(event) = self.event_receivers[receiver].pop() {
                any = true;
                match &event {
                    WorkerEvent::Counters { worker, counters } => {
                        self.table_counters.insert(worker.0, *counters);
                    }
                    WorkerEvent::UpdateRejected {
                        worker,
                        update,
                        reason,
                    } => {
                        tracing::warn!(
                            worker = worker.0,
                            update,
                            reason,
                            "worker refused a table update"
                        );
                    }
                    _ => {
                        let outcome = self
                            .manager
                            .lock()
                            .expect("manager lock")
                            .on_worker_event(&event);
                        tracing::info!(?event, ?outcome, "SA lifetime event");
                    }
                }
            }
        }
        any
    }

    /// Answers the operational socket and in-process requests; `true` if there were any.
    fn serve_socket(&mut self) -> bool {
        let mut served = false;
        // Answering may change state (`clear …`), so the socket steps out of `self` meanwhile.
        if let Some(socket) = self.socket.take() {
            socket.serve_pending(|request| {
                served = true;
                super::show::answer(self, request)
            });
            self.socket = Some(socket);
        }
        if let Some(requests) = self.requests.take() {
            while let Ok(asked) = requests.try_recv() {
                served = true;
                let answer = super::show::answer(self, &asked.request);
                // The asker may have given up waiting; nothing to do then.
                let _ = asked.reply.send(answer);
            }
            self.requests = Some(requests);
        }
        served
    }

    /// Compares the tunnels with what the observer was told and tells it the differences.
    fn report_events(&mut self) {
        let Some((observer, tracker)) = self.observer.as_mut() else {
            return;
        };
        let events = {
            let Ok(manager) = self.manager.lock() else {
                return;
            };
            // Most turns (an IKE retransmit, a keepalive) leave the tunnels alone: then the
            // view of every tunnel is not built at all.
            tracker.update_if_changed(manager.tunnel_changes(), || manager.view().tunnels)
        };
        // The observer runs without the manager lock: it may take its time or call back in.
        for event in events {
            observer(&event);
        }
    }

    pub(super) fn aging_tracked(&self) -> usize {
        self.aging.tracked()
    }

    pub(super) fn port_mac(&self, port: PortId) -> Option<[u8; 6]> {
        self.port_table.get(port).map(|p| p.mac)
    }

    /// Sends one frame of the control thread's own out of `port`.
    fn transmit(&mut self, port: PortId, frame: &[u8]) {
        // A refusal was logged by the frame sink; IKE and ARP retransmit by themselves.
        let _ = self.frames.transmit(port, frame);
    }

    /// Deletes the IKE and IPsec SAs of `peer` (every peer with `None`), telling each peer;
    /// the resulting child-down events withdraw rules, routes and units. Returns how many
    /// IKE SAs there were.
    pub fn clear_peers(&mut self, peer: Option<IpAddr>) -> usize {
        let mut cleared = 0;
        let mut targets: Vec<(usize, IpAddr)> = Vec::new();
        for (index, slot) in self.responders.iter_mut().enumerate() {
            let mut peers: Vec<IpAddr> = slot
                .responder
                .ike_sas()
                .map(|sa| sa.peer.remote.ip())
                .collect();
            peers.sort();
            peers.dedup();
            for address in peers.into_iter().filter(|a| peer.is_none_or(|p| p == *a)) {
                cleared += slot
                    .responder
                    .ike_sas()
                    .filter(|sa| sa.peer.remote.ip() == address)
                    .count();
                slot.responder.delete_peer_children(address);
                targets.push((index, address));
            }
        }
        self.run_responders();
        if !targets.is_empty() {
            // The child SAs' deletes leave, and the peer takes them in, before the IKE SAs'
            // deletes follow (see `delete_peer_children`): a short pause of the control thread
            // on an operator's clear or a stop.
            self.wait_for_control_frames(Duration::from_millis(200));
            std::thread::sleep(Duration::from_millis(30));
        }
        for (index, address) in targets {
            self.responders[index]
                .responder
                .delete_peer_ike_sas(address);
        }
        self.run_responders();
        if let Ok(mut manager) = self.manager.lock() {
            manager.flush();
        }
        cleared
    }

    /// Sends deletes to every peer and withdraws what the manager installed, while the workers
    /// still run to carry the deletes out.
    pub fn shut_down(&mut self) {
        let cleared = self.clear_peers(None);
        {
            let mut manager = self.manager.lock().expect("manager lock");
            for installed in self.children.values() {
                for spi in &installed.inbound_spis {
                    manager.child_sa_down(*spi);
                }
            }
            manager.flush();
        }
        self.children.clear();
        self.report_events();
        if cleared > 0 {
            self.wait_for_control_frames(Duration::from_secs(1));
        }
    }

    /// Worker 0 transmits the control thread's frames: waits (at most `limit`) until it has
    /// taken every queued frame from the rings, then a moment for its last tx burst.
    fn wait_for_control_frames(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.frames.transmit_pending() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(20));
    }

    pub fn log_final_counters(&self) {
        for worker in &self.workers {
            let snapshot = worker.counters.snapshot();
            tracing::info!(pic = %worker.pic, worker = worker.worker.0, counters = ?snapshot, "final worker counters");
        }
    }
}

/// Stands in for the punted-frame source while it is borrowed out of the loop.
struct NoPuntedFrames;

impl PuntedFrames for NoPuntedFrames {
    fn receive(&mut self, _budget: usize, _handle: &mut dyn FnMut(PortId, &[u8])) -> usize {
        0
    }
}
