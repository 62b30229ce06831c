//! Outbound SA: inner IP packet in, outer packet (IP | [UDP] | [AH] | ESP ... or IP | AH | inner) out.

use super::counters::SharedCounters;
use crate::crypto::{EngineBox, MacBox};
use std::net::IpAddr;

use super::ah;
use super::counters::{BurstTally, SaCounters};
use super::keyed::Keyed;
use super::lifetime::{LifetimeTracker, RaisedEvents, SaEventKind};
use super::outer::OuterTemplate;
use super::{inner_info, SaSetupError, TransformSizes};
use super::{DropReason, Verdict};
use crate::buf::PacketBuf;
use crate::crypto::{build_esp_transform, build_icv_mac, Backend, SealJob, SEAL_LANES};
use crate::sa::{Direction, IpsecProtocol, SaSpec};
use crate::wire::{esp, ip_proto};
use arrayvec::ArrayVec;

struct EspSeal {
    spi: u32,
    transform: EngineBox,
    sizes: TransformSizes,
}

struct AhSeal {
    spi: u32,
    mac: MacBox,
    icv_len: usize,
    header_len: usize,
}

/// What framing learned about a packet, for sealing and the outer headers.
#[derive(Clone, Copy)]
struct Framed {
    seq: u64,
    seq_high: Option<u32>,
    inner_len: usize,
    tos: u8,
    dont_fragment: bool,
    next_header: u8,
}

/// One outbound SA (or AH+ESP bundle), owned by one worker. Every packet reads most of it,
/// and with 100,000 tunnels every line of it is a cache miss, so it is kept small: the AH part,
/// which few SAs have, lives out of line.
pub struct OutboundSa {
    /// Sequence number the next packet gets (RFC 4303: the first is 1).
    next_seq: u64,
    /// Last usable sequence number: 2^32-1, or 2^64-1 with ESN.
    seq_limit: u64,
    esn: bool,
    esp: Option<EspSeal>,
    ah: Option<Box<AhSeal>>,
    outer: OuterTemplate,
    /// Where the outer packets go; the pipeline routes it before sealing to learn the port MTU.
    remote: IpAddr,
    /// Largest outer packet (`tunnel-mtu`); `u16::MAX` when only the port's MTU governs, which
    /// the caller passes to [`encapsulate_within`](Self::encapsulate_within).
    mtu: u16,
    lifetime: LifetimeTracker,
    counters: SharedCounters,
}

impl OutboundSa {
    /// Builds the outbound state of an ESP or AH SA; `now` (seconds, the clock the worker is
    /// given per burst) starts its lifetime.
    pub fn new(spec: &SaSpec, now: u64, backend: Backend) -> Result<Self, SaSetupError> {
        match spec.protocol {
            IpsecProtocol::Esp => Self::build(Some(spec), None, now, backend),
            IpsecProtocol::Ah => Self::build(None, Some(spec), now, backend),
        }
    }

    /// AH+ESP bundle: ESP inside, AH outside (`esp` and `ah` share addresses and lifetime).
    pub fn new_bundle(
        esp: &SaSpec,
        ah: &SaSpec,
        now: u64,
        backend: Backend,
    ) -> Result<Self, SaSetupError> {
        if esp.protocol != IpsecProtocol::Esp || ah.protocol != IpsecProtocol::Ah {
            return Err(SaSetupError::ProtocolMismatch);
        }
        Self::build(Some(esp), Some(ah), now, backend)
    }

    fn build(
        esp_spec: Option<&SaSpec>,
        ah_spec: Option<&SaSpec>,
        now: u64,
        backend: Backend,
    ) -> Result<Self, SaSetupError> {
        let main = esp_spec.or(ah_spec).ok_or(SaSetupError::ProtocolMismatch)?;
        super::validate_common(main, Direction::Outbound)?;
        let esp = match esp_spec {
            Some(s) => {
                let transform = build_esp_transform(
                    s.cipher,
                    s.integrity,
                    &s.keys.encryption,
                    &s.keys.integrity,
                    backend,
                )?;
                Some(EspSeal {
                    spi: s.spi,
                    sizes: TransformSizes::of(&*transform).ok_or(SaSetupError::TransformSizes)?,
                    transform,
                })
            }
            None => None,
        };
        let ah = match ah_spec {
            Some(s) => {
                super::validate_ah(s, Direction::Outbound)?;
                let mac = build_icv_mac(s.integrity, &s.keys.integrity)?;
                let icv_len = mac.icv_len();
                Some(Box::new(AhSeal {
                    spi: s.spi,
                    mac,
                    icv_len,
                    header_len: ah::header_len(icv_len),
                }))
            }
            None => None,
        };
        let protocol = if ah.is_some() {
            ip_proto::AH
        } else {
            ip_proto::ESP
        };
        let outer = OuterTemplate::new(
            main.local,
            main.remote,
            main.encapsulation,
            protocol,
            main.df_mode,
        )
        .ok_or(SaSetupError::AddressFamily)?;
        Ok(OutboundSa {
            next_seq: 1,
            seq_limit: if main.extended_sequence_numbers {
                u64::MAX
            } else {
                u64::from(u32::MAX)
            },
            esn: main.extended_sequence_numbers,
            esp,
            ah,
            outer,
            remote: main.remote,
            mtu: main.tunnel_mtu.unwrap_or(u16::MAX),
            lifetime: LifetimeTracker::new(&main.lifetime, now),
            counters: SharedCounters::new(SaCounters::default()),
        })
    }

    /// The peer's address: the destination of every outer packet.
    pub fn remote(&self) -> IpAddr {
        self.remote
    }

    /// SPI of the outermost protocol (AH for a bundle).
    pub fn spi(&self) -> u32 {
        self.keyed().spi()
    }

    /// The counters, shareable with the control thread.
    pub fn counters(&self) -> SharedCounters {
        self.counters.clone()
    }

    /// Bytes of memory this SA's per-packet state occupies (SA, crypto engine, counters).
    pub fn footprint_bytes(&self) -> usize {
        self.keyed().footprint_bytes(std::mem::size_of_val(self))
    }

    /// Starts loading this SA's own cache lines (first stage of a prefetch pipeline).
    #[inline]
    pub fn prefetch_sa(&self) {
        super::prefetch::prefetch_value(self);
    }

    /// Starts loading the crypto engine and counters this SA points to, for a packet of about
    /// `packet_len` bytes; call it once the SA's own lines are cached (a few packets after
    /// [`prefetch_sa`](Self::prefetch_sa)).
    #[inline]
    pub fn prefetch_context(&self, packet_len: usize) {
        self.keyed().prefetch_context(packet_len);
    }

    #[inline]
    fn keyed(&self) -> Keyed<'_> {
        Keyed {
            esp: self.esp.as_ref().map(|e| (e.spi, &*e.transform)),
            ah: self.ah.as_ref().map(|a| (a.spi, &*a.mac)),
            counters: &self.counters,
        }
    }

    /// Sequence number of the last packet sent (0 before the first).
    pub fn last_sequence(&self) -> u64 {
        self.next_seq - 1
    }

    /// Lets tests and rekey drills start near the end of the sequence space.
    pub fn set_next_sequence(&mut self, seq: u64) {
        self.next_seq = seq.max(1);
    }

    /// Bytes of overhead a packet of `inner_len` gets (outer headers, IV, padding, ICV).
    pub fn overhead(&self, inner_len: usize) -> usize {
        let ah_len = self.ah.as_ref().map_or(0, |a| a.header_len);
        let esp_len = self.esp.as_ref().map_or(0, |e| {
            let pad = (e.sizes.pad_align() - (inner_len + esp::TRAILER_LEN) % e.sizes.pad_align())
                % e.sizes.pad_align();
            esp::HEADER_LEN + e.sizes.iv_len() + pad + esp::TRAILER_LEN + e.sizes.icv_len()
        });
        self.outer.len() + ah_len + esp_len
    }

    /// Encapsulates and protects each inner IP packet of `bufs` in place; `verdicts[i]` tells the
    /// fate of `bufs[i]`. `now` is the worker's coarse clock in seconds. Returns lifetime and
    /// sequence events raised by this burst (each event is raised once per SA).
    pub fn encapsulate_burst<B: PacketBuf>(
        &mut self,
        bufs: &mut [B],
        verdicts: &mut [Verdict],
        now: u64,
    ) -> RaisedEvents {
        self.encapsulate_burst_within(bufs, verdicts, now, usize::MAX)
    }

    /// [`encapsulate_burst`](Self::encapsulate_burst) for outer packets leaving through a link
    /// of `link_mtu` bytes: a packet that would not fit it (or the tunnel MTU, whichever is
    /// smaller) is refused with [`DropReason::TooBig`] and left untouched.
    pub fn encapsulate_burst_within<B: PacketBuf>(
        &mut self,
        bufs: &mut [B],
        verdicts: &mut [Verdict],
        now: u64,
        link_mtu: usize,
    ) -> RaisedEvents {
        let mtu = usize::from(self.mtu).min(link_mtu);
        let mut events = self.lifetime.evaluate(now, false);
        let mut tally = BurstTally::default();
        let mut byte_limit_hit = false;
        let (v6, udp, with_ah, with_esp) = (
            self.outer.is_ipv6(),
            self.outer.has_udp(),
            self.ah.is_some(),
            self.esp.is_some(),
        );
        // One match per burst picks a loop specialised for this SA's shape.
        macro_rules! run {
            ($v6:literal, $udp:literal, $ah:literal, $esp:literal) => {
                self.encap_loop::<$v6, $udp, $ah, $esp, B>(
                    bufs,
                    verdicts,
                    mtu,
                    &mut tally,
                    &mut byte_limit_hit,
                    &mut events,
                )
            };
        }
        match (v6, udp, with_ah, with_esp) {
            (false, false, false, true) => run!(false, false, false, true),
            (false, true, false, true) => run!(false, true, false, true),
            (true, false, false, true) => run!(true, false, false, true),
            (true, true, false, true) => run!(true, true, false, true),
            (false, false, true, true) => run!(false, false, true, true),
            (true, false, true, true) => run!(true, false, true, true),
            (false, false, true, false) => run!(false, false, true, false),
            (true, false, true, false) => run!(true, false, true, false),
            // AH over UDP is refused at install; nothing else reaches here.
            _ => {
                for v in verdicts.iter_mut().take(bufs.len()) {
                    *v = Err(DropReason::BadHeader);
                }
            }
        }
        self.counters.publish(&tally);
        let late = self.lifetime.evaluate(now, byte_limit_hit);
        RaisedEvents::from_bits(events.bits() | late.bits())
    }

    /// One packet; same as a burst of one.
    pub fn encapsulate<B: PacketBuf>(&mut self, buf: &mut B, now: u64) -> (Verdict, RaisedEvents) {
        self.encapsulate_within(buf, now, usize::MAX)
    }

    /// One packet through a link of `link_mtu` bytes; same as a burst of one.
    pub fn encapsulate_within<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        now: u64,
        link_mtu: usize,
    ) -> (Verdict, RaisedEvents) {
        let mut verdict = [Ok(())];
        let events =
            self.encapsulate_burst_within(std::slice::from_mut(buf), &mut verdict, now, link_mtu);
        (verdict[0], events)
    }

    /// Frames up to [`SEAL_LANES`] packets, seals them in one engine call (which lets CBC
    /// interleave packets), then writes the outer headers and AH, which may cover ciphertext.
    fn encap_loop<
        const V6: bool,
        const UDP: bool,
        const AH: bool,
        const ESP: bool,
        B: PacketBuf,
    >(
        &mut self,
        bufs: &mut [B],
        verdicts: &mut [Verdict],
        mtu: usize,
        tally: &mut BurstTally,
        byte_limit_hit: &mut bool,
        events: &mut RaisedEvents,
    ) {
        let esp_at = self.outer.len()
            + if AH {
                self.ah.as_ref().map_or(0, |a| a.header_len)
            } else {
                0
            };
        for (group, group_verdicts) in bufs
            .chunks_mut(SEAL_LANES)
            .zip(verdicts.chunks_mut(SEAL_LANES))
        {
            let mut framed: [Option<Framed>; SEAL_LANES] = [None; SEAL_LANES];
            for ((buf, verdict), slot) in group
                .iter_mut()
                .zip(group_verdicts.iter_mut())
                .zip(framed.iter_mut())
            {
                match self.frame_one::<AH, ESP, B>(buf, mtu, byte_limit_hit, events) {
                    Ok(f) => {
                        *slot = Some(f);
                        *verdict = Ok(());
                    }
                    Err(reason) => {
                        tally.drop(reason);
                        *verdict = Err(reason);
                    }
                }
            }
            if ESP {
                if let Some(e) = &self.esp {
                    let mut jobs: ArrayVec<SealJob<'_>, SEAL_LANES> = group
                        .iter_mut()
                        .zip(&framed)
                        .filter_map(|(buf, f)| {
                            f.map(|f| SealJob {
                                packet: &mut buf.data_mut()[esp_at..],
                                seq_high: f.seq_high,
                            })
                        })
                        .collect();
                    e.transform.seal_burst(&mut jobs);
                }
            }
            for (buf, f) in group.iter_mut().zip(&framed) {
                if let Some(f) = f {
                    self.finish_one::<V6, UDP, AH, ESP>(buf.data_mut(), f);
                    tally.packets += 1;
                    tally.bytes += f.inner_len as u64;
                }
            }
        }
    }

    /// Checks limits, takes a sequence number, makes room and writes the ESP header and trailer
    /// (or, for AH alone, just makes room).
    #[inline(always)]
    fn frame_one<const AH: bool, const ESP: bool, B: PacketBuf>(
        &mut self,
        buf: &mut B,
        mtu: usize,
        byte_limit_hit: &mut bool,
        events: &mut RaisedEvents,
    ) -> Result<Framed, DropReason> {
        if self.lifetime.is_dead() {
            return Err(DropReason::Expired);
        }
        let inner = inner_info(buf.data())?;
        if buf.len() > inner.len {
            buf.trim(buf.len() - inner.len);
        }
        let outer_len = self.outer.len();
        let ah_len = if AH {
            self.ah.as_ref().map_or(0, |a| a.header_len)
        } else {
            0
        };
        let (esp_head, pad, tail) = match (&self.esp, ESP) {
            (Some(e), true) => {
                let pad = (e.sizes.pad_align()
                    - (inner.len + esp::TRAILER_LEN) % e.sizes.pad_align())
                    % e.sizes.pad_align();
                (
                    esp::HEADER_LEN + e.sizes.iv_len(),
                    pad,
                    pad + esp::TRAILER_LEN + e.sizes.icv_len(),
                )
            }
            _ => (0, 0, 0),
        };
        let head = outer_len + ah_len + esp_head;
        if head + inner.len + tail > mtu {
            return Err(DropReason::TooBig {
                mtu: self.largest_inner(mtu, head) as u16,
                may_fragment: inner.may_fragment,
            });
        }
        if !self.lifetime.admits(inner.len) {
            *byte_limit_hit = true;
            return Err(DropReason::Expired);
        }
        let seq = self.next_seq;
        if seq > self.seq_limit {
            events.insert_all(
                self.lifetime
                    .raise(RaisedEvents::only(SaEventKind::SequenceExhausted)),
            );
            return Err(DropReason::SequenceExhausted);
        }
        if buf.tailroom() < tail || buf.headroom() < head {
            return Err(DropReason::NoRoom);
        }
        let trailer = buf.append(tail).ok_or(DropReason::NoRoom)?;
        if ESP {
            for (i, b) in trailer[..pad].iter_mut().enumerate() {
                *b = (i + 1) as u8;
            }
            trailer[pad] = pad as u8;
            trailer[pad + 1] = inner.next_header;
        }
        let packet = buf.prepend(head).ok_or(DropReason::NoRoom)?;
        self.next_seq = seq.saturating_add(1);
        if ESP {
            if let Some(e) = &self.esp {
                esp::write_header(&mut packet[outer_len + ah_len..], e.spi, seq as u32);
            }
        }
        self.lifetime.add_bytes(inner.len);
        Ok(Framed {
            seq,
            seq_high: self.esn.then_some((seq >> 32) as u32),
            inner_len: inner.len,
            tos: inner.tos,
            dont_fragment: inner.dont_fragment,
            next_header: inner.next_header,
        })
    }

    /// Writes the outer header and, for AH, the AH header and its ICV over the sealed packet.
    #[inline(always)]
    fn finish_one<const V6: bool, const UDP: bool, const AH: bool, const ESP: bool>(
        &self,
        packet: &mut [u8],
        f: &Framed,
    ) {
        let outer_len = self.outer.len();
        self.outer
            .write::<V6, UDP>(packet, f.tos, f.dont_fragment, f.seq as u16);
        if AH {
            if let Some(a) = &self.ah {
                let next = if ESP { ip_proto::ESP } else { f.next_header };
                crate::wire::ah::write_header(
                    &mut packet[outer_len..],
                    next,
                    a.header_len - crate::wire::ah::FIXED_LEN,
                    a.spi,
                    f.seq as u32,
                );
                let mut icv = [0u8; 16];
                ah::compute_icv(
                    a.mac.as_ref(),
                    packet,
                    outer_len,
                    f.seq_high,
                    &mut icv[..a.icv_len],
                );
                let icv_at = outer_len + crate::wire::ah::FIXED_LEN;
                packet[icv_at..icv_at + a.icv_len].copy_from_slice(&icv[..a.icv_len]);
            }
        }
    }

    /// Largest inner packet that fits `mtu` after `head` bytes of headers.
    fn largest_inner(&self, mtu: usize, head: usize) -> usize {
        let room = mtu.saturating_sub(head);
        match &self.esp {
            Some(e) => (room.saturating_sub(e.sizes.icv_len()) / e.sizes.pad_align()
                * e.sizes.pad_align())
            .saturating_sub(esp::TRAILER_LEN),
            None => room,
        }
        .min(usize::from(u16::MAX))
    }
}
