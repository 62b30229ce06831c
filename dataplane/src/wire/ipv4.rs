//! IPv4 header view (RFC 791).

use std::net::Ipv4Addr;

use super::checksum;
use super::{read_u16, write_u16, WireError};

pub const MIN_HEADER_LEN: usize = 20;
/// Flag bits in the flags/fragment-offset word.
pub const FLAG_DF: u16 = 0x4000;
pub const FLAG_MF: u16 = 0x2000;
pub const FRAG_OFFSET_MASK: u16 = 0x1fff;

/// A checked IPv4 packet: version 4, IHL within the buffer, total length within the buffer.
#[derive(Debug, Clone, Copy)]
pub struct Ipv4Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Checks version, IHL and total length against the buffer (the buffer may carry trailing
    /// padding beyond total length, as Ethernet minimum frames do). Does not verify the checksum.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if b[0] >> 4 != 4 {
            return Err(WireError::BadVersion);
        }
        let ihl = usize::from(b[0] & 0x0f) * 4;
        if ihl < MIN_HEADER_LEN {
            return Err(WireError::BadHeaderLength);
        }
        let total = usize::from(read_u16(b, 2));
        if total < ihl {
            return Err(WireError::BadLength);
        }
        if total > b.len() {
            return Err(WireError::Truncated);
        }
        Ok(Ipv4Packet { buffer })
    }

    /// Wraps without checking; for buffers the caller has just built.
    pub fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[0] & 0x0f) * 4
    }
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[1]
    }
    pub fn total_len(&self) -> usize {
        usize::from(read_u16(self.buffer.as_ref(), 2))
    }
    pub fn identification(&self) -> u16 {
        read_u16(self.buffer.as_ref(), 4)
    }
    pub fn flags_fragment(&self) -> u16 {
        read_u16(self.buffer.as_ref(), 6)
    }
    pub fn dont_fragment(&self) -> bool {
        self.flags_fragment() & FLAG_DF != 0
    }
    pub fn more_fragments(&self) -> bool {
        self.flags_fragment() & FLAG_MF != 0
    }
    /// Fragment offset in bytes.
    pub fn fragment_offset(&self) -> usize {
        usize::from(self.flags_fragment() & FRAG_OFFSET_MASK) * 8
    }
    pub fn is_fragment(&self) -> bool {
        self.flags_fragment() & (FLAG_MF | FRAG_OFFSET_MASK) != 0
    }
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[8]
    }
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[9]
    }
    pub fn header_checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), 10)
    }
    pub fn src(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(b[12], b[13], b[14], b[15])
    }
    pub fn dst(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(b[16], b[17], b[18], b[19])
    }
    pub fn src_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[12..16]
    }
    pub fn dst_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[16..20]
    }
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(&self.buffer.as_ref()[..self.header_len()]) == 0
    }
    /// Bytes after the header up to total length.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..self.total_len()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets IHL to 5 (no options); for headers rewritten without their options.
    pub fn set_ihl_minimal(&mut self) {
        self.buffer.as_mut()[0] = 0x45;
    }
    pub fn set_dscp_ecn(&mut self, v: u8) {
        self.buffer.as_mut()[1] = v;
    }
    pub fn set_total_len(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), 2, v);
    }
    pub fn set_identification(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), 4, v);
    }
    pub fn set_flags_fragment(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), 6, v);
    }
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[8] = v;
    }
    pub fn set_protocol(&mut self, v: u8) {
        self.buffer.as_mut()[9] = v;
    }
    pub fn set_src(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[12..16].copy_from_slice(&a.octets());
    }
    pub fn set_dst(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[16..20].copy_from_slice(&a.octets());
    }
    /// Recomputes the header checksum from scratch.
    pub fn fill_checksum(&mut self) {
        let hl = self.header_len();
        let b = self.buffer.as_mut();
        write_u16(b, 10, 0);
        let c = checksum::checksum(&b[..hl]);
        write_u16(b, 10, c);
    }
    /// Decrements TTL and patches the checksum incrementally (RFC 1624); returns the new TTL,
    /// or `None` (and no change) when the TTL is already 0 or 1 and the packet must not be forwarded.
    pub fn decrement_ttl(&mut self) -> Option<u8> {
        let b = self.buffer.as_mut();
        let ttl = b[8];
        if ttl <= 1 {
            return None;
        }
        let old = read_u16(b, 8);
        b[8] = ttl - 1;
        let new = read_u16(b, 8);
        let c = checksum::update_word(read_u16(b, 10), old, new);
        write_u16(b, 10, c);
        Some(ttl - 1)
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (h, t) = (self.header_len(), self.total_len());
        &mut self.buffer.as_mut()[h..t]
    }
}

/// Writes a 20-byte option-less IPv4 header into `out[..20]` with the checksum filled.
#[allow(clippy::too_many_arguments)]
pub fn write_header(
    out: &mut [u8],
    dscp_ecn: u8,
    total_len: u16,
    identification: u16,
    flags_fragment: u16,
    ttl: u8,
    protocol: u8,
    src: Ipv4Addr,
    dst: Ipv4Addr,
) {
    out[0] = 0x45;
    out[1] = dscp_ecn;
    write_u16(out, 2, total_len);
    write_u16(out, 4, identification);
    write_u16(out, 6, flags_fragment);
    out[8] = ttl;
    out[9] = protocol;
    write_u16(out, 10, 0);
    out[12..16].copy_from_slice(&src.octets());
    out[16..20].copy_from_slice(&dst.octets());
    let c = checksum::checksum(&out[..20]);
    write_u16(out, 10, c);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut b = vec![0u8; 28];
        write_header(
            &mut b,
            0xb8,
            28,
            7,
            FLAG_DF,
            64,
            17,
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
        );
        b
    }

    #[test]
    fn written_header_parses_and_verifies() {
        let b = sample();
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(p.total_len(), 28);
        assert!(p.dont_fragment() && !p.is_fragment());
        assert_eq!(p.dst(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(p.payload().len(), 8);
    }

    #[test]
    fn ttl_decrement_keeps_checksum_valid_and_stops_at_one() {
        let mut b = sample();
        b[8] = 2;
        Ipv4Packet::new_unchecked(&mut b[..]).fill_checksum();
        let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        assert_eq!(p.decrement_ttl(), Some(1));
        assert!(p.verify_checksum());
        assert_eq!(p.decrement_ttl(), None);
    }

    #[test]
    fn malformed_headers_are_typed_errors() {
        let b = sample();
        assert_eq!(
            Ipv4Packet::new_checked(&b[..19]).unwrap_err(),
            WireError::Truncated
        );
        let mut v6 = b.clone();
        v6[0] = 0x65;
        assert_eq!(
            Ipv4Packet::new_checked(&v6[..]).unwrap_err(),
            WireError::BadVersion
        );
        let mut ihl = b.clone();
        ihl[0] = 0x44;
        assert_eq!(
            Ipv4Packet::new_checked(&ihl[..]).unwrap_err(),
            WireError::BadHeaderLength
        );
        let mut long = b.clone();
        long[3] = 200;
        assert_eq!(
            Ipv4Packet::new_checked(&long[..]).unwrap_err(),
            WireError::Truncated
        );
    }
}
