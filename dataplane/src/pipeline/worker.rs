//! One services-PIC worker's per-burst processing, independent of where the buffers come from:
//! the DPDK loop feeds it mbufs, the C API feeds it the host's mbufs, tests feed it heap buffers.
//!
//! For every frame the worker decides a [`Disposition`] and leaves the buffer ready for it: an
//! Ethernet frame to transmit, an untouched frame to punt to the control thread or hand to the
//! SA's owner, or nothing (a counted drop). It never locks or allocates.
//!
//! A burst goes through in stages, the way VPP and DPDK's ipsec-secgw hide memory latency with
//! many tunnels: parse every frame, look up every route and rule (each lookup stage prefetching
//! what the next one reads), then encrypt or decrypt and rewrite each packet in order, loading
//! the SA of the packet a few places ahead and the crypto context (engine, counters) it points
//! to a few places ahead of that.
//! With 100,000 tunnels each packet's rule, SA and crypto state are cold; done one packet at a
//! time those misses form one long chain.

use std::net::IpAddr;
use std::sync::Arc;

use arrayvec::ArrayVec;
use crossbeam::queue::ArrayQueue;

use super::drops::{bump, PipelineCounters};
use super::held::{NeighborWait, HOLD_CAPACITY};
use super::neighbor::NeighborTable;
use super::ports::{PortSetup, Ports};
use crate::buf::PacketBuf;
use crate::esp::reassembly::{Reassembler, ReassemblyOutcome};
use crate::esp::reassembly_v6::Reassembler6;
use crate::esp::{DropReason, InboundSa, OutboundSa, RaisedEvents, SaEventKind};

use crate::sa::{Direction, ProxyPair};
use crate::tables::{
    EventSender, InboundLookup, NextHop, OutboundDecision, PortId, SaKinds, VrfId, WorkerEvent,
    WorkerId, WorkerTables,
};

/// Outer datagrams being reassembled at once per worker, each up to 9 KiB, allocated once.
const REASSEMBLY_SLOTS: usize = 32;
const REASSEMBLY_TIMEOUT_SECONDS: u64 = 5;

/// Frames that go through the stages together: enough to overlap the misses of many packets,
/// few enough that their prefetched state still sits in L1/L2 when the packet is processed.
const STAGE_FRAMES: usize = 32;

/// How many packets ahead of the one being sealed or opened its crypto context is requested.
/// Sealing takes 50–150 ns, so a few packets is time enough for the 5–17 lines of an engine;
/// requesting every packet's context at once (a whole stage of it) asks for hundreds of lines
/// together, more than the core tracks, and stalls on the requests themselves.
const CONTEXT_AHEAD: usize = 3;
/// How many packets ahead an SA's own lines are requested (for an outbound SA the lookup only
/// brought in the first): far enough that they are there when its context is requested.
const SA_AHEAD: usize = 2 * CONTEXT_AHEAD;

/// Where a packet being forwarded came from: a port (its Ethernet header still on), or out of
/// a tunnel (a bare IP packet, classified in that tunnel's inside VRF).
#[derive(Clone, Copy)]
enum Ingress<'a> {
    Port(&'a PortSetup),
    Tunnel(FromTunnel),
}

/// A packet out of a tunnel: the tunnel's inside VRF, where it is classified, and the local
/// side of its proxy identity, which an answer from the gateway must come from to be let in
/// by the peer.
#[derive(Clone, Copy)]
struct FromTunnel {
    vrf: VrfId,
    local: crate::prefix::Prefix,
}

/// Replaces the refused packet in `buf` with an ICMP fragmentation-needed / packet-too-big from
/// `ours` (of the sender's family) to the packet's sender. Built aside from the whole
/// original, then the buffer becomes the reply: IPv4 quotes the header and 8 bytes; IPv6 as
/// much as fits the minimum MTU (RFC 4443). `false` (buffer untouched) when the original must
/// not be answered (an ICMP error itself, or a later fragment) or the families differ.
fn rewrite_as_too_big<B: PacketBuf>(buf: &mut B, ours: IpAddr, mtu: u16) -> bool {
    let mut reply = [0u8; 1280];
    let built = match ours {
        IpAddr::V4(ours) => {
            crate::wire::icmp::build_v4_frag_needed(&mut reply, ours, buf.data(), mtu)
        }
        IpAddr::V6(ours) => {
            crate::wire::icmp::build_v6_packet_too_big(&mut reply, ours, buf.data(), u32::from(mtu))
        }
    };
    let Some(reply_len) = built else {
        return false;
    };
    let resized = if buf.len() >= reply_len {
        buf.trim(buf.len() - reply_len)
    } else {
        buf.append(reply_len - buf.len()).is_some()
    };
    if resized {
        buf.data_mut().copy_from_slice(&reply[..reply_len]);
    }
    resized
}

/// What the per-frame parse stage decided: a final disposition, or a lookup that the later
/// stages do for the whole burst at once.
#[derive(Clone, Copy)]
enum Step {
    Done(Disposition),
    /// Routed traffic (not for the gateway), after the L3 checks.
    Forward {
        l2_len: usize,
        src: IpAddr,
        dst: IpAddr,
    },
    /// ESP or AH for the gateway, Ethernet header still in front.
    Inbound {
        spi: u32,
        /// The low 32 bits of its sequence number, for prefetching its replay word.
        seq: u32,
    },
}
use crate::wire::{ethernet, ip_proto, ipv4, ipv6, udp};

/// The SA state a gateway worker keeps: the ESP/AH engine plus what the pipeline needs around it.
pub struct GatewaySas;

impl SaKinds for GatewaySas {
    type Inbound = TunnelInbound;
    type Outbound = TunnelOutbound;

    fn inbound_replay_word(seq: u32) -> Option<usize> {
        Some(
            std::mem::offset_of!(TunnelInbound, sa) + InboundSa::replay_word_offset(u64::from(seq)),
        )
    }
}

/// In C order: what every packet reads first, then the SA, whose own tail (the replay bitmap)
/// is read one word at a time.
#[repr(C)]
pub struct TunnelInbound {
    /// Where decrypted packets are routed: the routing instance of the inside interface.
    pub inside_vrf: VrfId,
    /// A decrypted packet must come from `proxy.remote` and go to `proxy.local`.
    pub proxy: ProxyPair,
    pub sa: InboundSa,
}

pub struct TunnelOutbound {
    pub sa: OutboundSa,
    /// Where the outer packet is routed: the routing instance of the local gateway.
    pub outer_vrf: VrfId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// The buffer holds a complete Ethernet frame for this port.
    Transmit(PortId),
    /// The buffer holds the frame as received; the control thread takes it.
    Punt,
    /// The buffer holds the frame as received; the worker owning its SA takes it.
    HandOff(WorkerId),
    /// Counted; the caller frees the buffer.
    Drop,
    /// Framed but for the next hop's MAC, which the control thread is resolving: the caller
    /// keeps the buffer in its [`HeldFrames`](super::held::HeldFrames) until then.
    AwaitNeighbor(NeighborWait),
    /// The frame (as received) is too big for its tunnel and may be fragmented: the caller
    /// splits it with [`fragment_frame`] into fresh buffers and submits those, which fit, as
    /// received on the buffer's arrival port (a packet out of another tunnel comes back
    /// framed as from the protected-side port, and that port set as its arrival port).
    Fragment { mtu: u16 },
}

/// Splits the IPv4 packet of `frame` (an Ethernet frame a worker answered with
/// [`Disposition::Fragment`]) into fragments of at most `mtu` bytes, each written into an empty
/// buffer of `out` behind a copy of the frame's Ethernet header. Returns how many were used.
pub fn fragment_frame<B: PacketBuf>(
    frame: &B,
    mtu: u16,
    out: &mut [B],
) -> Result<usize, crate::esp::fragment::FragmentError> {
    use crate::esp::fragment::{fragment_ipv4, FragmentError};
    let l2_len = ethernet::EthernetFrame::new_checked(frame.data())
        .map_err(|_| FragmentError::BadPacket)?
        .header_len();
    let (l2, packet) = frame.data().split_at(l2_len);
    let used = fragment_ipv4(packet, usize::from(mtu), out)?;
    for fragment in out.iter_mut().take(used) {
        fragment
            .prepend(l2_len)
            .ok_or(FragmentError::NotEnoughBuffers)?
            .copy_from_slice(l2);
    }
    Ok(used)
}

/// Next hops that still need a MAC: the control thread sends ARP requests for them.
pub type ResolveRequests = ArrayQueue<(PortId, IpAddr)>;

pub struct PicWorker {
    pub tables: WorkerTables<GatewaySas>,
    ports: Ports,
    neighbors: Arc<NeighborTable>,
    resolve: Arc<ResolveRequests>,
    events: EventSender,
    counters: Arc<PipelineCounters>,
    /// Outer IPv4 fragments addressed to the gateway (ESP fragmented on the way), put back
    /// together before the SPI lookup because only the first fragment carries the SPI.
    reassembler: Reassembler,
    /// The same for outer IPv6 (Fragment header), for peers reached over IPv6.
    reassembler_v6: Reassembler6,
    /// Workers of the whole gateway: an SPI that names a worker beyond them is forged or stale.
    worker_count: u16,
    /// Next hops this worker has frames held for. A frame for one of them is held too even once
    /// its MAC is known, until the held ones have gone: it must not overtake them.
    awaited: ArrayVec<(PortId, IpAddr), HOLD_CAPACITY>,
}

impl PicWorker {
    pub fn new(
        tables: WorkerTables<GatewaySas>,
        ports: Ports,
        neighbors: Arc<NeighborTable>,
        resolve: Arc<ResolveRequests>,
        events: EventSender,
        counters: Arc<PipelineCounters>,
        worker_count: u16,
    ) -> Self {
        PicWorker {
            tables,
            ports,
            neighbors,
            resolve,
            events,
            counters,
            reassembler: Reassembler::new(REASSEMBLY_SLOTS, REASSEMBLY_TIMEOUT_SECONDS),
            reassembler_v6: Reassembler6::new(REASSEMBLY_SLOTS, REASSEMBLY_TIMEOUT_SECONDS),
            worker_count,
            awaited: ArrayVec::new(),
        }
    }

    /// Forgets the awaited next hops that `still_held` says no frame waits for any more
    /// (called by [`HeldFrames`](super::held::HeldFrames) after releasing what it could).
    pub(super) fn forget_awaited(&mut self, still_held: impl Fn(PortId, IpAddr) -> bool) {
        self.awaited
            .retain(|(port, neighbor)| still_held(*port, *neighbor));
    }

    pub fn worker(&self) -> WorkerId {
        self.tables.worker()
    }

    pub fn counters(&self) -> &Arc<PipelineCounters> {
        &self.counters
    }

    pub fn events(&mut self) -> &mut EventSender {
        &mut self.events
    }

    /// Processes a burst received on `rx_port`; `out[i]` says what to do with `bufs[i]`.
    /// `now` is a coarse clock in seconds, read once per burst by the caller.
    pub fn process_burst<B: PacketBuf>(
        &mut self,
        rx_port: PortId,
        bufs: &mut [B],
        out: &mut [Disposition],
        now: u64,
    ) {
        super::drops::add(&self.counters.rx_packets, bufs.len() as u64);
        let Some(rx) = self.ports.get(rx_port).cloned() else {
            for d in out.iter_mut().take(bufs.len()) {
                *d = Disposition::Drop;
            }
            self.counters
                .drop_bad_l2
                .fetch_add(bufs.len() as u64, std::sync::atomic::Ordering::Relaxed);
            return;
        };
        for (bufs, out) in bufs
            .chunks_mut(STAGE_FRAMES)
            .zip(out.chunks_mut(STAGE_FRAMES))
        {
            self.process_stages(&rx, bufs, out, now);
        }
    }

    fn process_stages<B: PacketBuf>(
        &mut self,
        rx: &PortSetup,
        bufs: &mut [B],
        out: &mut [Disposition],
        now: u64,
    ) {
        let count = bufs.len().min(out.len());
        let unspecified = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
        let mut steps = [Step::Done(Disposition::Drop); STAGE_FRAMES];
        // Routed frames, compacted for the lookup stages: their flow and their frame's index.
        let mut flows = [(unspecified, unspecified); STAGE_FRAMES];
        let mut flow_frame = [0usize; STAGE_FRAMES];
        // The other way round: each routed frame's place among the flows.
        let mut frame_flow = [0usize; STAGE_FRAMES];
        let mut routed = 0;
        for (i, (buf, step)) in bufs.iter_mut().zip(steps.iter_mut()).enumerate() {
            *step = self.parse_frame(rx, buf, now);
            match *step {
                Step::Forward { src, dst, .. } => {
                    flows[routed] = (src, dst);
                    flow_frame[routed] = i;
                    frame_flow[i] = routed;
                    routed += 1;
                }
                Step::Inbound { .. } | Step::Done(_) => {}
            }
        }
        let mut decisions = [OutboundDecision::Drop; STAGE_FRAMES];
        if routed > 0 {
            self.tables
                .classify_outbound_burst(rx.vrf, &flows[..routed], &mut decisions[..routed]);
        }
        // The first line of each SA slot is cached (or on its way) by now; the rest of the SA
        // and what it points to are requested a few packets ahead of their use.
        let decision_of = |frame: usize| decisions[frame_flow[frame]];
        for (frame, step) in steps[..count.min(SA_AHEAD)].iter().enumerate() {
            self.prefetch_sa(*step, decision_of(frame));
        }
        for frame in 0..count.min(CONTEXT_AHEAD) {
            self.prefetch_context(steps[frame], decision_of(frame), bufs[frame].len());
        }
        let mut next_routed = 0;
        for i in 0..count {
            if let Some(ahead) = Some(i + SA_AHEAD).filter(|&a| a < count) {
                self.prefetch_sa(steps[ahead], decision_of(ahead));
            }
            if let Some(ahead) = Some(i + CONTEXT_AHEAD).filter(|&a| a < count) {
                self.prefetch_context(steps[ahead], decision_of(ahead), bufs[ahead].len());
            }
            let disposition = match steps[i] {
                Step::Done(disposition) => disposition,
                Step::Forward { l2_len, src, dst } => {
                    let decision = decisions[next_routed];
                    debug_assert_eq!(flow_frame[next_routed], i);
                    next_routed += 1;
                    let ingress = Ingress::Port(rx);
                    self.forward_decided(ingress, &mut bufs[i], l2_len, src, dst, decision, now)
                }
                Step::Inbound { spi, .. } => self.inbound_ipsec(&mut bufs[i], spi, now),
            };
            match disposition {
                Disposition::Transmit(_) => {}
                Disposition::Punt => bump(&self.counters.punted),
                Disposition::HandOff(_) => bump(&self.counters.handed_off),
                Disposition::Drop
                | Disposition::Fragment { .. }
                | Disposition::AwaitNeighbor(_) => {}
            }
            out[i] = disposition;
        }
    }

    /// Starts loading the SA a frame will be sealed or opened with (`decision` is only read
    /// for routed frames).
    #[inline]
    fn prefetch_sa(&self, step: Step, decision: OutboundDecision) {
        match (step, decision) {
            (Step::Forward { .. }, OutboundDecision::Encrypt(tunnel)) => {
                self.tables.sas.prefetch_outbound_sa(tunnel)
            }
            (Step::Inbound { spi, seq }, _) => self.tables.sas.prefetch_inbound(spi, seq),
            _ => {}
        }
    }

    /// Starts loading the crypto context of the SA a frame will be sealed or opened with
    /// (`decision` is only read for routed frames). The frame's length stands in for the
    /// payload's: engines only tell short from long.
    #[inline]
    fn prefetch_context(&mut self, step: Step, decision: OutboundDecision, len: usize) {
        match (step, decision) {
            (Step::Forward { .. }, OutboundDecision::Encrypt(tunnel)) => {
                if let Some(bundle) = self.tables.sas.outbound(tunnel) {
                    bundle.iter().for_each(|t| t.sa.prefetch_context(len));
                }
            }
            (Step::Inbound { spi, .. }, _) => {
                if let InboundLookup::Owned(entry) = self.tables.sas.inbound(spi) {
                    entry.sa.sa.prefetch_context(len);
                }
            }
            _ => {}
        }
    }

    fn parse_frame<B: PacketBuf>(&mut self, rx: &PortSetup, buf: &mut B, now: u64) -> Step {
        let (l2_len, ethertype) = {
            let Ok(frame) = ethernet::EthernetFrame::new_checked(buf.data()) else {
                return self.done(&|c| &c.drop_bad_l2);
            };
            let dst = frame.dst();
            if dst != rx.mac && dst[0] & 1 == 0 {
                return self.done(&|c| &c.drop_not_for_us);
            }
            (frame.header_len(), frame.ethertype())
        };
        match ethertype {
            ethernet::ETHERTYPE_ARP => Step::Done(Disposition::Punt),
            ethernet::ETHERTYPE_IPV4 => self.ipv4_frame(rx, buf, l2_len, now),
            ethernet::ETHERTYPE_IPV6 => self.ipv6_frame(rx, buf, l2_len, now),
            _ => self.done(&|c| &c.drop_unsupported),
        }
    }

    fn ipv4_frame<B: PacketBuf>(
        &mut self,
        rx: &PortSetup,
        buf: &mut B,
        l2_len: usize,
        now: u64,
    ) -> Step {
        let (src, dst, protocol, header_len, ttl, is_fragment) = {
            let ip = match ipv4::Ipv4Packet::new_checked(&buf.data()[l2_len..]) {
                Ok(ip) => ip,
                Err(crate::wire::WireError::Truncated) => return self.done(&|c| &c.drop_truncated),
                Err(_) => return self.done(&|c| &c.drop_bad_l3),
            };
            if !ip.verify_checksum() {
                return self.done(&|c| &c.drop_bad_l3);
            }
            (
                ip.src(),
                ip.dst(),
                ip.protocol(),
                ip.header_len(),
                ip.ttl(),
                ip.is_fragment(),
            )
        };
        if is_fragment && self.ports.is_local(IpAddr::V4(dst)) {
            return self.reassemble(rx, buf, l2_len, now, false);
        }
        if self.ports.is_local(IpAddr::V4(dst)) {
            return self.local_ip(buf, l2_len + header_len, protocol);
        }
        if ttl <= 1 {
            return self.done(&|c| &c.drop_ttl_expired);
        }
        Step::Forward {
            l2_len,
            src: IpAddr::V4(src),
            dst: IpAddr::V4(dst),
        }
    }

    /// Holds an outer fragment for the gateway (`v6` says which family's buffer); once the
    /// datagram is whole, processes it like any unfragmented frame (the Ethernet header of the
    /// last fragment stays in front of it).
    fn reassemble<B: PacketBuf>(
        &mut self,
        rx: &PortSetup,
        buf: &mut B,
        l2_len: usize,
        now: u64,
        v6: bool,
    ) -> Step {
        let mut header = [0u8; 64];
        let Some(l2) = buf.data().get(..l2_len) else {
            return self.done(&|c| &c.drop_bad_l2);
        };
        header[..l2_len].copy_from_slice(l2);
        if !buf.adj(l2_len) {
            return self.done(&|c| &c.drop_bad_l2);
        }
        let outcome = if v6 {
            self.reassembler_v6.push(buf, now)
        } else {
            self.reassembler.push(buf, now)
        };
        match outcome {
            ReassemblyOutcome::Held => {
                bump(&self.counters.fragments_held);
                Step::Done(Disposition::Drop)
            }
            ReassemblyOutcome::Complete => {
                let Some(front) = buf.prepend(l2_len) else {
                    return self.done(&|c| &c.drop_reassembly);
                };
                front.copy_from_slice(&header[..l2_len]);
                bump(&self.counters.reassembled);
                if v6 {
                    self.ipv6_frame(rx, buf, l2_len, now)
                } else {
                    self.ipv4_frame(rx, buf, l2_len, now)
                }
            }
            ReassemblyOutcome::NotFragment | ReassemblyOutcome::Dropped(_) => {
                self.done(&|c| &c.drop_reassembly)
            }
        }
    }

    fn ipv6_frame<B: PacketBuf>(
        &mut self,
        rx: &PortSetup,
        buf: &mut B,
        l2_len: usize,
        now: u64,
    ) -> Step {
        let (src, dst, next_header, hop_limit) = {
            let ip = match ipv6::Ipv6Packet::new_checked(&buf.data()[l2_len..]) {
                Ok(ip) => ip,
                Err(crate::wire::WireError::Truncated) => return self.done(&|c| &c.drop_truncated),
                Err(_) => return self.done(&|c| &c.drop_bad_l3),
            };
            (ip.src(), ip.dst(), ip.next_header(), ip.hop_limit())
        };
        // Neighbor discovery and everything else multicast is the control thread's business.
        if dst.is_multicast() {
            return if next_header == ip_proto::ICMPV6 {
                Step::Done(Disposition::Punt)
            } else {
                self.done(&|c| &c.drop_local_other)
            };
        }
        if next_header == ip_proto::IPV6_FRAGMENT && self.ports.is_local(IpAddr::V6(dst)) {
            return self.reassemble(rx, buf, l2_len, now, true);
        }
        if self.ports.is_local(IpAddr::V6(dst)) {
            return self.local_ip(buf, l2_len + ipv6::HEADER_LEN, next_header);
        }
        if hop_limit <= 1 {
            return self.done(&|c| &c.drop_ttl_expired);
        }
        Step::Forward {
            l2_len,
            src: IpAddr::V6(src),
            dst: IpAddr::V6(dst),
        }
    }

    /// A packet for one of the gateway's own addresses: IPsec for us, or the control thread's.
    fn local_ip<B: PacketBuf>(&mut self, buf: &mut B, l4_offset: usize, protocol: u8) -> Step {
        let spi_offset = match protocol {
            ip_proto::ESP => l4_offset,
            // AH carries its SPI after next-header, length and reserved.
            ip_proto::AH => l4_offset + 4,
            ip_proto::UDP => {
                let Ok(datagram) = udp::UdpPacket::new_checked(&buf.data()[l4_offset..]) else {
                    return self.done(&|c| &c.drop_bad_l3);
                };
                match datagram.dst_port() {
                    udp::IKE_PORT => return Step::Done(Disposition::Punt),
                    udp::NAT_T_PORT => {
                        // RFC 3948: a zero marker means IKE, a lone 0xff a keepalive, else ESP.
                        let payload = datagram.payload();
                        if payload.len() < 8 || payload[..4] == [0, 0, 0, 0] {
                            return Step::Done(Disposition::Punt);
                        }
                        l4_offset + udp::HEADER_LEN
                    }
                    _ => return self.done(&|c| &c.drop_local_other),
                }
            }
            ip_proto::ICMP | ip_proto::ICMPV6 => return Step::Done(Disposition::Punt),
            _ => return self.done(&|c| &c.drop_local_other),
        };
        let Some(spi_bytes) = buf.data().get(spi_offset..spi_offset + 4) else {
            return self.done(&|c| &c.drop_bad_l3);
        };
        let spi = u32::from_be_bytes([spi_bytes[0], spi_bytes[1], spi_bytes[2], spi_bytes[3]]);
        // The sequence number follows the SPI in ESP and AH alike; a packet too short for it
        // is refused later, by the SA.
        let seq = buf
            .data()
            .get(spi_offset + 4..spi_offset + 8)
            .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        Step::Inbound { spi, seq }
    }

    fn inbound_ipsec<B: PacketBuf>(&mut self, buf: &mut B, spi: u32, now: u64) -> Disposition {
        let worker = self.worker();
        let (verdict, raised, inside_vrf, proxy) = match self.tables.inbound(spi) {
            InboundLookup::HandOff(owner) if owner.0 < self.worker_count => {
                return Disposition::HandOff(owner)
            }
            InboundLookup::HandOff(_) => return self.drop(&|c| &c.drop_no_sa),
            InboundLookup::Unknown => return self.drop(&|c| &c.drop_no_sa),
            InboundLookup::Owned(entry) => {
                // The ESP engine works on IP packets: the Ethernet header goes first.
                if !buf.adj(ethernet::HEADER_LEN) {
                    return self.drop(&|c| &c.drop_bad_l2);
                }
                let (verdict, raised) = entry.sa.sa.decapsulate(buf, now);
                (verdict, raised, entry.sa.inside_vrf, entry.sa.proxy)
            }
        };
        self.report(worker, spi, Direction::Inbound, raised);
        if verdict.is_err() {
            return self.drop(&|c| &c.drop_sa_processing);
        }
        bump(&self.counters.decrypted);
        let Some((src, dst)) = ip_addresses(buf.data()) else {
            return self.drop(&|c| &c.drop_bad_l3);
        };
        if !proxy.remote.contains(src) || !proxy.local.contains(dst) {
            return self.drop(&|c| &c.drop_proxy_mismatch);
        }
        let Some(next_hop) = self
            .tables
            .fibs
            .get(inside_vrf)
            .and_then(|fib| fib.lookup(dst))
        else {
            return self.drop(&|c| &c.drop_no_route);
        };
        match next_hop {
            // Pinging the gateway's own address from behind a peer: the reply goes back into
            // the tunnel (or whichever the route to the sender picks).
            NextHop::Local => match crate::wire::icmp::echo_reply_in_place(buf.data_mut()) {
                Some((src, dst)) => {
                    let from = FromTunnel {
                        vrf: inside_vrf,
                        local: proxy.local,
                    };
                    let sent = self.send_into_tunnel(buf, from, src, dst, now);
                    if leaves(&sent) {
                        bump(&self.counters.echo_via_tunnel);
                    }
                    sent
                }
                None => self.drop(&|c| &c.drop_local_via_tunnel),
            },
            // From one peer's network to another's (hub and spoke): the inside VRF routes it to
            // the other tunnel's services unit, so it is classified and sealed again.
            NextHop::ServicesUnit(_) => {
                if hop_limit(buf.data()) <= 1 {
                    return self.drop(&|c| &c.drop_ttl_expired);
                }
                let from = FromTunnel {
                    vrf: inside_vrf,
                    local: proxy.local,
                };
                let sent = self.send_into_tunnel(buf, from, src, dst, now);
                if leaves(&sent) {
                    bump(&self.counters.tunnel_to_tunnel);
                }
                sent
            }
            other => self.frame_for_next_hop(buf, other, dst, false),
        }
    }

    /// Classifies a bare IP packet (no Ethernet header) as if it had entered `vrf` and
    /// forwards it accordingly: usually sealed into the tunnel its rule names.
    fn send_into_tunnel<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        from: FromTunnel,
        src: IpAddr,
        dst: IpAddr,
        now: u64,
    ) -> Disposition {
        let vrf = from.vrf;
        let mut decision = [OutboundDecision::Drop];
        self.tables
            .classify_outbound_burst(vrf, &[(src, dst)], &mut decision);
        match decision[0] {
            OutboundDecision::Encrypt(_) => {
                self.forward_decided(Ingress::Tunnel(from), buf, 0, src, dst, decision[0], now)
            }
            OutboundDecision::Forward(next_hop) => {
                decrement_ttl(buf, 0);
                self.frame_for_next_hop(buf, next_hop, dst, false)
            }
            OutboundDecision::HandOff { owner, .. } => self.hand_inner_to_owner(buf, from, owner),
            other => self.forward_decided(Ingress::Tunnel(from), buf, 0, src, dst, other, now),
        }
    }

    /// Another worker owns the next tunnel's SAs: the packet goes to it framed as if it had
    /// arrived on a port of the tunnel's inside VRF (addressed to that port, preferably the
    /// port on the protected side, whose address the tunnel's local proxy covers), so the
    /// owner routes, classifies and seals it like LAN traffic. Its TTL is left for the owner
    /// to decrement, once.
    fn hand_inner_to_owner<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        from: FromTunnel,
        owner: WorkerId,
    ) -> Disposition {
        match self.frame_as_from_protected_side(buf, from) {
            Ok(()) => Disposition::HandOff(owner),
            Err(dropped) => dropped,
        }
    }

    /// Gives a bare IP packet out of a tunnel the Ethernet header of a frame addressed to the
    /// port on the tunnel's protected side, and records that port as where it arrived, so that
    /// the packet can go through the pipeline again as traffic from that port.
    fn frame_as_from_protected_side<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        from: FromTunnel,
    ) -> Result<(), Disposition> {
        let inside = self
            .protected_side(from, |_| true)
            .map(|(port, _)| port)
            .or_else(|| self.ports.iter().find(|p| p.vrf == from.vrf));
        let Some((port, mac)) = inside.map(|p| (p.port, p.mac)) else {
            return Err(self.drop(&|c| &c.drop_unsupported));
        };
        let ethertype = match buf.data().first().map(|b| b >> 4) {
            Some(4) => ethernet::ETHERTYPE_IPV4,
            Some(6) => ethernet::ETHERTYPE_IPV6,
            _ => return Err(self.drop(&|c| &c.drop_bad_l3)),
        };
        if !write_ethernet(buf, false, mac, mac, ethertype) {
            return Err(self.drop(&|c| &c.drop_bad_l2));
        }
        buf.set_arrival_port(port.0);
        Ok(())
    }

    /// Finishes a routed frame once the burst's lookup stages decided what it gets.
    #[allow(clippy::too_many_arguments)]
    /// `rx` is the port the frame came in by, `None` for a packet that came out of a tunnel
    /// (no Ethernet header, no port to answer from).
    fn forward_decided<B: PacketBuf>(
        &mut self,
        ingress: Ingress<'_>,
        buf: &mut B,
        l2_len: usize,
        src: IpAddr,
        dst: IpAddr,
        decision: OutboundDecision,
        now: u64,
    ) -> Disposition {
        let worker = self.worker();
        match decision {
            OutboundDecision::Forward(next_hop) => {
                decrement_ttl(buf, l2_len);
                bump(&self.counters.forwarded_clear);
                self.frame_for_next_hop(buf, next_hop, dst, true)
            }
            OutboundDecision::HandOff { owner, .. } => Disposition::HandOff(owner),
            OutboundDecision::Encrypt(tunnel) => {
                // The lookup stage checked the bundle exists; updates only apply between bursts.
                let Some(sas) = self.tables.sas.outbound(tunnel) else {
                    return Disposition::Drop;
                };
                // The outer packet is routed before sealing: without a `tunnel-mtu` the MTU of
                // the port it leaves by is the limit, and a packet refused for it must still be
                // whole to be split or answered with ICMP.
                let Some(outermost) = sas.last() else {
                    return Disposition::Drop;
                };
                let outer_dst = outermost.sa.remote();
                let Some(outer_hop) = self
                    .tables
                    .fibs
                    .get(outermost.outer_vrf)
                    .and_then(|fib| fib.lookup(outer_dst))
                else {
                    return self.drop(&|c| &c.drop_no_route);
                };
                let link_mtu = match outer_hop {
                    NextHop::Neighbor { port, .. } => usize::from(self.ports.mtu(port)),
                    _ => usize::MAX,
                };
                decrement_ttl(buf, l2_len);
                if !buf.adj(l2_len) {
                    return Disposition::Drop;
                }
                let mut failed = None;
                let mut reports: [(u32, RaisedEvents); 2] = Default::default();
                let layers = sas.len();
                for (i, tunnel) in sas.iter_mut().enumerate() {
                    // Only the outermost layer's packet meets the link as it is.
                    let limit = if i + 1 == layers {
                        link_mtu
                    } else {
                        usize::MAX
                    };
                    let (verdict, raised) = tunnel.sa.encapsulate_within(buf, now, limit);
                    reports[i] = (tunnel.sa.spi(), raised);
                    if let Err(reason) = verdict {
                        failed = Some(reason);
                        break;
                    }
                }
                for (spi, raised) in reports {
                    self.report(worker, spi, Direction::Outbound, raised);
                }
                match failed {
                    None => {}
                    // The inner packet is intact: tell its sender the tunnel's MTU (RFC 1191),
                    // through the tunnel it came out of if it came out of one.
                    Some(DropReason::TooBig {
                        mtu,
                        may_fragment: false,
                    }) => {
                        // The quote shows the header as it arrived (as Linux's does).
                        restore_ttl(buf, 0);
                        return match ingress {
                            Ingress::Port(rx) => self.answer_too_big(rx, buf, src, mtu, now),
                            Ingress::Tunnel(from) => {
                                self.answer_too_big_into_tunnel(buf, from, src, mtu, now)
                            }
                        };
                    }
                    // Without DF the packet is split first (RFC 4459 pre-fragmentation): the caller
                    // owns buffer allocation, so the frame goes back to it as it was received.
                    // One out of a tunnel goes back framed as if it came from the protected
                    // side, and its pieces are classified and sealed from there.
                    Some(DropReason::TooBig { mtu, .. }) => {
                        let framed = match ingress {
                            Ingress::Port(_) => {
                                if buf.prepend(l2_len).is_none() {
                                    return self.drop(&|c| &c.drop_bad_l2);
                                }
                                restore_ttl(buf, l2_len);
                                Ok(())
                            }
                            Ingress::Tunnel(from) => {
                                restore_ttl(buf, 0);
                                self.frame_as_from_protected_side(buf, from)
                            }
                        };
                        if let Err(dropped) = framed {
                            return dropped;
                        }
                        bump(&self.counters.sent_for_fragmentation);
                        return Disposition::Fragment { mtu };
                    }
                    Some(_) => return self.drop(&|c| &c.drop_sa_processing),
                }
                bump(&self.counters.encrypted);
                self.frame_for_next_hop(buf, outer_hop, outer_dst, false)
            }
            // A rule that lets traffic through a service set in clear is not implemented yet.
            OutboundDecision::Bypass(_) => self.drop(&|c| &c.drop_unsupported),
            // The tables counted the reason (no route, no rule, discard, no SA).
            OutboundDecision::Drop | OutboundDecision::Pending(_) => Disposition::Drop,
        }
    }

    /// Turns the refused inner packet in `buf` into an ICMP fragmentation-needed from the
    /// gateway's address on the ingress port, routed back to the sender.
    fn answer_too_big<B: PacketBuf>(
        &mut self,
        rx: &PortSetup,
        buf: &mut B,
        sender: IpAddr,
        mtu: u16,
        now: u64,
    ) -> Disposition {
        let ours = match sender {
            IpAddr::V4(_) => rx.first_ipv4().map(IpAddr::V4),
            IpAddr::V6(_) => rx.first_ipv6().map(IpAddr::V6),
        };
        let Some(ours) = ours.filter(|ours| rewrite_as_too_big(buf, *ours, mtu)) else {
            return self.drop(&|c| &c.drop_sa_processing);
        };
        bump(&self.counters.icmp_too_big);
        let route = self
            .tables
            .fibs
            .get(rx.vrf)
            .and_then(|fib| fib.lookup(sender));
        if let Some(NextHop::ServicesUnit(_)) = route {
            // The sender sits behind a tunnel (a hub-and-spoke packet another worker opened
            // and handed over): the answer is sealed into that tunnel.
            let from = FromTunnel {
                vrf: rx.vrf,
                local: crate::prefix::Prefix::host(ours),
            };
            return self.send_into_tunnel(buf, from, ours, sender, now);
        }
        self.route_ip(buf, rx.vrf, sender, false)
    }

    /// The same answer for a packet that came out of a tunnel (hub and spoke), sealed back
    /// into the tunnel the route to the sender names. It comes from a gateway address in the
    /// tunnel's inside VRF, preferably one inside the tunnel's local proxy identity (else the
    /// peer would drop it).
    fn answer_too_big_into_tunnel<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        from: FromTunnel,
        sender: IpAddr,
        mtu: u16,
        now: u64,
    ) -> Disposition {
        let same_family = |address: &IpAddr| address.is_ipv4() == sender.is_ipv4();
        let Some((_, ours)) = self.protected_side(from, same_family) else {
            return self.drop(&|c| &c.drop_fragmentation_failed);
        };
        if !rewrite_as_too_big(buf, ours, mtu) {
            return self.drop(&|c| &c.drop_fragmentation_failed);
        }
        let sent = self.send_into_tunnel(buf, from, ours, sender, now);
        if leaves(&sent) {
            bump(&self.counters.icmp_too_big);
        }
        sent
    }

    /// The port and gateway address on the protected side of the tunnel `from` names: among
    /// the `usable` addresses of the ports in its inside VRF, one inside the tunnel's local
    /// proxy identity (what the peer accepts from the tunnel), else the first.
    fn protected_side(
        &self,
        from: FromTunnel,
        usable: impl Fn(&IpAddr) -> bool,
    ) -> Option<(&PortSetup, IpAddr)> {
        let candidates = || {
            self.ports
                .iter()
                .filter(|port| port.vrf == from.vrf)
                .flat_map(|port| port.addresses.iter().map(move |a| (port, *a)))
                .filter(|(_, address)| usable(address))
        };
        candidates()
            .find(|(_, address)| from.local.contains(*address))
            .or_else(|| candidates().next())
    }

    /// Routes a bare IP packet (no Ethernet header) and frames it for its next hop.
    fn route_ip<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        vrf: VrfId,
        dst: IpAddr,
        has_l2: bool,
    ) -> Disposition {
        let next_hop = match self.tables.fibs.get(vrf).and_then(|fib| fib.lookup(dst)) {
            Some(next_hop) => next_hop,
            None => return self.drop(&|c| &c.drop_no_route),
        };
        self.frame_for_next_hop(buf, next_hop, dst, has_l2)
    }

    fn frame_for_next_hop<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        next_hop: NextHop,
        dst: IpAddr,
        has_l2: bool,
    ) -> Disposition {
        match next_hop {
            NextHop::Neighbor { port, gateway } => {
                // A directly connected route carries no gateway: the destination is the neighbor.
                let neighbor = if gateway.is_unspecified() {
                    dst
                } else {
                    gateway
                };
                let Some(src_mac) = self.ports.get(port).map(|p| p.mac) else {
                    return self.drop(&|c| &c.drop_no_route);
                };
                let queued_behind =
                    !self.awaited.is_empty() && self.awaited.contains(&(port, neighbor));
                let known = if queued_behind {
                    None
                } else {
                    self.neighbors.lookup(port, neighbor)
                };
                let Some(dst_mac) = known else {
                    if !queued_behind {
                        // A full request queue means the control thread is busy resolving
                        // already; a full list of awaited hops only loses the ordering.
                        let _ = self.resolve.push((port, neighbor));
                        let _ = self.awaited.try_push((port, neighbor));
                    }
                    bump(&self.counters.held_for_neighbor);
                    return Disposition::AwaitNeighbor(NeighborWait {
                        port,
                        neighbor,
                        has_l2,
                    });
                };
                let ethertype = match neighbor {
                    IpAddr::V4(_) => ethernet::ETHERTYPE_IPV4,
                    IpAddr::V6(_) => ethernet::ETHERTYPE_IPV6,
                };
                if !write_ethernet(buf, has_l2, dst_mac, src_mac, ethertype) {
                    return self.drop(&|c| &c.drop_bad_l2);
                }
                bump(&self.counters.tx_packets);
                Disposition::Transmit(port)
            }
            // A frame from a port for the gateway goes to the control thread as it came (packets
            // out of a tunnel never get here: the inbound path answers their pings itself).
            NextHop::Local if has_l2 => Disposition::Punt,
            NextHop::Local => self.drop(&|c| &c.drop_local_via_tunnel),
            NextHop::ServicesUnit(_) => self.drop(&|c| &c.drop_unsupported),
            NextHop::Discard => self.drop(&|c| &c.drop_no_route),
        }
    }

    /// Finishes a frame that waited for its neighbour: `None` while the MAC is still unknown,
    /// else whether the Ethernet header could be written (a failure is counted).
    pub fn frame_held<B: PacketBuf>(&self, buf: &mut B, wait: NeighborWait) -> Option<bool> {
        let Some(src_mac) = self.ports.get(wait.port).map(|p| p.mac) else {
            bump(&self.counters.drop_no_route);
            return Some(false);
        };
        let dst_mac = self.neighbors.lookup(wait.port, wait.neighbor)?;
        let ethertype = match wait.neighbor {
            IpAddr::V4(_) => ethernet::ETHERTYPE_IPV4,
            IpAddr::V6(_) => ethernet::ETHERTYPE_IPV6,
        };
        if !write_ethernet(buf, wait.has_l2, dst_mac, src_mac, ethertype) {
            bump(&self.counters.drop_bad_l2);
            return Some(false);
        }
        bump(&self.counters.tx_packets);
        Some(true)
    }

    /// Asks the control thread (again) to resolve `neighbor` on `port`; a full request queue
    /// means it is busy resolving already.
    pub fn request_resolve(&self, port: PortId, neighbor: IpAddr) {
        let _ = self.resolve.push((port, neighbor));
    }

    /// Counts a held frame given up on because its neighbour never answered.
    pub fn count_unresolved(&self) {
        bump(&self.counters.drop_no_neighbor);
    }

    fn report(&mut self, worker: WorkerId, spi: u32, direction: Direction, raised: RaisedEvents) {
        for kind in raised.iter() {
            let event = match kind {
                SaEventKind::SoftSeconds | SaEventKind::SoftKilobytes => {
                    WorkerEvent::SoftLifetime {
                        worker,
                        spi,
                        direction,
                    }
                }
                SaEventKind::HardSeconds | SaEventKind::HardKilobytes => {
                    WorkerEvent::HardLifetime {
                        worker,
                        spi,
                        direction,
                    }
                }
                SaEventKind::SequenceExhausted => WorkerEvent::SequenceExhausted { worker, spi },
            };
            if !self.events.send(event) {
                self.tables.counters.events_lost += 1;
            }
        }
    }

    #[inline]
    fn done(&self, counter: &dyn Fn(&PipelineCounters) -> &std::sync::atomic::AtomicU64) -> Step {
        Step::Done(self.drop(counter))
    }

    #[inline]
    fn drop(
        &self,
        counter: &dyn Fn(&PipelineCounters) -> &std::sync::atomic::AtomicU64,
    ) -> Disposition {
        bump(counter(&self.counters));
        Disposition::Drop
    }
}

/// Source and destination of the IP packet at the start of `data`.
fn ip_addresses(data: &[u8]) -> Option<(IpAddr, IpAddr)> {
    match data.first()? >> 4 {
        4 => {
            let ip = ipv4::Ipv4Packet::new_checked(data).ok()?;
            Some((IpAddr::V4(ip.src()), IpAddr::V4(ip.dst())))
        }
        6 => {
            let ip = crate::wire::ipv6::Ipv6Packet::new_checked(data).ok()?;
            Some((IpAddr::V6(ip.src()), IpAddr::V6(ip.dst())))
        }
        _ => None,
    }
}

/// Undoes `decrement_ttl` on an IPv4 packet handed back for resubmission.
fn restore_ttl<B: PacketBuf>(buf: &mut B, l2_len: usize) {
    if let Some(bytes) = buf.data_mut().get_mut(l2_len..) {
        if let Ok(mut ip) = ipv4::Ipv4Packet::new_checked(bytes) {
            let ttl = ip.ttl();
            ip.set_ttl(ttl.saturating_add(1));
            ip.fill_checksum();
        }
    }
}

/// Whether a disposition sends the packet on (now, once its neighbour answers, or by the
/// worker that owns its tunnel).
fn leaves(disposition: &Disposition) -> bool {
    matches!(
        disposition,
        Disposition::Transmit(_) | Disposition::AwaitNeighbor(_) | Disposition::HandOff(_)
    )
}

/// TTL or hop limit of a bare IP packet (0 when there is no IP header to read).
fn hop_limit(packet: &[u8]) -> u8 {
    match packet.first().map(|b| b >> 4) {
        Some(4) => packet.get(8).copied().unwrap_or(0),
        Some(6) => packet.get(7).copied().unwrap_or(0),
        _ => 0,
    }
}

fn decrement_ttl<B: PacketBuf>(buf: &mut B, l2_len: usize) {
    if let Some(bytes) = buf.data_mut().get_mut(l2_len..) {
        match bytes.first().map(|b| b >> 4) {
            Some(4) => {
                let _ = ipv4::Ipv4Packet::new_unchecked(bytes).decrement_ttl();
            }
            Some(6) => {
                let _ = ipv6::Ipv6Packet::new_unchecked(bytes).decrement_hop_limit();
            }
            _ => {}
        }
    }
}

/// Writes the Ethernet header, reusing the received one when the frame still has it.
fn write_ethernet<B: PacketBuf>(
    buf: &mut B,
    has_l2: bool,
    dst: [u8; 6],
    src: [u8; 6],
    ethertype: u16,
) -> bool {
    if has_l2 {
        match buf.data_mut().get_mut(..ethernet::HEADER_LEN) {
            Some(header) => {
                ethernet::write_header(header, dst, src, ethertype);
                true
            }
            None => false,
        }
    } else {
        match buf.prepend(ethernet::HEADER_LEN) {
            Some(header) => {
                ethernet::write_header(header, dst, src, ethertype);
                true
            }
            None => false,
        }
    }
}
