//! AH (RFC 4302) in tunnel mode: the ICV covers the outer IP header with its mutable fields
//! zeroed (§3.3.3.1), the AH header with a zero ICV, and everything after it.

use crate::crypto::IcvMac;
use crate::wire::ah::FIXED_LEN;
use crate::wire::ipv6;

/// Longest ICV the supported algorithms give (SHA-256-128); AH pads to 8-byte alignment.
const MAX_ICV: usize = 16;

/// Bytes of AH header (with ICV) for an ICV of `icv_len`: a multiple of 8 so that it suits IPv6
/// as well as IPv4 (both 96-bit ICVs give 24).
pub fn header_len(icv_len: usize) -> usize {
    (FIXED_LEN + icv_len).div_ceil(8) * 8
}

/// The outer header as the ICV sees it: TOS/traffic class, flow label, flags, fragment offset,
/// TTL/hop limit and checksum set to zero.
fn immutable_view(packet: &[u8], ip_len: usize) -> [u8; ipv6::HEADER_LEN] {
    let mut hdr = [0u8; ipv6::HEADER_LEN];
    hdr[..ip_len].copy_from_slice(&packet[..ip_len]);
    if ip_len == ipv6::HEADER_LEN {
        hdr[0] &= 0xf0;
        hdr[1] = 0;
        hdr[2] = 0;
        hdr[3] = 0;
        hdr[7] = 0;
    } else {
        hdr[1] = 0;
        hdr[6..9].fill(0);
        hdr[10] = 0;
        hdr[11] = 0;
    }
    hdr
}

/// Computes the ICV of `packet` = outer IP header (`ip_len` bytes, option-less) | AH | rest.
/// The ICV field in the packet must already be zero.
pub fn compute_icv(
    mac: &dyn IcvMac,
    packet: &[u8],
    ip_len: usize,
    seq_high: Option<u32>,
    out: &mut [u8],
) {
    let hdr = immutable_view(packet, ip_len);
    let high = seq_high.unwrap_or(0).to_be_bytes();
    let esn = if seq_high.is_some() { &high[..] } else { &[] };
    mac.compute(&[&hdr[..ip_len], &packet[ip_len..], esn], out);
}

/// Verifies the ICV of a received packet in place: zeroes the ICV field, recomputes and compares.
pub fn verify_icv(
    mac: &dyn IcvMac,
    packet: &mut [u8],
    ip_len: usize,
    seq_high: Option<u32>,
) -> bool {
    let n = mac.icv_len();
    let icv_at = ip_len + FIXED_LEN;
    let mut received = [0u8; MAX_ICV];
    received[..n].copy_from_slice(&packet[icv_at..icv_at + n]);
    packet[icv_at..icv_at + n].fill(0);
    let mut expected = [0u8; MAX_ICV];
    compute_icv(mac, packet, ip_len, seq_high, &mut expected[..n]);
    crate::crypto::ct_eq(&expected[..n], &received[..n])
}
