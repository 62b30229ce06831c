//! Reassembly of fragmented outer IPv4 packets (ESP fragmented on the way from the peer), in a
//! small fixed table allocated once: a bounded number of datagrams in flight, each of bounded
//! size, each dropped after a timeout. The pipeline runs it before the SPI lookup, because only
//! the first fragment carries the SPI.

use super::fragment_slots::FragmentSlots;
use crate::buf::PacketBuf;
use crate::wire::ipv4::{self, Ipv4Packet};

/// Largest reassembled datagram (a jumbo frame); larger ones are dropped.
pub const MAX_DATAGRAM: usize = 9216;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReassemblyOutcome {
    /// Not a fragment: the buffer is untouched.
    NotFragment,
    /// Stored; the caller may reuse the buffer.
    Held,
    /// The buffer now holds the whole datagram.
    Complete,
    Dropped(ReassemblyDrop),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReassemblyDrop {
    Malformed,
    TooLarge,
    /// Every slot is busy with a datagram that has not timed out.
    TableFull,
    /// The completed datagram does not fit the buffer's room.
    NoRoom,
    /// Fragments that overlap or contradict each other (IPv6 drops the datagram, RFC 5722).
    Overlapping,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Key {
    src: [u8; 4],
    dst: [u8; 4],
    id: u16,
    protocol: u8,
}

pub struct Reassembler {
    slots: FragmentSlots<Key, { ipv4::MIN_HEADER_LEN }>,
}

impl Reassembler {
    /// Allocates `slots` datagram buffers of [`MAX_DATAGRAM`] bytes up front.
    pub fn new(slots: usize, timeout_seconds: u64) -> Self {
        Reassembler {
            slots: FragmentSlots::new(slots, timeout_seconds),
        }
    }

    /// Datagrams abandoned because they did not complete in time.
    pub fn timeouts(&self) -> u64 {
        self.slots.timeouts
    }

    /// Offers one outer IPv4 packet at time `now` (seconds).
    pub fn push<B: PacketBuf>(&mut self, buf: &mut B, now: u64) -> ReassemblyOutcome {
        let Ok(ip) = Ipv4Packet::new_checked(buf.data()) else {
            return ReassemblyOutcome::Dropped(ReassemblyDrop::Malformed);
        };
        if !ip.is_fragment() {
            return ReassemblyOutcome::NotFragment;
        }
        let key = Key {
            src: ip.src().octets(),
            dst: ip.dst().octets(),
            id: ip.identification(),
            protocol: ip.protocol(),
        };
        let offset = ip.fragment_offset();
        let payload = ip.payload();
        let end = offset + payload.len();
        if end > MAX_DATAGRAM {
            return ReassemblyOutcome::Dropped(ReassemblyDrop::TooLarge);
        }
        if ip.more_fragments() && payload.len() % 8 != 0 || payload.is_empty() {
            return ReassemblyOutcome::Dropped(ReassemblyDrop::Malformed);
        }
        let Some(slot) = self.slots.slot_for(key, now) else {
            return ReassemblyOutcome::Dropped(ReassemblyDrop::TableFull);
        };
        slot.store(offset, payload);
        if offset == 0 {
            slot.header
                .copy_from_slice(&buf.data()[..ipv4::MIN_HEADER_LEN]);
            slot.have_first = true;
        }
        if !ip.more_fragments() {
            slot.total = Some(end);
        }
        let Some(total) = slot.complete_len() else {
            return ReassemblyOutcome::Held;
        };
        slot.key = None;
        let whole = ipv4::MIN_HEADER_LEN + total;
        let current = buf.len();
        let grown = if whole > current {
            buf.append(whole - current).is_some()
        } else {
            buf.trim(current - whole)
        };
        if !grown {
            return ReassemblyOutcome::Dropped(ReassemblyDrop::NoRoom);
        }
        let out = buf.data_mut();
        out[..ipv4::MIN_HEADER_LEN].copy_from_slice(&slot.header);
        out[0] = 0x45;
        out[ipv4::MIN_HEADER_LEN..].copy_from_slice(&slot.data[..total]);
        let mut ip = Ipv4Packet::new_unchecked(&mut out[..]);
        ip.set_total_len(whole as u16);
        ip.set_flags_fragment(0);
        ip.fill_checksum();
        ReassemblyOutcome::Complete
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::HeapBuf;
    use crate::esp::fragment::fragment_ipv4;
    use std::net::Ipv4Addr;

    fn datagram(id: u16, len: usize) -> Vec<u8> {
        let mut p = vec![0u8; len];
        ipv4::write_header(
            &mut p,
            0,
            len as u16,
            id,
            0,
            64,
            50,
            Ipv4Addr::new(192, 0, 2, 1),
            Ipv4Addr::new(192, 0, 2, 2),
        );
        for (i, b) in p[20..].iter_mut().enumerate() {
            *b = (i * 7) as u8;
        }
        p
    }

    fn fragments(p: &[u8], mtu: usize) -> Vec<HeapBuf> {
        let mut out: Vec<HeapBuf> = (0..8).map(|_| HeapBuf::with_capacity(4096, 128)).collect();
        let n = fragment_ipv4(p, mtu, &mut out).unwrap();
        out.truncate(n);
        out
    }

    #[test]
    fn out_of_order_fragments_reassemble_exactly() {
        let p = datagram(9, 2000);
        let mut frags = fragments(&p, 700);
        assert_eq!(frags.len(), 3);
        let mut r = Reassembler::new(4, 30);
        assert_eq!(r.push(&mut frags[2], 0), ReassemblyOutcome::Held);
        assert_eq!(r.push(&mut frags[0], 0), ReassemblyOutcome::Held);
        assert_eq!(r.push(&mut frags[1], 1), ReassemblyOutcome::Complete);
        assert_eq!(frags[1].data(), &p[..]);
        let mut whole = HeapBuf::from_slice(&p);
        assert_eq!(r.push(&mut whole, 1), ReassemblyOutcome::NotFragment);
    }

    #[test]
    fn table_is_bounded_and_stale_entries_time_out() {
        let mut r = Reassembler::new(1, 5);
        let mut a = fragments(&datagram(1, 1500), 700);
        let mut b = fragments(&datagram(2, 1500), 700);
        assert_eq!(r.push(&mut a[0], 0), ReassemblyOutcome::Held);
        assert_eq!(
            r.push(&mut b[0], 1),
            ReassemblyOutcome::Dropped(ReassemblyDrop::TableFull)
        );
        assert_eq!(r.push(&mut b[0], 10), ReassemblyOutcome::Held);
        assert_eq!(r.timeouts(), 1);
        assert_eq!(
            r.push(&mut a[1], 10),
            ReassemblyOutcome::Dropped(ReassemblyDrop::TableFull)
        );
    }
}
