//! The outer IP (and UDP, for NAT-T) header of an outbound SA, built once at install; per packet
//! only the length, identification, DSCP/ECN, DF and checksums are filled in.

use std::net::IpAddr;

use crate::sa::{DfMode, Encapsulation};
use crate::wire::{checksum, ip_proto, ipv4, ipv6, udp, write_u16};

/// TTL / hop limit of the outer header (the forwarder decrements the inner one).
pub const OUTER_TTL: u8 = 64;
/// Largest outer header: IPv6 + UDP.
pub const MAX_OUTER_LEN: usize = ipv6::HEADER_LEN + udp::HEADER_LEN;

pub struct OuterTemplate {
    bytes: [u8; MAX_OUTER_LEN],
    ip_len: u8,
    udp: bool,
    df_mode: DfMode,
    /// IPv4: checksum sum of the header with every per-packet field zero.
    fixed_sum: u32,
}

impl OuterTemplate {
    /// `None` when the two addresses are of different families.
    pub fn new(
        local: IpAddr,
        remote: IpAddr,
        encapsulation: Encapsulation,
        protocol: u8,
        df_mode: DfMode,
    ) -> Option<Self> {
        let mut bytes = [0u8; MAX_OUTER_LEN];
        let udp = matches!(encapsulation, Encapsulation::Udp { .. });
        let l4 = if udp { ip_proto::UDP } else { protocol };
        let ip_len = match (local, remote) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                ipv4::write_header(&mut bytes, 0, 0, 0, 0, OUTER_TTL, l4, s, d);
                write_u16(&mut bytes, 10, 0);
                ipv4::MIN_HEADER_LEN
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                ipv6::write_header(&mut bytes, 0, 0, l4, OUTER_TTL, s, d);
                ipv6::HEADER_LEN
            }
            _ => return None,
        };
        if let Encapsulation::Udp {
            local_port,
            remote_port,
        } = encapsulation
        {
            write_u16(&mut bytes, ip_len, local_port);
            write_u16(&mut bytes, ip_len + 2, remote_port);
        }
        let fixed_sum = checksum::sum(&bytes[..ipv4::MIN_HEADER_LEN], 0);
        Some(OuterTemplate {
            bytes,
            ip_len: ip_len as u8,
            udp,
            df_mode,
            fixed_sum,
        })
    }

    pub fn is_ipv6(&self) -> bool {
        usize::from(self.ip_len) == ipv6::HEADER_LEN
    }

    pub fn has_udp(&self) -> bool {
        self.udp
    }

    /// IP header plus UDP header if encapsulated.
    pub fn len(&self) -> usize {
        usize::from(self.ip_len) + if self.udp { udp::HEADER_LEN } else { 0 }
    }

    /// Writes the outer header at the front of `packet` (which is the whole outer packet).
    /// `V6`/`UDP` repeat what the template already knows, so the caller's loop is specialised.
    #[inline(always)]
    pub fn write<const V6: bool, const UDP: bool>(
        &self,
        packet: &mut [u8],
        tos: u8,
        inner_df: bool,
        identification: u16,
    ) {
        let len = self.len();
        packet[..len].copy_from_slice(&self.bytes[..len]);
        let total = packet.len();
        if V6 {
            let word0 = (6u32 << 28) | (u32::from(tos) << 20);
            packet[..4].copy_from_slice(&word0.to_be_bytes());
            write_u16(packet, 4, (total - ipv6::HEADER_LEN) as u16);
        } else {
            let df = match self.df_mode {
                DfMode::Copy => inner_df,
                DfMode::Clear => false,
                DfMode::Set => true,
            };
            let flags = if df { ipv4::FLAG_DF } else { 0 };
            packet[1] = tos;
            write_u16(packet, 2, total as u16);
            write_u16(packet, 4, identification);
            write_u16(packet, 6, flags);
            let acc = self.fixed_sum
                + u32::from(tos)
                + total as u32
                + u32::from(identification)
                + u32::from(flags);
            write_u16(packet, 10, checksum::finish(acc));
        }
        if UDP {
            let ip_len = if V6 {
                ipv6::HEADER_LEN
            } else {
                ipv4::MIN_HEADER_LEN
            };
            let udp_len = total - ip_len;
            write_u16(packet, ip_len + 4, udp_len as u16);
            if V6 {
                // IPv6 receivers drop zero-checksum UDP (RFC 8200 §8.1), so it is computed.
                let pseudo = checksum::pseudo_header_sum(
                    &packet[8..24],
                    &packet[24..40],
                    ip_proto::UDP,
                    udp_len as u32,
                );
                let mut u = udp::UdpPacket::new_unchecked(&mut packet[ip_len..]);
                u.fill_checksum(pseudo);
            } else {
                // RFC 3948 §2.1: IPv4 ESP-in-UDP is sent with checksum zero.
                write_u16(packet, ip_len + 6, 0);
            }
        }
    }
}
