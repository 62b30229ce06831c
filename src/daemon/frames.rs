//! The few frames the control thread writes itself: ARP requests and replies, ICMP echo
//! replies from the gateway's addresses, and IKE datagrams in UDP/IPv4/Ethernet.

use std::net::{Ipv4Addr, SocketAddrV4};

use dataplane::wire::{arp, checksum, ethernet, icmp, ipv4, udp};

pub const BROADCAST: [u8; 6] = [0xff; 6];

pub fn arp_request(src_mac: [u8; 6], src_ip: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut frame = vec![0u8; ethernet::HEADER_LEN + arp::PACKET_LEN];
    ethernet::write_header(&mut frame, BROADCAST, src_mac, ethernet::ETHERTYPE_ARP);
    arp::write_packet(
        &mut frame[ethernet::HEADER_LEN..],
        arp::OP_REQUEST,
        src_mac,
        src_ip,
        [0; 6],
        target,
    );
    frame
}

pub fn arp_reply(our_mac: [u8; 6], our_ip: Ipv4Addr, to_mac: [u8; 6], to_ip: Ipv4Addr) -> Vec<u8> {
    let mut frame = vec![0u8; ethernet::HEADER_LEN + arp::PACKET_LEN];
    ethernet::write_header(&mut frame, to_mac, our_mac, ethernet::ETHERTYPE_ARP);
    arp::write_packet(
        &mut frame[ethernet::HEADER_LEN..],
        arp::OP_REPLY,
        our_mac,
        our_ip,
        to_mac,
        to_ip,
    );
    frame
}

/// The echo reply to an echo request frame addressed to us, or `None` if it is not one.
pub fn icmp_echo_reply(request: &[u8], our_mac: [u8; 6]) -> Option<Vec<u8>> {
    let frame = ethernet::EthernetFrame::new_checked(request).ok()?;
    let l2 = frame.header_len();
    let peer_mac = frame.src();
    let ip = ipv4::Ipv4Packet::new_checked(&request[l2..]).ok()?;
    if ip.protocol() != dataplane::wire::ip_proto::ICMP || ip.is_fragment() {
        return None;
    }
    let header_len = ip.header_len();
    let total = ip.total_len();
    let (src, dst) = (ip.src(), ip.dst());
    let message = icmp::IcmpMessage::new_checked(&request[l2 + header_len..l2 + total]).ok()?;
    if message.msg_type() != icmp::V4_ECHO_REQUEST {
        return None;
    }
    let body = &request[l2 + header_len..l2 + total];
    let mut reply = vec![0u8; ethernet::HEADER_LEN + 20 + body.len()];
    ethernet::write_header(&mut reply, peer_mac, our_mac, ethernet::ETHERTYPE_IPV4);
    write_ipv4(
        &mut reply[ethernet::HEADER_LEN..],
        dst,
        src,
        dataplane::wire::ip_proto::ICMP,
        body.len(),
    );
    let icmp_out = &mut reply[ethernet::HEADER_LEN + 20..];
    icmp_out.copy_from_slice(body);
    icmp_out[0] = icmp::V4_ECHO_REPLY;
    icmp_out[2..4].copy_from_slice(&[0, 0]);
    let sum = checksum::finish(checksum::sum(icmp_out, 0));
    icmp_out[2..4].copy_from_slice(&sum.to_be_bytes());
    Some(reply)
}

/// An IKE datagram (already carrying the non-ESP marker when sent from port 4500).
pub fn udp_frame(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    local: SocketAddrV4,
    remote: SocketAddrV4,
    payload: &[u8],
) -> Vec<u8> {
    let udp_len = udp::HEADER_LEN + payload.len();
    let mut frame = vec![0u8; ethernet::HEADER_LEN + 20 + udp_len];
    ethernet::write_header(&mut frame, dst_mac, src_mac, ethernet::ETHERTYPE_IPV4);
    write_ipv4(
        &mut frame[ethernet::HEADER_LEN..],
        *local.ip(),
        *remote.ip(),
        dataplane::wire::ip_proto::UDP,
        udp_len,
    );
    let datagram = &mut frame[ethernet::HEADER_LEN + 20..];
    datagram[0..2].copy_from_slice(&local.port().to_be_bytes());
    datagram[2..4].copy_from_slice(&remote.port().to_be_bytes());
    datagram[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    datagram[8..].copy_from_slice(payload);
    // A zero UDP checksum is valid for IPv4 and is what RFC 3948 recommends on port 4500.
    frame
}

fn write_ipv4(out: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, payload_len: usize) {
    out[0] = 0x45;
    out[1] = 0;
    out[2..4].copy_from_slice(&((20 + payload_len) as u16).to_be_bytes());
    out[4..6].copy_from_slice(&[0, 0]);
    out[6..8].copy_from_slice(&ipv4::FLAG_DF.to_be_bytes());
    out[8] = 64;
    out[9] = protocol;
    out[12..16].copy_from_slice(&src.octets());
    out[16..20].copy_from_slice(&dst.octets());
    ipv4::Ipv4Packet::new_unchecked(&mut out[..20]).fill_checksum();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_reply_swaps_addresses_and_keeps_the_payload() {
        let mut request = vec![0u8; 14 + 20 + 16];
        ethernet::write_header(&mut request, [2; 6], [4; 6], ethernet::ETHERTYPE_IPV4);
        write_ipv4(
            &mut request[14..],
            Ipv4Addr::new(172, 16, 1, 10),
            Ipv4Addr::new(172, 16, 1, 1),
            1,
            16,
        );
        request[34] = icmp::V4_ECHO_REQUEST;
        request[38..50].copy_from_slice(b"ping payload");
        let reply = icmp_echo_reply(&request, [2; 6]).unwrap();
        assert_eq!(&reply[0..6], &[4; 6]);
        let ip = ipv4::Ipv4Packet::new_checked(&reply[14..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.src(), Ipv4Addr::new(172, 16, 1, 1));
        assert_eq!(ip.dst(), Ipv4Addr::new(172, 16, 1, 10));
        assert_eq!(reply[34], icmp::V4_ECHO_REPLY);
        assert_eq!(&reply[38..50], b"ping payload");
        assert_eq!(checksum::finish(checksum::sum(&reply[34..], 0)), 0);
    }

    #[test]
    fn arp_frames_have_the_right_shape() {
        let request = arp_request(
            [2; 6],
            Ipv4Addr::new(10, 1, 1, 1),
            Ipv4Addr::new(10, 1, 1, 254),
        );
        let parsed = arp::ArpPacket::new_checked(&request[14..]).unwrap();
        assert_eq!(parsed.operation(), arp::OP_REQUEST);
        assert_eq!(parsed.target_ip(), Ipv4Addr::new(10, 1, 1, 254));
        assert_eq!(&request[0..6], &BROADCAST);
    }
}
