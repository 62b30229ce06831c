//! Neighbor cache (ARP for IPv4, ND for IPv6) shared by the control thread (the only writer)
//! and every worker (readers on the per-packet path).
//!
//! Fixed capacity, open addressing, one seqlock per slot: a reader never blocks and never
//! allocates; a torn read is detected by the slot's sequence and treated as a miss, which only
//! costs the packet a resolve request. Entries are never moved, so a reader that probes while
//! the writer updates another slot is unaffected.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::tables::PortId;

const MAX_PROBES: usize = 16;

struct Slot {
    /// Even: stable; odd: being written.
    sequence: AtomicU32,
    /// The port, with `IN_USE` set when the slot holds an entry (and `V6` for IPv6).
    meta: AtomicU64,
    /// The address: IPv4 in the low 32 bits of `low`, IPv6 across both words.
    high: AtomicU64,
    low: AtomicU64,
    /// MAC in the low 48 bits.
    mac: AtomicU64,
}

const IN_USE: u64 = 1 << 63;
const V6: u64 = 1 << 62;
/// A removed entry: probing continues past it, inserting may reuse it.
const TOMBSTONE: u64 = 1 << 61;

#[derive(Clone, Copy, PartialEq, Eq)]
struct Key {
    meta: u64,
    high: u64,
    low: u64,
}

fn key_of(port: PortId, addr: IpAddr) -> Key {
    match addr {
        IpAddr::V4(a) => Key {
            meta: IN_USE | u64::from(port.0),
            high: 0,
            low: u64::from(u32::from(a)),
        },
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            Key {
                meta: IN_USE | V6 | u64::from(port.0),
                high: (bits >> 64) as u64,
                low: bits as u64,
            }
        }
    }
}

fn mac_to_u64(mac: [u8; 6]) -> u64 {
    let mut b = [0u8; 8];
    b[2..].copy_from_slice(&mac);
    u64::from_be_bytes(b)
}

fn u64_to_mac(v: u64) -> [u8; 6] {
    let b = v.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

pub struct NeighborTable {
    slots: Box<[Slot]>,
    mask: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("neighbor table full around this address")]
pub struct NeighborTableFull;

impl NeighborTable {
    /// `capacity` is rounded up to a power of two.
    pub fn new(capacity: usize) -> Self {
        let size = capacity.max(16).next_power_of_two();
        let slots = (0..size)
            .map(|_| Slot {
                sequence: AtomicU32::new(0),
                meta: AtomicU64::new(0),
                high: AtomicU64::new(0),
                low: AtomicU64::new(0),
                mac: AtomicU64::new(0),
            })
            .collect::<Vec<_>>()
            .into_boxed_slice();
        NeighborTable {
            slots,
            mask: size - 1,
        }
    }

    fn home(&self, key: Key) -> usize {
        // Fibonacci hashing spreads consecutive addresses over the table.
        let mixed = key.low ^ key.high.rotate_left(17) ^ key.meta;
        (mixed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & self.mask
    }

    fn read_key(slot: &Slot) -> Key {
        Key {
            meta: slot.meta.load(Ordering::Acquire),
            high: slot.high.load(Ordering::Acquire),
            low: slot.low.load(Ordering::Acquire),
        }
    }

    /// The MAC for `addr` out of `port`, if resolved. Lock-free; safe from any thread.
    #[inline]
    pub fn lookup(&self, port: PortId, addr: IpAddr) -> Option<[u8; 6]> {
        let key = key_of(port, addr);
        let mut index = self.home(key);
        for _ in 0..MAX_PROBES {
            let slot = &self.slots[index];
            let before = slot.sequence.load(Ordering::Acquire);
            let slot_key = Self::read_key(slot);
            let mac = slot.mac.load(Ordering::Acquire);
            let after = slot.sequence.load(Ordering::Acquire);
            if before != after || before & 1 == 1 {
                return None;
            }
            if slot_key == key {
                return Some(u64_to_mac(mac));
            }
            if slot_key.meta == 0 {
                return None;
            }
            index = (index + 1) & self.mask;
        }
        None
    }

    /// Inserts or refreshes an entry. Only the control thread may call this (single writer).
    pub fn insert(
        &self,
        port: PortId,
        addr: IpAddr,
        mac: [u8; 6],
    ) -> Result<(), NeighborTableFull> {
        let key = key_of(port, addr);
        let mut index = self.home(key);
        let mut free = None;
        for _ in 0..MAX_PROBES {
            let slot_key = Self::read_key(&self.slots[index]);
            if slot_key == key {
                free = Some(index);
                break;
            }
            if slot_key.meta & IN_USE == 0 && free.is_none() {
                free = Some(index);
            }
            if slot_key.meta == 0 {
                break;
            }
            index = (index + 1) & self.mask;
        }
        let Some(index) = free else {
            return Err(NeighborTableFull);
        };
        self.write(index, key, mac_to_u64(mac));
        Ok(())
    }

    /// Forgets an entry (it aged out); packets for it are dropped and resolved again.
    pub fn remove(&self, port: PortId, addr: IpAddr) -> bool {
        let key = key_of(port, addr);
        let mut index = self.home(key);
        for _ in 0..MAX_PROBES {
            let slot_key = Self::read_key(&self.slots[index]);
            if slot_key == key {
                let gone = Key {
                    meta: TOMBSTONE,
                    high: 0,
                    low: 0,
                };
                self.write(index, gone, 0);
                return true;
            }
            if slot_key.meta == 0 {
                return false;
            }
            index = (index + 1) & self.mask;
        }
        false
    }

    fn write(&self, index: usize, key: Key, mac: u64) {
        let slot = &self.slots[index];
        let sequence = slot.sequence.load(Ordering::Relaxed);
        slot.sequence
            .store(sequence.wrapping_add(1), Ordering::Release);
        std::sync::atomic::fence(Ordering::Release);
        slot.high.store(key.high, Ordering::Release);
        slot.low.store(key.low, Ordering::Release);
        slot.meta.store(key.meta, Ordering::Release);
        slot.mac.store(mac, Ordering::Release);
        slot.sequence
            .store(sequence.wrapping_add(2), Ordering::Release);
    }

    /// Every resolved entry, for `show` (control thread).
    pub fn entries(&self) -> Vec<(PortId, IpAddr, [u8; 6])> {
        self.slots
            .iter()
            .filter_map(|slot| {
                let key = Self::read_key(slot);
                (key.meta & IN_USE != 0).then(|| {
                    let addr = if key.meta & V6 != 0 {
                        IpAddr::V6(Ipv6Addr::from(
                            (u128::from(key.high) << 64) | u128::from(key.low),
                        ))
                    } else {
                        IpAddr::V4(Ipv4Addr::from(key.low as u32))
                    };
                    (
                        PortId((key.meta & 0xffff) as u16),
                        addr,
                        u64_to_mac(slot.mac.load(Ordering::Acquire)),
                    )
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_was_inserted_per_port_and_updates_in_place() {
        let table = NeighborTable::new(16);
        let a = IpAddr::V4(Ipv4Addr::new(10, 1, 1, 254));
        assert_eq!(table.lookup(PortId(0), a), None);
        table.insert(PortId(0), a, [2, 0, 0, 0, 0, 1]).unwrap();
        assert_eq!(table.lookup(PortId(0), a), Some([2, 0, 0, 0, 0, 1]));
        assert_eq!(table.lookup(PortId(1), a), None);
        table.insert(PortId(0), a, [2, 0, 0, 0, 0, 9]).unwrap();
        assert_eq!(table.lookup(PortId(0), a), Some([2, 0, 0, 0, 0, 9]));
        assert_eq!(table.entries().len(), 1);
        let v6: IpAddr = "fd00:1::10".parse().unwrap();
        assert_eq!(table.lookup(PortId(0), v6), None);
        table.insert(PortId(0), v6, [2, 0, 0, 0, 0, 6]).unwrap();
        assert_eq!(table.lookup(PortId(0), v6), Some([2, 0, 0, 0, 0, 6]));
        let mapped: IpAddr = "::a01:1fe".parse().unwrap();
        assert_eq!(
            table.lookup(PortId(0), mapped),
            None,
            "an IPv6 address is never an IPv4 one"
        );
        assert!(table
            .entries()
            .contains(&(PortId(0), v6, [2, 0, 0, 0, 0, 6])));
    }

    #[test]
    fn a_full_neighbourhood_is_an_error_not_a_panic() {
        let table = NeighborTable::new(16);
        let mut refused = 0;
        for i in 0..64u32 {
            if table
                .insert(PortId(0), IpAddr::V4(Ipv4Addr::from(i + 1)), [0; 6])
                .is_err()
            {
                refused += 1;
            }
        }
        assert_eq!(refused, 64 - 16);
        for i in 0..64u32 {
            let _ = table.lookup(PortId(0), IpAddr::V4(Ipv4Addr::from(i + 1)));
        }
    }

    #[test]
    fn readers_on_another_thread_see_consistent_entries() {
        let table = std::sync::Arc::new(NeighborTable::new(64));
        let reader = {
            let table = table.clone();
            std::thread::spawn(move || {
                for _ in 0..200_000 {
                    if let Some(mac) =
                        table.lookup(PortId(3), IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)))
                    {
                        // Every written MAC has all six bytes equal: a torn read would not.
                        assert!(mac.iter().all(|b| *b == mac[0]), "{mac:?}");
                    }
                }
            })
        };
        for i in 0..200_000u32 {
            let b = (i % 251) as u8;
            table
                .insert(PortId(3), IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)), [b; 6])
                .unwrap();
        }
        reader.join().unwrap();
    }

    #[test]
    fn ipv6_entries_live_beside_ipv4_ones() {
        let table = NeighborTable::new(16);
        let v6: IpAddr = "fd00:1::10".parse().unwrap();
        assert_eq!(table.lookup(PortId(0), v6), None);
        table.insert(PortId(0), v6, [2, 0, 0, 0, 0, 6]).unwrap();
        assert_eq!(table.lookup(PortId(0), v6), Some([2, 0, 0, 0, 0, 6]));
        // ::10.1.1.254 is an IPv6 address, never the IPv4 neighbor 10.1.1.254.
        let v4 = IpAddr::V4(Ipv4Addr::new(10, 1, 1, 254));
        table.insert(PortId(0), v4, [2, 0, 0, 0, 0, 4]).unwrap();
        let mapped: IpAddr = "::a01:1fe".parse().unwrap();
        assert_eq!(table.lookup(PortId(0), mapped), None);
        assert!(table
            .entries()
            .contains(&(PortId(0), v6, [2, 0, 0, 0, 0, 6])));
        assert!(table
            .entries()
            .contains(&(PortId(0), v4, [2, 0, 0, 0, 0, 4])));
    }

    #[test]
    fn removed_entries_leave_probe_chains_intact_and_their_slot_reusable() {
        let table = NeighborTable::new(16);
        let addrs: Vec<IpAddr> = (1..=12u32).map(|i| IpAddr::V4(Ipv4Addr::from(i))).collect();
        for (i, a) in addrs.iter().enumerate() {
            table.insert(PortId(0), *a, [i as u8; 6]).unwrap();
        }
        assert!(table.remove(PortId(0), addrs[0]));
        assert!(!table.remove(PortId(0), addrs[0]));
        assert_eq!(table.lookup(PortId(0), addrs[0]), None);
        for (i, a) in addrs.iter().enumerate().skip(1) {
            assert_eq!(table.lookup(PortId(0), *a), Some([i as u8; 6]), "{a}");
        }
        assert_eq!(table.entries().len(), 11);
        // Re-learning an entry that still exists updates it in place, never twice.
        table.insert(PortId(0), addrs[5], [99; 6]).unwrap();
        assert_eq!(table.entries().len(), 11);
        for i in 13..=17u32 {
            table
                .insert(PortId(0), IpAddr::V4(Ipv4Addr::from(i)), [1; 6])
                .unwrap();
        }
        assert_eq!(table.entries().len(), 16, "the tombstone was reused");
    }
}
