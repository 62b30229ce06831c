//! An open-addressing map from `u64` keys to small `Copy` values whose probe position is known
//! before the lookup, so a burst can prefetch every packet's slot first and probe afterwards (the
//! standard library's map hides where an entry lives). Linear probing with backward-shift
//! deletion: no tombstones, so lookups stay short after any amount of churn.
//!
//! The value lives in the slot itself, so a caller that keeps what a lookup needs in the value
//! (the rule table keeps a whole IPv4 rule there) pays one cache line per lookup. Slots of up to
//! 32 bytes come two to a line; the table is kept at most half full, so a probe nearly always
//! ends in the line that was prefetched.

use super::huge_pages::huge_vec;

const MIN_SLOTS: usize = 16;

/// A value the index can hold: one bit pattern of it is reserved to mark a free slot, so the
/// slot needs no separate flag (which would push a 24-byte value past 32 bytes).
pub trait IndexValue: Copy {
    const VACANT: Self;
    fn is_vacant(&self) -> bool;
}

/// `u32::MAX` is the free-slot marker; stored values are below it.
impl IndexValue for u32 {
    const VACANT: Self = u32::MAX;
    fn is_vacant(&self) -> bool {
        *self == u32::MAX
    }
}

/// 32-byte aligned so that a slot of up to 32 bytes never straddles two cache lines (the
/// prefetch brings in one line).
#[derive(Clone, Copy)]
#[repr(C, align(32))]
struct Slot<V> {
    key: u64,
    value: V,
}

pub struct PrefetchIndex<V: IndexValue = u32> {
    slots: Vec<Slot<V>>,
    mask: usize,
    len: usize,
}

impl<V: IndexValue> Default for PrefetchIndex<V> {
    fn default() -> Self {
        Self::new()
    }
}

/// Spreads the key's bits over the low bits the table indexes with (prefixes have zero low
/// bits, unit numbers are small).
#[inline]
fn hash(key: u64) -> u64 {
    let mut x = key.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 32;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^ (x >> 29)
}

impl<V: IndexValue> PrefetchIndex<V> {
    const FREE: Slot<V> = Slot {
        key: 0,
        value: V::VACANT,
    };

    pub fn new() -> Self {
        PrefetchIndex {
            slots: vec![Self::FREE; MIN_SLOTS],
            mask: MIN_SLOTS - 1,
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn home(&self, key: u64) -> usize {
        hash(key) as usize & self.mask
    }

    /// Starts loading the line where the lookup of `key` begins.
    #[inline]
    pub fn prefetch(&self, key: u64) {
        let slot = self.slots.as_ptr().wrapping_add(self.home(key));
        crate::esp::prefetch::prefetch_bytes(slot as *const u8, 1);
    }

    #[inline]
    pub fn get(&self, key: u64) -> Option<&V> {
        self.position(key).map(|at| &self.slots[at].value)
    }

    /// The stored value, to change in place (the key stays).
    pub fn get_mut(&mut self, key: u64) -> Option<&mut V> {
        self.position(key).map(|at| &mut self.slots[at].value)
    }

    #[inline]
    fn position(&self, key: u64) -> Option<usize> {
        let mut at = self.home(key);
        loop {
            let slot = &self.slots[at];
            if slot.value.is_vacant() {
                return None;
            }
            if slot.key == key {
                return Some(at);
            }
            at = (at + 1) & self.mask;
        }
    }

    /// Inserts or replaces; returns the previous value. A vacant-marker `value` is refused
    /// (`None`, nothing stored): it would read back as a free slot.
    pub fn insert(&mut self, key: u64, value: V) -> Option<V> {
        if value.is_vacant() {
            return None;
        }
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mut at = self.home(key);
        loop {
            let slot = &mut self.slots[at];
            if slot.value.is_vacant() {
                *slot = Slot { key, value };
                self.len += 1;
                return None;
            }
            if slot.key == key {
                return Some(std::mem::replace(&mut slot.value, value));
            }
            at = (at + 1) & self.mask;
        }
    }

    pub fn remove(&mut self, key: u64) -> Option<V> {
        let mut at = self.home(key);
        loop {
            let slot = self.slots[at];
            if slot.value.is_vacant() {
                return None;
            }
            if slot.key == key {
                break;
            }
            at = (at + 1) & self.mask;
        }
        let removed = self.slots[at].value;
        // Backward shift: pull later members of the probe run into the hole when their home
        // position allows it, so no lookup ever stops early at the freed slot.
        let mut hole = at;
        let mut next = (hole + 1) & self.mask;
        loop {
            let slot = self.slots[next];
            if slot.value.is_vacant() {
                break;
            }
            let home = self.home(slot.key);
            let distance_to_next = next.wrapping_sub(home) & self.mask;
            let distance_to_hole = hole.wrapping_sub(home) & self.mask;
            if distance_to_hole <= distance_to_next {
                self.slots[hole] = slot;
                hole = next;
            }
            next = (next + 1) & self.mask;
        }
        self.slots[hole] = Self::FREE;
        self.len -= 1;
        Some(removed)
    }

    fn grow(&mut self) {
        let mut doubled = huge_vec(self.slots.len() * 2);
        doubled.resize(self.slots.len() * 2, Self::FREE);
        let old = std::mem::replace(&mut self.slots, doubled);
        self.mask = self.slots.len() - 1;
        self.len = 0;
        for slot in old.into_iter().filter(|s| !s.value.is_vacant()) {
            self.insert(slot.key, slot.value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn agrees_with_a_hash_map_through_random_churn() {
        let mut index = PrefetchIndex::<u32>::new();
        let mut reference = HashMap::new();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for round in 0..200_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // A small key space so inserts, replacements and removals all collide often.
            let key = (x % 5_000) << 8;
            if x & 0x300 == 0 {
                assert_eq!(index.remove(key), reference.remove(&key), "round {round}");
            } else {
                assert_eq!(
                    index.insert(key, round),
                    reference.insert(key, round),
                    "round {round}"
                );
            }
            if round % 997 == 0 {
                for probe in 0..5_000u64 {
                    let key = probe << 8;
                    assert_eq!(index.get(key).copied(), reference.get(&key).copied());
                }
            }
        }
        assert_eq!(index.len(), reference.len());
    }

    #[test]
    fn stays_at_most_half_full() {
        let mut index = PrefetchIndex::<u32>::new();
        for key in 0..10_000u64 {
            index.insert(key, 1);
            assert!(index.len() * 2 <= index.slots.len());
        }
        assert_eq!(index.get(9_999), Some(&1));
        assert_eq!(
            index.insert(5, u32::MAX),
            None,
            "the vacant marker is refused"
        );
        assert_eq!(index.get(5), Some(&1));
        assert_eq!(index.get(10_000), None);
    }
}
