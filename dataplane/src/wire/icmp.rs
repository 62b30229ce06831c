//! ICMPv4 (RFC 792) and ICMPv6 (RFC 4443) messages, as far as the tunnel needs them: a view for
//! classifying and the builders for "fragmentation needed" (RFC 1191) and "packet too big".

use std::net::{Ipv4Addr, Ipv6Addr};

use super::checksum;
use super::{ip_proto, ipv4, ipv6, read_u16, read_u32, write_u16, write_u32, WireError};

pub const HEADER_LEN: usize = 8;
pub const V4_DEST_UNREACHABLE: u8 = 3;
pub const V4_CODE_FRAG_NEEDED: u8 = 4;
pub const V4_ECHO_REQUEST: u8 = 8;
pub const V4_ECHO_REPLY: u8 = 0;
pub const V6_PACKET_TOO_BIG: u8 = 2;
pub const V6_ECHO_REQUEST: u8 = 128;
pub const V6_ECHO_REPLY: u8 = 129;
/// RFC 792: the original IP header plus 64 bits of its data.
const V4_QUOTE_AFTER_HEADER: usize = 8;
/// RFC 4443: as much of the invoking packet as fits in the minimum IPv6 MTU.
const V6_MAX_MESSAGE: usize = 1280;

/// An ICMP (v4 or v6) message: type, code, checksum and the 4-byte rest-of-header.
#[derive(Debug, Clone, Copy)]
pub struct IcmpMessage<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> IcmpMessage<T> {
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(IcmpMessage { buffer })
    }
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[0]
    }
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[1]
    }
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), 2)
    }
    /// The 32-bit field after the checksum (echo id/seq, next-hop MTU, packet-too-big MTU).
    pub fn rest_of_header(&self) -> u32 {
        read_u32(self.buffer.as_ref(), 4)
    }
    /// Next-hop MTU of an ICMPv4 fragmentation-needed message.
    pub fn v4_next_hop_mtu(&self) -> u16 {
        (self.rest_of_header() & 0xffff) as u16
    }
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
    /// ICMPv4 checksum over the whole message.
    pub fn verify_v4_checksum(&self) -> bool {
        checksum::checksum(self.buffer.as_ref()) == 0
    }
}

/// Builds a complete IPv4 packet "destination unreachable / fragmentation needed" from `src`
/// (this gateway) back to the sender of `original` (an IPv4 packet), into `out`. Returns the
/// length written, or `None` when `original` is not an IPv4 packet or `out` is too small.
pub fn build_v4_frag_needed(
    out: &mut [u8],
    src: Ipv4Addr,
    original: &[u8],
    mtu: u16,
) -> Option<usize> {
    let orig = ipv4::Ipv4Packet::new_checked(original).ok()?;
    let quote = (orig.header_len() + V4_QUOTE_AFTER_HEADER).min(orig.total_len());
    let total = ipv4::MIN_HEADER_LEN + HEADER_LEN + quote;
    if out.len() < total {
        return None;
    }
    let icmp = &mut out[ipv4::MIN_HEADER_LEN..total];
    icmp[0] = V4_DEST_UNREACHABLE;
    icmp[1] = V4_CODE_FRAG_NEEDED;
    write_u16(icmp, 2, 0);
    write_u32(icmp, 4, u32::from(mtu));
    icmp[HEADER_LEN..].copy_from_slice(&original[..quote]);
    let c = checksum::checksum(icmp);
    write_u16(icmp, 2, c);
    ipv4::write_header(
        out,
        0,
        total as u16,
        0,
        0,
        64,
        ip_proto::ICMP,
        src,
        orig.src(),
    );
    Some(total)
}

/// Builds a complete IPv6 "packet too big" from `src` back to the sender of `original`.
pub fn build_v6_packet_too_big(
    out: &mut [u8],
    src: Ipv6Addr,
    original: &[u8],
    mtu: u32,
) -> Option<usize> {
    let orig = ipv6::Ipv6Packet::new_checked(original).ok()?;
    let quote = orig
        .total_len()
        .min(V6_MAX_MESSAGE - ipv6::HEADER_LEN - HEADER_LEN);
    let total = ipv6::HEADER_LEN + HEADER_LEN + quote;
    if out.len() < total {
        return None;
    }
    let dst = orig.src();
    let payload_len = (HEADER_LEN + quote) as u16;
    let icmp = &mut out[ipv6::HEADER_LEN..total];
    icmp[0] = V6_PACKET_TOO_BIG;
    icmp[1] = 0;
    write_u16(icmp, 2, 0);
    write_u32(icmp, 4, mtu);
    icmp[HEADER_LEN..].copy_from_slice(&original[..quote]);
    let pseudo = checksum::pseudo_header_sum(
        &src.octets(),
        &dst.octets(),
        ip_proto::ICMPV6,
        u32::from(payload_len),
    );
    let c = checksum::finish(checksum::sum(icmp, pseudo));
    write_u16(icmp, 2, c);
    ipv6::write_header(out, 0, payload_len, ip_proto::ICMPV6, 255, src, dst);
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frag_needed_quotes_header_and_carries_mtu() {
        let mut orig = vec![0u8; 1500];
        ipv4::write_header(
            &mut orig,
            0,
            1500,
            1,
            ipv4::FLAG_DF,
            63,
            17,
            Ipv4Addr::new(192, 0, 2, 1),
            Ipv4Addr::new(198, 51, 100, 1),
        );
        let mut out = [0u8; 128];
        let n = build_v4_frag_needed(&mut out, Ipv4Addr::new(192, 0, 2, 254), &orig, 1400).unwrap();
        assert_eq!(n, 20 + 8 + 28);
        let ip = ipv4::Ipv4Packet::new_checked(&out[..n]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.dst(), Ipv4Addr::new(192, 0, 2, 1));
        let icmp = IcmpMessage::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_v4_checksum());
        assert_eq!(
            (icmp.msg_type(), icmp.code(), icmp.v4_next_hop_mtu()),
            (3, 4, 1400)
        );
        assert_eq!(&icmp.body()[..20], &orig[..20]);
    }

    #[test]
    fn packet_too_big_is_bounded_by_minimum_mtu() {
        let mut orig = vec![0u8; 1500];
        ipv6::write_header(
            &mut orig,
            0,
            1460,
            17,
            64,
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        );
        let mut out = [0u8; 1500];
        let n = build_v6_packet_too_big(&mut out, "2001:db8::fe".parse().unwrap(), &orig, 1400)
            .unwrap();
        assert_eq!(n, 1280);
        let ip = ipv6::Ipv6Packet::new_checked(&out[..n]).unwrap();
        let pseudo = checksum::pseudo_header_sum(
            ip.src_bytes(),
            ip.dst_bytes(),
            58,
            ip.payload_len() as u32,
        );
        assert_eq!(checksum::finish(checksum::sum(ip.payload(), pseudo)), 0);
        assert_eq!(
            IcmpMessage::new_checked(ip.payload())
                .unwrap()
                .rest_of_header(),
            1400
        );
    }
}
