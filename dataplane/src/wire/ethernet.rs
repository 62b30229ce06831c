//! Ethernet II frame view with 802.1Q / 802.1ad tag skipping.

use super::{read_u16, write_u16, WireError};

pub const HEADER_LEN: usize = 14;
pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const ETHERTYPE_VLAN: u16 = 0x8100;
pub const ETHERTYPE_QINQ: u16 = 0x88a8;
/// More stacked tags than this is treated as malformed rather than walked.
const MAX_TAGS: usize = 2;

#[derive(Debug, Clone, Copy)]
pub struct EthernetFrame<T> {
    buffer: T,
    /// Offset of the final ethertype (after any VLAN tags).
    ethertype_at: usize,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let mut at = 12;
        let mut tags = 0;
        while matches!(read_u16(b, at), ETHERTYPE_VLAN | ETHERTYPE_QINQ) {
            tags += 1;
            if tags > MAX_TAGS {
                return Err(WireError::Unsupported);
            }
            at += 4;
            if b.len() < at + 2 {
                return Err(WireError::Truncated);
            }
        }
        Ok(EthernetFrame {
            buffer,
            ethertype_at: at,
        })
    }
    pub fn dst(&self) -> [u8; 6] {
        let mut m = [0u8; 6];
        m.copy_from_slice(&self.buffer.as_ref()[0..6]);
        m
    }
    pub fn src(&self) -> [u8; 6] {
        let mut m = [0u8; 6];
        m.copy_from_slice(&self.buffer.as_ref()[6..12]);
        m
    }
    /// The ethertype after VLAN tags.
    pub fn ethertype(&self) -> u16 {
        read_u16(self.buffer.as_ref(), self.ethertype_at)
    }
    /// Innermost VLAN id, if tagged.
    pub fn vlan_id(&self) -> Option<u16> {
        (self.ethertype_at > 12)
            .then(|| read_u16(self.buffer.as_ref(), self.ethertype_at - 2) & 0x0fff)
    }
    /// Bytes of L2 header including tags: what the pipeline strips.
    pub fn header_len(&self) -> usize {
        self.ethertype_at + 2
    }
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

/// Writes an untagged Ethernet header into `out[..14]`.
pub fn write_header(out: &mut [u8], dst: [u8; 6], src: [u8; 6], ethertype: u16) {
    out[0..6].copy_from_slice(&dst);
    out[6..12].copy_from_slice(&src);
    write_u16(out, 12, ethertype);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlan_tags_are_skipped_and_bounded() {
        let mut f = vec![0u8; 22];
        write_header(&mut f, [1; 6], [2; 6], ETHERTYPE_VLAN);
        write_u16(&mut f, 14, 0x2064);
        write_u16(&mut f, 16, ETHERTYPE_IPV6);
        let e = EthernetFrame::new_checked(&f[..]).unwrap();
        assert_eq!(
            (e.ethertype(), e.vlan_id(), e.header_len()),
            (ETHERTYPE_IPV6, Some(0x064), 18)
        );
        assert_eq!(
            EthernetFrame::new_checked(&f[..16]).unwrap_err(),
            WireError::Truncated
        );
        let mut deep = vec![0u8; 40];
        for i in 0..4 {
            write_u16(&mut deep, 12 + 4 * i, ETHERTYPE_VLAN);
        }
        assert_eq!(
            EthernetFrame::new_checked(&deep[..]).unwrap_err(),
            WireError::Unsupported
        );
    }
}
