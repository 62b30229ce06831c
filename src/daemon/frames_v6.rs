//! IPv6 frames the control thread writes: neighbor solicitations and advertisements (RFC 4861),
//! echo replies, and IKE datagrams (whose UDP checksum IPv6 makes mandatory).

use std::net::{Ipv6Addr, SocketAddrV6};

use dataplane::wire::{checksum, ethernet, ip_proto, ipv6};

pub const NEIGHBOR_SOLICITATION: u8 = 135;
pub const NEIGHBOR_ADVERTISEMENT: u8 = 136;
const ECHO_REQUEST: u8 = 128;
const ECHO_REPLY: u8 = 129;
const OPTION_SOURCE_LINK_LAYER: u8 = 1;
const OPTION_TARGET_LINK_LAYER: u8 = 2;
/// Solicited and Override (RFC 4861 §4.4).
const NA_SOLICITED_OVERRIDE: u8 = 0x60;
/// ND messages must arrive with hop limit 255, proving they come from the link.
const ND_HOP_LIMIT: u8 = 255;

/// The solicited-node multicast group of `target` and its Ethernet address (RFC 4291, 2464).
pub fn solicited_node(target: Ipv6Addr) -> (Ipv6Addr, [u8; 6]) {
    let t = target.octets();
    let group = Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(t[13]),
        (u16::from(t[14]) << 8) | u16::from(t[15]),
    );
    (group, [0x33, 0x33, 0xff, t[13], t[14], t[15]])
}

fn multicast_mac(group: Ipv6Addr) -> [u8; 6] {
    let g = group.octets();
    [0x33, 0x33, g[12], g[13], g[14], g[15]]
}

/// An IPv6 packet with an ICMPv6 body, framed; the checksum covers the pseudo-header.
fn icmpv6_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    body: &[u8],
) -> Vec<u8> {
    let mut frame = vec![0u8; ethernet::HEADER_LEN + ipv6::HEADER_LEN + body.len()];
    ethernet::write_header(&mut frame, dst_mac, src_mac, ethernet::ETHERTYPE_IPV6);
    ipv6::write_header(
        &mut frame[ethernet::HEADER_LEN..],
        0,
        body.len() as u16,
        ip_proto::ICMPV6,
        hop_limit,
        src,
        dst,
    );
    let icmp = &mut frame[ethernet::HEADER_LEN + ipv6::HEADER_LEN..];
    icmp.copy_from_slice(body);
    icmp[2..4].copy_from_slice(&[0, 0]);
    let pseudo = checksum::pseudo_header_sum(
        &src.octets(),
        &dst.octets(),
        ip_proto::ICMPV6,
        body.len() as u32,
    );
    let sum = checksum::finish(checksum::sum(icmp, pseudo));
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    frame
}

pub fn neighbor_solicitation(src_mac: [u8; 6], src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let (group, group_mac) = solicited_node(target);
    let mut body = vec![0u8; 32];
    body[0] = NEIGHBOR_SOLICITATION;
    body[8..24].copy_from_slice(&target.octets());
    body[24] = OPTION_SOURCE_LINK_LAYER;
    body[25] = 1;
    body[26..32].copy_from_slice(&src_mac);
    icmpv6_frame(group_mac, src_mac, src, group, ND_HOP_LIMIT, &body)
}

pub fn neighbor_advertisement(
    our_mac: [u8; 6],
    target: Ipv6Addr,
    to_mac: [u8; 6],
    to: Ipv6Addr,
) -> Vec<u8> {
    // An answer to duplicate address detection (unspecified source) goes to all nodes.
    let (dst, dst_mac, flags) = if to.is_unspecified() {
        let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
        (all_nodes, multicast_mac(all_nodes), 0x20)
    } else {
        (to, to_mac, NA_SOLICITED_OVERRIDE)
    };
    let mut body = vec![0u8; 32];
    body[0] = NEIGHBOR_ADVERTISEMENT;
    body[4] = flags;
    body[8..24].copy_from_slice(&target.octets());
    body[24] = OPTION_TARGET_LINK_LAYER;
    body[25] = 1;
    body[26..32].copy_from_slice(&our_mac);
    icmpv6_frame(dst_mac, our_mac, target, dst, ND_HOP_LIMIT, &body)
}

/// What an ND message says: its type, target, and the link-layer address option if present.
pub struct NeighborMessage {
    pub kind: u8,
    pub target: Ipv6Addr,
    pub link_layer: Option<[u8; 6]>,
}

/// Parses an NS or NA body (the ICMPv6 message); `None` for anything else or malformed.
pub fn parse_neighbor_message(icmp: &[u8], hop_limit: u8) -> Option<NeighborMessage> {
    let kind = *icmp.first()?;
    if (kind != NEIGHBOR_SOLICITATION && kind != NEIGHBOR_ADVERTISEMENT)
        || hop_limit != ND_HOP_LIMIT
    {
        return None;
    }
    let target: [u8; 16] = icmp.get(8..24)?.try_into().ok()?;
    let mut link_layer = None;
    let mut options = icmp.get(24..)?;
    while options.len() >= 8 {
        let length = usize::from(options[1]) * 8;
        if length == 0 || length > options.len() {
            break;
        }
        if options[0] == OPTION_SOURCE_LINK_LAYER || options[0] == OPTION_TARGET_LINK_LAYER {
            link_layer = options[2..8].try_into().ok();
        }
        options = &options[length..];
    }
    Some(NeighborMessage {
        kind,
        target: Ipv6Addr::from(target),
        link_layer,
    })
}

/// The echo reply to an ICMPv6 echo request `icmp` from `from` to `ours`.
pub fn echo_reply(
    our_mac: [u8; 6],
    ours: Ipv6Addr,
    to_mac: [u8; 6],
    to: Ipv6Addr,
    icmp: &[u8],
) -> Option<Vec<u8>> {
    if icmp.first() != Some(&ECHO_REQUEST) || icmp.len() < 8 {
        return None;
    }
    let mut body = icmp.to_vec();
    body[0] = ECHO_REPLY;
    Some(icmpv6_frame(to_mac, our_mac, ours, to, 64, &body))
}

pub fn udp_frame(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    local: SocketAddrV6,
    remote: SocketAddrV6,
    payload: &[u8],
) -> Vec<u8> {
    let udp_len = dataplane::wire::udp::HEADER_LEN + payload.len();
    let mut frame = vec![0u8; ethernet::HEADER_LEN + ipv6::HEADER_LEN + udp_len];
    ethernet::write_header(&mut frame, dst_mac, src_mac, ethernet::ETHERTYPE_IPV6);
    ipv6::write_header(
        &mut frame[ethernet::HEADER_LEN..],
        0,
        udp_len as u16,
        ip_proto::UDP,
        64,
        *local.ip(),
        *remote.ip(),
    );
    let datagram = &mut frame[ethernet::HEADER_LEN + ipv6::HEADER_LEN..];
    datagram[0..2].copy_from_slice(&local.port().to_be_bytes());
    datagram[2..4].copy_from_slice(&remote.port().to_be_bytes());
    datagram[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    datagram[8..].copy_from_slice(payload);
    let pseudo = checksum::pseudo_header_sum(
        &local.ip().octets(),
        &remote.ip().octets(),
        ip_proto::UDP,
        udp_len as u32,
    );
    let mut sum = checksum::finish(checksum::sum(datagram, pseudo));
    if sum == 0 {
        sum = 0xffff;
    }
    datagram[6..8].copy_from_slice(&sum.to_be_bytes());
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifies(frame: &[u8]) -> bool {
        let ip = ipv6::Ipv6Packet::new_checked(&frame[14..]).unwrap();
        let pseudo = checksum::pseudo_header_sum(
            &ip.src().octets(),
            &ip.dst().octets(),
            ip.next_header(),
            ip.payload_len() as u32,
        );
        checksum::finish(checksum::sum(ip.payload(), pseudo)) == 0
    }

    #[test]
    fn solicitation_goes_to_the_solicited_node_group_and_parses_back() {
        let target: Ipv6Addr = "fd00:1::10".parse().unwrap();
        let frame = neighbor_solicitation([2; 6], "fd00:1::1".parse().unwrap(), target);
        assert_eq!(&frame[0..6], &[0x33, 0x33, 0xff, 0, 0, 0x10]);
        let ip = ipv6::Ipv6Packet::new_checked(&frame[14..]).unwrap();
        assert_eq!(ip.dst(), "ff02::1:ff00:10".parse::<Ipv6Addr>().unwrap());
        assert!(verifies(&frame));
        let parsed = parse_neighbor_message(ip.payload(), ip.hop_limit()).unwrap();
        assert_eq!(parsed.kind, NEIGHBOR_SOLICITATION);
        assert_eq!(parsed.target, target);
        assert_eq!(parsed.link_layer, Some([2; 6]));
        // Off-link (hop limit below 255) is ignored.
        assert!(parse_neighbor_message(ip.payload(), 64).is_none());
    }

    #[test]
    fn advertisement_and_echo_reply_checksums_verify() {
        let na = neighbor_advertisement(
            [2; 6],
            "fd00:1::1".parse().unwrap(),
            [4; 6],
            "fd00:1::10".parse().unwrap(),
        );
        assert!(verifies(&na));
        assert_eq!(&na[0..6], &[4; 6]);
        let request = [ECHO_REQUEST, 0, 0, 0, 0, 1, 0, 2, b'h', b'i'];
        let reply = echo_reply(
            [2; 6],
            "fd00:1::1".parse().unwrap(),
            [4; 6],
            "fd00:1::10".parse().unwrap(),
            &request,
        )
        .unwrap();
        assert!(verifies(&reply));
        assert_eq!(reply[14 + 40], ECHO_REPLY);
        let ike = udp_frame(
            [2; 6],
            [4; 6],
            "[fd00::1]:500".parse().unwrap(),
            "[fd00::2]:500".parse().unwrap(),
            b"isakmp",
        );
        assert!(verifies(&ike));
    }
}
