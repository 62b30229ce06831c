//! Reassembly of fragmented outer IPv6 packets (RFC 8200 §4.5): ESP from an IPv6 peer that a
//! router on the way (or the peer itself) split with a Fragment header. Bounded and timed like
//! the IPv4 reassembler: a fixed number of datagrams in flight, allocated once, each of at most
//! [`MAX_DATAGRAM`] bytes and abandoned after the timeout.
//!
//! Stricter than IPv4 where IPv6 says so: overlapping fragments drop the whole datagram
//! (RFC 5722), and a fragment must follow the fixed header directly (an IPsec peer's packets
//! carry no other extension header before it; anything else is refused, not parsed).

use super::fragment_slots::FragmentSlots;
use super::reassembly::{ReassemblyDrop, ReassemblyOutcome, MAX_DATAGRAM};
use crate::buf::PacketBuf;
use crate::wire::ip_proto;
use crate::wire::ipv6::{self, Ipv6Packet};

const FRAGMENT_HEADER_LEN: usize = 8;
#[derive(Clone, Copy, PartialEq, Eq)]
struct Key {
    src: [u8; 16],
    dst: [u8; 16],
    id: u32,
}

/// The Fragment header's fields.
struct Fragment {
    next_header: u8,
    offset: usize,
    more: bool,
    id: u32,
}

fn parse_fragment(header: &[u8]) -> Option<Fragment> {
    let h = header.get(..FRAGMENT_HEADER_LEN)?;
    let offset_and_flags = u16::from_be_bytes([h[2], h[3]]);
    Some(Fragment {
        next_header: h[0],
        offset: usize::from(offset_and_flags & !7),
        more: offset_and_flags & 1 != 0,
        id: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
    })
}

pub struct Reassembler6 {
    slots: FragmentSlots<Key, { ipv6::HEADER_LEN }>,
    /// Datagrams dropped because two of their fragments overlapped.
    pub overlaps: u64,
}

impl Reassembler6 {
    /// Allocates `slots` datagram buffers of [`MAX_DATAGRAM`] bytes up front.
    pub fn new(slots: usize, timeout_seconds: u64) -> Self {
        Reassembler6 {
            slots: FragmentSlots::new(slots, timeout_seconds),
            overlaps: 0,
        }
    }

    /// Datagrams abandoned because they did not complete in time.
    pub fn timeouts(&self) -> u64 {
        self.slots.timeouts
    }

    /// Offers one outer IPv6 packet (no Ethernet header) at time `now` (seconds).
    pub fn push<B: PacketBuf>(&mut self, buf: &mut B, now: u64) -> ReassemblyOutcome {
        let malformed = ReassemblyOutcome::Dropped(ReassemblyDrop::Malformed);
        let (key, fragment, payload_at, payload_end) = {
            let Ok(ip) = Ipv6Packet::new_checked(buf.data()) else {
                return malformed;
            };
            if ip.next_header() != ip_proto::IPV6_FRAGMENT {
                return ReassemblyOutcome::NotFragment;
            }
            let Some(fragment) = parse_fragment(ip.payload()) else {
                return malformed;
            };
            let key = Key {
                src: ip.src().octets(),
                dst: ip.dst().octets(),
                id: fragment.id,
            };
            (
                key,
                fragment,
                ipv6::HEADER_LEN + FRAGMENT_HEADER_LEN,
                ip.total_len(),
            )
        };
        let length = payload_end.saturating_sub(payload_at);
        let end = fragment.offset + length;
        // A Fragment header inside a fragment would make reassembly recurse; empty fragments
        // and non-final fragments of a length other than a multiple of 8 are invalid.
        if fragment.next_header == ip_proto::IPV6_FRAGMENT
            || length == 0
            || (fragment.more && length % 8 != 0)
        {
            return malformed;
        }
        if end > MAX_DATAGRAM {
            return ReassemblyOutcome::Dropped(ReassemblyDrop::TooLarge);
        }
        let Some(slot) = self.slots.slot_for(key, now) else {
            return ReassemblyOutcome::Dropped(ReassemblyDrop::TableFull);
        };
        let (first_unit, end_unit) = (fragment.offset / 8, end.div_ceil(8));
        // A second last fragment, or data beyond the known end, means a forged or broken
        // datagram: nothing of it can be trusted.
        let inconsistent = match slot.total {
            Some(total) => end > total || (!fragment.more && end != total),
            None => false,
        };
        if slot.covers_any(first_unit, end_unit) || inconsistent {
            slot.key = None;
            self.overlaps += 1;
            return ReassemblyOutcome::Dropped(ReassemblyDrop::Overlapping);
        }
        slot.store(fragment.offset, &buf.data()[payload_at..payload_end]);
        if fragment.offset == 0 {
            slot.header.copy_from_slice(&buf.data()[..ipv6::HEADER_LEN]);
            slot.next_header = fragment.next_header;
            slot.have_first = true;
        }
        if !fragment.more {
            slot.total = Some(end);
        }
        let Some(total) = slot.complete_len() else {
            return ReassemblyOutcome::Held;
        };
        slot.key = None;
        let whole = ipv6::HEADER_LEN + total;
        let current = buf.len();
        let resized = if whole > current {
            buf.append(whole - current).is_some()
        } else {
            buf.trim(current - whole)
        };
        if !resized {
            return ReassemblyOutcome::Dropped(ReassemblyDrop::NoRoom);
        }
        let out = buf.data_mut();
        out[..ipv6::HEADER_LEN].copy_from_slice(&slot.header);
        out[ipv6::HEADER_LEN..].copy_from_slice(&slot.data[..total]);
        let mut ip = Ipv6Packet::new_unchecked(&mut out[..]);
        ip.set_next_header(slot.next_header);
        ip.set_payload_len(total as u16);
        ReassemblyOutcome::Complete
    }
}

/// Test support: splits an IPv6 packet (fixed header only) into fragments carrying at most
/// `chunk` payload bytes each (a multiple of 8), the way a router or the peer would.
#[cfg(test)]
pub(crate) fn fragment_ipv6(packet: &[u8], chunk: usize, id: u32) -> Vec<Vec<u8>> {
    let next_header = packet[6];
    let payload = &packet[ipv6::HEADER_LEN..];
    payload
        .chunks(chunk)
        .enumerate()
        .map(|(i, part)| {
            let offset = i * chunk;
            let more = offset + part.len() < payload.len();
            let mut fragment = packet[..ipv6::HEADER_LEN].to_vec();
            fragment[6] = ip_proto::IPV6_FRAGMENT;
            let payload_len = (FRAGMENT_HEADER_LEN + part.len()) as u16;
            fragment[4..6].copy_from_slice(&payload_len.to_be_bytes());
            fragment.extend_from_slice(&[next_header, 0]);
            fragment.extend_from_slice(&((offset as u16) | u16::from(more)).to_be_bytes());
            fragment.extend_from_slice(&id.to_be_bytes());
            fragment.extend_from_slice(part);
            fragment
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::HeapBuf;

    fn datagram(len: usize) -> Vec<u8> {
        let mut p = vec![0u8; ipv6::HEADER_LEN + len];
        ipv6::write_header(
            &mut p,
            0,
            len as u16,
            ip_proto::ESP,
            64,
            "2001:db8::2".parse().unwrap(),
            "2001:db8::1".parse().unwrap(),
        );
        for (i, b) in p[ipv6::HEADER_LEN..].iter_mut().enumerate() {
            *b = (i * 11 + 3) as u8;
        }
        p
    }

    fn bufs(fragments: &[Vec<u8>]) -> Vec<HeapBuf> {
        fragments
            .iter()
            .map(|f| {
                let mut b = HeapBuf::with_capacity(MAX_DATAGRAM + 256, 128);
                b.append(f.len()).unwrap().copy_from_slice(f);
                b
            })
            .collect()
    }

    #[test]
    fn out_of_order_fragments_reassemble_exactly() {
        let p = datagram(3000);
        let mut frags = bufs(&fragment_ipv6(&p, 1232, 77));
        assert_eq!(frags.len(), 3);
        let mut r = Reassembler6::new(4, 30);
        assert_eq!(r.push(&mut frags[2], 0), ReassemblyOutcome::Held);
        assert_eq!(r.push(&mut frags[0], 0), ReassemblyOutcome::Held);
        assert_eq!(r.push(&mut frags[1], 1), ReassemblyOutcome::Complete);
        assert_eq!(frags[1].data(), &p[..]);
        let mut whole = HeapBuf::from_slice(&p);
        assert_eq!(r.push(&mut whole, 1), ReassemblyOutcome::NotFragment);
    }

    #[test]
    fn overlapping_fragments_drop_the_whole_datagram() {
        let p = datagram(2000);
        let mut frags = bufs(&fragment_ipv6(&p, 1000, 5));
        // A forged copy of the second fragment starting 8 bytes earlier overlaps the first.
        let mut forged = fragment_ipv6(&p, 1000, 5)[1].clone();
        forged[42..44].copy_from_slice(&(992u16).to_be_bytes());
        let mut forged = bufs(&[forged]);
        let mut r = Reassembler6::new(2, 30);
        assert_eq!(r.push(&mut frags[0], 0), ReassemblyOutcome::Held);
        assert_eq!(
            r.push(&mut forged[0], 0),
            ReassemblyOutcome::Dropped(ReassemblyDrop::Overlapping)
        );
        assert_eq!(r.overlaps, 1);
        // The datagram is gone: the genuine rest starts a new one that never completes.
        assert_eq!(r.push(&mut frags[1], 0), ReassemblyOutcome::Held);
    }

    #[test]
    fn tampered_fragments_are_refused() {
        let p = datagram(2000);
        let genuine = fragment_ipv6(&p, 1000, 9);
        let mut r = Reassembler6::new(2, 30);
        let mut odd = genuine[0].clone();
        odd.pop();
        let odd_len = (odd.len() - 40) as u16;
        odd[4..6].copy_from_slice(&odd_len.to_be_bytes());
        let mut nested = genuine[0].clone();
        nested[40] = ip_proto::IPV6_FRAGMENT;
        let mut truncated = genuine[0][..44].to_vec();
        truncated[4..6].copy_from_slice(&4u16.to_be_bytes());
        let mut beyond = genuine[1].clone();
        beyond[42..44].copy_from_slice(&((MAX_DATAGRAM as u16) & !7).to_be_bytes());
        for (name, bytes, reason) in [
            (
                "non-final not a multiple of 8",
                odd,
                ReassemblyDrop::Malformed,
            ),
            (
                "fragment inside a fragment",
                nested,
                ReassemblyDrop::Malformed,
            ),
            (
                "truncated fragment header",
                truncated,
                ReassemblyDrop::Malformed,
            ),
            (
                "beyond the largest datagram",
                beyond,
                ReassemblyDrop::TooLarge,
            ),
        ] {
            let mut b = bufs(&[bytes]);
            assert_eq!(
                r.push(&mut b[0], 0),
                ReassemblyOutcome::Dropped(reason),
                "{name}"
            );
        }
        // A second "last" fragment with a different end contradicts the first.
        let mut frags = bufs(&genuine);
        let mut short_last = genuine[1].clone();
        short_last.truncate(short_last.len() - 8);
        let short_len = (short_last.len() - 40) as u16;
        short_last[4..6].copy_from_slice(&short_len.to_be_bytes());
        short_last[42..44].copy_from_slice(&(1000u16 + 8 * 100).to_be_bytes());
        let mut short_last = bufs(&[short_last]);
        assert_eq!(r.push(&mut frags[1], 0), ReassemblyOutcome::Held);
        assert_eq!(
            r.push(&mut short_last[0], 0),
            ReassemblyOutcome::Dropped(ReassemblyDrop::Overlapping)
        );
    }

    #[test]
    fn table_is_bounded_and_stale_entries_time_out() {
        let mut r = Reassembler6::new(1, 5);
        let mut a = bufs(&fragment_ipv6(&datagram(1500), 1000, 1));
        let mut b = bufs(&fragment_ipv6(&datagram(1500), 1000, 2));
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
        assert_eq!(r.push(&mut b[1], 11), ReassemblyOutcome::Complete);
    }
}
