//! IPv6 fixed header view (RFC 8200). Extension headers are left to the caller: the ESP path
//! only needs the fixed header (our own outer headers carry none).

use std::net::Ipv6Addr;

use super::{read_u16, read_u32, write_u16, write_u32, WireError};

pub const HEADER_LEN: usize = 40;

#[derive(Debug, Clone, Copy)]
pub struct Ipv6Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Checks version and that the payload length fits the buffer.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if b[0] >> 4 != 6 {
            return Err(WireError::BadVersion);
        }
        if HEADER_LEN + usize::from(read_u16(b, 4)) > b.len() {
            return Err(WireError::Truncated);
        }
        Ok(Ipv6Packet { buffer })
    }
    pub fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }
    pub fn into_inner(self) -> T {
        self.buffer
    }
    pub fn traffic_class(&self) -> u8 {
        let w = read_u32(self.buffer.as_ref(), 0);
        (w >> 20) as u8
    }
    pub fn flow_label(&self) -> u32 {
        read_u32(self.buffer.as_ref(), 0) & 0x000f_ffff
    }
    pub fn payload_len(&self) -> usize {
        usize::from(read_u16(self.buffer.as_ref(), 4))
    }
    /// Header plus payload length.
    pub fn total_len(&self) -> usize {
        HEADER_LEN + self.payload_len()
    }
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[6]
    }
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[7]
    }
    pub fn src(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[8..24]);
        Ipv6Addr::from(a)
    }
    pub fn dst(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[24..40]);
        Ipv6Addr::from(a)
    }
    pub fn src_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[8..24]
    }
    pub fn dst_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[24..40]
    }
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.total_len()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    pub fn set_traffic_class(&mut self, tc: u8) {
        let w = read_u32(self.buffer.as_ref(), 0);
        write_u32(
            self.buffer.as_mut(),
            0,
            (w & 0xf00f_ffff) | (u32::from(tc) << 20),
        );
    }
    pub fn set_flow_label(&mut self, label: u32) {
        let w = read_u32(self.buffer.as_ref(), 0);
        write_u32(
            self.buffer.as_mut(),
            0,
            (w & 0xfff0_0000) | (label & 0x000f_ffff),
        );
    }
    pub fn set_payload_len(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), 4, v);
    }
    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[6] = v;
    }
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[7] = v;
    }
    /// Decrements the hop limit; `None` (and no change) when it is 0 or 1.
    pub fn decrement_hop_limit(&mut self) -> Option<u8> {
        let h = self.hop_limit();
        if h <= 1 {
            return None;
        }
        self.set_hop_limit(h - 1);
        Some(h - 1)
    }
}

/// Writes a fixed IPv6 header into `out[..40]`.
pub fn write_header(
    out: &mut [u8],
    traffic_class: u8,
    payload_len: u16,
    next_header: u8,
    hop_limit: u8,
    src: Ipv6Addr,
    dst: Ipv6Addr,
) {
    write_u32(out, 0, (6 << 28) | (u32::from(traffic_class) << 20));
    write_u16(out, 4, payload_len);
    out[6] = next_header;
    out[7] = hop_limit;
    out[8..24].copy_from_slice(&src.octets());
    out[24..40].copy_from_slice(&dst.octets());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_truncation_is_reported() {
        let mut b = vec![0u8; 48];
        let (s, d) = (
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        );
        write_header(&mut b, 0xb8, 8, 17, 64, s, d);
        let mut p = Ipv6Packet::new_checked(&mut b[..]).unwrap();
        assert_eq!(
            (p.traffic_class(), p.next_header(), p.src(), p.dst()),
            (0xb8, 17, s, d)
        );
        p.set_flow_label(0x12345);
        assert_eq!((p.traffic_class(), p.flow_label()), (0xb8, 0x12345));
        assert_eq!(p.decrement_hop_limit(), Some(63));
        assert_eq!(
            Ipv6Packet::new_checked(&b[..47]).unwrap_err(),
            WireError::Truncated
        );
        b[0] = 0x45;
        assert_eq!(
            Ipv6Packet::new_checked(&b[..]).unwrap_err(),
            WireError::BadVersion
        );
    }
}
