//! Zero-copy views over packet bytes: each view checks its header once (`new_checked`) and then
//! reads or writes fields at fixed offsets without further bounds surprises. Parsing never
//! panics on input; it returns a [`WireError`] that callers count.
//!
//! The views borrow any `AsRef<[u8]>` (and `AsMut<[u8]>` for setters), so the same code works on
//! DPDK mbuf data, heap buffers and test vectors.

pub mod ah;
pub mod arp;
pub mod checksum;
pub mod esp;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod udp;

/// Why a header could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum WireError {
    #[error("buffer shorter than the header or its length fields claim")]
    Truncated,
    #[error("unexpected IP version")]
    BadVersion,
    #[error("header length field out of range")]
    BadHeaderLength,
    #[error("length field inconsistent with the buffer")]
    BadLength,
    #[error("checksum mismatch")]
    BadChecksum,
    #[error("unsupported hardware or protocol type")]
    Unsupported,
}

/// IP protocol numbers the dataplane looks at.
pub mod ip_proto {
    pub const ICMP: u8 = 1;
    pub const IPV4_IN_IP: u8 = 4;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const IPV6_IN_IP: u8 = 41;
    pub const IPV6_FRAGMENT: u8 = 44;
    pub const ESP: u8 = 50;
    pub const AH: u8 = 51;
    pub const ICMPV6: u8 = 58;
}

#[inline]
pub fn read_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
pub fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
pub fn write_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline]
pub fn write_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}
