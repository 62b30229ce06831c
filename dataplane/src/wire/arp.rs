//! ARP for IPv4 over Ethernet (RFC 826); other hardware/protocol pairs are `Unsupported`.

use std::net::Ipv4Addr;

use super::{read_u16, write_u16, WireError};

pub const PACKET_LEN: usize = 28;
pub const OP_REQUEST: u16 = 1;
pub const OP_REPLY: u16 = 2;

#[derive(Debug, Clone, Copy)]
pub struct ArpPacket<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < PACKET_LEN {
            return Err(WireError::Truncated);
        }
        if read_u16(b, 0) != 1 || read_u16(b, 2) != 0x0800 || b[4] != 6 || b[5] != 4 {
            return Err(WireError::Unsupported);
        }
        Ok(ArpPacket { buffer })
    }
    pub fn operation(&self) -> u16 {
        read_u16(self.buffer.as_ref(), 6)
    }
    pub fn sender_mac(&self) -> [u8; 6] {
        let mut m = [0u8; 6];
        m.copy_from_slice(&self.buffer.as_ref()[8..14]);
        m
    }
    pub fn sender_ip(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(b[14], b[15], b[16], b[17])
    }
    pub fn target_mac(&self) -> [u8; 6] {
        let mut m = [0u8; 6];
        m.copy_from_slice(&self.buffer.as_ref()[18..24]);
        m
    }
    pub fn target_ip(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(b[24], b[25], b[26], b[27])
    }
}

/// Writes a 28-byte IPv4-over-Ethernet ARP packet.
pub fn write_packet(
    out: &mut [u8],
    operation: u16,
    sender_mac: [u8; 6],
    sender_ip: Ipv4Addr,
    target_mac: [u8; 6],
    target_ip: Ipv4Addr,
) {
    write_u16(out, 0, 1);
    write_u16(out, 2, 0x0800);
    out[4] = 6;
    out[5] = 4;
    write_u16(out, 6, operation);
    out[8..14].copy_from_slice(&sender_mac);
    out[14..18].copy_from_slice(&sender_ip.octets());
    out[18..24].copy_from_slice(&target_mac);
    out[24..28].copy_from_slice(&target_ip.octets());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips_and_foreign_types_are_refused() {
        let mut b = [0u8; 28];
        write_packet(
            &mut b,
            OP_REQUEST,
            [1; 6],
            Ipv4Addr::new(10, 0, 0, 1),
            [0; 6],
            Ipv4Addr::new(10, 0, 0, 2),
        );
        let a = ArpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(
            (a.operation(), a.sender_ip(), a.target_ip()),
            (
                OP_REQUEST,
                Ipv4Addr::new(10, 0, 0, 1),
                Ipv4Addr::new(10, 0, 0, 2)
            )
        );
        assert_eq!(a.sender_mac(), [1; 6]);
        b[5] = 16;
        assert_eq!(
            ArpPacket::new_checked(&b[..]).unwrap_err(),
            WireError::Unsupported
        );
        assert_eq!(
            ArpPacket::new_checked(&b[..27]).unwrap_err(),
            WireError::Truncated
        );
    }
}
