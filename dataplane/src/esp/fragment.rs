//! Fragmenting an inner IPv4 packet before encryption (RFC 4459 "pre-fragmentation"), for
//! packets larger than the tunnel allows whose DF bit is clear. The pipeline calls this when an
//! outbound SA answers `TooBig { may_fragment: true, mtu }` and encapsulates each fragment.

use crate::buf::PacketBuf;
use crate::wire::ipv4::{self, Ipv4Packet, FLAG_DF, FLAG_MF, FRAG_OFFSET_MASK};

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FragmentError {
    #[error("not a well-formed IPv4 packet")]
    BadPacket,
    #[error("DF is set")]
    DontFragment,
    #[error("MTU leaves no room for 8 bytes of payload")]
    MtuTooSmall,
    #[error("more fragments needed than buffers given, or a buffer lacks tailroom")]
    NotEnoughBuffers,
}

/// Splits `packet` into fragments of at most `mtu` bytes written into the (empty) buffers of
/// `out`, in order; returns how many were used. Only the first fragment keeps IP options.
pub fn fragment_ipv4<B: PacketBuf>(
    packet: &[u8],
    mtu: usize,
    out: &mut [B],
) -> Result<usize, FragmentError> {
    let ip = Ipv4Packet::new_checked(packet).map_err(|_| FragmentError::BadPacket)?;
    if ip.dont_fragment() {
        return Err(FragmentError::DontFragment);
    }
    let hl = ip.header_len();
    let payload = ip.payload();
    let base_offset = ip.fragment_offset();
    let original_mf = ip.more_fragments();
    let mut used = 0;
    let mut at = 0;
    while at < payload.len() {
        let this_hl = if used == 0 { hl } else { ipv4::MIN_HEADER_LEN };
        let room = mtu.saturating_sub(this_hl) & !7;
        if room == 0 {
            return Err(FragmentError::MtuTooSmall);
        }
        let chunk = room.min(payload.len() - at);
        let last = at + chunk == payload.len();
        let buf = out.get_mut(used).ok_or(FragmentError::NotEnoughBuffers)?;
        let data = buf
            .append(this_hl + chunk)
            .ok_or(FragmentError::NotEnoughBuffers)?;
        data[..this_hl].copy_from_slice(&packet[..this_hl]);
        data[this_hl..].copy_from_slice(&payload[at..at + chunk]);
        let mut frag = Ipv4Packet::new_unchecked(&mut data[..]);
        if used != 0 {
            frag.set_ihl_minimal();
        }
        let offset_units = ((base_offset + at) / 8) as u16 & FRAG_OFFSET_MASK;
        let mf = if last && !original_mf { 0 } else { FLAG_MF };
        frag.set_flags_fragment(
            offset_units | mf | (ip.flags_fragment() & !(FLAG_MF | FLAG_DF | FRAG_OFFSET_MASK)),
        );
        frag.set_total_len((this_hl + chunk) as u16);
        frag.fill_checksum();
        used += 1;
        at += chunk;
    }
    Ok(used)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::HeapBuf;
    use std::net::Ipv4Addr;

    #[test]
    fn fragments_cover_the_payload_in_eight_byte_units() {
        let mut p = vec![0u8; 1500];
        ipv4::write_header(
            &mut p,
            0,
            1500,
            42,
            0,
            64,
            17,
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
        );
        for (i, b) in p[20..].iter_mut().enumerate() {
            *b = i as u8;
        }
        let mut out: Vec<HeapBuf> = (0..4).map(|_| HeapBuf::with_capacity(2048, 128)).collect();
        let n = fragment_ipv4(&p, 1000, &mut out).unwrap();
        assert_eq!(n, 2);
        let a = Ipv4Packet::new_checked(out[0].data()).unwrap();
        let b = Ipv4Packet::new_checked(out[1].data()).unwrap();
        assert!(a.verify_checksum() && b.verify_checksum());
        assert_eq!(
            (a.total_len(), a.more_fragments(), a.fragment_offset()),
            (20 + 976, true, 0)
        );
        assert_eq!(
            (b.more_fragments(), b.fragment_offset(), b.identification()),
            (false, 976, 42)
        );
        let mut joined = a.payload().to_vec();
        joined.extend_from_slice(b.payload());
        assert_eq!(joined, &p[20..]);
        p[6] = 0x40;
        assert_eq!(
            fragment_ipv4(&p, 1000, &mut out[2..]).unwrap_err(),
            FragmentError::DontFragment
        );
    }
}
