//! Inbound SA: outer packet (IP | [UDP] | [AH] | ESP ... or IP | AH | inner) in, inner IP packet out.
//!
//! Order per packet (RFC 4303 §3.4): header checks, anti-replay check, ICV verification and
//! decryption, and only then the anti-replay window update.

use super::counters::SharedCounters;
use crate::crypto::{EngineBox, MacBox};

use super::ah;
use super::counters::{BurstTally, SaCounters};
use super::keyed::Keyed;
use super::lifetime::{LifetimeTracker, RaisedEvents};
use super::replay::ReplayWindow;
use super::{DropReason, Verdict};
use super::{SaSetupError, TransformSizes};
use crate::buf::PacketBuf;
use crate::crypto::{build_esp_transform, build_icv_mac, Backend, CryptoError};
use crate::sa::{Direction, Encapsulation, IpsecProtocol, SaSpec};
use crate::wire::udp::{NatTPayload, UdpPacket};
use crate::wire::{esp, ip_proto, ipv4, ipv6, read_u32, udp};

/// In C order so that the replay bitmap comes last: a packet reads the fields before it and
/// one word of the bitmap.
#[repr(C)]
struct EspOpen {
    transform: EngineBox,
    spi: u32,
    sizes: TransformSizes,
    replay: ReplayWindow,
}

struct AhOpen {
    spi: u32,
    mac: MacBox,
    header_len: usize,
    replay: ReplayWindow,
}

/// One inbound SA (or AH+ESP bundle), owned by one worker. With 100,000 tunnels every line
/// of it a packet reads is a cache miss, so it is laid out in C order, everything a packet
/// reads first and the ESP replay bitmap (of which a packet reads one word) last; the AH part,
/// which few SAs have, lives out of line.
#[repr(C)]
pub struct InboundSa {
    counters: SharedCounters,
    lifetime: LifetimeTracker,
    ah: Option<Box<AhOpen>>,
    /// Local UDP port ESP arrives on when UDP-encapsulated.
    udp_port: Option<u16>,
    v6: bool,
    esn: bool,
    esp: Option<EspOpen>,
}

impl InboundSa {
    /// Where in an inbound SA the ESP replay bitmap word for sequence number `seq` lies (for a
    /// prefetch: with ESN, `seq` is only the low half, and the word may be another).
    pub fn replay_word_offset(seq: u64) -> usize {
        std::mem::offset_of!(InboundSa, esp)
            + std::mem::offset_of!(EspOpen, replay)
            + ReplayWindow::word_offset(seq)
    }

    pub fn new(spec: &SaSpec, now: u64, backend: Backend) -> Result<Self, SaSetupError> {
        match spec.protocol {
            IpsecProtocol::Esp => Self::build(Some(spec), None, now, backend),
            IpsecProtocol::Ah => Self::build(None, Some(spec), now, backend),
        }
    }

    /// AH+ESP bundle: AH outside, ESP inside.
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
        super::validate_common(main, Direction::Inbound)?;
        if main.local.is_ipv4() != main.remote.is_ipv4() {
            return Err(SaSetupError::AddressFamily);
        }
        let esp = match esp_spec {
            Some(s) => {
                let transform = build_esp_transform(
                    s.cipher,
                    s.integrity,
                    &s.keys.encryption,
                    &s.keys.integrity,
                    backend,
                )?;
                Some(EspOpen {
                    spi: s.spi,
                    sizes: TransformSizes::of(&*transform).ok_or(SaSetupError::TransformSizes)?,
                    transform,
                    replay: ReplayWindow::new(s.replay_window),
                })
            }
            None => None,
        };
        let ah = match ah_spec {
            Some(s) => {
                super::validate_ah(s, Direction::Inbound)?;
                let mac = build_icv_mac(s.integrity, &s.keys.integrity)?;
                Some(Box::new(AhOpen {
                    spi: s.spi,
                    header_len: ah::header_len(mac.icv_len()),
                    mac,
                    replay: ReplayWindow::new(s.replay_window),
                }))
            }
            None => None,
        };
        let udp_port = match main.encapsulation {
            Encapsulation::Udp { local_port, .. } => Some(local_port),
            Encapsulation::None => None,
        };
        Ok(InboundSa {
            esp,
            ah,
            v6: main.local.is_ipv6(),
            udp_port,
            esn: main.extended_sequence_numbers,
            lifetime: LifetimeTracker::new(&main.lifetime, now),
            counters: SharedCounters::new(SaCounters::default()),
        })
    }

    /// SPI the pipeline looks this SA up by: the outermost protocol's.
    pub fn spi(&self) -> u32 {
        self.keyed().spi()
    }

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

    /// Highest sequence number accepted so far.
    pub fn highest_sequence(&self) -> u64 {
        self.esp
            .as_ref()
            .map(|e| e.replay.top())
            .or(self.ah.as_ref().map(|a| a.replay.top()))
            .unwrap_or(0)
    }

    /// Verifies, decrypts and decapsulates each outer packet of `bufs` in place; `verdicts[i]`
    /// tells the fate of `bufs[i]` (on `Ok`, the buffer holds the inner IP packet, not yet checked
    /// against the SA's proxy pair, which is the rule stage's job).
    pub fn decapsulate_burst<B: PacketBuf>(
        &mut self,
        bufs: &mut [B],
        verdicts: &mut [Verdict],
        now: u64,
    ) -> RaisedEvents {
        let mut events = self.lifetime.evaluate(now, false);
        let mut tally = BurstTally::default();
        let mut byte_limit_hit = false;
        macro_rules! run {
            ($v6:literal, $udp:literal, $ah:literal, $esp:literal) => {
                self.decap_loop::<$v6, $udp, $ah, $esp, B>(
                    bufs,
                    verdicts,
                    &mut tally,
                    &mut byte_limit_hit,
                )
            };
        }
        match (
            self.v6,
            self.udp_port.is_some(),
            self.ah.is_some(),
            self.esp.is_some(),
        ) {
            (false, false, false, true) => run!(false, false, false, true),
            (false, true, false, true) => run!(false, true, false, true),
            (true, false, false, true) => run!(true, false, false, true),
            (true, true, false, true) => run!(true, true, false, true),
            (false, false, true, true) => run!(false, false, true, true),
            (true, false, true, true) => run!(true, false, true, true),
            (false, false, true, false) => run!(false, false, true, false),
            (true, false, true, false) => run!(true, false, true, false),
            _ => {
                for v in verdicts.iter_mut().take(bufs.len()) {
                    *v = Err(DropReason::BadHeader);
                }
            }
        }
        self.counters.publish(&tally);
        events.insert_all(self.lifetime.evaluate(now, byte_limit_hit));
        events
    }

    /// One packet; same as a burst of one.
    pub fn decapsulate<B: PacketBuf>(&mut self, buf: &mut B, now: u64) -> (Verdict, RaisedEvents) {
        let mut verdict = [Ok(())];
        let events = self.decapsulate_burst(std::slice::from_mut(buf), &mut verdict, now);
        (verdict[0], events)
    }

    fn decap_loop<
        const V6: bool,
        const UDP: bool,
        const AH: bool,
        const ESP: bool,
        B: PacketBuf,
    >(
        &mut self,
        bufs: &mut [B],
        verdicts: &mut [Verdict],
        tally: &mut BurstTally,
        byte_limit_hit: &mut bool,
    ) {
        for (buf, verdict) in bufs.iter_mut().zip(verdicts.iter_mut()) {
            *verdict = match self.decap_one::<V6, UDP, AH, ESP, B>(buf, byte_limit_hit) {
                Ok(inner_len) => {
                    tally.packets += 1;
                    tally.bytes += inner_len as u64;
                    Ok(())
                }
                Err(reason) => {
                    tally.drop(reason);
                    Err(reason)
                }
            };
        }
    }

    /// Validates the outer IP header; returns (IP header length, IP protocol, total length).
    #[inline(always)]
    fn outer_ip<const V6: bool>(packet: &[u8]) -> Result<(usize, u8, usize), DropReason> {
        if V6 {
            let ip = ipv6::Ipv6Packet::new_checked(packet).map_err(|_| DropReason::BadHeader)?;
            if ip.next_header() == ip_proto::IPV6_FRAGMENT {
                return Err(DropReason::Fragment);
            }
            Ok((ipv6::HEADER_LEN, ip.next_header(), ip.total_len()))
        } else {
            let ip = ipv4::Ipv4Packet::new_checked(packet).map_err(|_| DropReason::BadHeader)?;
            if !ip.verify_checksum() {
                return Err(DropReason::BadHeader);
            }
            if ip.is_fragment() {
                return Err(DropReason::Fragment);
            }
            Ok((ip.header_len(), ip.protocol(), ip.total_len()))
        }
    }

    #[inline(always)]
    fn decap_one<const V6: bool, const UDP: bool, const AH: bool, const ESP: bool, B: PacketBuf>(
        &mut self,
        buf: &mut B,
        byte_limit_hit: &mut bool,
    ) -> Result<usize, DropReason> {
        if self.lifetime.is_dead() {
            return Err(DropReason::Expired);
        }
        let (ip_len, protocol, total) = Self::outer_ip::<V6>(buf.data())?;
        if buf.len() > total {
            buf.trim(buf.len() - total);
        }
        let mut at = ip_len;
        let mut next_header = protocol;
        if UDP {
            if protocol != ip_proto::UDP {
                return Err(DropReason::BadHeader);
            }
            let u =
                UdpPacket::new_checked(&buf.data()[ip_len..]).map_err(|_| DropReason::BadHeader)?;
            if Some(u.dst_port()) != self.udp_port
                || u.classify_nat_t() != NatTPayload::Esp
                || ip_len + u.len() != total
            {
                return Err(DropReason::BadHeader);
            }
            at += udp::HEADER_LEN;
            next_header = ip_proto::ESP;
        }
        let esn = self.esn;
        if AH {
            let Some(a) = self.ah.as_mut() else {
                return Err(DropReason::BadHeader);
            };
            if next_header != ip_proto::AH {
                return Err(DropReason::BadHeader);
            }
            let packet = buf.data_mut();
            let hdr = crate::wire::ah::AhPacket::new_checked(&packet[at..])
                .map_err(|_| DropReason::Truncated)?;
            if hdr.spi() != a.spi {
                return Err(DropReason::WrongSpi);
            }
            if hdr.header_len() != a.header_len {
                return Err(DropReason::BadHeader);
            }
            let inner_next = hdr.next_header();
            let seq = if esn {
                a.replay.infer_esn(hdr.sequence())
            } else {
                u64::from(hdr.sequence())
            };
            a.replay.check(seq).map_err(|_| DropReason::Replay)?;
            let seq_high = esn.then_some((seq >> 32) as u32);
            if !ah::verify_icv(a.mac.as_ref(), packet, ip_len, seq_high) {
                return Err(DropReason::Authentication);
            }
            a.replay.accept(seq);
            at += a.header_len;
            next_header = inner_next;
        }
        if ESP {
            let Some(e) = self.esp.as_mut() else {
                return Err(DropReason::BadHeader);
            };
            if next_header != ip_proto::ESP {
                return Err(DropReason::BadHeader);
            }
            let packet = buf.data_mut();
            let esp_len = packet.len() - at;
            let min = esp::HEADER_LEN + e.sizes.iv_len() + esp::TRAILER_LEN + e.sizes.icv_len();
            if esp_len < min
                || !(esp_len - esp::HEADER_LEN - e.sizes.iv_len() - e.sizes.icv_len())
                    .is_multiple_of(e.sizes.pad_align())
            {
                return Err(DropReason::Truncated);
            }
            if read_u32(packet, at) != e.spi {
                return Err(DropReason::WrongSpi);
            }
            let seq_low = read_u32(packet, at + 4);
            let seq = if esn {
                e.replay.infer_esn(seq_low)
            } else {
                u64::from(seq_low)
            };
            e.replay.check(seq).map_err(|_| DropReason::Replay)?;
            let seq_high = esn.then_some((seq >> 32) as u32);
            e.transform
                .open(&mut packet[at..], seq_high)
                .map_err(|err| match err {
                    CryptoError::Authentication => DropReason::Authentication,
                    CryptoError::BadLength => DropReason::Truncated,
                })?;
            e.replay.accept(seq);
            let end = packet.len() - e.sizes.icv_len();
            next_header = packet[end - 1];
            let pad_len = usize::from(packet[end - 2]);
            let payload_at = at + esp::HEADER_LEN + e.sizes.iv_len();
            if payload_at + pad_len + esp::TRAILER_LEN > end {
                return Err(DropReason::BadPadding);
            }
            let pad_at = end - esp::TRAILER_LEN - pad_len;
            // RFC 4303 §2.4: default padding is 1, 2, 3, ...; anything else means a bad sender or key.
            if packet[pad_at..end - esp::TRAILER_LEN]
                .iter()
                .enumerate()
                .any(|(i, b)| usize::from(*b) != i + 1)
            {
                return Err(DropReason::BadPadding);
            }
            let tail = packet.len() - pad_at;
            buf.trim(tail);
            at = payload_at;
        }
        buf.adj(at);
        let inner_len = match (next_header, buf.data().first().map(|b| b >> 4)) {
            (ip_proto::IPV4_IN_IP, Some(4)) => ipv4::Ipv4Packet::new_checked(buf.data())
                .map_err(|_| DropReason::BadHeader)?
                .total_len(),
            (ip_proto::IPV6_IN_IP, Some(6)) => ipv6::Ipv6Packet::new_checked(buf.data())
                .map_err(|_| DropReason::BadHeader)?
                .total_len(),
            _ => return Err(DropReason::BadHeader),
        };
        // Anything after the inner packet is traffic-flow-confidentiality padding.
        if buf.len() > inner_len {
            buf.trim(buf.len() - inner_len);
        }
        if !self.lifetime.admits(inner_len) {
            *byte_limit_hit = true;
            return Err(DropReason::Expired);
        }
        self.lifetime.add_bytes(inner_len);
        Ok(inner_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    /// With 100,000 tunnels each line of an inbound SA a packet reads is a miss, and the
    /// worker prefetches the first three lines of a slot and the packet's replay word
    /// (`SaTable::prefetch_inbound`): all else a packet reads must lie in those three lines.
    #[test]
    fn what_a_packet_reads_of_a_gateway_slot_ends_before_its_fourth_line() {
        use crate::pipeline::worker::TunnelInbound;
        type Entry = crate::tables::InboundEntry<TunnelInbound>;
        // The `Option`s keep their value where it is (the engine pointer is their niche).
        assert_eq!(size_of::<Option<EspOpen>>(), size_of::<EspOpen>());
        assert_eq!(size_of::<Option<Entry>>(), size_of::<Entry>());
        let sa_at = offset_of!(Entry, sa) + offset_of!(TunnelInbound, sa);
        let bitmap_at = sa_at + InboundSa::replay_word_offset(0);
        assert!(bitmap_at <= 3 * 64, "the bitmap starts at byte {bitmap_at}");
        assert!(offset_of!(Entry, spi) < 64 && offset_of!(TunnelInbound, proxy) < 64);
    }

    /// The prefetch of a packet's replay word computes its place from the layout alone; a real
    /// SA shows it is the place of the window the SA checks.
    #[test]
    fn the_replay_word_offset_points_into_the_esp_window_of_a_real_sa() {
        let spec = SaSpec {
            spi: 0x1000,
            direction: Direction::Inbound,
            protocol: IpsecProtocol::Esp,
            cipher: crate::sa::Cipher::AesGcm128,
            integrity: crate::sa::Integrity::None,
            keys: crate::sa::SaKeys {
                encryption: vec![7; 20],
                integrity: Vec::new(),
            },
            local: "10.1.1.1".parse().unwrap(),
            remote: "10.2.2.2".parse().unwrap(),
            encapsulation: Encapsulation::None,
            replay_window: 64,
            extended_sequence_numbers: false,
            lifetime: crate::sa::Lifetime::default(),
            df_mode: crate::sa::DfMode::Copy,
            tunnel_mtu: None,
        };
        let sa = InboundSa::new(&spec, 0, Backend::Ring).unwrap();
        let base = &sa as *const InboundSa as usize;
        let window = &sa.esp.as_ref().unwrap().replay as *const ReplayWindow as usize;
        for seq in [1u64, 700, 5000] {
            assert_eq!(
                InboundSa::replay_word_offset(seq),
                window - base + ReplayWindow::word_offset(seq)
            );
        }
    }
}
