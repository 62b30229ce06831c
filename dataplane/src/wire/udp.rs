//! UDP header view (RFC 768), including the RFC 3948 ESP-in-UDP marker test.

use super::checksum;
use super::{read_u16, read_u32, write_u16, WireError};

pub const HEADER_LEN: usize = 8;
/// IKE and ESP-in-UDP (NAT-T) port.
pub const NAT_T_PORT: u16 = 4500;
pub const IKE_PORT: u16 = 500;

#[derive(Debug, Clone, Copy)]
pub struct UdpPacket<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Checks that the length field covers the header and fits the buffer.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let len = usize::from(read_u16(b, 4));
        if len < HEADER_LEN {
            return Err(WireError::BadLength);
        }
        if len > b.len() {
            return Err(WireError::Truncated);
        }
        Ok(UdpPacket { buffer })
    }
    pub fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }
    pub fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), 0)
    }
    pub fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), 2)
    }
    pub fn len(&self) -> usize {
        usize::from(read_u16(self.buffer.as_ref(), 4))
    }
    pub fn is_empty(&self) -> bool {
        self.len() == HEADER_LEN
    }
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), 6)
    }
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.len()]
    }
    /// RFC 3948 §2.2: on port 4500 a payload starting with four zero bytes is IKE (non-ESP
    /// marker); a one-byte 0xff payload is a NAT keepalive; anything else is ESP.
    pub fn classify_nat_t(&self) -> NatTPayload {
        let p = self.payload();
        if p.len() == 1 && p[0] == 0xff {
            NatTPayload::Keepalive
        } else if p.len() >= 4 && read_u32(p, 0) == 0 {
            NatTPayload::Ike
        } else if p.len() >= 8 {
            NatTPayload::Esp
        } else {
            NatTPayload::Malformed
        }
    }
    /// Verifies the checksum with the given pseudo-header sum (0 means "not computed" for IPv4).
    pub fn verify_checksum(&self, pseudo_sum: u32) -> bool {
        self.checksum() == 0
            || checksum::finish(checksum::sum(
                &self.buffer.as_ref()[..self.len()],
                pseudo_sum,
            )) == 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NatTPayload {
    Esp,
    Ike,
    Keepalive,
    Malformed,
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    pub fn set_src_port(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), 0, v);
    }
    pub fn set_dst_port(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), 2, v);
    }
    pub fn set_len(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), 4, v);
    }
    pub fn set_checksum(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), 6, v);
    }
    /// Computes the checksum over header and payload with the given pseudo-header sum.
    pub fn fill_checksum(&mut self, pseudo_sum: u32) {
        self.set_checksum(0);
        let len = self.len();
        let c = checksum::finish(checksum::sum(&self.buffer.as_ref()[..len], pseudo_sum));
        // An all-zero result is sent as all ones (RFC 768).
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nat_t_classification_follows_rfc3948() {
        let mut b = [0u8; 16];
        write_u16(&mut b, 4, 16);
        assert_eq!(
            UdpPacket::new_checked(&b[..]).unwrap().classify_nat_t(),
            NatTPayload::Ike
        );
        b[8] = 0x01;
        assert_eq!(
            UdpPacket::new_checked(&b[..]).unwrap().classify_nat_t(),
            NatTPayload::Esp
        );
        write_u16(&mut b, 4, 9);
        b[8] = 0xff;
        assert_eq!(
            UdpPacket::new_checked(&b[..]).unwrap().classify_nat_t(),
            NatTPayload::Keepalive
        );
        write_u16(&mut b, 4, 7);
        assert_eq!(
            UdpPacket::new_checked(&b[..]).unwrap_err(),
            WireError::BadLength
        );
        write_u16(&mut b, 4, 17);
        assert_eq!(
            UdpPacket::new_checked(&b[..]).unwrap_err(),
            WireError::Truncated
        );
    }

    #[test]
    fn filled_checksum_verifies() {
        let mut b = [0u8; 12];
        write_u16(&mut b, 4, 12);
        b[8..].copy_from_slice(b"ping");
        let pseudo = checksum::pseudo_header_sum(&[10, 0, 0, 1], &[10, 0, 0, 2], 17, 12);
        let mut u = UdpPacket::new_checked(&mut b[..]).unwrap();
        u.fill_checksum(pseudo);
        assert!(u.verify_checksum(pseudo));
        b[9] ^= 1;
        assert!(!UdpPacket::new_checked(&b[..])
            .unwrap()
            .verify_checksum(pseudo));
    }
}
