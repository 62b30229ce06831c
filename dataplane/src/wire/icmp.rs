//! ICMPv4 (RFC 792) and ICMPv6 (RFC 4443) messages, as far as the tunnel needs them: a view for
//! classifying and the builders for "fragmentation needed" (RFC 1191) and "packet too big".

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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
/// ICMPv4 error messages (RFC 1812 §4.3.2.7): unreachable, source quench, redirect, time
/// exceeded, parameter problem.
const V4_ERROR_TYPES: [u8; 5] = [3, 4, 5, 11, 12];
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
    // RFC 1812 §4.3.2.7: no error about an ICMP error, nor about a fragment but the first.
    if orig.fragment_offset() != 0
        || orig.protocol() == ip_proto::ICMP
            && orig
                .payload()
                .first()
                .is_some_and(|t| V4_ERROR_TYPES.contains(t))
    {
        return None;
    }
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
    // RFC 4443 §2.4 (e.1): no error about an error (types below 128).
    if orig.next_header() == ip_proto::ICMPV6 && orig.payload().first().is_some_and(|t| *t < 128) {
        return None;
    }
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

/// Turns an IPv4 or IPv6 echo request addressed to this gateway into its echo reply, in place:
/// addresses swapped, a fresh TTL / hop limit, the type changed and the checksums updated (the
/// ICMPv6 pseudo-header sum does not change when source and destination trade places).
/// Returns the reply's (source, destination), or `None` — buffer untouched — for anything that
/// is not a well-formed, unfragmented echo request with a correct checksum.
pub fn echo_reply_in_place(packet: &mut [u8]) -> Option<(IpAddr, IpAddr)> {
    match packet.first()? >> 4 {
        4 => echo_reply_v4(packet),
        6 => echo_reply_v6(packet),
        _ => None,
    }
}

const REPLY_TTL: u8 = 64;

fn echo_reply_v4(packet: &mut [u8]) -> Option<(IpAddr, IpAddr)> {
    let ip = ipv4::Ipv4Packet::new_checked(&packet[..]).ok()?;
    if ip.protocol() != ip_proto::ICMP || ip.is_fragment() {
        return None;
    }
    let (src, dst, header_len, total) = (ip.src(), ip.dst(), ip.header_len(), ip.total_len());
    let icmp = packet.get_mut(header_len..total)?;
    if icmp.len() < HEADER_LEN
        || icmp[0] != V4_ECHO_REQUEST
        || icmp[1] != 0
        || checksum::checksum(icmp) != 0
    {
        return None;
    }
    turn_type(icmp, V4_ECHO_REPLY);
    let mut ip = ipv4::Ipv4Packet::new_unchecked(&mut packet[..]);
    ip.set_src(dst);
    ip.set_dst(src);
    ip.set_ttl(REPLY_TTL);
    // A reply of ours may be split on its way, whatever the request asked (as a host's stack
    // sends its echo replies): one too big for the tunnel back is fragmented, not refused.
    ip.set_flags_fragment(0);
    ip.fill_checksum();
    Some((IpAddr::V4(dst), IpAddr::V4(src)))
}

fn echo_reply_v6(packet: &mut [u8]) -> Option<(IpAddr, IpAddr)> {
    let ip = ipv6::Ipv6Packet::new_checked(&packet[..]).ok()?;
    if ip.next_header() != ip_proto::ICMPV6 {
        return None;
    }
    let (src, dst, payload_len) = (ip.src(), ip.dst(), ip.payload_len());
    let pseudo = checksum::pseudo_header_sum(
        &src.octets(),
        &dst.octets(),
        ip_proto::ICMPV6,
        payload_len as u32,
    );
    let icmp = packet.get_mut(ipv6::HEADER_LEN..ipv6::HEADER_LEN + payload_len)?;
    if icmp.len() < HEADER_LEN
        || icmp[0] != V6_ECHO_REQUEST
        || icmp[1] != 0
        || checksum::finish(checksum::sum(icmp, pseudo)) != 0
    {
        return None;
    }
    turn_type(icmp, V6_ECHO_REPLY);
    packet[8..24].copy_from_slice(&dst.octets());
    packet[24..40].copy_from_slice(&src.octets());
    ipv6::Ipv6Packet::new_unchecked(&mut packet[..]).set_hop_limit(REPLY_TTL);
    Some((IpAddr::V6(dst), IpAddr::V6(src)))
}

/// Sets the message type (code stays), updating the checksum for the changed word.
fn turn_type(icmp: &mut [u8], msg_type: u8) {
    let old = read_u16(icmp, 0);
    icmp[0] = msg_type;
    let check = checksum::update_word(read_u16(icmp, 2), old, read_u16(icmp, 0));
    write_u16(icmp, 2, check);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_about_errors_and_about_later_fragments_are_not_built() {
        let mut out = [0u8; 1280];
        let mut error = vec![0u8; 60];
        ipv4::write_header(
            &mut error,
            0,
            60,
            0,
            0,
            64,
            ip_proto::ICMP,
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
        );
        error[20] = V4_DEST_UNREACHABLE;
        let from = Ipv4Addr::new(10, 0, 0, 9);
        assert_eq!(build_v4_frag_needed(&mut out, from, &error, 1400), None);
        // An echo request is answered; so is a first fragment, but not a later one.
        error[20] = V4_ECHO_REQUEST;
        assert!(build_v4_frag_needed(&mut out, from, &error, 1400).is_some());
        let mut later = error.clone();
        later[6..8].copy_from_slice(&0x0010u16.to_be_bytes());
        ipv4::Ipv4Packet::new_unchecked(&mut later[..]).fill_checksum();
        assert_eq!(build_v4_frag_needed(&mut out, from, &later, 1400), None);

        let mut v6 = vec![0u8; 48];
        let (a, b): (Ipv6Addr, Ipv6Addr) = (
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        );
        ipv6::write_header(&mut v6, 0, 8, ip_proto::ICMPV6, 64, a, b);
        v6[40] = V6_PACKET_TOO_BIG;
        assert_eq!(build_v6_packet_too_big(&mut out, b, &v6, 1280), None);
        v6[40] = V6_ECHO_REQUEST;
        assert!(build_v6_packet_too_big(&mut out, b, &v6, 1280).is_some());
    }

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

    fn echo_request_v4(payload: &[u8]) -> Vec<u8> {
        let total = 20 + 8 + payload.len();
        let mut p = vec![0u8; total];
        ipv4::write_header(
            &mut p,
            0,
            total as u16,
            7,
            0,
            63,
            ip_proto::ICMP,
            Ipv4Addr::new(172, 16, 2, 10),
            Ipv4Addr::new(172, 16, 1, 1),
        );
        p[20] = V4_ECHO_REQUEST;
        write_u32(&mut p[20..], 4, 0x1234_0001);
        p[28..].copy_from_slice(payload);
        let c = checksum::checksum(&p[20..]);
        write_u16(&mut p[20..], 2, c);
        p
    }

    #[test]
    fn an_ipv4_echo_request_becomes_its_reply() {
        let mut p = echo_request_v4(b"dyntun ping");
        let (src, dst) = echo_reply_in_place(&mut p).unwrap();
        assert_eq!(src, IpAddr::V4(Ipv4Addr::new(172, 16, 1, 1)));
        assert_eq!(dst, IpAddr::V4(Ipv4Addr::new(172, 16, 2, 10)));
        let ip = ipv4::Ipv4Packet::new_checked(&p[..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(
            (ip.src(), ip.dst(), ip.ttl()),
            (
                Ipv4Addr::new(172, 16, 1, 1),
                Ipv4Addr::new(172, 16, 2, 10),
                64
            )
        );
        let icmp = IcmpMessage::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_v4_checksum());
        assert_eq!(
            (icmp.msg_type(), icmp.rest_of_header()),
            (V4_ECHO_REPLY, 0x1234_0001)
        );
        assert_eq!(icmp.body(), b"dyntun ping");
    }

    #[test]
    fn only_sound_echo_requests_are_answered() {
        let mut reply = echo_request_v4(b"x");
        reply[20] = V4_ECHO_REPLY;
        let mut bad_sum = echo_request_v4(b"abc");
        bad_sum[30] ^= 1;
        let mut fragment = echo_request_v4(b"abcdefgh");
        fragment[6] = 0x20; // more fragments
        for mut p in [reply, bad_sum, fragment, vec![0x45, 0, 0], Vec::new()] {
            let before = p.clone();
            assert_eq!(echo_reply_in_place(&mut p), None);
            assert_eq!(p, before, "a refused packet is left as it was");
        }
    }

    #[test]
    fn an_ipv6_echo_request_becomes_its_reply() {
        let (peer, us): (Ipv6Addr, Ipv6Addr) = (
            "2001:db8:2::10".parse().unwrap(),
            "2001:db8:1::1".parse().unwrap(),
        );
        let body = b"ping6 through the tunnel";
        let payload_len = HEADER_LEN + body.len();
        let mut p = vec![0u8; ipv6::HEADER_LEN + payload_len];
        ipv6::write_header(
            &mut p,
            0,
            payload_len as u16,
            ip_proto::ICMPV6,
            63,
            peer,
            us,
        );
        p[40] = V6_ECHO_REQUEST;
        write_u32(&mut p[40..], 4, 0x0042_0007);
        p[48..].copy_from_slice(body);
        let pseudo =
            checksum::pseudo_header_sum(&peer.octets(), &us.octets(), 58, payload_len as u32);
        let c = checksum::finish(checksum::sum(&p[40..], pseudo));
        write_u16(&mut p[40..], 2, c);
        assert_eq!(
            echo_reply_in_place(&mut p),
            Some((IpAddr::V6(us), IpAddr::V6(peer)))
        );
        let ip = ipv6::Ipv6Packet::new_checked(&p[..]).unwrap();
        assert_eq!((ip.src(), ip.dst(), ip.hop_limit()), (us, peer, 64));
        let pseudo =
            checksum::pseudo_header_sum(ip.src_bytes(), ip.dst_bytes(), 58, payload_len as u32);
        assert_eq!(checksum::finish(checksum::sum(ip.payload(), pseudo)), 0);
        assert_eq!(p[40], V6_ECHO_REPLY);
        assert_eq!(&p[48..], body);
    }
}
